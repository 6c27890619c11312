"""Learning-rate schedules as torch LambdaLR factors over optimizer steps (checkpointable).

The factor multiplies each group's initial lr. Its argument is the 0-based global step s; with S
steps per epoch the 0-based epoch is e = s // S, and

    constant:  1
    step:      step_gamma ** (e // step_every)          (paper 000: 0.5 every 50 epochs)
    cosine:    (1 + cos(pi · e / epochs)) / 2           (1 in the first epoch, -> 0 after the last)

The schedule itself changes only at epoch boundaries, so every step of an epoch sees the same lr
and History.lr is that epoch's lr. An optional linear warm-up multiplies the factor per step:
(s + 1) / W for s < W = warmup_epochs · S (first step lr/W, full lr from step W on). The warm-up
multiplies the schedule rather than delaying it, so "halve every 50 epochs" keeps its epochs.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from optimlab.train.config import TrainConfig


class ScheduleFactor:
    """Picklable callable s -> lr factor. A plain class (not a closure or a frozen dataclass) so
    LambdaLR.state_dict stores its fields and load_state_dict can write them back."""

    def __init__(
        self,
        schedule: str,
        epochs: int,
        steps_per_epoch: int,
        step_every: int = 50,
        step_gamma: float = 0.5,
        warmup_epochs: int = 0,
    ) -> None:
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        if schedule not in ("constant", "step", "cosine"):
            raise ValueError(f"unknown schedule {schedule!r}; valid: constant, step, cosine")
        self.schedule = schedule
        self.epochs = int(epochs)
        self.steps_per_epoch = int(steps_per_epoch)
        self.step_every = int(step_every)
        self.step_gamma = float(step_gamma)
        self.warmup_steps = int(warmup_epochs) * int(steps_per_epoch)

    def epoch_factor(self, epoch: int) -> float:
        """The schedule's factor for 0-based epoch `epoch` (no warm-up)."""
        if self.schedule == "step":
            return self.step_gamma ** (epoch // self.step_every)
        if self.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(epoch, self.epochs) / self.epochs))
        return 1.0

    def __call__(self, step: int) -> float:
        factor = self.epoch_factor(step // self.steps_per_epoch)
        if step < self.warmup_steps:
            factor *= (step + 1) / self.warmup_steps
        return factor


def make_schedule_factor(config: TrainConfig, steps_per_epoch: int) -> ScheduleFactor:
    return ScheduleFactor(
        config.schedule, config.epochs, steps_per_epoch, config.step_every, config.step_gamma, config.warmup_epochs
    )


def build_scheduler(optimizer: Optimizer, config: TrainConfig, steps_per_epoch: int) -> LambdaLR:
    """A LambdaLR stepped once after every optimizer step; sets the lr of step 0 on construction."""
    return LambdaLR(optimizer, make_schedule_factor(config, steps_per_epoch))
