"""optimlab.experiments.stats against hand-computed values and scipy called directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as ss

from optimlab.experiments.results import RunResult
from optimlab.experiments.stats import BOOTSTRAP_SEED, mean_ci, paired_tests, summarize
from optimlab.train.config import History, TrainConfig


def test_mean_ci_is_the_student_t_interval():
    x = [0.91, 0.93, 0.90, 0.95, 0.92]
    c = mean_ci(x)
    mean = sum(x) / 5
    s = math.sqrt(sum((v - mean) ** 2 for v in x) / 4)
    half = ss.t.ppf(0.975, 4) * s / math.sqrt(5)  # t_{0.975, 4} = 2.776
    assert c.n == 5
    assert c.mean == pytest.approx(mean, abs=1e-15)
    assert c.std == pytest.approx(s, rel=1e-12)
    assert (c.low, c.high) == pytest.approx((mean - half, mean + half), rel=1e-12)
    assert ss.t.ppf(0.975, 4) == pytest.approx(2.7764451, rel=1e-6)
    lo, hi = ss.t.interval(0.95, 4, loc=mean, scale=ss.sem(x))
    assert (c.low, c.high) == pytest.approx((lo, hi), rel=1e-12)


def test_mean_ci_small_samples():
    assert math.isnan(mean_ci([]).mean)
    one = mean_ci([0.7])
    assert one.mean == 0.7 and one.n == 1 and math.isnan(one.low) and math.isnan(one.high)


def test_clear_difference_is_significant_and_matches_scipy():
    rng = np.random.default_rng(1)
    b = rng.normal(0.90, 0.01, size=8)
    a = b + 0.02 + rng.normal(0, 0.002, size=8)  # every seed better by ~2 pp
    mean, low, high, t_p, w_p, notes = paired_tests(a, b)
    assert mean == pytest.approx(float(np.mean(a - b)), rel=1e-12)
    assert t_p == pytest.approx(ss.ttest_rel(a, b).pvalue, rel=1e-12)
    assert w_p == pytest.approx(ss.wilcoxon(a, b).pvalue, rel=1e-12)
    assert t_p < 0.05 and w_p < 0.05
    assert w_p == pytest.approx(2 / 2**8)  # all 8 differences positive: the exact minimum
    assert 0 < low < mean < high
    assert notes == []


def test_no_difference_is_not_significant():
    d = np.array([0.004, -0.003, 0.002, -0.005, 0.003, -0.002, 0.001, -0.001])
    b = np.linspace(0.88, 0.92, 8)
    mean, low, high, t_p, w_p, _ = paired_tests(b + d, b)
    assert t_p > 0.05 and w_p > 0.05
    assert low < 0 < high
    assert t_p == pytest.approx(ss.ttest_rel(b + d, b).pvalue, rel=1e-12)


def test_bootstrap_ci_is_scipys_paired_bootstrap_with_a_fixed_seed():
    a = np.array([0.95, 0.97, 0.96, 0.94, 0.98])
    b = np.array([0.94, 0.95, 0.96, 0.93, 0.95])
    _, low, high, *_ = paired_tests(a, b)
    ref = ss.bootstrap((a, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis), paired=True, vectorized=True,
                       n_resamples=9999, method="percentile", rng=np.random.default_rng(BOOTSTRAP_SEED))
    assert (low, high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high), rel=1e-12)
    assert paired_tests(a, b)[1:3] == (low, high)  # reproducible
    # every resample mean lies within [min(d), max(d)]
    d = a - b
    assert d.min() <= low <= high <= d.max()


def test_degenerate_cases_give_nan_and_a_note():
    a = np.array([0.9, 0.8, 0.7])
    mean, low, high, t_p, w_p, notes = paired_tests(a, a)
    assert mean == 0 and low == 0 and high == 0
    assert math.isnan(t_p) and math.isnan(w_p)
    assert any("equal" in n for n in notes)
    mean, low, high, t_p, w_p, notes = paired_tests([0.9], [0.8])
    assert mean == pytest.approx(0.1) and math.isnan(low) and math.isnan(t_p) and math.isnan(w_p)
    assert notes
    _, _, _, _, w_p, notes = paired_tests([0.9, 0.8, 0.7, 0.6, 0.5], [0.8, 0.8, 0.6, 0.5, 0.4])
    assert any("zero difference" in n for n in notes)
    with pytest.raises(ValueError, match="equal lengths"):
        paired_tests([1.0, 2.0], [1.0])


# --------------------------------------------------------------------------- summarize


def _run(label: str, seed: int, acc: float, loss: float, optimizer: str | None = None,
         diverged: bool = False, error: bool = False) -> RunResult:
    config = TrainConfig(optimizer=optimizer or label, epochs=2)
    if error:
        return RunResult(f"digits-mlp-{label}-s{seed}", label, seed, config, status="error", error="boom")
    h = History(test_acc=[acc - 0.1, acc], train_loss=[1.0, loss], step_time_s=0.002 + 0.001 * seed,
                final={"accuracy": acc, "loss": math.nan if diverged else loss, "mean_recall": acc,
                       "mean_precision": acc, "kappa": acc - 0.05},
                diverged_epoch=2 if diverged else None)
    return RunResult(f"digits-mlp-{label}-s{seed}", label, seed, config, history=h)


def test_summarize_groups_pairs_wins_and_divergence():
    base = [0.90, 0.91, 0.92, 0.93]
    results = [_run("sgdm-ema", s, a, 0.3) for s, a in enumerate(base)]
    results += [_run("sgdm", s, a + 0.01, 0.2) for s, a in enumerate(base)]  # heavy ball, distinct label
    # rsgdm: seed 0 diverged, seed 3 failed, seeds 1-2 worse than the baseline
    results += [_run("rsgdm", 0, 0.10, 9.0, diverged=True), _run("rsgdm", 1, 0.90, 0.4),
                _run("rsgdm", 2, 0.91, 0.4), _run("rsgdm", 3, 0, 0, error=True)]
    s = summarize(results, baseline="sgdm-ema")
    assert [g.label for g in s.groups] == ["sgdm-ema", "sgdm", "rsgdm"]
    g = s.group("sgdm")
    assert g.metrics["accuracy"].mean == pytest.approx(np.mean(base) + 0.01)
    assert g.step_time_s.mean == pytest.approx(0.0035)
    p = s.comparison("sgdm", "accuracy")
    assert p.n_pairs == 4 and p.mean_diff == pytest.approx(0.01)
    assert (p.wins, p.losses, p.ties) == (4, 0, 0)
    lp = s.comparison("sgdm", "loss")  # lower loss wins
    assert lp.mean_diff == pytest.approx(-0.1) and lp.wins == 4
    r = s.group("rsgdm")
    assert (r.n_runs, r.n_diverged, r.n_errors) == (3, 1, 1)
    assert r.metrics["accuracy"].n == 2  # the diverged run is out of the mean
    assert r.metrics["accuracy"].mean == pytest.approx(0.905)
    rp = s.comparison("rsgdm", "accuracy")
    assert rp.n_pairs == 2  # seeds 1, 2 (0 diverged, 3 failed)
    assert (rp.wins, rp.losses, rp.ties) == (0, 3, 0)  # the diverged seed counts as a loss
    assert any("diverged" in n for n in rp.notes)
    assert any("rsgdm" in n and "diverged" in n for n in s.notes)
    assert any("failed" in n for n in s.notes)
    with pytest.raises(KeyError):
        s.comparison("sgdm-ema", "accuracy")  # no self-comparison
