"""Statistics over seeds: mean ± 95% t-interval per optimizer, and paired comparisons with a baseline.

Every optimizer runs on the same seeds (same initial weights, same batch order), so optimizer −
baseline differences are paired by seed: the paired bootstrap CI of the mean difference, the paired
t-test and the Wilcoxon signed-rank test all use the seeds both runs finished without diverging.
Diverged runs are counted, shown, and left out of means (a note says so); in the per-seed win
count a diverged run loses to a finite one.

Small-sample caveat: with n seeds the two-sided exact Wilcoxon p can never be below 2/2^n
(0.0625 for n = 5), so it cannot reach 0.05 with 5 seeds however clear the difference.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import stats

from optimlab.experiments.results import RunResult

METRICS = ("accuracy", "loss", "mean_recall", "mean_precision", "kappa")
LOWER_IS_BETTER = frozenset({"loss"})
PERCENT_METRICS = frozenset({"accuracy", "mean_recall", "mean_precision"})  # fractions, shown in %
BOOTSTRAP_SEED = 0  # fixed so a report is reproducible from its result files
BOOTSTRAP_RESAMPLES = 9999


@dataclass(frozen=True)
class MeanCI:
    mean: float
    low: float  # 95% t-interval; NaN when n < 2
    high: float
    n: int
    std: float  # sample std (ddof = 1); NaN when n < 2


@dataclass
class GroupSummary:
    dataset: str
    model: str
    label: str
    optimizer: str  # registry name
    n_runs: int  # finished runs (diverged included)
    n_diverged: int
    n_errors: int  # runs that raised
    metrics: dict[str, MeanCI]  # over the finite (non-diverged) runs
    step_time_s: MeanCI  # mean optimizer step wall time over finished runs
    values: dict[str, dict[int, float]] = field(default_factory=dict)  # metric -> seed -> value (finite runs)


@dataclass
class PairedComparison:
    dataset: str
    model: str
    label: str
    baseline: str
    metric: str
    n_pairs: int  # seeds where both runs finished without diverging
    mean_diff: float  # mean of (label − baseline) over those seeds
    ci_low: float  # paired bootstrap 95% CI of mean_diff
    ci_high: float
    t_p: float  # paired t-test (two-sided)
    wilcoxon_p: float  # Wilcoxon signed-rank (two-sided)
    wins: int  # seeds where `label` beats the baseline (lower loss / higher other metrics)
    losses: int
    ties: int
    notes: list[str] = field(default_factory=list)


@dataclass
class Summary:
    groups: list[GroupSummary]
    paired: list[PairedComparison]
    notes: list[str]

    def group(self, label: str, dataset: str | None = None, model: str | None = None) -> GroupSummary:
        for g in self.groups:
            if g.label == label and dataset in (None, g.dataset) and model in (None, g.model):
                return g
        raise KeyError(label)

    def comparison(self, label: str, metric: str = "accuracy", dataset: str | None = None,
                   model: str | None = None) -> PairedComparison:
        for p in self.paired:
            if p.label == label and p.metric == metric and dataset in (None, p.dataset) and model in (None, p.model):
                return p
        raise KeyError((label, metric))


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> MeanCI:
    """Mean and two-sided Student-t interval mean ± t_{(1+c)/2, n−1} · s / √n."""
    x = np.asarray(values, dtype=float)
    n = x.size
    if n == 0:
        return MeanCI(math.nan, math.nan, math.nan, 0, math.nan)
    mean = float(x.mean())
    if n < 2:
        return MeanCI(mean, math.nan, math.nan, 1, math.nan)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return MeanCI(mean, mean - half, mean + half, n, std)


def _bootstrap_kwargs() -> dict[str, object]:
    # scipy >= 1.15 names the generator `rng`; older versions only know `random_state`.
    if "rng" in inspect.signature(stats.bootstrap).parameters:
        return {"rng": np.random.default_rng(BOOTSTRAP_SEED)}
    return {"random_state": np.random.default_rng(BOOTSTRAP_SEED)}


def _mean_diff(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a - b, axis=axis)


def paired_tests(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float, float, float, list[str]]:
    """(mean diff, bootstrap low, high, t-test p, Wilcoxon p, notes) for paired samples a − b."""
    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_.shape != b_.shape:
        raise ValueError(f"paired samples need equal lengths, got {a_.size} and {b_.size}")
    n = a_.size
    notes: list[str] = []
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan, math.nan, ["no paired seeds"]
    d = a_ - b_
    mean = float(d.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan, math.nan, ["one paired seed: no CI or tests"]
    if np.all(d == d[0]):
        # Degenerate: bootstrap has zero spread, t is ±inf or 0/0, Wilcoxon has no ranks (all zero).
        notes.append("all paired differences equal: CI is a point, tests undefined")
        return mean, mean, mean, math.nan, math.nan, notes
    res = stats.bootstrap((a_, b_), _mean_diff, paired=True, vectorized=True, n_resamples=BOOTSTRAP_RESAMPLES,
                          confidence_level=0.95, method="percentile", **_bootstrap_kwargs())
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    t_p = float(stats.ttest_rel(a_, b_).pvalue)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # scipy: "exact p not possible with zeros/ties"
        w_p = float(stats.wilcoxon(a_, b_).pvalue)
    if np.count_nonzero(d) < n:
        notes.append(f"{n - np.count_nonzero(d)} zero difference(s) dropped by Wilcoxon")
    return mean, low, high, t_p, w_p, notes


def _final(r: RunResult, metric: str) -> float:
    assert r.history is not None
    return float(r.history.final.get(metric, math.nan))


def summarize(results: Sequence[RunResult], baseline: str, metrics: Sequence[str] = METRICS) -> Summary:
    """Per (dataset, model, label): mean ± CI of each final metric; paired diffs against `baseline`."""
    order: list[tuple[str, str, str]] = []
    by_key: dict[tuple[str, str, str], list[RunResult]] = {}
    for r in results:
        key = (r.dataset, r.model, r.label)
        if key not in by_key:
            order.append(key)
            by_key[key] = []
        by_key[key].append(r)
    groups: list[GroupSummary] = []
    notes: list[str] = []
    for key in order:
        runs = by_key[key]
        done = [r for r in runs if r.done]
        finite = [r for r in done if not r.diverged]
        n_div = len(done) - len(finite)
        g = GroupSummary(
            dataset=key[0], model=key[1], label=key[2], optimizer=runs[0].optimizer,
            n_runs=len(done), n_diverged=n_div, n_errors=len(runs) - len(done),
            metrics={m: mean_ci([_final(r, m) for r in finite]) for m in metrics},
            step_time_s=mean_ci([r.history.step_time_s for r in done
                                 if r.history is not None and math.isfinite(r.history.step_time_s)]),
            values={m: {r.seed: _final(r, m) for r in finite} for m in metrics},
        )
        groups.append(g)
        if n_div:
            seeds = sorted(r.seed for r in done if r.diverged)
            notes.append(f"{g.label} ({g.dataset}/{g.model}): {n_div} of {len(done)} runs diverged "
                         f"(seeds {seeds}); they are excluded from means, CIs and paired tests")
        if g.n_errors:
            notes.append(f"{g.label} ({g.dataset}/{g.model}): {g.n_errors} run(s) failed with an error (see runs/*.error.json)")
    paired: list[PairedComparison] = []
    for (dataset, model, label) in order:
        base_key = (dataset, model, baseline)
        if label == baseline or base_key not in by_key:
            continue
        mine = {r.seed: r for r in by_key[(dataset, model, label)] if r.done}
        base = {r.seed: r for r in by_key[base_key] if r.done}
        seeds = sorted(set(mine) & set(base))
        for m in metrics:
            paired.append(_compare(dataset, model, label, baseline, m, [mine[s] for s in seeds], [base[s] for s in seeds]))
    if not any(g.label == baseline for g in groups):
        notes.append(f"baseline {baseline!r} has no runs: no paired comparisons")
    return Summary(groups, paired, notes)


def _compare(dataset: str, model: str, label: str, baseline: str, metric: str,
             mine: list[RunResult], base: list[RunResult]) -> PairedComparison:
    lower = metric in LOWER_IS_BETTER
    wins = losses = ties = 0
    a, b = [], []
    for r, q in zip(mine, base):
        x, y = _final(r, metric), _final(q, metric)
        if r.diverged or q.diverged:
            wins += int(q.diverged and not r.diverged)
            losses += int(r.diverged and not q.diverged)
            ties += int(r.diverged and q.diverged)
            continue
        a.append(x)
        b.append(y)
        better = x < y if lower else x > y
        worse = x > y if lower else x < y
        wins, losses, ties = wins + int(better), losses + int(worse), ties + int(not better and not worse)
    mean, low, high, t_p, w_p, notes = paired_tests(a, b)
    excluded = len(mine) - len(a)
    if excluded:
        notes = [f"{excluded} seed(s) with a diverged run left out of the difference", *notes]
    return PairedComparison(dataset, model, label, baseline, metric, len(a), mean, low, high, t_p, w_p,
                            wins, losses, ties, notes)
