"""Training harness: `fit(config, seed)` runs one seeded, resumable training and returns History.

from optimlab.train import TrainConfig, fit
history = fit(TrainConfig(dataset="digits", model="mlp", optimizer="rsgdm",
                          hparams={"lr": 0.1, "beta": 0.9}, epochs=5), seed=0, run_dir="runs/r0")
"""

from optimlab.train.config import History, TrainConfig
from optimlab.train.loop import fit

__all__ = ["History", "TrainConfig", "fit"]
