"""How every page and table shows results: numbers per metric, p-values, intervals, Markdown tables.

One module, so report.md, verdict.md, tune.md, the results page, the studies and the terminal print
the same quantity the same way:

- metrics declared percent (optimlab.tasks: each task's Metric) are fractions shown in % with 2
  decimals (differences in points);
  others with 4 decimals; a non-zero value that would round to zero there is shown with 2 significant
  digits (+1.2e-05), so a tiny difference never reads as none; `unit=True` appends " %" / " pts";
- p-values with 3 decimals, "< 0.001" below that, "—" when there is none (one seed, ties);
- an interval end past the metric's range (accuracy above 100 %) is shown at the bound with CLIP_MARK.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from optimlab.stats.summary import MeanCI, Rate
from optimlab.tasks import known_metrics

CLIP_MARK = "*"  # an interval end past the metric's range, shown at the bound
CLIP_NOTE = (
    f"{CLIP_MARK} the t-interval reaches past the metric's possible range (e.g. above 100 %); it is shown "
    "clipped at the bound. The statistics use the unclipped interval."
)
DATASET_TITLES = {
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "digits": "scikit-learn digits (8x8)",
    "imagefolder": "image folder",
    "r8": "R8 (Reuters-21578, 8 topics)",
    "womens-reviews": "Women's E-Commerce Clothing Reviews",
    "avazu": "Avazu click logs",
    "adult": "UCI Adult (census income)",
}


def is_percent(metric: str) -> bool:
    """Whether `metric` is a fraction shown in % (as its task declares; an unknown name is not)."""
    m = known_metrics().get(metric)
    return m is not None and m.percent


def metric_title(metric: str) -> str:
    """How tables name `metric`, with its unit ("accuracy %"); an unknown name as itself."""
    m = known_metrics().get(metric)
    return m.title if m is not None else metric


def claim_label(metric: str) -> str:
    """How verdict pages name `metric` in their claim rows: its key, or its title where the key misleads
    (the FIDs say which features they use)."""
    m = known_metrics().get(metric)
    return m.label if m is not None else metric


def fmt_value(metric: str, v: float | None, signed: bool = False, unit: bool = False) -> str:
    """A metric value (or difference, signed=True); "—" for None, "nan" for a non-finite value."""
    if v is None:
        return "—"
    if not math.isfinite(v):
        return "nan"
    percent = is_percent(metric)
    scale, digits = (100.0, 2) if percent else (1.0, 4)
    sign = "+" if signed else ""
    if v != 0 and round(v * scale, digits) == 0:  # would print as 0.0000: 2 significant digits instead
        return f"{v * scale:{sign}.1e}" + ((" pts" if signed else " %") if unit and percent else "")
    text = f"{v * scale:{sign}.{digits}f}"
    return text + ((" pts" if signed else " %") if unit and percent else "")


def fmt_bound(metric: str, v: float, unit: bool = False) -> str:
    """An interval end, clipped to the metric's range with CLIP_MARK when it lies outside."""
    m = known_metrics().get(metric)
    lo, hi = (m.low, m.high) if m is not None else (-math.inf, math.inf)
    if math.isfinite(v) and (v < lo or v > hi):
        return fmt_value(metric, min(max(v, lo), hi), unit=unit) + CLIP_MARK
    return fmt_value(metric, v, unit=unit)


def fmt_ci(metric: str, c: MeanCI, unit: bool = False, show_n: bool = False) -> str:
    """mean [low, high] of a t-interval over seeds (clipped for display), optionally with (n=...)."""
    n = f" (n={c.n})" if show_n else ""
    if c.n == 0:
        return "— (no finished runs)" if show_n else "—"
    if not math.isfinite(c.low):
        return f"{fmt_value(metric, c.mean, unit=unit)} (n={c.n}{', no CI' if show_n else ''})"
    return (
        f"{fmt_value(metric, c.mean, unit=unit)} [{fmt_bound(metric, c.low, unit)}, "
        f"{fmt_bound(metric, c.high, unit)}]{n}"
    )


def fmt_interval(metric: str, low: float, high: float, unit: bool = False) -> str:
    """[low, high] of a difference; "no CI" when there is none."""
    if not math.isfinite(low):
        return "no CI"
    return f"[{fmt_value(metric, low, True, unit)}, {fmt_value(metric, high, True, unit)}]"


def fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_rate(r: Rate) -> str:
    """k/n with the exact 95% interval of the rate, in %."""
    if r.n == 0:
        return "—"
    return f"{r.k}/{r.n} [{100 * r.low:.0f}–{100 * r.high:.0f} %]"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cell: Callable[[Any], str] = str) -> str:
    """A GitHub-flavoured Markdown table; every cell passes through `cell`."""
    if any(len(r) != len(headers) for r in rows):
        raise ValueError(f"Every row needs {len(headers)} cells (headers: {list(headers)})")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def dataset_title(name: str) -> str:
    return DATASET_TITLES.get(name, name)


def display_name(label: str, optimizer: str) -> str:
    """How tables and figures name an optimizer: its label, with the registry name when they differ."""
    return label if label == optimizer else f"{label} [{optimizer}]"
