"""Paired inference for optimizer comparisons: the one place a verdict is decided.

Measured by tests/test_inference_calibration.py, through these functions: the paired Student-t
95 % interval covers 0.95 (±0.01) at 5 and 10 seeds; a claim with no real difference "survives"
at most 2.5 % of the time at any seed count; Holm keeps the chance of any false verdict in an
8-claim experiment under 5 %; the sequential looks keep the overall false "survives" under 2.5 %.

Every comparison is paired by seed (same initial weights, same batch order), so each claim is a
sample of per-seed differences d_i = optimizer − baseline, oriented so that d > 0 is the claimed
direction. On those:

- interval: the paired Student-t interval  mean ± t_{0.975, n−1} · s/√n  (exact under normal
  differences; the percentile bootstrap undercovers at the seed counts users run: 0.75 at n = 3);
- tests: the one-sided paired t-tests in either direction; two-sided p = 2 · min of the two;
- many claims: Holm's step-down adjustment of the two-sided p over the claims of one family (one
  paper experiment, or one compare's optimizers against its baseline);
- verdict (ALPHA = 0.05 family-wise, so 0.025 per direction):
    survives               Holm-adjusted one-sided p < 0.025 in the claimed direction
    contradicted           the same in the other direction
    smaller than claimed   not the above, and a one-sided test rejects "difference >= the paper's
                           difference" (Holm over the family's claims that have a paper figure)
    inconclusive           otherwise; shown with the minimum detectable effect at 80 % power
    inconclusive: too few seeds   fewer than MIN_SEEDS paired seeds: never decisive
  A zero-variance sample (all differences equal, ties) has no t statistic: it is never decisive.
- minimum detectable effect (MDE): the true difference that the test at Holm's strictest step
  (one-sided ALPHA / (2m)) detects with 80 % power at this n, taking the sample spread as the
  true one (noncentral t); `seeds_needed` is the n at which the paper's difference reaches 80 %.
- sequential looks (`obf_spending`): a planned sequence of seed counts n_1 < ... < n_K, each look
  tested at its share alpha_k of ALPHA by the Lan-DeMets O'Brien-Fleming-type spending function
  alpha(t) = 2 − 2 Φ(z_{1−ALPHA/2} / √t), t = n_k / n_K. The shares add up to ALPHA, so by the
  union bound the chance of any false decision over all looks is at most ALPHA, exactly, with
  t-tests at every n (no normal approximation of the boundaries, which is what makes it valid at
  10-30 seeds). Reference: Lan & DeMets (1983), Biometrika 70(3):659-663; Holm (1979), Scand. J.
  Statist. 6(2):65-70.

Arrays: a family is d of shape (..., m, n) with NaN for missing seeds (so claims with different
seed counts share one array); leading axes are independent replicates (the simulations use them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

ALPHA = 0.05  # family-wise error rate, two-sided: 0.025 in each direction
CONFIDENCE = 0.95  # of the per-claim intervals shown (unadjusted)
MIN_SEEDS = 10  # paired seeds below which no verdict is decisive (power at 5 seeds is ~0.4 at the papers' effects)
POWER = 0.8  # for the minimum detectable effect and the seeds needed

SURVIVES = "survives"
CONTRADICTED = "contradicted"
SMALLER = "smaller than claimed"
INCONCLUSIVE = "inconclusive"
TOO_FEW = "inconclusive: too few seeds"
VERDICTS = (SURVIVES, CONTRADICTED, SMALLER, INCONCLUSIVE, TOO_FEW)  # index = verdict code
DECISIVE = frozenset({SURVIVES, CONTRADICTED, SMALLER})


class TStats(NamedTuple):
    """Paired t statistics over the last axis (NaN = missing seed); every field has d.shape[:-1]."""

    n: np.ndarray  # paired seeds
    mean: np.ndarray
    sd: np.ndarray  # sample sd (ddof 1); NaN when n < 2
    se: np.ndarray
    low: np.ndarray  # two-sided CONFIDENCE t-interval of the mean; NaN when n < 2 or sd == 0
    high: np.ndarray
    p_greater: np.ndarray  # one-sided p of H0: mean <= 0 ; NaN when undefined (n < 2 or sd == 0)
    p_less: np.ndarray  # one-sided p of H0: mean >= 0
    p_two: np.ndarray  # 2 * min(p_greater, p_less), capped at 1


def paired_t(d: np.ndarray, confidence: float = CONFIDENCE) -> TStats:
    """Paired t-test and interval of the mean of d along its last axis, ignoring NaNs."""
    d = np.asarray(d, dtype=float)
    ok = np.isfinite(d)
    n = ok.sum(axis=-1)
    safe_n = np.maximum(n, 1)
    mean = np.where(n > 0, np.where(ok, d, 0.0).sum(axis=-1) / safe_n, np.nan)
    dev = np.where(ok, d - mean[..., None], 0.0)
    df = n - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.where(n > 1, np.sqrt((dev**2).sum(axis=-1) / np.maximum(df, 1)), np.nan)
        se = sd / np.sqrt(safe_n)
        # A spread that is zero up to rounding (ties) gives no t statistic.
        spread = sd > 1e-12 * np.maximum(1.0, np.abs(mean))
        t = np.where(spread, mean / np.where(spread, se, 1.0), np.nan)
        dfs = np.maximum(df, 1)
        p_greater = np.where(spread, stats.t.sf(t, dfs), np.nan)
        p_less = np.where(spread, stats.t.cdf(t, dfs), np.nan)
        half = stats.t.ppf(0.5 + confidence / 2, dfs) * se
    low = np.where(spread, mean - half, np.nan)
    high = np.where(spread, mean + half, np.nan)
    p_two = np.minimum(1.0, 2.0 * np.minimum(p_greater, p_less))
    return TStats(n, mean, sd, se, low, high, p_greater, p_less, p_two)


def is_tied(d: npt.ArrayLike) -> bool:
    """True when a 1-D sample of >= 2 differences has no spread up to rounding (the same test paired_t uses)."""
    x = np.asarray(d, dtype=float)
    x = x[np.isfinite(x)]
    return x.size >= 2 and not float(x.std(ddof=1)) > 1e-12 * max(1.0, abs(float(x.mean())))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values over the last axis. A NaN p counts in the family (as 1) and stays NaN."""
    p = np.asarray(p, dtype=float)
    m = p.shape[-1]
    if m == 0:
        return p.copy()
    filled = np.where(np.isfinite(p), p, 1.0)
    order = np.argsort(filled, axis=-1, kind="stable")
    ranked = np.take_along_axis(filled, order, axis=-1)
    factors = m - np.arange(m)  # m, m-1, ..., 1
    adj_sorted = np.minimum(1.0, np.maximum.accumulate(ranked * factors, axis=-1))
    adj = np.empty_like(adj_sorted)
    np.put_along_axis(adj, order, adj_sorted, axis=-1)
    return np.where(np.isfinite(p), adj, np.nan)


