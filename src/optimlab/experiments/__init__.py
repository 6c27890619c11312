"""Experiments: run a grid of training runs over optimizers x seeds, and keep its files.

The statistics over the runs are optimlab.stats; the report (report.md, figures) optimlab.report.

    config = load_experiment_config("my.toml")            # or ExperimentConfig(...)
    results = run_experiment(config, "runs/my", workers=2)  # resumable; skips finished runs

`run_experiment` is imported lazily (it pulls in torch).
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
    "make_executor": "optimlab.experiments.executor",
    "ExperimentMismatchError": "optimlab.experiments.sweep",
    "check_experiment": "optimlab.experiments.validate",
    "RunResult": "optimlab.experiments.results",
    "load_results": "optimlab.experiments.results",
    "load_experiment": "optimlab.experiments.results",
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
