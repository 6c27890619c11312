"""Experiments: a grid of training runs over optimizers x seeds, its statistics and its report.

    config = load_experiment_config("my.toml")            # or ExperimentConfig(...)
    results = run_experiment(config, "runs/my", workers=2)  # resumable; skips finished runs
    summary = summarize(results, baseline=config.baseline_label)
    write_report("runs/my")                                 # -> runs/my/report.md + PNGs

`run_experiment` and `write_report` are imported lazily (they pull in torch / matplotlib).
"""

from __future__ import annotations

import importlib
from typing import Any

from optimlab.experiments.config import (
    ConfigError,
    ExperimentConfig,
    OptimizerSpec,
    RunSpec,
    load_experiment_config,
    parse_seeds,
)

_LAZY = {
    "run_experiment": "optimlab.experiments.sweep",
    "make_executor": "optimlab.experiments.sweep",
    "ExperimentMismatchError": "optimlab.experiments.sweep",
    "check_experiment": "optimlab.experiments.validate",
    "RunResult": "optimlab.experiments.results",
    "load_results": "optimlab.experiments.results",
    "summarize": "optimlab.experiments.stats",
    "Summary": "optimlab.experiments.stats",
    "mean_ci": "optimlab.experiments.stats",
    "paired_tests": "optimlab.experiments.stats",
    "write_report": "optimlab.experiments.report",
    "load_experiment": "optimlab.experiments.report",
}

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "OptimizerSpec",
    "RunSpec",
    "load_experiment_config",
    "parse_seeds",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'optimlab.experiments' has no attribute {name!r}")
