"""What a sweep leaves on disk, and how to read it back.

    out_dir/experiment.json        the resolved ExperimentConfig
    out_dir/runs/<run_id>.json     one finished run: TrainConfig, seed, History, versions, wall time
    out_dir/runs/<run_id>.error.json  a run that raised (traceback kept); retried on the next sweep
    out_dir/ckpt/<run_id>/         fit's checkpoints while a run is in flight (removed when done)

Every file is written atomically (temporary file + os.replace), so a killed sweep never leaves a
half-written result that a later sweep would mistake for a finished run.
"""

from __future__ import annotations

import json
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimlab.experiments.config import ExperimentConfig, load_experiment_config
from optimlab.train.checkpoint import write_json_atomic as write_json_atomic  # the one atomic writer, re-exported
from optimlab.train.config import History, TrainConfig

RESULT_FORMAT = 1  # bump when the run-file layout changes


@dataclass
class RunResult:
    run_id: str  # dataset-model-label-s<seed>
    label: str  # the optimizer's label in the experiment (defaults to its registry name)
    seed: int
    config: TrainConfig
    status: str = "done"  # "done" | "error"
    history: History | None = None  # None when status == "error"
    error: str | None = None  # one-line reason when status == "error" (traceback in the file)
    versions: dict[str, str] = field(default_factory=dict)  # optimlab, torch, numpy, python
    wall_time_s: float = float("nan")

    @property
    def optimizer(self) -> str:
        return self.config.optimizer

    @property
    def dataset(self) -> str:
        return self.config.dataset

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def diverged(self) -> bool:
        if self.history is None:
            return False
        if self.history.diverged:
            return True
        # A run whose final metrics are not finite diverged even if fit did not flag an epoch.
        return any(not math.isfinite(v) for v in self.history.final.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RESULT_FORMAT,
            "run_id": self.run_id,
            "label": self.label,
            "seed": self.seed,
            "status": self.status,
            "config": self.config.to_dict(),
            "history": self.history.to_dict() if self.history is not None else None,
            "error": self.error,
            "versions": dict(self.versions),
            "wall_time_s": self.wall_time_s,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        return cls(
            run_id=d["run_id"],
            label=d["label"],
            seed=int(d["seed"]),
            config=TrainConfig.from_dict(d["config"]),
            status=d.get("status", "done"),
            history=History.from_dict(d["history"]) if d.get("history") is not None else None,
            error=d.get("error"),
            versions=dict(d.get("versions", {})),
            wall_time_s=float(d.get("wall_time_s", float("nan"))),
        )


def library_versions() -> dict[str, str]:
    import numpy
    import torch

    import optimlab

    return {
        "optimlab": optimlab.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def runs_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "runs"


def result_path(out_dir: Path, run_id: str) -> Path:
    return runs_dir(out_dir) / f"{run_id}.json"


def error_path(out_dir: Path, run_id: str) -> Path:
    return runs_dir(out_dir) / f"{run_id}.error.json"


def checkpoint_dir(out_dir: Path, run_id: str) -> Path:
    return Path(out_dir) / "ckpt" / run_id


def experiment_path(out_dir: Path) -> Path:
    return Path(out_dir) / "experiment.json"


def read_result(path: Path) -> RunResult:
    try:
        return RunResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"result file {path} is unreadable ({type(e).__name__}: {e}); delete it to re-run") from None


def load_results(out_dir: Path, run_ids: list[str] | None = None) -> list[RunResult]:
    """Finished and failed runs in out_dir/runs (only `run_ids`, in that order, when given)."""
    rdir = runs_dir(out_dir)
    if run_ids is None:
        run_ids = sorted(p.name[: -len(".json")] for p in rdir.glob("*.json") if not p.name.endswith(".error.json"))
        run_ids += sorted(
            p.name[: -len(".error.json")]
            for p in rdir.glob("*.error.json")
            if p.name[: -len(".error.json")] not in run_ids
        )
    out = []
    for rid in run_ids:
        if result_path(out_dir, rid).is_file():
            out.append(read_result(result_path(out_dir, rid)))
        elif error_path(out_dir, rid).is_file():
            out.append(read_result(error_path(out_dir, rid)))
    return out


def load_experiment(out_dir: str | Path) -> tuple[ExperimentConfig, list[RunResult]]:
    """The experiment's resolved config and its runs found on disk (grid order)."""
    out = Path(out_dir)
    path = experiment_path(out)
    if not path.is_file():
        raise FileNotFoundError(f"{out} has no experiment.json: not an optimlab experiment folder")
    config = load_experiment_config(path)
    return config, load_results(out, [r.run_id for r in config.runs()])
