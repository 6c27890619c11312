"""The names training shares with the layers above it: schedules, weight-decay and precision modes,
and each task's metrics (the metrics themselves, with direction, range and unit: optimlab.stats.metrics).
"""

from __future__ import annotations

from optimlab.stats.metrics import (
    METRIC_RANGES as METRIC_RANGES,
)
from optimlab.stats.metrics import (
    METRIC_SPECS as METRIC_SPECS,
)
from optimlab.stats.metrics import (
    METRIC_TITLES as METRIC_TITLES,
)
from optimlab.stats.metrics import (
    METRICS as METRICS,
)
from optimlab.stats.metrics import (
    PERCENT_METRICS as PERCENT_METRICS,
)
from optimlab.stats.metrics import (
    metric_label as metric_label,
)


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
