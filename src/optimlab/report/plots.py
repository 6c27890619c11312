"""The report's figures, drawn with matplotlib's object API on the Agg canvas (no pyplot state).

Each function writes one PNG and returns its path (None when there is nothing to draw). Colours
follow the experiment's optimizer order, so an optimizer has the same colour in every figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, MaxNLocator

from optimlab.experiments.config import ExperimentConfig
from optimlab.experiments.results import RunResult
from optimlab.report.display import display_name, is_percent, metric_title
from optimlab.stats.summary import GroupSummary
from optimlab.tasks import get_task, known_metrics

_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def series_color(i: int) -> str:
    return _COLORS[i % len(_COLORS)]


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _bounds(metric: str, scale: float) -> tuple[float, float]:
    """The metric's possible range in plotted units (accuracy: 0-100 %): a band or bar is clipped to it."""
    m = known_metrics().get(metric)
    return (m.low * scale, m.high * scale) if m is not None else (-math.inf, math.inf)


def learning_curves(runs: Sequence[RunResult], config: ExperimentConfig, path: Path) -> Path | None:
    """The task's test curve (accuracy for classifiers, MSE for key points, FID for the GAN) and the
    training loss per epoch: mean over finite runs ± one std band per optimizer."""
    curve = get_task(config.task).curve
    curve_scale = 100.0 if is_percent(curve) else 1.0
    curve_title = metric_title(curve)
    fig = Figure(figsize=(11, 4.2))
    ax_acc, ax_loss = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    drawn = False
    for i, opt in enumerate(config.optimizers):
        finite = [r for r in runs if r.label == opt.label and r.done and not r.diverged and r.history is not None]
        for ax, attr, scale, (lo, hi) in (
            (ax_acc, "test_acc", curve_scale, _bounds(curve, curve_scale)),
            (ax_loss, "train_loss", 1.0, (0.0, math.inf)),
        ):
            curves = [getattr(r.history, attr) for r in finite if getattr(r.history, attr)]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            y = np.asarray([c[:n] for c in curves], dtype=float) * scale
            mean, std = y.mean(axis=0), (y.std(axis=0, ddof=1) if len(y) > 1 else np.zeros(n))
            x = np.arange(1, n + 1)
            ax.plot(
                x,
                mean,
                color=series_color(i),
                label=f"{display_name(opt.label, opt.name)} (n={len(y)})",
                marker="o",
                ms=3,
            )
            band = np.clip(mean - std, lo, hi), np.clip(mean + std, lo, hi)  # no band past 100 %
            ax.fill_between(x, *band, color=series_color(i), alpha=0.18, linewidth=0)
            drawn = True
    if not drawn:
        return None
    ax_acc.set(xlabel="epoch", ylabel=f"test {curve_title}", title=f"test {curve_title} (mean ± std over seeds)")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="training loss (mean ± std over seeds)")
    ax_loss.set_yscale("log")
    # plain numbers on the log axis ("2", "1.5"), not "2x10^0"; minor ticks labelled where decades are few
    ax_loss.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    ax_loss.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    for ax in (ax_acc, ax_loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=8)
    return _save(fig, path)


def final_strip(groups: Sequence[GroupSummary], metric: str, order: Sequence[str], path: Path) -> Path | None:
    """Each seed's final metric as a dot, with the mean and its 95% t-interval, per optimizer."""
    if not groups:
        return None
    scale = 100.0 if is_percent(metric) else 1.0
    fig = Figure(figsize=(max(5.0, 1.3 * len(groups) + 2), 4.2))
    ax = fig.add_subplot(1, 1, 1)
    for i, g in enumerate(groups):
        vals = np.asarray(list(g.values[metric].values()), dtype=float) * scale
        jitter = np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else np.zeros(len(vals))
        ax.scatter(i + jitter, vals, color=series_color(order.index(g.label)), s=22, alpha=0.8, zorder=3)
        c = g.metrics[metric]
        if c.n:
            lo, hi = _bounds(metric, 1.0)
            low, high = max(c.low, lo), min(c.high, hi)  # the interval shown clipped, as the tables show it
            yerr = None if not math.isfinite(c.low) else [[(c.mean - low) * scale], [(high - c.mean) * scale]]
            ax.errorbar([i + 0.3], [c.mean * scale], yerr=yerr, color="black", capsize=4, marker="_", ms=14, zorder=4)
        if g.n_diverged:
            ax.annotate(
                f"{g.n_diverged} diverged",
                (i, 0),
                xycoords=("data", "axes fraction"),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                color="red",
            )
    ax.set_xticks(range(len(groups)), [display_name(g.label, g.optimizer) for g in groups], rotation=20, ha="right")
    unit = " %" if is_percent(metric) else ""
    ax.set(ylabel=f"final test {metric}{unit}", title=f"final test {metric}: seeds (dots), mean and 95% CI (bar)")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def step_times(groups: Sequence[GroupSummary], order: Sequence[str], path: Path) -> Path | None:
    """Mean wall time of one training step per optimizer (95% CI over seeds)."""
    groups = [g for g in groups if g.step_time_s.n]
    if not groups:
        return None
    fig = Figure(figsize=(max(5.0, 1.1 * len(groups) + 2), 3.8))
    ax = fig.add_subplot(1, 1, 1)
    means = [g.step_time_s.mean * 1e3 for g in groups]
    err = [
        [(g.step_time_s.mean - g.step_time_s.low) * 1e3 if math.isfinite(g.step_time_s.low) else 0.0 for g in groups],
        [(g.step_time_s.high - g.step_time_s.mean) * 1e3 if math.isfinite(g.step_time_s.high) else 0.0 for g in groups],
    ]
    ax.bar(range(len(groups)), means, yerr=err, capsize=4, color=[series_color(order.index(g.label)) for g in groups])
    ax.set_xticks(range(len(groups)), [display_name(g.label, g.optimizer) for g in groups], rotation=20, ha="right")
    ax.set_ylabel("ms per step")
    # wall times depend on what else the machine ran at the time, which no run records
    ax.set_title(
        "training step time (forward + backward + step)\n"
        "runs made at other times or under other machine load\nare not comparable",
        fontsize=9,
    )
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
