"""fit(config, seed): one seeded, resumable training run that returns its History.

Order of one run: seed -> load data -> carve the stratified validation split from the training
split (drawn with the run seed, so every optimizer sees the same split at a given seed) -> build
the model (global torch RNG, so every optimizer starts from the same weights at a given seed) ->
optimizer -> LambdaLR schedule -> resume from run_dir's checkpoint if any -> epochs -> final
metrics on the final weights (no best-epoch picking) -> model.pt, history.json, done.

Conventions (decided here, documented in the README):
  * switch_epoch is 1-based: optimlab.optim.start_multistep(opt) is called at the start of epoch
    `switch_epoch`, so epochs 1..switch_epoch-1 are plain SGD. A value > epochs never switches
    (warned: paper 004's table lists such settings).
  * weight_decay_mode "decoupled" takes weight_decay out of the optimizer's hparams and applies
    θ ← θ·(1 − lr·wd) to every trainable tensor (the same set coupled L2 decays), with the
    group's current (scheduled) lr, right before optimizer.step(). "coupled" passes it through.
  * augment applies only to images of at least 16×16 pixels (a warning says when it is skipped).
  * Divergence: NaN/Inf in the running training loss, or a running mean training loss above
    config.diverge_factor (default 100) x the loss of the run's first batch (History.initial_loss),
    checked at epoch end and on CPU also every 32 steps, stops the run after evaluating the current
    weights: History.diverged_epoch is that epoch and History.diverged_reason says why.
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
import torch.nn.functional as F

from optimlab.data import iterate_batches
from optimlab.models import create_model
from optimlab.optim import create_optimizer, no_decay_groups, set_train_mode, start_multistep
from optimlab.train import distributed as ddp
from optimlab.train.accel import autocast, compile_model, prepare_model, resolve_device, to_input
from optimlab.train.checkpoint import RunDir
from optimlab.train.config import History, TrainConfig
from optimlab.train.interrupt import check_stop
from optimlab.train.metrics import classification_metrics, diverged_metrics, evaluate
from optimlab.train.progress import make_progress
from optimlab.train.run_data import prepare_data
from optimlab.train.schedules import build_scheduler
from optimlab.train.seeding import capture_rng_state, check_seed, restore_rng_state, seed_everything

NAN_CHECK_EVERY = 32  # steps between divergence checks on CPU (on accelerators: epoch end only)

Callback = Callable[[int, History], Any]


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
            return _Trainer(config, seed, run, progress, callback, device, dist_ctx).run()
        finally:
            torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
    finally:
        ddp.destroy_group(dist_ctx)


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

        data = prepare_data(config, seed, self.device)
        self.train, self.val, self.test = data.train, data.val, data.test
        self.num_classes = data.num_classes
        self.sampler_weights, self.augment = data.sampler_weights, data.augment

        self.model = create_model(config.model, data.num_classes, data.input_shape, width=config.width)
        prepare_model(self.model, self.device, config.channels_last)
        hparams = dict(config.hparams)
        self.decoupled_wd = 0.0
        if config.weight_decay_mode == "decoupled":
            wd = hparams.pop("weight_decay", 0.0)
            if isinstance(wd, bool) or not isinstance(wd, (int, float)) or not math.isfinite(wd) or wd < 0:
                raise ValueError(f"hparams weight_decay={wd!r} (decoupled) must be a finite number >= 0")
            self.decoupled_wd = float(wd)
        params: Any = self.model.parameters()
        self.no_decay_ids: set[int] = set()
        if config.no_decay:  # biases and norm weights in a zero-decay group (optimlab.optim.no_decay_groups)
            params = no_decay_groups(self.model, hparams.get("weight_decay"))
            self.no_decay_ids = {id(p) for g in params if g.get("weight_decay") == 0.0 for p in g["params"]}
        self.optimizer = create_optimizer(config.optimizer, params, **hparams)
        n_batches = math.ceil(len(self.train) / config.batch_size)
        self.steps_per_epoch = min(n_batches, config.max_steps_per_epoch or n_batches)
        self.scheduler = build_scheduler(self.optimizer, config, self.steps_per_epoch)

        self.history = History()
        self.epoch = 0  # epochs completed
        self.train_seconds = 0.0  # summed time of the training loops (for step_time_s)
        self.train_steps = 0
        self.wall_before = 0.0  # wall time of earlier sessions of this run
        if run is not None and (state := run.load_checkpoint()) is not None:
            self._load(state)
        # the module the training steps call: DDP around the model, then torch.compile around that;
        # self.model (plain) is what the optimizer, evaluation and checkpoints use.
        self.forward: Callable[..., torch.Tensor] = self.model
        if self.dist is not None:
            from torch.nn.parallel import DistributedDataParallel

            self.forward = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if config.compile:
            self.forward = compile_model(self.forward)
        self.session_start = started

    # -- checkpoint -------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": capture_rng_state(self.generator, self.device),
            "history": self.history.to_dict(),
            "counters": {"train_seconds": self.train_seconds, "train_steps": self.train_steps, "wall_s": self._wall()},
        }

    def _load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
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
                    start_multistep(self.optimizer)
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
                        description=f"epoch {epoch} loss {train_loss:.4f} val acc {last[0].accuracy:.3f}",
                    )
                    if self.callback is not None:
                        self.callback(epoch, history)
        if self.is_main:
            self._finish(last)
        if self.dist is not None:
            history = self.history = ddp.broadcast_history(history if self.is_main else None, self.dist)
            ddp.barrier(self.dist)  # rank 0's files are complete when any rank returns
        return history

    def _loss_limit(self) -> float:
        """The running mean training loss above which the run counts as diverged (inf: no limit)."""
        factor, initial = self.config.diverge_factor, self.history.initial_loss
        if factor is None or initial is None or not math.isfinite(initial):
            return math.inf
        return factor * initial

    def _divergence(self, loss: float) -> str | None:
        if not math.isfinite(loss):
            return f"non-finite training loss ({loss})"
        if loss > self._loss_limit():
            return (
                f"training loss {loss:.3g} > {self.config.diverge_factor:g} x the first batch's "
                f"{self.history.initial_loss:.3g}"
            )
        return None

    def _evaluate(self, split: Any) -> Any:
        return evaluate(
            self.model,
            split,
            self.config.eval_batch_size,
            device=self.device,
            amp=self.config.amp,
            channels_last=self.config.channels_last,
        )

    def _train_epoch(self, bar: Any, steps_task: Any) -> tuple[float, float]:
        """One epoch of training steps; returns (mean loss, accuracy) over the batches seen."""
        model, optimizer, scheduler, config = self.forward, self.optimizer, self.scheduler, self.config
        decay = self.decoupled_wd
        groups = [
            (g, [p for p in g["params"] if p.requires_grad and id(p) not in self.no_decay_ids])
            for g in optimizer.param_groups
        ]
        groups = [(g, ps) for g, ps in groups if ps]
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        seen = steps = 0
        # elsewhere each check is a sync: epoch end only; under DDP ranks must stop together: epoch end
        check_early = self.device.type == "cpu" and self.dist is None
        world = 1 if self.dist is None else self.dist.world_size
        batches: Iterator[tuple[torch.Tensor, torch.Tensor, int]]
        if self.dist is None:
            batches = (
                (x, y, y.shape[0])
                for x, y in iterate_batches(
                    self.train,
                    config.batch_size,
                    shuffle=True,
                    generator=self.generator,
                    augment=self.augment,
                    sampler_weights=self.sampler_weights,
                )
            )
        else:
            batches = ddp.shard_batches(
                self.train,
                config.batch_size,
                self.generator,
                self.dist.rank,
                world,
                augment=self.augment,
                sampler_weights=self.sampler_weights,
            )
        move = self.train.x.device != self.device  # data_on_device=False: one copy per batch
        self.model.train()
        set_train_mode(self.optimizer, True)  # schedule-free: parameters to the gradient point y
        _sync(self.device)
        t0 = time.perf_counter()
        for x, y, n_global in batches:
            check_stop()  # a worker told to stop (SIGINT/SIGTERM) leaves here; the last checkpoint stays
            if move:
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            x = to_input(x, config.channels_last)
            n = y.shape[0]
            with autocast(self.device, config.amp):
                logits = model(x)
                if n * world == n_global:  # equal shards (always, in one process): mean of means is exact
                    loss = F.cross_entropy(logits, y)
                    record, weight = loss.detach(), n
                else:  # short last global batch split unevenly: DDP's average must be the global mean
                    total = F.cross_entropy(logits, y, reduction="sum")
                    loss = total * (world / n_global)
                    record, weight = total.detach(), 1
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if decay:
                with torch.no_grad():
                    for group, params in groups:
                        torch._foreach_mul_(params, 1.0 - group["lr"] * decay)
            optimizer.step()
            scheduler.step()
            if self.history.initial_loss is None:  # the run's first batch, before any update
                first = float(loss.detach())
                if self.dist is not None:
                    first = ddp.all_reduce_sum([first], self.device)[0] / world
                self.history.initial_loss = first
            loss_sum.add_(record.float(), alpha=weight)
            correct.add_((logits.detach().argmax(dim=1) == y).sum())
            seen += n
            steps += 1
            bar.advance(steps_task)
            if check_early and steps % NAN_CHECK_EVERY == 0:
                running = float(loss_sum) / max(seen, 1)
                if not math.isfinite(running) or running > self._loss_limit():
                    break
            if steps >= self.steps_per_epoch:
                break
        set_train_mode(self.optimizer, False)  # schedule-free: evaluate and checkpoint the averaged x
        _sync(self.device)
        self.train_seconds += time.perf_counter() - t0
        self.train_steps += steps
        if self.dist is not None:  # every rank gets the epoch's global figures (and agrees on divergence)
            total_loss, total_correct, total_seen = ddp.all_reduce_sum(
                [float(loss_sum), float(correct), float(seen)], self.device
            )
            return total_loss / max(total_seen, 1), total_correct / max(total_seen, 1)
        return float(loss_sum) / max(seen, 1), int(correct) / max(seen, 1)

    def _finish(self, last: Any) -> None:
        history = self.history
        if last is None:  # no epoch ran in this call (defensive): evaluate the loaded weights
            last = tuple(self._evaluate(s) for s in (self.val, self.test))
            self.model.train()
        val, test = last
        if history.diverged_epoch is not None:
            history.final_val, _ = diverged_metrics(self.model, val, self.val.y, self.num_classes)
            history.final, history.confusion = diverged_metrics(self.model, test, self.test.y, self.num_classes)
        else:
            history.final_val, _ = classification_metrics(self.val.y, val.predictions, self.num_classes, val.loss)
            history.final, history.confusion = classification_metrics(
                self.test.y, test.predictions, self.num_classes, test.loss
            )
        history.wall_time_s = self._wall()
        if self.run_dir is not None:
            self.run_dir.finish({k: v.detach().cpu() for k, v in self.model.state_dict().items()}, history)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


__all__ = ["fit"]
