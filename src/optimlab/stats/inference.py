"""Paired inference for optimizer comparisons: the one place a verdict is decided.

Measured by tests/test_inference_calibration.py, through these functions: the paired Student-t
95 % interval covers 0.95 (±0.01) at 5 and 10 seeds; a claim with no real difference "survives"
at most 2.5 % of the time at any seed count; one family's chance of any false decisive verdict
(direction, "smaller than claimed", "equivalent", failures counted) stays under 5 %; the
sequential looks keep the overall false "survives" under 2.5 %; the MDE reaches 80 % power with
at least 80 % probability.

Every comparison is paired by seed (same initial weights, same batch order), so each claim is a
sample of per-seed differences d_i = optimizer − baseline, oriented so that d > 0 is the claimed
direction. On those:

- failed runs (diverged or raised) are judged, not dropped: `failed_at_worst` counts a failed run
  at the worst value either arm reached on that claim's metric (a seed where both failed is a
  tie). Under no true difference the two arms are exchangeable, so the differences stay symmetric
  about 0; an optimizer that diverges loses those seeds and can be contradicted, and a failure
  never shrinks the seed count below MIN_SEEDS. The worst-value seeds make the differences spiky,
  where the t-test runs ~4 % over its level at 10 seeds (0.026 for 0.025), so a claim with a failed
  seed takes its direction p from the sign-flip permutation test (stats.permutation), exact for
  symmetric differences (0.024 there);
- interval: the paired Student-t 95 % interval  mean ± t_{0.975, n−1} · s/√n  (exact under normal
  differences; the percentile bootstrap undercovers at the seed counts users run: 0.75 at n = 3);
- tests, per claim, each with a valid p-value:
    direction     two-sided paired t-test of "difference = 0" (survives / contradicted); the
                  sign-flip permutation test for a claim with a failed seed
    smaller       one-sided t-test of "difference ≥ the paper's difference" (planned only where the
                  paper reports a gain and our runs are on its scale: see reproduce.judging)
    equivalence   two one-sided t-tests (TOST) of "|difference| ≥ m", p = the larger of the two, at
                  the claim's margin m (stats.margins: per-metric defaults, per claim, --margin)
- one α budget: all the tests planned for a family (one paper experiment, or one compare metric's
  optimizers against its baseline) go through one step-down procedure, `family_holm`: weighted Holm
  (Holm 1979, §4) in which each claim's direction test has weight 1 and its planned size tests
  (smaller, equivalence) share SIZE_WEIGHT = 1/2, and the weight "still in play" at each step is
  W = Σ over claims of max(the claim's remaining direction weight, its remaining size weight).
  Why this is ≤ ALPHA family-wise: a claim's "difference = 0" is false whenever "difference ≥ the
  paper's (> 0)" or "|difference| ≥ m (> 0)" is true, so the true nulls of a claim are either its
  direction test alone or some of its size tests, never both; the weight the true nulls hold, W0,
  is therefore ≤ W at every step before the first true null is rejected, and that first rejection
  needs p_j ≤ w_j·ALPHA/W ≤ w_j·ALPHA/W0 for a true j, which by the union bound has probability
  ≤ Σ_true w_j·ALPHA/W0 = ALPHA, for any dependence between the tests. The size weight is at most
  half the direction weight so that a claim with a true difference keeps room for the wrong-sign
  error of its two-sided test (≤ half its level): at the first step each claim's total chance of a
  false decision is ≤ its share of ALPHA; over the later steps directional errors are measured by
  simulation, as for Holm itself (Shaffer 1980, Ann. Statist. 8(6):1342-1347). With no size test
  planned this is plain Holm over the direction tests, and the direction tests never lose level to
  the size tests: their strictest step stays ALPHA/m. Which tests are planned depends only on the
  catalogue and the experiment's design, never on the data, so the family is fixed before looking;
- verdict (ALPHA = 0.05 family-wise; every adjusted p is compared with ALPHA):
    survives                          direction rejected, mean > 0
    survives, but smaller than claimed  the same, and "difference ≥ the paper's" rejected too
    contradicted                      direction rejected, mean < 0
    equivalent                        not the above, and "|difference| ≥ m" rejected (shown with ±m)
    smaller than claimed              none of the above, and "difference ≥ the paper's" rejected
    inconclusive                      otherwise; shown with the minimum detectable effect
    inconclusive: too few seeds       fewer than MIN_SEEDS paired seeds: never decisive
  A zero-variance sample (all differences equal, ties) has no t statistic: it is never decisive.
- minimum detectable effect (MDE): the true difference that the direction test at Holm's strictest
  step (one-sided ALPHA / (2m)) detects with 80 % power at this n
  (noncentral t). The spread used is `sd_upper`, the one-sided SD_CONFIDENCE upper confidence bound
  of the sd: with the sample sd itself the real power at the MDE is below 80 % more than half the
  time (the sample sd is below the true one more often than not). `seeds_needed` is the n at which
  the paper's difference reaches 80 % by the same test, never below MIN_SEEDS.
- distribution-free companion: stats.permutation.sign_flip_p, the sign-flip permutation test of the mean (exact
  whenever the differences are symmetric about 0, which exchangeable arms make them under no
  difference). Pages show it where it would change a verdict. Neither test can see a rare failure
  mode the sample does not contain: under skew the t-test's false verdicts point away from the
  long tail (the samples that miss the tail look tight and one-sided).
- sequential looks (`obf_spending`): a planned sequence of seed counts n_1 < ... < n_K, each look
  tested at its share alpha_k of ALPHA by the Lan-DeMets O'Brien-Fleming-type spending function
  alpha(t) = 2 − 2 Φ(z_{1−ALPHA/2} / √t), t = n_k / n_K. The shares add up to ALPHA, so by the
  union bound the chance of any false decision over all looks is at most ALPHA, exactly, with
  t-tests at every n (no normal approximation of the boundaries, which is what makes it valid at
  10-30 seeds). Reference: Lan & DeMets (1983), Biometrika 70(3):659-663; Holm (1979), Scand. J.
  Statist. 6(2):65-70; TOST: Schuirmann (1987), J. Pharmacokin. Biopharm. 15(6):657-680.

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
SD_CONFIDENCE = 0.8  # the MDE's spread is this one-sided upper confidence bound of the sd
SIZE_WEIGHT = 0.5  # a claim's size tests (smaller, equivalent) share this much of its weight 1 (see the module text)

SURVIVES = "survives"
CONTRADICTED = "contradicted"
SMALLER = "smaller than claimed"
INCONCLUSIVE = "inconclusive"
TOO_FEW = "inconclusive: too few seeds"
EQUIVALENT = "equivalent"
SURVIVES_SMALLER = "survives, but smaller than claimed"
# index = verdict code (new verdicts are appended so earlier codes keep their meaning)
VERDICTS = (SURVIVES, CONTRADICTED, SMALLER, INCONCLUSIVE, TOO_FEW, EQUIVALENT, SURVIVES_SMALLER)
DECISIVE = frozenset({SURVIVES, CONTRADICTED, SMALLER, EQUIVALENT, SURVIVES_SMALLER})


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
    m = np.shape(p)[-1]
    return family_holm(p, np.ones(m), np.arange(m), np.ones(m, dtype=bool))


def family_holm(p: np.ndarray, w: np.ndarray, claim: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Adjusted p-values (reject at family-wise level a where < a) of weighted Holm over the last axis,
    with each claim's direction test and its size tests counted as alternatives (see the module text).

    p (..., K); w (K,) >= 0, 0 = not in the family (adjusted p NaN); claim (K,): the claim index of each
    test; direction (K,) bool: the claim's "no difference" test (else a size test). A NaN p counts as 1
    and stays NaN. Step k compares p/w with a / W(remaining), W = sum over claims of max(remaining
    direction weight, remaining size-test weight): the most weight the true nulls can hold, since a
    claim's "difference = 0" and its size hypotheses are never true together. One direction test per
    claim gives plain weighted Holm."""
    p = np.asarray(p, dtype=float)
    k = p.shape[-1]
    if k == 0:
        return p.copy()
    w = np.asarray(w, dtype=float)
    counted = w > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(counted, np.where(np.isfinite(p), p, 1.0) / np.where(counted, w, 1.0), np.inf)
    order = np.argsort(q, axis=-1, kind="stable")
    q_sorted = np.take_along_axis(q, order, axis=-1)
    w_sorted, claim_sorted, dir_sorted = np.where(counted, w, 0.0)[order], np.asarray(claim)[order], direction[order]
    onehot = claim_sorted[..., None] == np.arange(int(np.max(claim)) + 1)  # (..., K, claims)
    left_dir = np.flip(np.cumsum(np.flip(onehot * (w_sorted * dir_sorted)[..., None], -2), axis=-2), -2)
    left_size = np.flip(np.cumsum(np.flip(onehot * (w_sorted * ~dir_sorted)[..., None], -2), axis=-2), -2)
    bound = np.maximum(left_dir, left_size).sum(axis=-1)  # the weight true nulls can hold at each step
    with np.errstate(invalid="ignore"):
        stepped = np.where(np.isfinite(q_sorted), q_sorted * bound, np.inf)
    adj_sorted = np.minimum(1.0, np.maximum.accumulate(stepped, axis=-1))
    adj = np.empty_like(adj_sorted)
    np.put_along_axis(adj, order, adj_sorted, axis=-1)
    return np.where(counted & np.isfinite(p), adj, np.nan)


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


