"""What a metric is: its name, which way is better, its range, its title and unit.

Pure data (no torch, no tasks). Each task declares the metrics it reports as `Metric` values in its
own module (optimlab.tasks, ``Task.declared_metrics``); optimlab.tasks.known_metrics() gathers them
for the reports, the catalogue and the CLI. The statistics themselves take plain metric names and
the set of names where lower is better (``lower_is_better``), so they work without any task.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["BETTER", "Metric", "lower_is_better"]

BETTER = ("higher", "lower")


@dataclass(frozen=True)
class Metric:
    """One History.final key: `Metric("auc", "AUC", "higher", 0.0, 1.0)`."""

    name: str  # the History.final key ("accuracy"); what configs, claims and --metric name
    title: str  # how tables name it, with its unit ("accuracy %")
    better: str  # "higher" | "lower"
    low: float = -math.inf  # the values it can take (a reported figure outside them is a typo)
    high: float = math.inf
    percent: bool = False  # a fraction shown in % (differences in percentage points)
    headline_title: str = ""  # the heading of a report's headline table ("test accuracy"); empty: the name
    # verdict claim rows name a metric by its key, except where the key alone misleads: the FIDs say
    # which features they use, so "FID (classifier features)" is never read as Inception FID
    title_in_claims: bool = False

    def __post_init__(self) -> None:
        if self.better not in BETTER:
            raise ValueError(f"metric {self.name!r}: better must be one of {BETTER}, got {self.better!r}")
        if not self.low < self.high:
            raise ValueError(f"metric {self.name!r}: low {self.low!r} must be below high {self.high!r}")

    @property
    def lower_is_better(self) -> bool:
        return self.better == "lower"

    @property
    def headline(self) -> str:
        return self.headline_title or self.name

    @property
    def label(self) -> str:
        """How verdict pages name the metric in their claim rows."""
        return self.title if self.title_in_claims else self.name


def lower_is_better(metrics: Iterable[Metric]) -> frozenset[str]:
    """The names among `metrics` where lower is better: what the statistics take as a direction."""
    return frozenset(m.name for m in metrics if m.lower_is_better)
