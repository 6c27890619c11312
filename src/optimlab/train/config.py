"""The configuration of one training run and the record it leaves (History).

TrainConfig is what `fit(config, seed)` needs; an experiment is a grid of these over optimizers
and seeds. Both are plain, JSON-able dataclasses so a finished run's file says exactly what ran.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "digits"  # a name from optimlab.data.list_datasets()
    data_dir: str | None = None  # folder for datasets read from disk (cifar10/100, imagefolder)
    dataset_options: dict[str, Any] = field(default_factory=dict)  # e.g. image_size for imagefolder
    model: str = "mlp"  # a name from optimlab.models.list_models()
    width: float = 1.0  # model width multiplier; < 1 for CPU-sized runs
    optimizer: str = "sgdm-ema"  # a name from optimlab.list_optimizers()
    hparams: dict[str, Any] = field(default_factory=dict)  # passed to create_optimizer (lr, beta, ...)
    epochs: int = 10
    batch_size: int = 128
    schedule: str = "constant"  # "constant" | "step" | "cosine"
    step_every: int = 50  # "step": multiply lr by step_gamma every step_every epochs (paper 000)
    step_gamma: float = 0.5
    warmup_epochs: int = 0  # linear warm-up from lr/… to lr over these epochs, before the schedule
    weight_decay_mode: str = "coupled"  # "coupled" (L2 in the gradient) | "decoupled" (θ -= lr·wd·θ)
    switch_epoch: int | None = None  # TM-SGD: epoch at which the multi-step rule starts
    augment: bool = False  # random crop (padding 4) + horizontal flip, for image data
    weighted_sampler: bool = False  # class-balancing WeightedRandomSampler (paper 003)
    val_fraction: float = 0.1  # carved from the training set (stratified); never the test set
    max_steps_per_epoch: int | None = None  # cap for quick runs / tests
    device: str = "cpu"
    deterministic: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; valid: {sorted(names)}")
        return cls(**d)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


@dataclass
class History:
    """What one run leaves: per-epoch curves and the final model's metrics (no best-epoch picking)."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)  # lr of the first param group during each epoch
    epoch_time_s: list[float] = field(default_factory=list)
    # accuracy, loss, mean_recall, mean_precision, kappa on the test set, final weights
    final: dict[str, float] = field(default_factory=dict)
    final_val: dict[str, float] = field(default_factory=dict)  # same metrics on the validation split
    confusion: list[list[int]] = field(default_factory=list)
    diverged_epoch: int | None = None  # first epoch (1-based) with a NaN/Inf loss, else None
    step_time_s: float = float("nan")  # mean wall time of one optimizer step (forward+backward+step)
    wall_time_s: float = 0.0

    @property
    def diverged(self) -> bool:
        return self.diverged_epoch is not None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
