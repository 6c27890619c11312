"""The candidates every optimizer tries, and the choice among them (validation split only).

    cands = make_candidates(budget=8, lr_range=(1e-4, 1.0))            # a log grid (or search="sobol")
    best = select_best(score_candidates(search_results, run_labels, n_seeds)["sgdm"])

Every optimizer gets the same candidate set and the same tuning seeds; each picks the candidate with
the best mean *validation* metric (History.final_val; the test split is never read here); a setting
where any tuning run diverged or failed loses to every finite one; ties go to the smaller lr.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from optimlab.experiments.config import ExperimentConfig
from optimlab.experiments.results import RunResult
from optimlab.stats.inference import MIN_SEEDS
from optimlab.stats.summary import Summary
from optimlab.tasks import lower_is_better

SEARCHES = ("grid", "sobol")
DEFAULT_WD_RANGE = (1e-6, 1e-2)
SOBOL_SEED = 0  # scrambling seed: a sobol search is reproducible from its arguments
MIN_FINAL_SEEDS = MIN_SEEDS  # below this the final comparison decides nothing (inference.MIN_SEEDS)
DEFAULT_TUNE_SEEDS = (1000, 1001, 1002)  # >= 3, so one lucky seed does not pick the setting; apart from the final seeds


class TuneError(ValueError):
    """Bad tune arguments; the message names the argument and its value."""


@dataclass(frozen=True)
class Candidate:
    lr: float
    weight_decay: float | None = None  # None: the optimizer's own (config or registry) value


@dataclass
class CandidateScore:
    """One optimizer's result at one candidate, over the tuning seeds (validation split only)."""

    label: str  # the optimizer's label in the experiment
    run_label: str  # the label of its search runs
    candidate: Candidate
    values: list[float]  # validation metric per finished, finite tuning run
    n_runs: int  # tuning seeds
    n_diverged: int
    n_failed: int  # raised an error or missing

    @property
    def ok(self) -> bool:
        return self.n_diverged == 0 and self.n_failed == 0 and len(self.values) == self.n_runs > 0

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan


# ---------------------------------------------------------------------------------------------
# candidates