def failed_at_worst(mine: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Oriented differences mine − base (..., n) where a NaN value is a failed run, counted at the worst
    (lowest oriented) value either arm reached over those seeds; a seed where both failed is a tie (0).
    Both arrays hold only seeds both arms attempted. NaN where neither arm has a finite value."""
    a, b = np.asarray(mine, dtype=float), np.asarray(base, dtype=float)
    both = np.concatenate([a, b], axis=-1)
    lowest = np.min(np.where(np.isfinite(both), both, np.inf), axis=-1, keepdims=True)
    worst = np.where(np.isfinite(lowest), lowest, np.nan)
    return np.where(np.isfinite(a), a, worst) - np.where(np.isfinite(b), b, worst)


class FamilyJudgement(NamedTuple):
    """judge_family's result; fields have shape (..., m) except `alpha`."""

    stats: TStats  # of the oriented differences (d > 0: the claimed direction)
    p_two_adj: np.ndarray  # direction p, weighted-Holm adjusted over every test of the family
    p_small: np.ndarray  # one-sided p of H0: difference >= paper's difference (NaN: not planned)
    p_small_adj: np.ndarray  # the same adjustment (NaN: not planned)
    p_equiv: np.ndarray  # TOST p of H0: |difference| >= margin (NaN: no margin)
    p_equiv_adj: np.ndarray
    code: np.ndarray  # int index into VERDICTS
    alpha: float  # the family-wise level these verdicts were decided at


def _claim_values(x: np.ndarray | float | None, m: int) -> np.ndarray:
    """A per-claim value (m,) from None, a scalar or a sequence; only positive finite values are kept."""
    v = np.full(m, np.nan) if x is None else np.broadcast_to(np.asarray(x, dtype=float), (m,)).copy()
    return np.where(v > 0, v, np.nan)


def _magnitude_p(s: TStats, delta: np.ndarray, margin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p of 'difference >= delta', TOST p of '|difference| >= margin'); NaN where not planned or no spread."""
    df = np.maximum(s.n - 1, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_small = stats.t.cdf((s.mean - delta) / s.se, df)
        p_equiv = np.maximum(stats.t.sf((s.mean + margin) / s.se, df), stats.t.cdf((s.mean - margin) / s.se, df))
    ok = np.isfinite(s.p_two)  # same "has a t statistic" rule as the direction test
    return np.where(ok, p_small, np.nan), np.where(ok, p_equiv, np.nan)


def judge_family(
    d: np.ndarray,
    paper_delta: np.ndarray | None = None,
    alpha: float = ALPHA,
    min_seeds: int = MIN_SEEDS,
    margin: np.ndarray | float | None = None,
    p_direction: np.ndarray | None = None,
) -> FamilyJudgement:
    """Verdicts for a family of claims from oriented paired differences d (..., m, n), NaN = missing.

    paper_delta (m,): the paper's own difference in the claimed direction (NaN/None: not reported,
    not a gain, or not on our scale, so no 'smaller than claimed' test). margin (m,) or scalar: the
    equivalence margin per claim (NaN/None: no equivalence test). alpha: family-wise level (a
    sequential look passes its share). p_direction (..., m): two-sided direction p-values from
    another test of the same differences (the sign-flip companion) in place of the t-test's."""
    d = np.asarray(d, dtype=float)
    if d.ndim < 2:
        raise ValueError(f"judge_family needs differences of shape (..., claims, seeds), got {d.shape}")
    m = d.shape[-2]
    s = paired_t(d)
    delta, margins = _claim_values(paper_delta, m), _claim_values(margin, m)
    p_small, p_equiv = _magnitude_p(s, delta, margins)
    p_small = np.where(np.isfinite(delta), np.where(np.isfinite(p_small), p_small, 1.0), np.nan)
    p_equiv = np.where(np.isfinite(margins), np.where(np.isfinite(p_equiv), p_equiv, 1.0), np.nan)
    small, equiv = np.isfinite(delta), np.isfinite(margins)
    size_weight = SIZE_WEIGHT / np.maximum(small.astype(int) + equiv, 1)  # a claim's size tests share SIZE_WEIGHT
    weights = np.concatenate([np.ones(m), np.where(small, size_weight, 0.0), np.where(equiv, size_weight, 0.0)])
    claim = np.tile(np.arange(m), 3)
    p_dir = s.p_two if p_direction is None else np.asarray(p_direction, dtype=float)
    adj = family_holm(np.concatenate([p_dir, p_small, p_equiv], axis=-1), weights, claim, np.arange(3 * m) < m)
    p_two_adj, p_small_adj, p_equiv_adj = adj[..., :m], adj[..., m : 2 * m], adj[..., 2 * m :]
    enough = s.n >= min_seeds
    decided = enough & (p_two_adj < alpha)
    smaller = enough & (p_small_adj < alpha)
    code = np.full(s.mean.shape, VERDICTS.index(INCONCLUSIVE), dtype=int)
    code = np.where(smaller, VERDICTS.index(SMALLER), code)
    code = np.where(enough & (p_equiv_adj < alpha), VERDICTS.index(EQUIVALENT), code)
    code = np.where(decided & (s.mean < 0), VERDICTS.index(CONTRADICTED), code)
    code = np.where(decided & (s.mean > 0), VERDICTS.index(SURVIVES), code)
    code = np.where(decided & (s.mean > 0) & smaller, VERDICTS.index(SURVIVES_SMALLER), code)
    code = np.where(enough, code, VERDICTS.index(TOO_FEW))
    return FamilyJudgement(s, p_two_adj, p_small, p_small_adj, p_equiv, p_equiv_adj, code, alpha)


# ----------------------------------------------------------------------------------------------
# what a null result could have detected


def sd_upper(sd: float, n: int, confidence: float = SD_CONFIDENCE) -> float:
    """One-sided `confidence` upper bound of the true sd from a normal sample's sd over n values."""
    if not (n >= 2 and math.isfinite(sd)):
        return math.nan
    return float(sd * math.sqrt((n - 1) / stats.chi2.ppf(1 - confidence, n - 1)))


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
    delta: float,
    sd: float,
    m: int = 1,
    alpha: float = ALPHA,
    power: float = POWER,
    max_n: int = 100_000,
    min_n: int = MIN_SEEDS,
) -> int | None:
    """The fewest paired seeds (never below min_n, the seeds a verdict needs) at which a true difference
    delta (> 0) is detected with `power` by the same test as `mde`; None when delta or sd is unusable
    or more than max_n would be needed."""
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
    return max(lo, min_n)


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
