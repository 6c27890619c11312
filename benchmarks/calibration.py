"""Measured error rates of optimlab's verdict rule, printed as the Markdown table README quotes.

    python benchmarks/calibration.py            # ~1 min on 2 cores; seeded, so the table is reproducible

Simulates per-seed paired differences with no true difference and drives
optimlab.stats.inference.judge_family (the function every verdict calls) for several shapes
of the difference distribution, next to the rule optimlab used before (percentile bootstrap CI
excludes 0, no seed minimum, no multiplicity correction). tests/test_inference_calibration.py
asserts the normal-case figures; this script also shows where the t-test is not exact (skew).
"""

from __future__ import annotations

import numpy as np

from optimlab.stats import inference as inf

SIMS = 20_000
SHAPES = {
    "normal": lambda rng, s: rng.standard_normal(s),
    "heavy tails (t, 3 df)": lambda rng, s: rng.standard_t(3, s),
    "skewed (centred exponential, skewness 2)": lambda rng, s: 1.0 - rng.exponential(1.0, s),
    "rare bad seed (1 in 10 falls 10 sd)": lambda rng, s: (
        np.where(rng.random(s) < 0.1, -4.5, 0.5) + 0.5 * rng.standard_normal(s)
    ),
}


def old_rule(d: np.ndarray, rng: np.random.Generator, resamples: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(covers 0, survives) of the percentile bootstrap 95% CI, vectorised over all but the last axis."""
    n = d.shape[-1]
    means = d[..., rng.integers(0, n, size=(resamples, n))].mean(axis=-1)
    low, high = np.quantile(means, [0.025, 0.975], axis=-1)
    return (low < 0) & (high > 0), low > 0


def main() -> None:
    rng = np.random.default_rng(2026)
    print(
        "| differences | seeds | t-interval coverage | P(survives), rule at this n | old rule: coverage | old rule: P(survives) |"
    )
    print("|---|---|---|---|---|---|")
    for name, draw in SHAPES.items():
        for n in (3, 5, 10, 20):
            d = draw(rng, (SIMS, 1, n))
            s = inf.paired_t(d)
            cov = np.mean((s.low < 0) & (s.high > 0))
            surv = np.mean(inf.judge_family(d, min_seeds=2).code == 0)
            ocov, osurv = old_rule(d[:4000, 0], rng)
            print(f"| {name} | {n} | {cov:.3f} | {surv:.3f} | {ocov.mean():.3f} | {osurv.mean():.3f} |")
    print()
    d = rng.standard_normal((100_000, 8, 10))
    code = inf.judge_family(d).code
    any_false = np.mean(np.isin(code, [0, 1, 2]).any(axis=-1))
    ocov, osurv = old_rule(d[:2000], rng)
    _, ocontra = old_rule(-d[:2000], rng)
    print(
        f"8 null claims, 10 seeds: P(any false decisive verdict) with Holm {any_false:.3f}; "
        f"old rule {np.mean((osurv | ocontra).any(axis=-1)):.3f}"
    )
    looks = inf.plan_looks(10, 30, 5)
    shares = inf.obf_spending(looks)
    d = rng.standard_normal((SIMS, 1, looks[-1]))
    seq = np.zeros(SIMS, bool)
    naive = np.zeros(SIMS, bool)
    decided = np.zeros(SIMS, bool)
    for n, a in zip(looks, shares):
        c = inf.judge_family(d[..., :n], alpha=a).code[:, 0]
        seq |= ~decided & (c == 0)
        decided |= np.isin(c, [0, 1, 2])
        naive |= inf.judge_family(d[..., :n]).code[:, 0] == 0
    print(
        f"looks at {looks} seeds, no true difference: P(false survives) sequential {seq.mean():.4f}; "
        f"fixed-n test at every look {naive.mean():.4f}"
    )
    print(
        "MDE at 80% power in sd units (one claim / 8 claims):",
        ", ".join(f"n={n}: {inf.mde(1.0, n, 1):.2f} / {inf.mde(1.0, n, 8):.2f}" for n in (5, 10, 20, 30)),
    )


if __name__ == "__main__":
    main()
