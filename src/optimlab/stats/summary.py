"""Statistics over seeds: mean ± 95% t-interval per optimizer, and paired comparisons with a baseline.

Every optimizer runs on the same seeds (same initial weights, same batch order), so optimizer −
baseline differences are paired by seed. The paired comparison (optimlab.stats.inference) is
the paired Student-t 95% interval and t-test over the seeds both runs attempted, with Holm's
adjustment over the optimizers compared against the same baseline on the same metric, and a
decision (better / worse / no difference shown / too few seeds) from the same rule the paper
verdicts use. A percentile bootstrap interval is kept as a secondary figure only from 30 pairs on
(below that it undercovers).

Failed runs (diverged, or raised: status error) are judged by the rule reproduce judges paper claims
by, through the same functions: in the paired comparison a failed run counts at the worst value
either arm reached on that metric over the compared seeds (inference.failed_at_worst; a seed where
both failed is a tie, 0), so one failure never turns 10 seeds into "too few seeds" and an optimizer
that diverges often can be "worse"; a comparison with a failed seed takes its direction p from the
sign-flip permutation test (permutation.direction_p), exact for the symmetric differences two
exchangeable arms give, where the t-test on those spiky differences runs slightly over its level.
A seed missing from one arm (never run) stays out. mean_diff, the interval, the bootstrap, n_pairs
and the MDE are all over these substituted differences, so the interval is centred on the mean whose
sign the decision reports (the decision is the sign-flip test's, so near the edge the t-interval can
still touch 0); it describes the differences with each failure scored as the worst result
seen, not how the finished runs compare, and the comparison's note gives the mean and 95% interval
over the seeds both arms finished beside it. In wins/losses/ties a failed run loses to a finished
one. Each optimizer's own means and CIs (GroupSummary) leave its failed runs out; its failures are
counted with an exact (Clopper-Pearson) 95% interval of the failure rate.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from optimlab.stats import inference, permutation

__all__ = [
    "DEFAULT_METRICS",
    "RunRecord",
    "MeanCI",
    "Rate",
    "GroupSummary",
    "PairedComparison",
    "Summary",
    "mean_ci",
    "failure_rate",
    "mcnemar_exact_p",
    "bootstrap_ci",
    "paired_notes",
    "summarize",
    "DECISIONS",
    "BOOTSTRAP_MIN_PAIRS",
]


# what summarize reads when not told: a classifier's headline and the loss every run records; callers
# pass a task's metrics and their directions (optimlab.tasks: Task.metrics, lower_is_better)
DEFAULT_METRICS = ("accuracy", "loss")
DEFAULT_LOWER_IS_BETTER = frozenset({"loss"})


class RunRecord(Protocol):
    """What the statistics read of one run (optimlab.experiments.results.RunRecord is one; so is a
    record made from someone else's runs): who ran it, whether it finished, and its final metrics."""

    @property
    def label(self) -> str: ...
    @property
    def optimizer(self) -> str: ...
    @property
    def dataset(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def done(self) -> bool: ...  # False: the run raised (an error, not a result)
    @property
    def diverged(self) -> bool: ...
    @property
    def history(self) -> Any: ...  # .final: dict[str, float]; .step_time_s: float; None when not done


BOOTSTRAP_SEED = 0  # fixed so a report is reproducible from its result files
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_MIN_PAIRS = 30  # the percentile bootstrap is shown (as a secondary interval) from this many pairs
# compare's decisions, by the inference verdict they come from (claimed direction: "beats the baseline")
DECISIONS = {
    inference.SURVIVES: "better",
    inference.CONTRADICTED: "worse",
    inference.EQUIVALENT: "equivalent",  # within ±margin (stats.margins), by two one-sided tests
    inference.INCONCLUSIVE: "no difference shown",
    inference.TOO_FEW: "too few seeds",
}


@dataclass(frozen=True)
class MeanCI:
    mean: float
    low: float  # 95% t-interval; NaN when n < 2
    high: float
    n: int
    std: float  # sample std (ddof = 1); NaN when n < 2


@dataclass(frozen=True)
class Rate:
    """k failures out of n runs, with the exact (Clopper-Pearson) 95% interval of the rate."""

    k: int
    n: int
    low: float  # NaN when n == 0
    high: float


def failure_rate(k: int, n: int) -> Rate:
    if n == 0:
        return Rate(0, 0, math.nan, math.nan)
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return Rate(k, n, float(ci.low), float(ci.high))


def mcnemar_exact_p(b: int, c: int) -> float:
    """Exact McNemar p (two-sided) for paired failures: b seeds where only arm A failed, c where only B."""
    return 1.0 if b + c == 0 else float(stats.binomtest(b, b + c, 0.5).pvalue)


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

    @property
    def failures(self) -> Rate:
        """Diverged or errored runs among all attempted runs."""
        return failure_rate(self.n_diverged + self.n_errors, self.n_runs + self.n_errors)


@dataclass
class PairedComparison:
    dataset: str
    model: str
    label: str
    baseline: str
    metric: str
    n_pairs: int  # seeds both arms attempted (a failed run counts at the worst value; see the module text)
    mean_diff: float  # mean of (label − baseline) over those seeds
    ci_low: float  # paired Student-t 95% CI of mean_diff (unadjusted), over the same differences
    ci_high: float
    t_p: float  # paired t-test, two-sided, raw
    holm_p: float  # t_p Holm-adjusted over the optimizers compared with this baseline on this metric
    decision: str  # a value of DECISIONS
    mde: float  # smallest true |difference| this n and spread detect with 80% power (Holm's strictest level)
    wins: int  # seeds where `label` beats the baseline (lower loss / higher other metrics; a failed run loses)
    losses: int
    ties: int
    boot_low: float = math.nan  # percentile bootstrap 95% CI; only from BOOTSTRAP_MIN_PAIRS pairs on
    boot_high: float = math.nan
    notes: list[str] = field(default_factory=list)


@dataclass
class Summary:
    groups: list[GroupSummary]
    paired: list[PairedComparison]
    notes: list[str]
    alpha: float = inference.ALPHA  # family-wise level of the decisions

    def group(self, label: str, dataset: str | None = None, model: str | None = None) -> GroupSummary:
        for g in self.groups:
            if g.label == label and dataset in (None, g.dataset) and model in (None, g.model):
                return g
        raise KeyError(label)

    def comparison(
        self, label: str, metric: str = "accuracy", dataset: str | None = None, model: str | None = None
    ) -> PairedComparison:
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


def bootstrap_ci(d: ArrayLike) -> tuple[float, float]:
    """Percentile bootstrap 95% CI of the mean of d (9,999 resamples, fixed seed); NaN below 30 values."""
    x = np.asarray(d, dtype=float)
    if x.size < BOOTSTRAP_MIN_PAIRS or inference.is_tied(x):
        return math.nan, math.nan
    res = stats.bootstrap(
        (x,),
        np.mean,
        vectorized=True,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=0.95,
        method="percentile",
        **_bootstrap_kwargs(),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_notes(d: Sequence[float]) -> list[str]:
    """Why a paired comparison has no interval or test, if it has none."""
    x = np.asarray(d, dtype=float)
    if x.size == 0:
        return ["no paired seeds"]
    if x.size == 1:
        return ["one paired seed: no interval or test (a t-test needs two)"]
    if inference.is_tied(x):
        return ["all paired differences equal (ties): no spread, no t-test, never decisive"]
    return []


def _final(r: RunRecord, metric: str) -> float:
    assert r.history is not None
    return float(r.history.final.get(metric, math.nan))


def summarize(
    results: Sequence[RunRecord],
    baseline: str,
    metrics: Sequence[str] = DEFAULT_METRICS,
    alpha: float = inference.ALPHA,
    min_seeds: int = inference.MIN_SEEDS,
    lower_is_better: Collection[str] = DEFAULT_LOWER_IS_BETTER,
    margins: Mapping[str, float] | None = None,
) -> Summary:
    """Per (dataset, model, label): mean ± CI of each final metric; paired diffs against `baseline`,
    decided with Holm over the labels compared on each (dataset, model, metric) at level alpha.
    lower_is_better: the metrics where lower wins (optimlab's own by default; an experiment of the
    user's own metrics passes its directions). margins: metric -> equivalence margin, which adds the
    decision "equivalent" (inside the same Holm budget) on those metrics; stats.margins.DEFAULT_MARGINS
    is the documented table (compare --margin)."""
    order: list[tuple[str, str, str]] = []
    by_key: dict[tuple[str, str, str], list[RunRecord]] = {}
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
            dataset=key[0],
            model=key[1],
            label=key[2],
            optimizer=runs[0].optimizer,
            n_runs=len(done),
            n_diverged=n_div,
            n_errors=len(runs) - len(done),
            metrics={m: mean_ci([_final(r, m) for r in finite]) for m in metrics},
            step_time_s=mean_ci(
                [r.history.step_time_s for r in done if r.history is not None and math.isfinite(r.history.step_time_s)]
            ),
            values={m: {r.seed: _final(r, m) for r in finite} for m in metrics},
        )
        groups.append(g)
        if n_div:
            seeds = sorted(r.seed for r in done if r.diverged)
            notes.append(
                f"{g.label} ({g.dataset}/{g.model}): {n_div} of {len(done)} runs diverged "
                f"(seeds {seeds}); they are excluded from its means and CIs, and count at the worst value "
                "either arm reached in the paired comparisons"
            )
        if g.n_errors:
            notes.append(
                f"{g.label} ({g.dataset}/{g.model}): {g.n_errors} run(s) failed with an error (see runs/*.error.json); "
                "they count at the worst value either arm reached in the paired comparisons"
            )
    paired: list[PairedComparison] = []
    labels_of: dict[tuple[str, str], list[str]] = {}  # (dataset, model) -> labels in order, in one pass
    for k in order:
        labels_of.setdefault(k[:2], []).extend([k[2]] if k[2] != baseline else [])
    for (dataset, model), labels in labels_of.items():
        base_key = (dataset, model, baseline)
        if base_key not in by_key or not labels:
            continue
        base = _by_seed(by_key[base_key])
        for m in metrics:
            lower = m in lower_is_better
            margin = float(margins[m]) if margins and m in margins else math.nan  # opt-in: no default here
            paired += _compare_family(
                dataset, model, labels, baseline, m, by_key, base, alpha, min_seeds, lower, margin
            )
    if not any(g.label == baseline for g in groups):
        notes.append(f"baseline {baseline!r} has no runs: no paired comparisons")
    return Summary(groups, paired, notes, alpha)


def _by_seed(runs: Sequence[RunRecord]) -> dict[int, RunRecord]:
    """seed -> run, errored runs included (they count as failed); a finished run stands over an errored one."""
    out: dict[int, RunRecord] = {}
    for r in runs:
        if r.seed not in out or not out[r.seed].done:
            out[r.seed] = r
    return out


def _failed(r: RunRecord) -> bool:
    return not r.done or r.diverged


def _paired_row(
    mine: dict[int, RunRecord], base: dict[int, RunRecord], metric: str, sign: float
) -> tuple[np.ndarray, int, int, int, int, list[float]]:
    """Oriented differences over the seeds both arms attempted, a failed run (diverged or raised) at the
    worst value either arm reached (inference.failed_at_worst, as reproduce judges claims); wins, losses
    and ties per seed, where a failed run loses to a finished one; the count of seeds with a failure;
    and the oriented differences of the seeds both arms finished (for the note)."""
    seeds = [
        s
        for s in sorted(set(mine) & set(base))
        if all(_failed(r) or math.isfinite(_final(r, metric)) for r in (mine[s], base[s]))
    ]  # a finished run without this metric leaves its seed out, as a missing one does
    a = np.array([math.nan if _failed(mine[s]) else sign * _final(mine[s], metric) for s in seeds])
    b = np.array([math.nan if _failed(base[s]) else sign * _final(base[s], metric) for s in seeds])
    d = inference.failed_at_worst(a, b) if seeds else np.zeros(0)
    fa, fb = np.isnan(a), np.isnan(b)
    finite = ~(fa | fb)
    wins = int(np.sum(fb & ~fa) + np.sum(finite & (d > 0)))
    losses = int(np.sum(fa & ~fb) + np.sum(finite & (d < 0)))
    ties = int(np.sum(fa & fb) + np.sum(finite & (d == 0)))
    both_finished = [float(x) for x in d[finite]]
    d = d[np.isfinite(d)]  # every run of both arms failed: no value to count them at, no difference
    return d, wins, losses, ties, int(np.sum(~finite)), both_finished


def _failure_note(k: int, p_flip: float, sign: float, both_finished: list[float], counted: bool) -> str:
    """What a comparison with failed seeds says about them (the interval shown is over the substituted
    differences). counted: False where every run of both arms failed (no value to count them at)."""
    if not counted:
        return f"{k} seed(s) with a diverged or errored run, and no finished run in either arm to compare"
    fin = mean_ci([sign * x for x in both_finished])
    interval = f", 95% CI [{fin.low:.4g}, {fin.high:.4g}]" if fin.n >= 2 else ""
    alone = f"; the {fin.n} seed(s) both finished alone: mean {fin.mean:.4g}{interval}" if fin.n else ""
    return (
        f"{k} seed(s) with a diverged or errored run counted at the worst value either arm reached "
        f"(a seed where both failed: a tie); the mean, interval and test are over those differences, the "
        f"direction decided by the sign-flip permutation test (p {p_flip:.3g}){alone}"
    )


def _compare_family(
    dataset: str,
    model: str,
    labels: list[str],
    baseline: str,
    metric: str,
    by_key: dict[tuple[str, str, str], list[RunRecord]],
    base: dict[int, RunRecord],
    alpha: float,
    min_seeds: int,
    lower: bool,
    margin: float = math.nan,
) -> list[PairedComparison]:
    """One family: every label against the baseline on one metric (Holm over the labels). A failed run
    counts at the worst value either arm reached and a comparison with one takes its direction p from
    the sign-flip test (optimlab.stats.permutation.direction_p), the rule reproduce judges claims by."""
    sign = -1.0 if lower else 1.0
    rows = [_paired_row(_by_seed(by_key[(dataset, model, label)]), base, metric, sign) for label in labels]
    oriented = inference.family_array([list(r[0]) for r in rows])
    has_failure = np.array([r[4] > 0 for r in rows])
    p_dir = permutation.direction_p(oriented, has_failure)
    j = inference.judge_family(oriented, alpha=alpha, min_seeds=min_seeds, margin=margin, p_direction=p_dir)
    out = []
    for i, (label, (od, wins, losses, ties, k_failed, both_finished)) in enumerate(zip(labels, rows)):
        d = [sign * x for x in od]  # label − baseline, unoriented
        notes = paired_notes(d)
        if k_failed:
            notes.insert(0, _failure_note(k_failed, float(p_dir[i]), sign, both_finished, bool(d)))
        lo, hi = sign * j.stats.low[i], sign * j.stats.high[i]
        boot = bootstrap_ci(d)
        out.append(
            PairedComparison(
                dataset,
                model,
                label,
                baseline,
                metric,
                len(d),
                float(np.mean(d)) if d else math.nan,
                float(min(lo, hi)),
                float(max(lo, hi)),
                float(j.stats.p_two[i]),
                float(j.p_two_adj[i]),
                DECISIONS[inference.VERDICTS[j.code[i]]],
                inference.mde(float(j.stats.sd[i]), len(d), len(labels), alpha),
                wins,
                losses,
                ties,
                boot[0],
                boot[1],
                notes,
            )
        )
    return out
