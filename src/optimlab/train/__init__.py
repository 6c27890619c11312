"""Training harness: `fit(config, seed)` runs one seeded, resumable training and returns History.

from optimlab.train import TrainConfig, fit
history = fit(TrainConfig(dataset="digits", model="mlp", optimizer="rsgdm",
                          hparams={"lr": 0.1, "beta": 0.9}, epochs=5), seed=0, run_dir="runs/r0")

`fit` is imported on first use (it pulls in torch), so train.config, which the command line's parser
reads, stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optimlab.train.config import History, TrainConfig

if TYPE_CHECKING:
    from optimlab.train.loop import fit

__all__ = ["History", "TrainConfig", "fit"]


def __getattr__(name: str) -> Any:
    if name == "fit":
        from optimlab.train.loop import fit

        return fit
    raise AttributeError(f"module 'optimlab.train' has no attribute {name!r}")
