"""The sign-flip permutation test of a paired mean: the verdict's distribution-free companion.

    sign_flip_p(d)                 # two-sided p over the last axis, exact enumeration up to 12 seeds
    direction_p(d, failed)         # per claim: the sign-flip p where failed, the paired t-test's elsewhere

Under no true difference two exchangeable arms make the per-seed differences symmetric about 0, and
flipping the signs of a symmetric sample leaves its distribution unchanged, so the test is exact at
any seed count (its smallest p at n seeds is 2/2^n). optimlab.stats.inference.judge_family takes
these p-values in place of the t-test's (p_direction) inside the same Holm budget: for a claim with
a failed run counted at the worst value (spiky differences, where the t-test runs over its level),
and, on verdict pages, to name where the two tests would disagree.
"""

from __future__ import annotations

import numpy as np

from optimlab.stats.inference import paired_t

__all__ = ["sign_flip_p", "direction_p"]


def sign_flip_p(d: np.ndarray, exact_up_to: int = 12, resamples: int = 4095, seed: int = 0) -> np.ndarray:
    """Two-sided sign-flip permutation p of "mean = 0" over the last axis (..., n), no NaN: every one
    of the 2^n sign patterns up to exact_up_to seeds, else `resamples` random ones (fixed seed, with
    the observed pattern counted). Exact whenever the differences are symmetric about 0."""
    x = np.asarray(d, dtype=float)
    n = x.shape[-1]
    if n <= exact_up_to:
        signs = 1.0 - 2.0 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
    else:
        signs = np.vstack([np.ones(n), np.random.default_rng(seed).choice([-1.0, 1.0], size=(resamples, n))])
    observed = np.abs(x.sum(axis=-1, keepdims=True))
    tol = 1e-9 * np.maximum(1.0, np.abs(x).sum(axis=-1, keepdims=True))  # ties in floating point count as equal
    p: np.ndarray = np.mean(np.abs(x @ signs.T) >= observed - tol, axis=-1)
    return p


def direction_p(d: np.ndarray, sign_flip: np.ndarray) -> np.ndarray:
    """Two-sided direction p per claim of d (..., m, n): the sign-flip permutation p where sign_flip
    (..., m) is True (a claim with a failed seed: see the module text), the paired t-test's elsewhere.
    NaN where a claim has no spread (ties), as for the t-test."""
    x = np.asarray(d, dtype=float)
    p = paired_t(x).p_two.copy()
    use = np.broadcast_to(np.asarray(sign_flip, dtype=bool), p.shape) & np.isfinite(p)
    if not use.any():
        return p
    if np.isfinite(x).all():
        return np.where(use, sign_flip_p(x), p)
    for idx in zip(*np.nonzero(use)):  # unequal seed counts: one claim at a time
        row = x[idx]
        p[idx] = float(sign_flip_p(row[np.isfinite(row)]))
    return p
