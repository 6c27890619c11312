"""optimlab.stats.inference against scipy called directly and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as ss

from optimlab.stats import inference as inf
from optimlab.stats import permutation


def test_paired_t_matches_scipy_with_missing_seeds_as_nan():
    rng = np.random.default_rng(0)
    d = rng.normal(0.01, 0.02, size=(3, 12))
    d[1, 9:] = np.nan  # claim 1 has 9 seeds
    s = inf.paired_t(d)
    for i in range(3):
        x = d[i][np.isfinite(d[i])]
        assert s.n[i] == x.size and s.mean[i] == pytest.approx(x.mean(), rel=1e-12)
        assert s.p_two[i] == pytest.approx(ss.ttest_1samp(x, 0).pvalue, rel=1e-9)
        assert s.p_greater[i] == pytest.approx(ss.ttest_1samp(x, 0, alternative="greater").pvalue, rel=1e-9)
        lo, hi = ss.t.interval(0.95, x.size - 1, loc=x.mean(), scale=ss.sem(x))
        assert (s.low[i], s.high[i]) == pytest.approx((lo, hi), rel=1e-9)


def test_ties_and_single_seeds_have_no_test():
    s = inf.paired_t(np.array([[0.01] * 12, [0.0] * 12, [0.02] + [np.nan] * 11]))
    assert np.all(np.isnan(s.p_two)) and np.all(np.isnan(s.low))
    j = inf.judge_family(np.array([[0.01] * 12]))
    assert inf.VERDICTS[j.code[0]] == inf.INCONCLUSIVE  # all seeds +1 pp, no spread: never decisive


def test_holm_by_hand_and_nan_counts_in_the_family():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, 1*0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert inf.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adj = inf.holm(np.array([0.01, np.nan]))
    assert adj[0] == pytest.approx(0.02) and math.isnan(adj[1])
    assert inf.holm(np.array([[0.4, 0.9], [0.01, 0.02]])) == pytest.approx(np.array([[0.8, 0.9], [0.02, 0.02]]))


def test_benjamini_hochberg_count():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    # the largest k with p_(k) <= 0.05 k / 10 is k = 2 (0.008 <= 0.01; 0.039 > 0.015, ..., 0.042 > 0.025)
    assert inf.benjamini_hochberg_count(p) == 2
    assert inf.benjamini_hochberg_count(np.array([0.01, 0.02, 0.03, np.nan])) == 3  # nan still counts in m
    assert inf.benjamini_hochberg_count(np.array([np.nan])) == 0


def test_verdicts_in_each_direction_and_smaller_than_claimed():
    rng = np.random.default_rng(5)
    noise = rng.normal(0, 0.005, size=12)
    d = np.stack([0.03 + noise, -0.03 + noise, 0.001 + noise, 0.001 + noise])
    j = inf.judge_family(d, paper_delta=np.array([0.01, 0.01, 0.05, np.nan]))
    assert [inf.VERDICTS[c] for c in j.code] == [inf.SURVIVES, inf.CONTRADICTED, inf.SMALLER, inf.INCONCLUSIVE]
    few = inf.judge_family(d[:, :9])
    assert set(inf.VERDICTS[c] for c in few.code) == {inf.TOO_FEW}
    assert inf.VERDICTS[inf.judge_family(d[:, :9], min_seeds=5).code[0]] == inf.SURVIVES


def test_mde_and_seeds_needed_agree_with_the_noncentral_t():
    m, n, sd = 4, 10, 0.02
    delta = inf.mde(sd, n, m)
    crit = ss.t.isf(0.05 / (2 * m), n - 1)
    assert ss.nct.sf(crit, n - 1, delta * math.sqrt(n) / sd) == pytest.approx(0.8, abs=1e-6)
    k = inf.seeds_needed(delta, sd, m)
    assert k == n  # the effect detectable with n seeds needs n seeds
    half = inf.seeds_needed(delta / 2, sd, m)
    assert half is not None and half > 2 * n
    assert inf.seeds_needed(-0.1, sd) is None and math.isnan(inf.mde(0.0, 10))


def test_looks_and_spending():
    assert inf.plan_looks(10, 30, 5) == [10, 15, 20, 25, 30]
    assert inf.plan_looks(10, 12, 5) == [10, 12]
    shares = inf.obf_spending([10, 20, 30])
    assert sum(shares) == pytest.approx(0.05, abs=1e-15) and shares[0] < shares[1] < shares[2]
    assert shares[0] == pytest.approx(2 - 2 * ss.norm.cdf(ss.norm.isf(0.025) / math.sqrt(1 / 3)), rel=1e-12)
    for bad in ((1, 10, 5), (10, 5, 1), (10, 20, 0)):
        with pytest.raises(ValueError):
            inf.plan_looks(*bad)


def test_direction_p_takes_the_sign_flip_test_where_asked_also_with_unequal_seed_counts():
    rng = np.random.default_rng(7)
    d = rng.normal(0.3, 1.0, size=(3, 10))
    d[2, 8:] = np.nan  # claim 2 has 8 seeds
    p = permutation.direction_p(d, np.array([True, False, True]))
    assert p[0] == pytest.approx(float(permutation.sign_flip_p(d[0])))
    assert p[1] == pytest.approx(ss.ttest_1samp(d[1], 0).pvalue, rel=1e-9)
    assert p[2] == pytest.approx(float(permutation.sign_flip_p(d[2, :8])))
    # exact enumeration: 10 seeds all of one sign give the two extreme patterns of 1024
    assert float(permutation.sign_flip_p(np.abs(d[:1]) + 0.1)[0]) == pytest.approx(2 / 1024)
    assert np.isnan(permutation.direction_p(np.full((1, 10), 0.01), np.array([True]))[0])  # ties: no test at all
