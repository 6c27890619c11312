"""Measured error rates of optimlab's verdict rule, printed as the Markdown tables README quotes.

    python benchmarks/calibration.py            # ~1 min on 2 cores; seeded, so the tables are reproducible

Simulates per-seed paired differences and drives optimlab.stats.inference.judge_family (the
function every verdict calls). The first table covers several shapes of the difference
distribution with no true difference, next to the rule optimlab used before (percentile bootstrap
CI excludes 0, no seed minimum, no multiplicity correction), the sign-flip companion, which way the
t-test's false verdicts point, and how many of them the skewness note flags. The second gives each
verdict's promise, its measured rate with the Monte-Carlo standard error, and the rule before issue
23 where it differed; two rows drive compare itself (optimlab.stats.summary.summarize) on runs with
failures. tests/test_inference_calibration.py asserts the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
from scipy import stats

from optimlab.stats import inference as inf
from optimlab.stats import permutation
from optimlab.stats.summary import DECISIONS, summarize

SIMS = 20_000
COMPARE_SIMS = 4000  # through summarize, one family at a time (~20 s)
FAMILY_SIMS = 100_000  # for the family-wise rows, whose promise is met with little room (s.e. 0.0007)
V = inf.VERDICTS
SURVIVES = (V.index(inf.SURVIVES), V.index(inf.SURVIVES_SMALLER))
SHAPES: dict[str, Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]] = {
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


def rate(x: np.ndarray) -> str:
    """A measured rate with its Monte-Carlo standard error."""
    p = float(np.mean(x))
    return f"{p:.4f} ± {math.sqrt(max(p * (1 - p), 1e-12) / x.size):.4f}"


def shapes_table(rng: np.random.Generator) -> None:
    print(
        "| differences | seeds | t-interval coverage | P(false survives), rule at this n | P(false contradicted) "
        "| sign-flip: P(false survives) | skew note on the false verdicts | old rule: coverage | old rule: P(survives) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, draw in SHAPES.items():
        for n in (3, 5, 10, 20):
            d = draw(rng, (SIMS, 1, n))
            s = inf.paired_t(d)
            cov = np.mean((s.low < 0) & (s.high > 0))
            code = inf.judge_family(d, min_seeds=2).code[:, 0]
            false = code != V.index(inf.INCONCLUSIVE)
            flip = inf.judge_family(d, min_seeds=2, p_direction=permutation.sign_flip_p(d)).code[:, 0]
            skew = np.abs(stats.skew(d[:, 0], axis=-1, bias=False)) > 1.0
            flagged = f"{np.mean(skew[false]):.2f}" if n >= inf.MIN_SEEDS and false.any() else "—"
            ocov, osurv = old_rule(d[:4000, 0], rng)
            print(
                f"| {name} | {n} | {cov:.3f} | {np.mean(np.isin(code, SURVIVES)):.3f} | "
                f"{np.mean(code == V.index(inf.CONTRADICTED)):.3f} | {np.mean(np.isin(flip, SURVIVES)):.3f} | "
                f"{flagged} | {ocov.mean():.3f} | {osurv.mean():.3f} |"
            )


def issue_family(rng: np.random.Generator, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Issue 23's family, 20 seeds: 2 claims with no difference, 6 whose truth is the paper's 1.5 sd.
    (any false decision now, any false decision under the rule before: a second Holm for 'smaller')."""
    truth = np.array([0.0, 0.0] + [1.5] * 6)
    delta = np.where(truth > 0, truth, np.nan)
    d = truth[:, None] + rng.standard_normal((FAMILY_SIMS, 8, 20))
    j = inf.judge_family(d, delta, margin=margin)
    wrong = (j.p_two_adj < inf.ALPHA) & ((truth == 0) | (np.sign(j.stats.mean) != np.sign(truth)))
    false = wrong | ((j.p_small_adj < inf.ALPHA) & (truth >= np.nan_to_num(delta, nan=np.inf)))
    false |= (j.p_equiv_adj < inf.ALPHA) & (np.abs(truth) >= margin)
    s = j.stats
    small_before = inf.holm(np.where(np.isfinite(delta), stats.t.cdf((s.mean - delta) / s.se, 19), np.nan))
    before = ((inf.holm(s.p_two) < inf.ALPHA) & (truth == 0)) | ((small_before < inf.ALPHA / 2) & (truth > 0))
    return false.any(axis=-1), before.any(axis=-1)


