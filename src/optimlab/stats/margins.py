"""Equivalence margins: how close two optimizers must be for the verdict "equivalent (within ±m)".

    margin_for("accuracy")                 # 0.005: half a percentage point
    margin_for("loss")                     # nan: no default (set one per claim or with --margin)
    margin_for("auc", {"auc": 0.0005})     # a caller's own table wins
    parse_margins(["defaults", "loss=0.01"])  # compare --margin: the default table plus loss at 0.01

optimlab.stats.inference.judge_family tests "|difference| ≥ m" by two one-sided t-tests inside the
family's one α budget; rejecting it is the verdict `equivalent`. The defaults are stated for the
metrics on a fixed scale (fractions, kappa, AUC), where a difference means the same on every data
set: half a point of accuracy-like metrics and of Cohen's kappa, a tenth of a point of AUC (CTR
models are compared at that grain). Unbounded metrics (losses, MSE, FID) have no default: their
units depend on the data, so equivalence is tested there only at a margin someone states — per
claim in the catalogue (`margin = ...` in a [[paper.claims]] table) or on compare (`--margin`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["DEFAULT_MARGINS", "margin_for", "check_margin", "parse_margins"]

DEFAULT_MARGINS: dict[str, float] = {
    "accuracy": 0.005,
    "train_accuracy": 0.005,
    "mean_recall": 0.005,
    "mean_precision": 0.005,
    "pixel_accuracy": 0.005,
    "map": 0.005,
    "map_allpoint": 0.005,
    "miou": 0.005,
    "kappa": 0.005,
    "auc": 0.001,
}


def check_margin(value: object, where: str) -> float:
    """A margin as a float > 0; ValueError naming `where` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{where}: an equivalence margin must be a number > 0, got {value!r}")
    return float(value)


def margin_for(metric: str, overrides: Mapping[str, float] | None = None) -> float:
    """The equivalence margin of `metric`: overrides[metric], else the default, else NaN (no test)."""
    if overrides and metric in overrides:
        return float(overrides[metric])
    return DEFAULT_MARGINS.get(metric, math.nan)


def parse_margins(items: Sequence[str]) -> dict[str, float]:
    """compare's --margin values: "METRIC=M" (one metric) or "defaults" (every DEFAULT_MARGINS entry),
    later items winning; ValueError naming the bad item."""
    out: dict[str, float] = {}
    for item in items:
        if item == "defaults":
            out.update(DEFAULT_MARGINS)
            continue
        metric, sep, value = item.partition("=")
        if not sep or not metric.strip():
            raise ValueError(f"--margin {item!r}: expected METRIC=M (e.g. accuracy=0.005) or 'defaults'")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"--margin {item!r}: {value!r} is not a number") from None
        out[metric.strip()] = check_margin(number, f"--margin {item!r}")
    return out
