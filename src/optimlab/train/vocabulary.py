"""The names training shares with the layers above it: schedules, weight-decay and precision modes,
and each task's metrics (each task declares its own, with direction, range and title: optimlab.tasks).
"""

from __future__ import annotations


def task_metrics(task: str) -> tuple[str, ...]:
    """The History.final metrics of `task` (a name from optimlab.tasks), in table order."""
    from optimlab.tasks import get_task

    return get_task(task).metrics


def task_headline(task: str) -> str:
    """The metric of `task`'s headline table (accuracy for classifiers, auc for click-through rate)."""
    from optimlab.tasks import get_task

    return get_task(task).headline


SCHEDULES = ("constant", "step", "cosine")
WEIGHT_DECAY_MODES = ("coupled", "decoupled")
AMP_MODES = ("none", "bf16")
