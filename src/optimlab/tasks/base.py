"""What a task is: data + model family + loss + metrics (with their directions) + what "diverged" means.

An experiment is task x optimizer x seed. `optimlab.train.fit` owns everything a task shares (seeding,
the validation carve-out's seed, schedules, checkpoint/resume, divergence bookkeeping, progress, DDP,
timing) and asks the run's Task (`TrainConfig.task`, a name from `optimlab.tasks.list_tasks()`) for the
rest:

    data = task.prepare(config, seed, device)        # TaskData: train / val / test splits + model info
    model = task.build_model(config, data)           # on the CPU; fit moves it
    roles = task.roles(model)                        # {"model": model}: one optimizer per role
    for x, y in task.batches(data, config, generator):
        loss, correct = task.train_step(ctx, x, y)   # default: forward, task.loss, ctx.step("model", loss)
    ev = task.evaluate(model, split, batch_size, runtime)       # Evaluation: loss, curve value, predictions
    final, confusion = task.final_metrics(split, ev, data)      # History.final: task.metrics' keys + "loss"

Downstream code (sweeps, statistics, verdicts, tune, reports) reads only History: `final` holds the
task's metrics (each declared by the task as an optimlab.stats.metrics.Metric: direction, range, title;
optimlab.tasks.known_metrics() gathers every task's), and the per-epoch `train_acc`/`val_acc`/`test_acc`
lists hold the task's `curve` value (accuracy for classifiers). A task's data sets are the registry
lines of optimlab.data that name it (`DatasetInfo.task`), plus `also_trains_on`.

A task with several optimizers (a GAN: generator and discriminator) returns one role per optimizer
from `roles` and overrides `train_step`, calling `ctx.step(role, loss)` for each; fit builds, schedules
and checkpoints one optimizer per role (config.optimizer with config.hparams for each).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from optimlab.data import Split, dataset_info, iterate_batches, list_datasets, load_dataset, sample_shape
from optimlab.models import list_models
from optimlab.plugins import is_reference
from optimlab.stats.metrics import Metric

# what every task reports or a claim may name, whatever the task
LOSS = Metric("loss", "loss", "lower", 0.0, math.inf)  # the task's loss on the test split (History.final["loss"])
# the last epoch's training curve value (History.train_acc[-1]); claims only
TRAIN_ACCURACY = Metric("train_accuracy", "train accuracy %", "higher", 0.0, 1.0, percent=True)
SHARED_METRICS = (LOSS, TRAIN_ACCURACY)


@dataclass
class TaskData:
    """The data of one run, as the task prepared it."""

    train: Split  # what the optimizer sees (training split minus validation)
    val: Split  # carved from the data set's training split with the run seed; never the test split
    test: Split  # the data set's own test split, untouched
    num_classes: int  # classes of the label (2 for a binary label); 0 for regression
    class_names: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # what build_model needs (input_shape, vocab size, ...)
    sampler_weights: Tensor | None = None  # [len(train)] weights of a weighted sampler, or None
    augment: Callable[[Tensor, torch.Generator | None], Tensor] | None = None  # applied to training batches


@dataclass
class Runtime:
    """What the harness lends a task for forward passes: device, autocast and the input memory format."""

    device: torch.device
    amp: str = "none"
    channels_last: bool = False
    autocast: Callable[[], AbstractContextManager[Any]] = field(default=lambda: _null())
    to_input: Callable[[Tensor], Tensor] = field(default=lambda x: x)


def _null() -> AbstractContextManager[Any]:
    import contextlib

    return contextlib.nullcontext()


@dataclass
class Evaluation:
    loss: float  # mean loss over the split (the task's loss; NaN/Inf when the model diverged)
    accuracy: float  # the task's per-epoch curve value (History.val_acc / test_acc)
    predictions: Tensor  # [N] on the CPU: predicted classes (or the model's outputs for regression)
    scores: Tensor | None = None  # [N] or [N, K] on the CPU: probabilities/scores the metrics need (AUC)


class StepContext:
    """What a training step may use: the training module, autocast, and `step(role, loss)`."""

    def __init__(
        self,
        forward: Callable[..., Any],
        runtime: Runtime,
        step: Callable[[str, Tensor], None],
        world: int = 1,
        model: nn.Module | None = None,
    ) -> None:
        self.forward = forward  # the model as trained (DDP / compiled around the task's model)
        # the task's own module (no DDP/compile wrapper): reach submodules (model.generator) through it;
        # calling them bypasses DDP's gradient averaging, so a multi-role task under DDP calls forward
        self.model = model if model is not None else forward
        self.runtime = runtime
        self.step = step  # step(role, loss): zero_grad, backward, decoupled decay, optimizer.step of that role
        self.world = world  # data-parallel world size
        self.n_global = 0  # samples in the current global batch (DDP: over all ranks); set by fit per batch


class Task:
    """Base class: a supervised task trained by one optimizer on (x, y) batches; subclasses fill in
    data, model, loss and metrics. Class attributes describe the task to the rest of optimlab."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""  # what the task is called in prose ("image classification")
    summary: ClassVar[str] = ""
    # data sets registered for another task that this one trains on too (the GAN generates the images
    # of image classification's sets); its own are those whose registry line names it
    also_trains_on: ClassVar[tuple[str, ...]] = ()
    models: ClassVar[tuple[str, ...]] = ()  # model names build_model accepts
    metrics: ClassVar[tuple[str, ...]] = ()  # History.final's keys, in table order (each declared below)
    declared_metrics: ClassVar[tuple[Metric, ...]] = ()  # every metric it reports besides SHARED_METRICS
    headline: ClassVar[str] = "accuracy"  # the metric of a report's headline table and strip plot
    curve: ClassVar[str] = "accuracy"  # what History.train_acc / val_acc / test_acc hold, per epoch

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = {m.name for m in (*cls.declared_metrics, *SHARED_METRICS)}
        undeclared = [m for m in dict.fromkeys((*cls.metrics, cls.headline)) if m not in declared]
        if cls.metrics and undeclared:
            raise TypeError(
                f"task class {cls.__name__} reports undeclared metric(s) {undeclared}: add to declared_metrics"
            )

    @property
    def datasets(self) -> tuple[str, ...]:
        """The optimlab.data registry names this task trains on (registry order, then also_trains_on)."""
        own = tuple(d.name for d in list_datasets() if d.task == self.name)
        return own + tuple(d for d in self.also_trains_on if d not in own)

    def metric(self, name: str) -> Metric:
        """The Metric this task (or every task) reports as `name`; ValueError naming the known ones."""
        for m in (*self.declared_metrics, *SHARED_METRICS):
            if m.name == name:
                return m
        known = sorted(m.name for m in (*self.declared_metrics, *SHARED_METRICS))
        raise ValueError(f"task {self.name!r} reports no metric {name!r}; it reports {known}")

    # -- data and model --------------------------------------------------------------------------
    def prepare(self, config: Any, seed: int, device: torch.device) -> TaskData:
        """Load config.dataset and split it for run `seed` (config: a TrainConfig)."""
        raise NotImplementedError

    def build_model(self, config: Any, data: TaskData) -> nn.Module:
        raise NotImplementedError

    def check(self, config: Any) -> None:
        """ValueError naming the culprit when config's dataset or model is not this task's (no data read)."""
        owner = dataset_info(config.dataset).task  # an unknown data set: ValueError listing the valid ones
        if config.dataset not in self.datasets and owner != self.name:  # its line (or reference) names another task
            raise ValueError(
                f"dataset {config.dataset!r} is not a {self.name} data set (task {self.name!r} trains on "
                f"{list(self.datasets)}); dataset {config.dataset!r} belongs to task {owner!r}, not "
                f"{self.title or self.name}: set task = {owner!r} (--set task={owner})"
            )
        if config.model not in self.models and not is_reference(config.model):  # a reference resolves on build
            registered = {m.name for m in list_models()}
            if config.model in registered:
                raise ValueError(f"model {config.model!r} is not a {self.name} model; valid: {list(self.models)}")
            raise ValueError(f"unknown model {config.model!r}; valid: {list(self.models)}")

    def describe(self, config: Any) -> dict[str, Any]:
        """Counts of the data actually used (reads it): n_train, n_test, num_classes, detail (a phrase on
        the data); optionally title (what the data is called when not its usual title) and title_note
        (words added to the title)."""
        raise NotImplementedError

    def data_counts(self, config: Any, described: dict[str, Any]) -> str:
        """The phrase a reproduction's data line puts in brackets after the data set's title."""
        classes = f", {described['num_classes']} classes" if described["num_classes"] else ""  # none: regression, GAN
        return (
            f"{described['n_train']:,} train samples incl. {config.val_fraction:.0%} held out for validation, "
            f"{described['n_test']:,} test{classes}; {described['detail']}"
        )

    def forward_macs(self, config: Any) -> int:
        """Multiply-accumulates of one sample's forward pass, estimated without reading the data; decides
        the threads of a run (optimlab.experiments.threads: below 1 G per step a run gets one thread)."""
        raise NotImplementedError

    # -- training --------------------------------------------------------------------------------
    def roles(self, model: nn.Module) -> dict[str, nn.Module]:
        """One optimizer per entry, over that module's parameters (default: one, the whole model)."""
        return {"model": model}

    def batches(self, data: TaskData, config: Any, generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        """One epoch of training batches (x, y) in the run's random order."""
        return iterate_batches(
            data.train,
            config.batch_size,
            shuffle=True,
            generator=generator,
            augment=data.augment,
            sampler_weights=data.sampler_weights,
        )

    def loss(self, output: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
        raise NotImplementedError

    def correct(self, output: Tensor, y: Tensor) -> Tensor:
        """How many samples of the batch count as right for the running training curve (a 0-d tensor)."""
        raise NotImplementedError

    def train_step(self, ctx: StepContext, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """One optimizer step on a batch; returns (batch loss to record, detached; correct count).

        The recorded loss is the batch mean; under DDP with an uneven last global batch each rank's sum
        scaled by world / n_global, so DDP's gradient average is the global mean."""
        n = y.shape[0]
        with ctx.runtime.autocast():
            output = ctx.forward(ctx.runtime.to_input(x))
            if n * ctx.world == ctx.n_global:
                loss = self.loss(output, y)
            else:
                loss = self.loss(output, y, reduction="sum") * (ctx.world / ctx.n_global)
        ctx.step("model", loss)
        return loss.detach(), self.correct(output.detach(), y)

    def divergence(self, loss: float, initial: float | None, factor: float | None) -> str | None:
        """Why a run whose running mean training loss is `loss` has diverged, or None.

        Default: a NaN/Inf loss, or a loss above factor x the first batch's (`initial`)."""
        if not math.isfinite(loss):
            return f"non-finite training loss ({loss})"
        if factor is not None and initial is not None and math.isfinite(initial) and loss > factor * initial:
            return f"training loss {loss:.3g} > {factor:g} x the first batch's {initial:.3g}"
        return None

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, model: nn.Module, split: Split, batch_size: int, runtime: Runtime) -> Evaluation:
        raise NotImplementedError

    def final_metrics(
        self, split: Split, evaluation: Evaluation, data: TaskData
    ) -> tuple[dict[str, float], list[list[int]]]:
        """(History.final: every name in self.metrics plus "loss", confusion matrix or [])."""
        raise NotImplementedError

    def diverged_metrics(
        self, model: nn.Module, split: Split, evaluation: Evaluation, data: TaskData
    ) -> tuple[dict[str, float], list[list[int]]]:
        """Final metrics of a diverged run: loss NaN; the rest from the current weights' outputs when
        every weight is finite, else NaN and no confusion matrix."""
        finite = all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())
        if not finite:
            return {name: math.nan for name in (*self.metrics, "loss")}, []
        metrics, confusion = self.final_metrics(split, evaluation, data)
        metrics["loss"] = math.nan
        return metrics, confusion


__all__ = ["Evaluation", "Runtime", "StepContext", "Task", "TaskData"]


def random_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """(rest, held): round(fraction · N) samples drawn with `seed` held out (both index lists sorted)."""
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {fraction!r}")
    n = len(split)
    k = min(max(int(round(fraction * n)), 1), n - 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    held, rest = order[:k].sort().values, order[k:].sort().values
    return split.subset(rest), split.subset(held)


def conv_linear_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of the conv and linear layers in one forward pass of one sample of `shape`."""
    total = 0

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Tensor) -> None:
        nonlocal total
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            if isinstance(module, nn.ConvTranspose2d):  # each input pixel feeds k·out channels
                total += inputs[0].numel() * module.kernel_size[0] * module.kernel_size[1] * module.out_channels
            else:
                total += output.numel() * k
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *shape, device=next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return total


def random_splits(config: Any, seed: int, device: torch.device | str) -> tuple[Any, tuple[Split, Split, Split]]:
    """(the loaded data set, (train, val, test)) for a task without classes to stratify by: val is a
    random `config.val_fraction` of the training split drawn with `seed`; the test split is untouched.
    The splits move to `device` once when config.data_on_device and it is not the CPU."""
    data = load_dataset(config.dataset, config.data_dir, **config.dataset_options)
    train, val = random_split(Split(data.train_x, data.train_y), config.val_fraction, seed)
    test = Split(data.test_x, data.test_y)
    device = torch.device(device)
    if device.type != "cpu" and config.data_on_device:
        train, val, test = (s.to(device) for s in (train, val, test))
    return data, (train, val, test)


def declared_shape(config: Any) -> tuple[tuple[int, int, int], int]:
    """(one sample's input shape, the model's outputs) of config.dataset under its options, as the data
    set's registry line declares them (no data read); ValueError when the line declares none."""
    shape = sample_shape(config.dataset, config.dataset_options)
    if shape is None or shape.outputs is None:
        raise ValueError(f"dataset {config.dataset!r}: its registry line declares no input_shape and outputs")
    return shape.input_shape, shape.outputs


def registered_model_macs(config: Any, outputs: int, shape: tuple[int, int, int]) -> int:
    """conv_linear_macs of config.model (a registered network with `outputs` outputs) for one sample of
    `shape`, built on the meta device: shapes only, no memory, no weights drawn from the caller's stream."""
    from optimlab.models import create_model

    with torch.device("meta"):
        model = create_model(config.model, outputs, shape, width=config.width)
    return conv_linear_macs(model, shape)
