"""fit(config, seed): one seeded, resumable training run that returns its History.

Order of one run: seed -> the task (optimlab.tasks, config.task) loads the data and carves the
validation split from the training split (drawn with the run seed, so every optimizer sees the same
split at a given seed) -> the task builds the model (global torch RNG, so every optimizer starts from
the same weights at a given seed) -> one optimizer per task role (one for most tasks) -> LambdaLR
schedule -> resume from run_dir's checkpoint if any -> epochs of the task's training steps -> the
task's final metrics on the final weights (no best-epoch picking) -> model.pt, history.json, done.

Conventions (decided here, documented in the README):
  * switch_epoch is 1-based: optimlab.optim.start_multistep(opt) is called at the start of epoch
    `switch_epoch`, so epochs 1..switch_epoch-1 are plain SGD. A value > epochs never switches
    (warned: paper 004's table lists such settings).
  * weight_decay_mode "decoupled" takes weight_decay out of the optimizer's hparams and applies
    θ ← θ·(1 − lr·wd) to every trainable tensor (the same set coupled L2 decays), with the
    group's current (scheduled) lr, right before optimizer.step(). "coupled" passes it through.
  * augment applies only to images of at least 16×16 pixels (a warning says when it is skipped).
  * Divergence (the task's rule, Task.divergence; by default): NaN/Inf in the running training loss,
    or a running mean training loss above config.diverge_factor (default 100) x the loss of the run's
    first batch (History.initial_loss), checked at epoch end and on CPU also every 32 steps, stops the
    run after evaluating the current weights: History.diverged_epoch is that epoch and
    History.diverged_reason says why.
  * Accelerator options (amp, channels_last, compile, data_on_device): see accel.py; under
    torchrun (or launch_local) fit trains data-parallel with DDP: see distributed.py.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from optimlab.optim import create_optimizer, no_decay_groups, set_train_mode, start_multistep
from optimlab.tasks import StepContext, get_task, known_metrics
from optimlab.train import distributed as ddp
from optimlab.train.accel import compile_model, prepare_model, resolve_device
from optimlab.train.checkpoint import RunDir
from optimlab.train.config import History, TrainConfig
from optimlab.train.interrupt import check_stop
from optimlab.train.metrics import runtime
from optimlab.train.progress import make_progress
from optimlab.train.schedules import build_scheduler
from optimlab.train.seeding import capture_rng_state, check_seed, restore_rng_state, seed_everything

NAN_CHECK_EVERY = 32  # steps between divergence checks on CPU (on accelerators: epoch end only)

Callback = Callable[[int, History], Any]


def curve_text(curve: str, value: float) -> str:
    """The progress bar's validation value: a percent metric in %, as every table shows it."""
    metric = known_metrics().get(curve)
    if metric is not None and metric.percent:
        return f"val {curve} {100 * value:.2f} %"
    return f"val {curve} {value:.4g}"


def fit(
    config: TrainConfig,
    seed: int,
    run_dir: str | Path | None = None,
    progress: bool = False,
    callback: Callback | None = None,
) -> History:
    """Train `config` with `seed` and return its History; see the module docstring.

    run_dir: when given, a checkpoint is written there atomically after every epoch and an
    existing checkpoint is resumed (bit-identical to an uninterrupted run on CPU); a finished run
    (`done` marker) is not redone: its History is read back. callback(epoch, history) is called
    after every epoch run in this call (1-based epoch, after the checkpoint is written).

    Distributed (torchrun env vars or an initialised process group, world size > 1): every rank
    calls fit; rank 0 alone writes run_dir and calls callback; every rank returns rank 0's History.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    seed = check_seed(seed)
    dist_ctx = ddp.detect()
    if dist_ctx is not None:
        ddp.check_batch_size(config, dist_ctx.world_size)
    device = resolve_device(config, dist_ctx.local_rank if dist_ctx is not None else None)
    if dist_ctx is not None:
        ddp.init_group(dist_ctx, device)
    try:
        run = RunDir(run_dir, config, seed) if run_dir is not None else None
        if run is not None:
            if dist_ctx is None or dist_ctx.is_main:
                run.prepare()
            ddp.barrier(dist_ctx)  # run.json exists (or the mismatch was raised) before others read
            if run.is_done():
                return run.load_history()
        previous = torch.are_deterministic_algorithms_enabled()
        previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
        try:
            if config.deterministic:
                torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
            if config.train_function is not None:  # the user's own code trains the run (optimlab.tasks.function)
                return _fit_function(config, seed)
            return _Trainer(config, seed, run, progress, callback, device, dist_ctx).run()
        finally:
            torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
    finally:
        ddp.destroy_group(dist_ctx)


def _fit_function(config: TrainConfig, seed: int) -> History:
    """One run of config.train_function: seeded like any run, handed make_optimizer(params) (the run's
    optimizer, stopping at its next step when a stop is requested), its returned metrics as History.final.
    No checkpoints: a stopped run starts again (resume at run granularity)."""
    from optimlab.tasks.function import call_train_function

    def make_optimizer(params: Any) -> torch.optim.Optimizer:
        optimizer = create_optimizer(config.optimizer, params, **config.hparams)
        optimizer.register_step_pre_hook(lambda *_: check_stop())
        return optimizer

    start = time.perf_counter()
    seed_everything(seed)
    result = call_train_function(config, seed, make_optimizer)
    history = History(final=result.final, diverged_reason=result.diverged_reason, threads=torch.get_num_threads())
    history.wall_time_s = time.perf_counter() - start
    return history


def _pop_decoupled_weight_decay(hparams: dict[str, Any]) -> float:
    """Take weight_decay out of the optimizer's hparams: under "decoupled" the loop applies it."""
    wd = hparams.pop("weight_decay", 0.0)
    if isinstance(wd, bool) or not isinstance(wd, (int, float)) or not math.isfinite(wd) or wd < 0:
        raise ValueError(f"hparams weight_decay={wd!r} (decoupled) must be a finite number >= 0")
    return float(wd)


