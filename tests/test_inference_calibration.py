"""Monte-Carlo proof that a verdict's error rates are what its label says.

Seeded, vectorised simulations drive optimlab.stats.inference.judge_family, the function
verdict.md, compare's decision column and the sequential looks all call. Each property is also
checked against the rule optimlab used before (a claim survived when the paired percentile
bootstrap 95% interval excluded 0, from 2 seeds on, with no multiplicity correction): the
`test_old_rule_*` cases assert that the old rule breaks the same property, so these tests have teeth.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimlab.stats import inference as inf

SIMS = 20_000  # standard error of a 0.95 coverage: 0.0015; of a 0.025 rate: 0.0011


def _null(rng: np.random.Generator, n: int, m: int = 1, heavy: bool = False, sims: int = SIMS) -> np.ndarray:
    """Per-seed differences with true mean 0: normal, or heavy-tailed (Student t, 3 degrees of freedom).

    Strongly skewed differences are outside what the t-test guarantees; README's statistics section
    gives their measured error rates and the verdict warns when a sample looks skewed."""
    if heavy:
        return rng.standard_t(3, size=(sims, m, n))
    return rng.standard_normal((sims, m, n))


def _survives(code: np.ndarray) -> np.ndarray:
    return code == inf.VERDICTS.index(inf.SURVIVES)


def _decisive(code: np.ndarray) -> np.ndarray:
    return np.isin(code, [inf.VERDICTS.index(v) for v in inf.DECISIVE])


def _old_rule_survives(d: np.ndarray, rng: np.random.Generator, resamples: int = 1000) -> np.ndarray:
    """The old verdict, vectorised: paired percentile bootstrap 95% CI of the mean above 0."""
    n = d.shape[-1]
    idx = rng.integers(0, n, size=(resamples, n))
    means = d[..., idx].mean(axis=-1)  # (..., resamples)
    low = np.quantile(means, 0.025, axis=-1)
    return low > 0


def _old_rule_coverage(d: np.ndarray, rng: np.random.Generator, resamples: int = 1000) -> float:
    n = d.shape[-1]
    means = d[..., rng.integers(0, n, size=(resamples, n))].mean(axis=-1)
    low, high = np.quantile(means, [0.025, 0.975], axis=-1)
    return float(np.mean((low < 0) & (high > 0)))


@pytest.mark.parametrize("n", [5, 10])
def test_t_interval_coverage_is_95_percent(n):
    s = inf.paired_t(_null(np.random.default_rng(n), n))
    coverage = float(np.mean((s.low < 0) & (s.high > 0)))
    assert 0.94 <= coverage <= 0.96, coverage
    heavy = inf.paired_t(_null(np.random.default_rng(n + 50), n, heavy=True))
    assert 0.94 <= float(np.mean((heavy.low < 0) & (heavy.high > 0))) <= 0.97  # t tails: slightly conservative


@pytest.mark.parametrize("n", [5, 10, 20])
def test_no_difference_survives_at_most_2_5_percent(n):
    rng = np.random.default_rng(100 + n)
    for heavy in (False, True):
        d = _null(rng, n, heavy=heavy)
        default = float(np.mean(_survives(inf.judge_family(d).code)))
        # the rule itself, with the seed minimum lowered to n: still calibrated
        rule = float(np.mean(_survives(inf.judge_family(d, min_seeds=2).code)))
        assert default <= 0.03 and rule <= 0.03, (n, heavy, default, rule)
    if n < inf.MIN_SEEDS:
        assert default == 0.0  # below the minimum nothing is decisive


def test_ties_never_decide():
    d = np.tile(np.array([0.01, 0.0, -0.01]), (3, 1))[..., None] * np.ones(12)
    assert not _decisive(inf.judge_family(d).code).any()


def test_family_wise_error_of_an_8_claim_experiment_is_under_5_percent():
    rng = np.random.default_rng(8)
    d = _null(rng, 10, m=8, sims=100_000)
    code = inf.judge_family(d).code
    fwer = float(np.mean(_decisive(code).any(axis=-1)))  # any false survives or contradicted
    assert fwer <= 0.05, fwer
    assert float(np.mean(_survives(code).any(axis=-1))) <= 0.03


def test_smaller_than_claimed_is_calibrated_when_the_paper_is_right():
    rng = np.random.default_rng(11)
    d = 0.5 + _null(rng, 10)  # the true difference equals the paper's 0.5
    code = inf.judge_family(d, paper_delta=np.array([0.5])).code
    assert float(np.mean(code == inf.VERDICTS.index(inf.SMALLER))) <= 0.03


def test_sequential_looks_keep_false_survives_under_2_5_percent():
    rng = np.random.default_rng(12)
    looks = inf.plan_looks(10, 30, 5)
    shares = inf.obf_spending(looks)
    d = _null(rng, looks[-1], sims=SIMS)
    decided = np.zeros(SIMS, dtype=bool)
    false_survives = np.zeros(SIMS, dtype=bool)
    for n, alpha in zip(looks, shares):
        code = inf.judge_family(d[..., :n], alpha=alpha).code[:, 0]
        false_survives |= ~decided & _survives(code)
        decided |= _decisive(code)
    assert float(false_survives.mean()) <= 0.03
    # the naive alternative (fixed-n test at every look) is what the README warns against
    naive = np.zeros(SIMS, dtype=bool)
    for n in looks:
        naive |= _survives(inf.judge_family(d[..., :n]).code[:, 0])
    assert float(naive.mean()) > 0.05


def test_power_of_the_rule_against_a_real_difference():
    """Not an error rate but a sanity check of the MDE: at the MDE the rule detects ~80 %."""
    rng = np.random.default_rng(13)
    n, m = 10, 4
    delta = inf.mde(1.0, n, m)
    d = _null(rng, n, m=m) + delta
    power = float(np.mean(_survives(inf.judge_family(d).code)))
    assert power >= 0.8  # Holm's later steps are less strict than alpha/(2m), so power is at least 80 %


# -------------------------------------------------------------- the old rule fails the same checks


def test_old_rule_undercovers_and_survives_too_often():
    rng = np.random.default_rng(21)
    d = _null(rng, 5, sims=4000)[:, 0, :]
    assert _old_rule_coverage(d, rng) < 0.94
    assert float(np.mean(_old_rule_survives(d, rng))) > 0.03


def test_old_rule_has_no_family_wise_control():
    rng = np.random.default_rng(22)
    d = _null(rng, 10, m=8, sims=1000)
    survives = _old_rule_survives(d, rng)
    contradicted = _old_rule_survives(-d, rng)
    assert float(np.mean((survives | contradicted).any(axis=-1))) > 0.05


def test_benjamini_hochberg_count_keeps_the_false_discovery_rate_under_a_global_null():
    """The results page's BH count: with no true difference anywhere, P(it finds any) <= q."""
    rng = np.random.default_rng(31)
    p = inf.paired_t(_null(rng, 10, m=16, sims=5000)).p_two
    any_found = np.mean([inf.benjamini_hochberg_count(row) > 0 for row in p])
    assert any_found <= 0.055, any_found  # under the global null FDR = FWER = q = 0.05


def test_mcnemar_exact_p_is_valid_when_both_arms_fail_equally():
    """The failure comparison on verdict pages: at equal failure rates, P(p < 0.05) <= 0.05."""
    from optimlab.stats.summary import mcnemar_exact_p

    rng = np.random.default_rng(32)
    fails = rng.random((4000, 2, 10)) < 0.2  # two arms, 10 seeds, 20 % failure each
    only_a = (fails[:, 0] & ~fails[:, 1]).sum(axis=1)
    only_b = (fails[:, 1] & ~fails[:, 0]).sum(axis=1)
    rejections = np.mean([mcnemar_exact_p(int(b), int(c)) < 0.05 for b, c in zip(only_a, only_b)])
    assert rejections <= 0.05, rejections