def failures(
    rng: np.random.Generator, n: int, fail_mine: float, fail_base: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes for equal arms apart from failures: judged (worst value, sign-flip deciding claims with a
    failure), the same with the t-test deciding, and with failed seeds left out (the rule before)."""
    mine, base = rng.standard_normal((SIMS, 1, n)), rng.standard_normal((SIMS, 1, n))
    mine[rng.random(mine.shape) < fail_mine] = np.nan
    base[rng.random(base.shape) < fail_base] = np.nan
    d = inf.failed_at_worst(mine, base)
    failed = ~(np.isfinite(mine) & np.isfinite(base)).all(axis=-1)
    judged = inf.judge_family(d, p_direction=permutation.direction_p(d, failed)).code[:, 0]
    return judged, inf.judge_family(d).code[:, 0], inf.judge_family(mine - base).code[:, 0]


def compare_failures(
    rng: np.random.Generator, n: int, fail_mine: float, fail_base: float, sims: int = COMPARE_SIMS
) -> tuple[np.ndarray, np.ndarray]:
    """compare's decisions (optimlab.stats.summary.summarize, as `compare`, tune and `judge` call it) for
    equal arms apart from failures, and those compare made before (failed seeds left out): each
    replicate is its own data set; a failed run raised (no history) or diverged, half and half."""
    values = rng.standard_normal((2, sims, n))
    failed = rng.random((2, sims, n)) < np.array([fail_base, fail_mine])[:, None, None]
    raised = failed & (rng.random((2, sims, n)) < 0.5)
    runs = [
        SimpleNamespace(
            label=("base", "opt")[arm],
            optimizer="sgd",
            dataset=f"r{i}",
            model="m",
            seed=seed,
            done=not raised[arm, i, seed],
            diverged=bool(failed[arm, i, seed] and not raised[arm, i, seed]),
            history=None if raised[arm, i, seed] else SimpleNamespace(final={"accuracy": v}, step_time_s=0.0),
        )
        for (arm, i, seed), v in np.ndenumerate(values)
    ]
    decision = np.array([p.decision for p in summarize(runs, "base", metrics=("accuracy",)).paired])
    d = np.where(failed.any(axis=0), np.nan, values[1] - values[0])[:, None, :]
    before = np.array([DECISIONS[V[c]] for c in inf.judge_family(d).code[:, 0]])
    return decision, before


def compare_rows(rng: np.random.Generator) -> None:
    decision, before = compare_failures(rng, 10, 0.2, 0.2)
    print(
        "| compare's *better* / *worse* (through summarize), both arms fail 20 % of seeds (half raised, half "
        f"diverged), no other difference, 10 seeds | ≤ 0.025 each | {rate(decision == 'better')} / "
        f"{rate(decision == 'worse')} | {rate(before == 'too few seeds')} *too few seeds* |"
    )
    decision, before = compare_failures(rng, 20, 0.5, 0.0, sims=1000)
    print(
        "| power: compare's *worse*, the optimizer fails half its seeds, otherwise equal, 20 seeds | — | "
        f"{rate(decision == 'worse')} | {rate(before == 'worse')} |"
    )


def mde_power(rng: np.random.Generator, n: int = 10, m: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Whether the real power at the MDE reaches 80 %: with the sd's upper bound, and with the sample sd."""
    sd = inf.paired_t(rng.standard_normal((4000, 1, n))).sd[:, 0]
    one = inf.mde(1.0, n, m)  # the MDE is linear in the sd
    crit = stats.t.isf(inf.ALPHA / (2 * m), n - 1)
    upper = np.array([inf.sd_upper(float(s), n) for s in sd])
    return (
        stats.nct.sf(crit, n - 1, upper * one * math.sqrt(n)) >= inf.POWER,
        stats.nct.sf(crit, n - 1, sd * one * math.sqrt(n)) >= inf.POWER,
    )


def promises_table(rng: np.random.Generator) -> None:
    print("| verdict, scenario | promise | measured (± Monte-Carlo s.e.) | before issue 23 |")
    print("|---|---|---|---|")
    code = inf.judge_family(rng.standard_normal((SIMS, 1, 10))).code[:, 0]
    print(f"| *survives*, no true difference, 10 seeds | ≤ 0.025 | {rate(np.isin(code, SURVIVES))} | same |")
    print(f"| *contradicted*, the same | ≤ 0.025 | {rate(code == V.index(inf.CONTRADICTED))} | same |")
    code = inf.judge_family(rng.standard_normal((FAMILY_SIMS, 8, 10))).code
    print(f"| any false decisive verdict, 8 null claims, 10 seeds | ≤ 0.05 | {rate((code != 3).any(-1))} | same |")
    now, before = issue_family(rng, math.nan)
    print(
        "| any false decisive verdict (direction or *smaller than claimed*), 20 seeds, 2 null claims + 6 at the "
        f"paper's figure | ≤ 0.05 | {rate(now)} | {rate(before)} (second Holm at α/2) |"
    )
    now, _ = issue_family(rng, 0.25)
    print(f"| the same with *equivalent* at margin 0.25 sd on every claim | ≤ 0.05 | {rate(now)} | no such verdict |")
    d = 0.5 + rng.standard_normal((SIMS, 1, 10))
    code = inf.judge_family(d, paper_delta=np.array([0.5])).code[:, 0]
    print(
        "| *smaller than claimed*, truth = the paper's figure, 10 seeds, 1 claim | ≤ 0.05 | "
        f"{rate(code == V.index(inf.SMALLER))} | ≤ 0.025 |"
    )
    for truth in (0.5, -0.5):
        code = inf.judge_family(truth + rng.standard_normal((SIMS, 1, 20)), margin=0.5).code[:, 0]
        print(
            f"| *equivalent (within ±0.5 sd)*, truth {truth:+} sd (at the margin), 20 seeds | ≤ 0.05 | "
            f"{rate(code == V.index(inf.EQUIVALENT))} | no such verdict |"
        )
    code = inf.judge_family(rng.standard_normal((SIMS, 1, 20)), margin=1.0).code[:, 0]
    print(
        f"| power: *equivalent (within ±1 sd)*, truth 0, 20 seeds | — | {rate(code == V.index(inf.EQUIVALENT))} | 0 |"
    )
    judged, t_only, dropped = failures(rng, 10, 0.2, 0.2)
    print(
        "| *survives* / *contradicted*, both arms fail 20 % of seeds, no other difference, 10 seeds | ≤ 0.025 each | "
        f"{rate(np.isin(judged, SURVIVES))} / {rate(judged == V.index(inf.CONTRADICTED))} (t-test deciding instead: "
        f"{rate(np.isin(t_only, SURVIVES))} / {rate(t_only == V.index(inf.CONTRADICTED))}) | "
        f"{rate(dropped == V.index(inf.TOO_FEW))} *too few seeds* |"
    )
    for n in (10, 20):
        judged, _, dropped = failures(rng, n, 0.5, 0.0)
        print(
            f"| power: *contradicted*, the optimizer fails half its seeds, otherwise equal, {n} seeds | — | "
            f"{rate(judged == V.index(inf.CONTRADICTED))} | {rate(dropped == V.index(inf.CONTRADICTED))} |"
        )
    compare_rows(np.random.default_rng(2306))  # its own stream: the rows below stay as they were
    upper, naive = mde_power(rng)
    print(
        f"| real power at the MDE ≥ 80 %, 10 seeds, 4 claims | ≥ {inf.SD_CONFIDENCE:.2f} of samples | {rate(upper)} | "
        f"{rate(naive)} (sample sd) |"
    )
    looks = inf.plan_looks(10, 30, 5)
    d = rng.standard_normal((SIMS, 1, looks[-1]))
    seq, naive_looks, decided = np.zeros(SIMS, bool), np.zeros(SIMS, bool), np.zeros(SIMS, bool)
    for n, a in zip(looks, inf.obf_spending(looks)):
        c = inf.judge_family(d[..., :n], alpha=a).code[:, 0]
        seq |= ~decided & np.isin(c, SURVIVES)
        decided |= np.isin(c, [V.index(v) for v in inf.DECISIVE])
        naive_looks |= np.isin(inf.judge_family(d[..., :n]).code[:, 0], SURVIVES)
    print(
        f"| *survives* over looks at {looks} seeds, no true difference | ≤ 0.025 | {rate(seq)} | same "
        f"(fixed-n test at every look: {rate(naive_looks)}) |"
    )
    d = rng.standard_t(3, (SIMS, 1, 10))
    print(
        "| sign-flip companion rejects (p < 0.05), heavy tails (t, 3 df), 10 seeds | ≤ 0.05 | "
        f"{rate(permutation.sign_flip_p(d) < inf.ALPHA)} | not shown |"
    )


def main() -> None:
    rng = np.random.default_rng(2026)
    shapes_table(rng)
    print()
    promises_table(rng)
    print()
    print(
        "MDE at 80% power in sd units (one claim / 8 claims), with the sd's 80% upper bound at that n:",
        ", ".join(
            f"n={n}: {inf.mde(inf.sd_upper(1.0, n), n, 1):.2f} / {inf.mde(inf.sd_upper(1.0, n), n, 8):.2f}"
            for n in (5, 10, 20, 30)
        ),
    )


if __name__ == "__main__":
    main()