class _Trainer:
    def __init__(
        self,
        config: TrainConfig,
        seed: int,
        run: RunDir | None,
        progress: bool,
        callback: Callback | None,
        device: torch.device,
        dist_ctx: ddp.DistContext | None,
    ) -> None:
        started = time.perf_counter()
        self.config, self.seed, self.run_dir, self.callback = config, seed, run, callback
        self.dist = dist_ctx if dist_ctx is not None and dist_ctx.enabled else None
        self.is_main = self.dist is None or self.dist.is_main
        self.show_progress = progress and self.is_main
        self.device = device
        if config.switch_epoch is not None and config.switch_epoch > config.epochs:
            warnings.warn(
                f"switch_epoch={config.switch_epoch} > epochs={config.epochs}: the multi-step rule never starts",
                stacklevel=3,
            )
        self.generator = seed_everything(seed)
        self.task = get_task(config.task)
        self.task.check(config)
        self.runtime = runtime(self.device, config.amp, config.channels_last)

        data = self.data = self.task.prepare(config, seed, self.device)
        self.train, self.val, self.test = data.train, data.val, data.test
        self.num_classes = data.num_classes

        self.model = self.task.build_model(config, data)
        prepare_model(self.model, self.device, config.channels_last)
        hparams = dict(config.hparams)
        self.decoupled_wd = 0.0
        if config.weight_decay_mode == "decoupled":
            self.decoupled_wd = _pop_decoupled_weight_decay(hparams)
        n_batches = math.ceil(len(self.train) / config.batch_size)
        self.steps_per_epoch = min(n_batches, config.max_steps_per_epoch or n_batches)
        self._build_optimizers(hparams)
        self.decay_groups: dict[str, list[tuple[dict[str, Any], list[torch.Tensor]]]] = {}

        self.history = History()
        self.epoch = 0  # epochs completed
        self.train_seconds = 0.0  # summed time of the training loops (for step_time_s)
        self.train_steps = 0
        self.wall_before = 0.0  # wall time of earlier sessions of this run
        if run is not None and (state := run.load_checkpoint()) is not None:
            self._load(state)
        self.forward = self._wrapped_model()
        self.session_start = started

    def _build_optimizers(self, hparams: dict[str, Any]) -> None:
        """One optimizer (and schedule) per task role; most tasks have one role, "model"."""
        config = self.config
        self.no_decay_ids: set[int] = set()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        for role, module in self.task.roles(self.model).items():
            params: Any = module.parameters()
            if config.no_decay:  # biases and norm weights in a zero-decay group (optimlab.optim.no_decay_groups)
                params = no_decay_groups(module, hparams.get("weight_decay"))
                self.no_decay_ids |= {id(p) for g in params if g.get("weight_decay") == 0.0 for p in g["params"]}
            self.optimizers[role] = create_optimizer(config.optimizer, params, **hparams)
            self.schedulers[role] = build_scheduler(self.optimizers[role], config, self.steps_per_epoch)
        self.optimizer = next(iter(self.optimizers.values()))  # the first role's: its lr is History.lr

    def _wrapped_model(self) -> Callable[..., torch.Tensor]:
        """The module the training steps call: DDP around the model, then torch.compile around that;
        self.model (plain) is what the optimizer, evaluation and checkpoints use."""
        module: torch.nn.Module = self.model
        if self.dist is not None:
            from torch.nn.parallel import DistributedDataParallel

            module = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        return compile_model(module) if self.config.compile else module

    # -- checkpoint -------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        # one role: the optimizer's and scheduler's state dicts; several: {role: state dict}
        single = len(self.optimizers) == 1
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict()
            if single
            else {role: o.state_dict() for role, o in self.optimizers.items()},
            "scheduler": next(iter(self.schedulers.values())).state_dict()
            if single
            else {role: s.state_dict() for role, s in self.schedulers.items()},
            "rng": capture_rng_state(self.generator, self.device),
            "history": self.history.to_dict(),
            "counters": {"train_seconds": self.train_seconds, "train_steps": self.train_steps, "wall_s": self._wall()},
        }

    def _load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if len(self.optimizers) == 1:
            self.optimizer.load_state_dict(state["optimizer"])
            next(iter(self.schedulers.values())).load_state_dict(state["scheduler"])
        else:
            for role, optimizer in self.optimizers.items():
                optimizer.load_state_dict(state["optimizer"][role])
                self.schedulers[role].load_state_dict(state["scheduler"][role])
        restore_rng_state(state["rng"], self.generator, self.device)
        self.history = History.from_dict(state["history"])
        self.epoch = int(state["epoch"])
        counters = state["counters"]
        self.train_seconds = float(counters["train_seconds"])
        self.train_steps = int(counters["train_steps"])
        self.wall_before = float(counters["wall_s"])

    def _wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.session_start

    # -- training ---------------------------------------------------------------------------
    def run(self) -> History:
        config, history = self.config, self.history
        history.threads = torch.get_num_threads()  # how step_time_s was measured
        last: Any = None  # (val, test) evaluation of the latest epoch
        with make_progress(self.show_progress) as bar:
            epochs_task = bar.add_task("epochs", total=config.epochs, completed=self.epoch)
            steps_task = bar.add_task("steps", total=self.steps_per_epoch)
            while self.epoch < config.epochs and history.diverged_epoch is None:
                epoch = self.epoch + 1  # 1-based
                t0 = time.perf_counter()
                if config.switch_epoch is not None and epoch == config.switch_epoch:
                    for optimizer in self.optimizers.values():
                        start_multistep(optimizer)
                history.lr.append(float(self.optimizer.param_groups[0]["lr"]))
                bar.reset(steps_task, total=self.steps_per_epoch)
                train_loss, train_acc = self._train_epoch(bar, steps_task)
                history.train_loss.append(train_loss)
                history.train_acc.append(train_acc)
                reason = self._divergence(train_loss)
                if reason is not None:
                    history.diverged_epoch, history.diverged_reason = epoch, reason
                if self.is_main:  # the weights are the same on every rank: rank 0 evaluates
                    val, test = (self._evaluate(s) for s in (self.val, self.test))
                    self.model.train()
                    last = (val, test)
                    history.val_loss.append(val.loss)
                    history.val_acc.append(val.accuracy)
                    history.test_loss.append(test.loss)
                    history.test_acc.append(test.accuracy)
                history.epoch_time_s.append(time.perf_counter() - t0)
                history.step_time_s = self.train_seconds / max(self.train_steps, 1)
                self.epoch = epoch
                history.wall_time_s = self._wall()
                if (
                    self.is_main
                    and self.run_dir is not None
                    and history.diverged_epoch is None
                    and epoch < config.epochs
                ):
                    self.run_dir.save_checkpoint(self._state())
                if self.is_main:
                    bar.update(
                        epochs_task,
                        completed=epoch,
                        description=f"epoch {epoch} loss {train_loss:.4f} {curve_text(self.task.curve, last[0].accuracy)}",
                    )
                    if self.callback is not None:
                        self.callback(epoch, history)
        if self.is_main:
            self._finish(last)
        if self.dist is not None:
            history = self.history = ddp.broadcast_history(history if self.is_main else None, self.dist)
            ddp.barrier(self.dist)  # rank 0's files are complete when any rank returns
        return history

    def _divergence(self, loss: float) -> str | None:
        """Why the run diverged given its running mean training loss (the task's rule), or None."""
        return self.task.divergence(loss, self.history.initial_loss, self.config.diverge_factor)

    def _evaluate(self, split: Any) -> Any:
        return self.task.evaluate(self.model, split, self.config.eval_batch_size, self.runtime)

    def _step_role(self, role: str, loss: torch.Tensor) -> None:
        """One optimizer step of `role` on `loss`: zero_grad, backward, decoupled decay, step."""
        optimizer = self.optimizers[role]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.decoupled_wd:
            with torch.no_grad():
                for group, params in self.decay_groups[role]:
                    torch._foreach_mul_(params, 1.0 - group["lr"] * self.decoupled_wd)
        optimizer.step()

    def _collect_decay_groups(self) -> None:
        """Per role, each param group with the tensors decoupled weight decay applies to."""
        for role, optimizer in self.optimizers.items():
            groups = [
                (g, [p for p in g["params"] if p.requires_grad and id(p) not in self.no_decay_ids])
                for g in optimizer.param_groups
            ]
            self.decay_groups[role] = [(g, ps) for g, ps in groups if ps]

    def _epoch_batches(self, world: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """(x, y, size of the global batch) of one epoch: the task's batches, or this rank's shards."""
        if self.dist is None:
            return ((x, y, y.shape[0]) for x, y in self.task.batches(self.data, self.config, self.generator))
        return ddp.shard_batches(
            self.train,
            self.config.batch_size,
            self.generator,
            self.dist.rank,
            world,
            augment=self.data.augment,
            sampler_weights=self.data.sampler_weights,
        )

    def _global_mean(self, value: float, world: int) -> float:
        """The mean of `value` over the ranks (itself in one process)."""
        if self.dist is None:
            return value
        return ddp.all_reduce_sum([value], self.device)[0] / world

    def _train_epoch(self, bar: Any, steps_task: Any) -> tuple[float, float]:
        """One epoch of training steps; returns (mean loss, accuracy) over the batches seen."""
        task = self.task
        self._collect_decay_groups()
        schedulers = list(self.schedulers.values())
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.float64, device=self.device)
        seen = steps = 0
        # elsewhere each check is a sync: epoch end only; under DDP ranks must stop together: epoch end
        check_early = self.device.type == "cpu" and self.dist is None
        world = 1 if self.dist is None else self.dist.world_size
        batches = self._epoch_batches(world)
        ctx = StepContext(self.forward, self.runtime, self._step_role, world, self.model)
        move = self.train.x.device != self.device  # data_on_device=False: one copy per batch
        self.model.train()
        for optimizer in self.optimizers.values():
            set_train_mode(optimizer, True)  # schedule-free: parameters to the gradient point y
        _sync(self.device)
        t0 = time.perf_counter()
        for x, y, n_global in batches:
            check_stop()  # a worker told to stop (SIGINT/SIGTERM) leaves here; the last checkpoint stays
            if move:
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            n = y.shape[0]
            ctx.n_global = n_global
            loss, n_correct = task.train_step(ctx, x, y)  # the step's (scaled) loss, detached
            for scheduler in schedulers:
                scheduler.step()
            if self.history.initial_loss is None:  # the run's first batch, before any update
                self.history.initial_loss = self._global_mean(float(loss), world)
            if n * world == n_global:  # equal shards (always, in one process): mean of means is exact
                loss_sum.add_(loss.float(), alpha=n)
            else:  # the step's loss is this rank's sum x world / n_global: record the sum
                loss_sum.add_(loss.float(), alpha=n_global / world)
            correct.add_(n_correct)
            seen += n
            steps += 1
            bar.advance(steps_task)
            if check_early and steps % NAN_CHECK_EVERY == 0:
                running = float(loss_sum) / max(seen, 1)
                if self._divergence(running) is not None:
                    break
            if steps >= self.steps_per_epoch:
                break
        for optimizer in self.optimizers.values():
            set_train_mode(optimizer, False)  # schedule-free: evaluate and checkpoint the averaged x
        _sync(self.device)
        self.train_seconds += time.perf_counter() - t0
        self.train_steps += steps
        if self.dist is not None:  # every rank gets the epoch's global figures (and agrees on divergence)
            total_loss, total_correct, total_seen = ddp.all_reduce_sum(
                [float(loss_sum), float(correct), float(seen)], self.device
            )
            return total_loss / max(total_seen, 1), total_correct / max(total_seen, 1)
        return float(loss_sum) / max(seen, 1), float(correct) / max(seen, 1)

    def _finish(self, last: Any) -> None:
        history = self.history
        if last is None:  # no epoch ran in this call (defensive): evaluate the loaded weights
            last = tuple(self._evaluate(s) for s in (self.val, self.test))
            self.model.train()
        val, test = last
        task, data = self.task, self.data
        if history.diverged_epoch is not None:
            history.final_val, _ = task.diverged_metrics(self.model, self.val, val, data)
            history.final, history.confusion = task.diverged_metrics(self.model, self.test, test, data)
        else:
            history.final_val, _ = task.final_metrics(self.val, val, data)
            history.final, history.confusion = task.final_metrics(self.test, test, data)
        history.wall_time_s = self._wall()
        if self.run_dir is not None:
            self.run_dir.finish({k: v.detach().cpu() for k, v in self.model.state_dict().items()}, history)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


__all__ = ["fit"]
