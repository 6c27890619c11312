"""The configuration of one training run and the record it leaves (History).

TrainConfig is what `fit(config, seed)` needs; an experiment is a grid of these over optimizers
and seeds. Both are plain, JSON-able dataclasses so a finished run's file says exactly what ran.
A TrainConfig checks itself on construction (also from_dict), so a bad field fails at once with
its name, not hours into a sweep.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from optimlab.train.vocabulary import AMP_MODES, SCHEDULES, WEIGHT_DECAY_MODES


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require(ok: bool, name: str, value: Any, rule: str) -> None:
    if not ok:
        raise ValueError(f"TrainConfig.{name}={value!r} is invalid: {rule}")


def _parses_as_device(name: str) -> bool:
    import torch

    try:
        torch.device(name)
    except (RuntimeError, ValueError):
        return False
    return True


DEFAULT_TASK = "classification"
# TOML has no null: in a TOML file, --set and the flags that take a number, the string "none" unsets
# an optional number field (NULLABLE_FIELDS: switch_epoch, max_steps_per_epoch, diverge_factor).
NULL = "none"


FUNCTION_FIELDS = ("train_function", "train_options", "metrics")  # a run of the user's own code only


def without_default_task(d: dict[str, Any]) -> dict[str, Any]:
    """`d` without its "task" key when that is the default task, and without the train_function
    fields when unset (written files stay as they were)."""
    if d.get("task") == DEFAULT_TASK:
        d.pop("task")
    for key in FUNCTION_FIELDS:
        if key in d and not d[key]:
            d.pop(key)
    return d


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "digits"  # a name from optimlab.data.list_datasets() (one of the task's data sets)
    task: str = DEFAULT_TASK  # a name from optimlab.tasks.list_tasks(): data, model family, loss, metrics
    data_dir: str | None = None  # folder for datasets read from disk (cifar10/100, imagefolder)
    dataset_options: dict[str, Any] = field(default_factory=dict)  # e.g. image_size for imagefolder
    model: str = "cnn"  # a name from optimlab.models.list_models() (the CLI's default.toml uses cnn too)
    width: float = 1.0  # model width multiplier; < 1 for CPU-sized runs
    optimizer: str = "sgdm-ema"  # a name from optimlab.list_optimizers()
    hparams: dict[str, Any] = field(default_factory=dict)  # passed to create_optimizer (lr, beta, ...)
    epochs: int = 10
    batch_size: int = 128
    schedule: str = "constant"  # "constant" | "step" | "cosine"; evaluated per epoch (see schedules.py)
    step_every: int = 50  # "step": multiply lr by step_gamma every step_every epochs (paper 000)
    step_gamma: float = 0.5
    warmup_epochs: int = 0  # linear warm-up, per step, from lr/W to lr over W = warmup_epochs·steps
    weight_decay_mode: str = "coupled"  # "coupled" (L2 in the gradient) | "decoupled" (θ -= lr·wd·θ)
    no_decay: bool = False  # True: biases and BatchNorm/LayerNorm/GroupNorm weights get no weight decay
    switch_epoch: int | None = None  # TM-SGD: 1-based epoch whose first step uses the multi-step rule
    augment: bool = False  # random crop (padding 4) + horizontal flip, for images of >= 16 px only
    weighted_sampler: bool = False  # class-balancing WeightedRandomSampler (paper 003)
    val_fraction: float = 0.1  # carved from the training set (stratified); never the test set
    max_steps_per_epoch: int | None = None  # cap for quick runs / tests
    device: str = "cpu"  # "cpu" | "cuda" | "cuda:<i>"; under torchrun/launch_local cuda means cuda:LOCAL_RANK
    amp: str = "none"  # "none" | "bf16": torch.autocast(bfloat16) around forward + loss (see accel.py)
    channels_last: bool = False  # model and 4-D image batches in channels_last memory format (GPU convs)
    compile: bool = False  # torch.compile the model for training; checkpoints keep the plain state_dict
    data_on_device: bool = True  # splits moved to the device once, batches indexed there; False: per batch
    deterministic: bool = True  # torch.use_deterministic_algorithms during fit (restored after)
    eval_batch_size: int = 1024  # batch size of the no-grad evaluation passes (memory only)
    # divergence: a NaN/Inf training loss, or a running mean training loss above diverge_factor x the
    # loss of the run's first batch (checked every 32 steps on CPU and at each epoch end); None: NaN/Inf only
    diverge_factor: float | None = 100.0
    # the user's own training code (task "function", optimlab.tasks.function): fit calls
    # train_function(make_optimizer, seed, train_options) once and records the dict it returns
    train_function: str | None = None  # "package.module:fn"
    train_options: dict[str, Any] = field(default_factory=dict)  # the TOML's [train_options] table
    metrics: dict[str, str] = field(default_factory=dict)  # the returned keys: metric -> "higher" | "lower"

    def __post_init__(self) -> None:
        from optimlab.tasks import TASK_NAMES, known_task

        _require(known_task(self.task), "task", self.task, f"must be one of {TASK_NAMES}, a plugin or module:Class")
        _require(
            isinstance(self.dataset, str) and bool(self.dataset), "dataset", self.dataset, "must be a dataset name"
        )
        _require(isinstance(self.model, str) and bool(self.model), "model", self.model, "must be a model name")
        _require(
            isinstance(self.optimizer, str) and bool(self.optimizer),
            "optimizer",
            self.optimizer,
            "must be an optimizer name",
        )
        _require(isinstance(self.hparams, dict), "hparams", self.hparams, "must be a dict")
        _require(isinstance(self.dataset_options, dict), "dataset_options", self.dataset_options, "must be a dict")
        _require(
            isinstance(self.width, (int, float))
            and not isinstance(self.width, bool)
            and math.isfinite(self.width)
            and self.width > 0,
            "width",
            self.width,
            "must be > 0",
        )
        for name in ("epochs", "batch_size", "step_every", "eval_batch_size"):
            value = getattr(self, name)
            _require(_is_int(value) and value >= 1, name, value, "must be an int >= 1")
        _require(self.schedule in SCHEDULES, "schedule", self.schedule, f"must be one of {SCHEDULES}")
        _require(
            isinstance(self.step_gamma, (int, float))
            and not isinstance(self.step_gamma, bool)
            and math.isfinite(self.step_gamma)
            and self.step_gamma > 0,
            "step_gamma",
            self.step_gamma,
            "must be a finite number > 0",
        )
        _require(
            _is_int(self.warmup_epochs) and 0 <= self.warmup_epochs <= self.epochs,
            "warmup_epochs",
            self.warmup_epochs,
            f"must be an int in [0, epochs={self.epochs}]",
        )
        _require(
            self.weight_decay_mode in WEIGHT_DECAY_MODES,
            "weight_decay_mode",
            self.weight_decay_mode,
            f"must be one of {WEIGHT_DECAY_MODES}",
        )
        _require(
            self.switch_epoch is None or (_is_int(self.switch_epoch) and self.switch_epoch >= 1),
            "switch_epoch",
            self.switch_epoch,
            f'must be None ("{NULL}" in TOML and on the command line) or a 1-based epoch (int >= 1)',
        )
        _require(
            isinstance(self.val_fraction, (int, float))
            and not isinstance(self.val_fraction, bool)
            and 0.0 < self.val_fraction < 1.0,
            "val_fraction",
            self.val_fraction,
            "must be in (0, 1)",
        )
        _require(
            self.max_steps_per_epoch is None or (_is_int(self.max_steps_per_epoch) and self.max_steps_per_epoch >= 1),
            "max_steps_per_epoch",
            self.max_steps_per_epoch,
            f'must be None ("{NULL}" in TOML and on the command line) or an int >= 1',
        )
        _require(
            isinstance(self.device, str) and _parses_as_device(self.device),
            "device",
            self.device,
            "must be a torch device string such as 'cpu', 'cuda' or 'cuda:0'",
        )
        _require(self.amp in AMP_MODES, "amp", self.amp, f"must be one of {AMP_MODES}")
        _require(
            self.diverge_factor is None
            or (
                isinstance(self.diverge_factor, (int, float))
                and not isinstance(self.diverge_factor, bool)
                and math.isfinite(self.diverge_factor)
                and self.diverge_factor > 1
            ),
            "diverge_factor",
            self.diverge_factor,
            f'must be None ("{NULL}" in TOML and on the command line: NaN/Inf only) or a finite number > 1',
        )
        for name in (
            "augment",
            "weighted_sampler",
            "deterministic",
            "channels_last",
            "compile",
            "data_on_device",
            "no_decay",
        ):
            _require(isinstance(getattr(self, name), bool), name, getattr(self, name), "must be a bool")
        if self.task == "function" or any(getattr(self, name) for name in FUNCTION_FIELDS):
            from optimlab.tasks.function import check_function_fields

            check_function_fields(self)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict; `task` only when it is not "classification", so the files of
        image-classification runs (run.json, runs/*.json, experiment.json) are the same as before tasks."""
        d = dataclasses.asdict(self)
        return without_default_task(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; valid: {sorted(names)}")
        return cls(**with_nulls(d))

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


NULLABLE_FIELDS = tuple(  # the optional numbers: annotated `int | None` or `float | None`
    f.name for f in dataclasses.fields(TrainConfig) if f.type in ("int | None", "float | None")
)


def with_nulls(d: dict[str, Any]) -> dict[str, Any]:
    """`d` with the string "none" read as None in the optional number fields (TOML has no null)."""
    return {k: None if k in NULLABLE_FIELDS and v == NULL else v for k, v in d.items()}


@dataclass
class History:
    """What one run leaves: per-epoch curves and the final model's metrics (no best-epoch picking).

    Per-epoch lists have one entry per epoch run (the diverged epoch included). A diverged run's
    `final`/`final_val` have loss = NaN; the other metrics come from the diverged weights' predictions
    when every weight is still finite, else they are NaN and `confusion` is empty.
    """

    train_loss: list[float] = field(default_factory=list)  # mean over the epoch's steps (running)
    # *_acc: the task's per-epoch curve value (Task.curve; accuracy for classifiers)
    train_acc: list[float] = field(default_factory=list)  # on the (augmented) batches, running
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)  # lr of the first param group at each epoch's first step
    epoch_time_s: list[float] = field(default_factory=list)  # training + evaluation of the epoch
    # the task's metrics on the test set, final weights (classification: accuracy, loss, mean_recall,
    # mean_precision, kappa; optimlab.tasks.get_task(config.task).metrics names them) plus "loss"
    final: dict[str, float] = field(default_factory=dict)
    final_val: dict[str, float] = field(default_factory=dict)  # same metrics on the validation split
    confusion: list[list[int]] = field(default_factory=list)  # test set, [true class][predicted class]
    diverged_epoch: int | None = None  # first epoch (1-based) that diverged (NaN/Inf or exploding loss), else None
    diverged_reason: str | None = None  # why, e.g. "training loss 6.1e+04 > 100 x the first batch's 2.31"
    initial_loss: float | None = None  # loss of the run's first training batch (before any update)
    step_time_s: float = float("nan")  # mean wall time of one optimizer step (forward+backward+step)
    threads: int = 0  # torch intra-op threads the (last session of the) run trained with; 0: not recorded
    wall_time_s: float = 0.0  # time spent inside fit, summed over resumed sessions

    @property
    def diverged(self) -> bool:
        return self.diverged_epoch is not None

    @property
    def epochs_run(self) -> int:
        return len(self.train_loss)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