def benjamini_hochberg_count(p: np.ndarray, q: float = ALPHA) -> int:
    """How many of the p-values Benjamini-Hochberg rejects at false discovery rate q (NaN: never)."""
    finite = np.sort(np.asarray(p, dtype=float).ravel())
    m = finite.size
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0
    below = np.nonzero(finite <= q * np.arange(1, finite.size + 1) / m)[0]
    return int(below[-1] + 1) if below.size else 0


def family_array(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """Claims' difference lists of unequal length as one (m, n_max) array, NaN-padded: judge_family's input."""
    width = max(1, max((len(r) for r in rows), default=0))
    d = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        d[i, : len(r)] = r
    return d


class FamilyJudgement(NamedTuple):
    """judge_family's result; fields have shape (..., m) except `alpha`."""

    stats: TStats  # of the oriented differences (d > 0: the claimed direction)
    p_two_adj: np.ndarray  # Holm over the family
    p_small: np.ndarray  # one-sided p of H0: difference >= paper's difference (NaN: no paper figure)
    p_small_adj: np.ndarray  # Holm over the claims that have one
    code: np.ndarray  # int index into VERDICTS
    alpha: float  # the family-wise level these verdicts were decided at


def judge_family(
    d: np.ndarray, paper_delta: np.ndarray | None = None, alpha: float = ALPHA, min_seeds: int = MIN_SEEDS
) -> FamilyJudgement:
    """Verdicts for a family of claims from oriented paired differences d (..., m, n), NaN = missing.

    paper_delta (m,): the paper's own difference in the claimed direction (NaN/None: not reported,
    or not a gain, so no 'smaller than claimed' test). alpha: family-wise two-sided level (a
    sequential look passes its share)."""
    d = np.asarray(d, dtype=float)
    if d.ndim < 2:
        raise ValueError(f"judge_family needs differences of shape (..., claims, seeds), got {d.shape}")
    m = d.shape[-2]
    s = paired_t(d)
    p_adj = holm(s.p_two)
    if paper_delta is None:
        delta = np.full(m, np.nan)
    else:
        delta = np.asarray(paper_delta, dtype=float).reshape(m)
    delta = np.where(delta > 0, delta, np.nan)  # 'smaller than' a non-gain means nothing
    with np.errstate(invalid="ignore", divide="ignore"):
        t_small = (s.mean - delta) / s.se
        p_small = np.where(np.isfinite(t_small), stats.t.cdf(t_small, np.maximum(s.n - 1, 1)), np.nan)
    p_small_adj = holm(p_small)
    enough = s.n >= min_seeds
    decided = enough & (p_adj < alpha)
    code = np.full(s.mean.shape, VERDICTS.index(INCONCLUSIVE), dtype=int)
    code = np.where(enough & (p_small_adj < alpha / 2), VERDICTS.index(SMALLER), code)
    code = np.where(decided & (s.mean < 0), VERDICTS.index(CONTRADICTED), code)
    code = np.where(decided & (s.mean > 0), VERDICTS.index(SURVIVES), code)
    code = np.where(enough, code, VERDICTS.index(TOO_FEW))
    return FamilyJudgement(s, p_adj, p_small, p_small_adj, code, alpha)


# ----------------------------------------------------------------------------------------------
# what a null result could have detected


def _power(delta: float, sd: float, n: int, alpha_one: float) -> float:
    """P(one-sided paired t at level alpha_one rejects) when the true mean difference is delta."""
    df = n - 1
    crit = stats.t.isf(alpha_one, df)
    return float(stats.nct.sf(crit, df, delta * math.sqrt(n) / sd))


def mde(sd: float, n: int, m: int = 1, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true difference detected with `power` by the one-sided test at Holm's strictest
    step (alpha / (2m)) with n seeds, taking sd as the true spread. NaN when undefined."""
    if not (n >= 2 and math.isfinite(sd) and sd > 0):
        return math.nan
    alpha_one = alpha / (2 * max(m, 1))
    df = n - 1
    crit = stats.t.isf(alpha_one, df)
    ncp = optimize.brentq(lambda c: stats.nct.sf(crit, df, c) - power, 0.0, crit + 20.0)
    return float(ncp * sd / math.sqrt(n))


def seeds_needed(
    delta: float, sd: float, m: int = 1, alpha: float = ALPHA, power: float = POWER, max_n: int = 100_000
) -> int | None:
    """The fewest paired seeds at which a true difference delta (> 0) is detected with `power` by
    the same test as `mde`; None when delta or sd is unusable or more than max_n would be needed."""
    if not (math.isfinite(delta) and delta > 0 and math.isfinite(sd) and sd > 0):
        return None
    alpha_one = alpha / (2 * max(m, 1))
    if _power(delta, sd, max_n, alpha_one) < power:
        return None
    lo, hi = 2, max_n  # power rises with n: bisect for the first n that reaches it
    while lo < hi:
        mid = (lo + hi) // 2
        if _power(delta, sd, mid, alpha_one) >= power:
            hi = mid
        else:
            lo = mid + 1
    return lo


# ----------------------------------------------------------------------------------------------
# planned looks


def plan_looks(min_seeds: int, max_seeds: int, step: int) -> list[int]:
    """The seed counts at which a sequential run looks: min, min+step, ..., max (max always last)."""
    if not (isinstance(min_seeds, int) and isinstance(max_seeds, int) and isinstance(step, int)):
        raise ValueError("min_seeds, max_seeds and step must be ints")
    if min_seeds < 2:
        raise ValueError(f"min_seeds must be >= 2 (a t-test needs two seeds), got {min_seeds}")
    if max_seeds < min_seeds:
        raise ValueError(f"max_seeds ({max_seeds}) must be >= min_seeds ({min_seeds})")
    if step < 1:
        raise ValueError(f"the look step must be >= 1 seed, got {step}")
    looks = list(range(min_seeds, max_seeds, step))
    return [*looks, max_seeds]


def obf_spending(looks: list[int], alpha: float = ALPHA) -> list[float]:
    """Each look's share of alpha (two-sided) under the O'Brien-Fleming-type spending function
    alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)), t = n_k / n_K. The shares sum to alpha."""
    if not looks or any(b <= a for a, b in zip(looks, looks[1:])):
        raise ValueError(f"looks must be increasing seed counts, got {looks}")
    z = stats.norm.isf(alpha / 2)
    spent = [2.0 - 2.0 * float(stats.norm.cdf(z / math.sqrt(n / looks[-1]))) for n in looks]
    spent[-1] = alpha  # alpha(1) = alpha exactly (no rounding)
    return [b - a for a, b in zip([0.0, *spent[:-1]], spent)]