def _range(name: str, r: Sequence[float]) -> tuple[float, float]:
    try:
        lo, hi = (float(r[0]), float(r[1]))
        if len(r) != 2:
            raise TypeError
    except (TypeError, ValueError, IndexError):
        raise TuneError(f"{name} must be a pair (min, max), got {r!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise TuneError(f"{name} must satisfy 0 < min <= max (finite), got ({lo!r}, {hi!r})")
    return lo, hi


def _log_grid(lo: float, hi: float, n: int) -> list[float]:
    return [float(v) for v in np.logspace(math.log10(lo), math.log10(hi), n)] if n > 1 else [math.sqrt(lo * hi)]


def make_candidates(
    budget: int,
    lr_range: Sequence[float] = (1e-4, 1.0),
    search: str = "grid",
    wd_range: Sequence[float] | None = None,
    seed: int = SOBOL_SEED,
) -> list[Candidate]:
    """The settings every optimizer tries, sorted by (lr, weight_decay).

    grid: `budget` log-spaced lrs from min to max (both ends included); with weight decay a
    k × k log grid, k = floor(√budget), so at most `budget` settings. sobol: `budget` points of a
    scrambled Sobol sequence (scipy.stats.qmc, seeded) mapped to log10 of the range(s).
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise TuneError(f"budget must be an int >= 1, got {budget!r}")
    if search not in SEARCHES:
        raise TuneError(f"search must be one of {list(SEARCHES)}, got {search!r}")
    lo, hi = _range("lr_range", lr_range)
    bounds = [(lo, hi)] + ([_range("weight_decay range", wd_range)] if wd_range is not None else [])
    if search == "grid":
        if wd_range is None:
            out = [Candidate(lr) for lr in _log_grid(lo, hi, budget)]
        else:
            k = math.isqrt(budget)
            out = [Candidate(lr, wd) for lr in _log_grid(lo, hi, k) for wd in _log_grid(*bounds[1], k)]
    else:
        from scipy.stats import qmc

        kw = {"rng": seed} if "rng" in inspect.signature(qmc.Sobol).parameters else {"seed": seed}
        sampler = qmc.Sobol(d=len(bounds), scramble=True, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "balance properties ... power of 2"
            u = sampler.random(budget)
        logs = qmc.scale(u, [math.log10(a) for a, _ in bounds], [math.log10(b) + 1e-12 for _, b in bounds])
        pts = [[min(max(10.0**v, a), b) for v, (a, b) in zip(row, bounds)] for row in logs]
        out = [Candidate(p[0], p[1] if wd_range is not None else None) for p in pts]
    return sorted(out, key=lambda c: (c.lr, c.weight_decay or 0.0))


def _tags(candidates: Sequence[Candidate]) -> list[str]:
    """Short, distinct label suffixes: +lr<lr>[+wd<wd>] with as few significant digits as needed."""
    for digits in range(3, 18):
        tags = [
            f"+lr{c.lr:.{digits}g}" + (f"+wd{c.weight_decay:.{digits}g}" if c.weight_decay is not None else "")
            for c in candidates
        ]
        if len(set(tags)) == len(tags):
            return tags
    raise TuneError("candidate settings are not distinct")


# ---------------------------------------------------------------------------------------------
# selection (validation split only)


def score_candidates(
    results: Sequence[RunResult], run_labels: dict[str, tuple[str, Candidate]], n_seeds: int, metric: str = "accuracy"
) -> dict[str, list[CandidateScore]]:
    """Group search runs by run label; read History.final_val[metric] (never History.final)."""
    by_label: dict[str, list[RunResult]] = {rl: [] for rl in run_labels}
    for r in results:
        if r.label in by_label:
            by_label[r.label].append(r)
    out: dict[str, list[CandidateScore]] = {}
    for rl, (label, cand) in run_labels.items():
        runs = by_label[rl]
        done = [r for r in runs if r.done and r.history is not None]
        vals = [
            float(r.history.final_val.get(metric, math.nan)) if r.history is not None and not r.diverged else math.nan
            for r in done
        ]
        values = [v for v in vals if math.isfinite(v)]
        out.setdefault(label, []).append(
            CandidateScore(label, rl, cand, values, n_seeds, len(done) - len(values), max(0, n_seeds - len(done)))
        )
    return out


def select_best(scores: Sequence[CandidateScore], metric: str = "accuracy") -> CandidateScore | None:
    """The best mean validation metric among settings with no diverged or failed run; ties go to
    the smaller lr (then the smaller weight decay). None when no setting qualifies."""
    ok = [s for s in scores if s.ok]
    if not ok:
        return None
    sign = -1.0 if lower_is_better([metric]) else 1.0
    return min(ok, key=lambda s: (-sign * s.mean, s.candidate.lr, s.candidate.weight_decay or 0.0))


def fresh_validation(final_results: Sequence[RunResult], metric: str) -> dict[str, tuple[float, int]]:
    """label -> (mean validation metric over the finished, finite final runs, their count)."""
    out: dict[str, list[float]] = {}
    for r in final_results:
        if r.done and not r.diverged and r.history is not None:
            v = float(r.history.final_val.get(metric, math.nan))
            if math.isfinite(v):
                out.setdefault(r.label, []).append(v)
    return {lab: (float(np.mean(v)), len(v)) for lab, v in out.items()}


def grid_edge(lr: float, candidates: Sequence[Candidate]) -> str | None:
    """'largest' / 'smallest' when lr is the grid's top / bottom lr (the best may lie beyond), else None."""
    lrs = sorted({c.lr for c in candidates})
    if len(lrs) < 2:
        return None
    return "largest" if lr == lrs[-1] else "smallest" if lr == lrs[0] else None


def edge_note(best: dict[str, Candidate | None], candidates: Sequence[Candidate]) -> str | None:
    """One sentence naming the optimizers whose chosen lr is an end of the grid (None if none is)."""
    hits = [
        f"{label} ({grid_edge(c.lr, candidates)}, {c.lr:.3g})"
        for label, c in best.items()
        if c is not None and grid_edge(c.lr, candidates)
    ]
    if not hits:
        return None
    return (
        f"At the edge of the grid: {', '.join(hits)}. The best lr may lie beyond it, so this optimizer may be "
        "under-tuned; widen lr_range to be sure."
    )


@dataclass
class TuneResult:
    out_dir: Path
    page: Path  # out/tune.md
    plot: Path | None  # out/lr_sensitivity.png
    metric: str  # validation metric the choice maximizes (minimizes for loss)
    candidates: list[Candidate]  # the same for every optimizer
    scores: dict[str, list[CandidateScore]]  # label -> one per candidate, sorted by (lr, wd)
    best: dict[str, CandidateScore | None]  # label -> chosen setting (None: every setting diverged)
    final_config: ExperimentConfig | None  # chosen settings x final seeds
    final_results: list[RunResult] = field(default_factory=list)
    summary: Summary | None = None  # test metrics, paired vs the baseline
