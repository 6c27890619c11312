"""optimlab.stats.summary against hand-computed values and scipy called directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as ss

from optimlab.experiments.results import RunResult
from optimlab.stats.summary import BOOTSTRAP_SEED, bootstrap_ci, failure_rate, mcnemar_exact_p, mean_ci, summarize
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


# --------------------------------------------------------------------------- summarize


def _run(
    label: str,
    seed: int,
    acc: float,
    loss: float,
    optimizer: str | None = None,
    diverged: bool = False,
    error: bool = False,
) -> RunResult:
    config = TrainConfig(optimizer=optimizer or label, epochs=2)
    if error:
        return RunResult(f"digits-mlp-{label}-s{seed}", label, seed, config, status="error", error="boom")
    h = History(
        test_acc=[acc - 0.1, acc],
        train_loss=[1.0, loss],
        step_time_s=0.002 + 0.001 * seed,
        final={
            "accuracy": acc,
            "loss": math.nan if diverged else loss,
            "mean_recall": acc,
            "mean_precision": acc,
            "kappa": acc - 0.05,
        },
        diverged_epoch=2 if diverged else None,
    )
    return RunResult(f"digits-mlp-{label}-s{seed}", label, seed, config, history=h)


def test_summarize_groups_pairs_wins_and_divergence():
    base = [0.90, 0.91, 0.92, 0.93]
    results = [_run("sgdm-ema", s, a, 0.3) for s, a in enumerate(base)]
    results += [_run("sgdm", s, a + 0.01, 0.2) for s, a in enumerate(base)]  # heavy ball, distinct label
    # rsgdm: seed 0 diverged, seed 3 failed, seeds 1-2 worse than the baseline
    results += [
        _run("rsgdm", 0, 0.10, 9.0, diverged=True),
        _run("rsgdm", 1, 0.90, 0.4),
        _run("rsgdm", 2, 0.91, 0.4),
        _run("rsgdm", 3, 0, 0, error=True),
    ]
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
    # issue 23: failed runs are judged, not dropped (was n_pairs == 2 and (0, 3, 0): seeds 0 and 3 left out)
    assert rp.n_pairs == 4  # seeds 0-3: 0 diverged and 3 errored count at the worst value, 0.90
    assert rp.mean_diff == pytest.approx((0.0 - 0.01 - 0.01 - 0.03) / 4)
    assert (rp.wins, rp.losses, rp.ties) == (0, 4, 0)  # the diverged and the errored seed count as losses
    assert any("diverged" in n for n in rp.notes)
    assert any("rsgdm" in n and "diverged" in n for n in s.notes)
    assert any("failed" in n for n in s.notes)
    with pytest.raises(KeyError):
        s.comparison("sgdm-ema", "accuracy")  # no self-comparison


def test_paired_comparison_is_scipys_paired_t_with_holm_over_the_optimizers():
    rng = np.random.default_rng(3)
    base = rng.normal(0.90, 0.01, size=12)
    shifts = {"big": 0.02, "small": 0.002, "none": 0.0}
    results = [_run("sgdm-ema", s, a, 0.3) for s, a in enumerate(base)]
    noise = {lab: rng.normal(0, 0.004, size=12) for lab in shifts}
    for lab, shift in shifts.items():
        results += [_run(lab, s, a + shift + noise[lab][s], 0.3, optimizer="sgd") for s, a in enumerate(base)]
    s = summarize(results, baseline="sgdm-ema", metrics=("accuracy",))
    raw = {lab: ss.ttest_rel(base + shift + noise[lab], base).pvalue for lab, shift in shifts.items()}
    order = sorted(raw, key=lambda lab: raw[lab])  # Holm by hand: m = 3 optimizers
    expect, running = {}, 0.0
    for i, lab in enumerate(order):
        running = max(running, min(1.0, (3 - i) * raw[lab]))
        expect[lab] = running
    for lab in shifts:
        p = s.comparison(lab, "accuracy")
        d = base + shifts[lab] + noise[lab] - base
        lo, hi = ss.t.interval(0.95, 11, loc=d.mean(), scale=ss.sem(d))
        assert (p.ci_low, p.ci_high) == pytest.approx((lo, hi), rel=1e-9)
        assert p.t_p == pytest.approx(raw[lab], rel=1e-9)
        assert p.holm_p == pytest.approx(expect[lab], rel=1e-9)
        assert math.isnan(p.boot_low)  # 12 pairs: no bootstrap interval shown
    assert s.comparison("big", "accuracy").decision == "better"
    assert s.comparison("none", "accuracy").decision == "no difference shown"
    # the same data at 5 seeds: too few to decide anything
    few = summarize([r for r in results if r.seed < 5], baseline="sgdm-ema", metrics=("accuracy",))
    assert {p.decision for p in few.paired} == {"too few seeds"}


def _failures_case() -> list[RunResult]:
    """10 seeds; the optimizer 0.01 better where both finish. Seed 0: the optimizer diverged; seed 1: it
    raised; seed 2: both diverged; seed 10: only the baseline ran (missing from the optimizer)."""
    results = [_run("base", s, 0.80 + 0.01 * s, 0.50 - 0.01 * s, diverged=s == 2) for s in range(10)]
    results.append(_run("base", 10, 0.10, 9.0))  # would be the worst value if a missing seed counted
    for s in range(10):
        acc, loss = 0.81 + 0.01 * s, 0.49 - 0.01 * s
        results.append(_run("opt", s, acc, loss, optimizer="sgd", diverged=s in (0, 2), error=s == 1))
    return results


@pytest.mark.parametrize("metric", ["accuracy", "loss"])
def test_compare_counts_failed_runs_at_the_worst_value_either_arm_reached(metric):
    """By hand: the worst finite value over seeds 0-9 of both arms is the baseline's seed 0 (accuracy
    0.80; loss 0.50, the highest). Seed 0 (diverged) and seed 1 (raised) take it, seed 2 (both failed)
    is a tie, seed 10 (never run by the optimizer) stays out; the direction p is the sign-flip test's."""
    from optimlab.stats import permutation

    p = summarize(_failures_case(), baseline="base", metrics=(metric,)).comparison("opt", metric)
    sign = 1.0 if metric == "accuracy" else -1.0  # raw differences opt − base
    d = np.array([0.0, sign * -0.01, 0.0] + [sign * 0.01] * 7)
    assert p.n_pairs == 10 and p.mean_diff == pytest.approx(sign * 0.006)
    assert (p.wins, p.losses, p.ties) == (7, 2, 1)  # a failed run loses to a finished one, even at a tie
    lo, hi = ss.t.interval(0.95, 9, loc=d.mean(), scale=ss.sem(d))
    assert (p.ci_low, p.ci_high) == pytest.approx((lo, hi), rel=1e-6)
    assert p.t_p == pytest.approx(ss.ttest_1samp(d, 0.0).pvalue, rel=1e-6)
    flip = float(permutation.sign_flip_p(sign * d))
    assert p.holm_p == pytest.approx(flip) and p.holm_p != pytest.approx(p.t_p)  # one optimizer: Holm is the p
    assert p.decision != "too few seeds"
    assert p.notes[0].startswith("3 seed(s) with a diverged or errored run counted at the worst value")
    assert "the 7 seed(s) both finished alone: mean 0.01" in p.notes[0].replace("-0.01", "0.01")


def test_compare_can_call_an_optimizer_that_diverges_worse():
    """Equal where both finish, but the optimizer diverges on 6 of 12 seeds: 'worse' (before issue 23's
    rule reached compare its 6 paired seeds were 'too few seeds')."""
    results = [_run("base", s, 0.80 + 0.01 * s, 0.3) for s in range(12)]
    results += [_run("opt", s, 0.80 + 0.01 * s + 0.001 * (s % 3 - 1), 0.3, diverged=s % 2 == 0) for s in range(12)]
    s = summarize(results, baseline="base", metrics=("accuracy",))
    p = s.comparison("opt", "accuracy")
    assert p.n_pairs == 12 and (p.wins, p.losses) == (2, 8) and p.decision == "worse"
    assert s.group("opt").metrics["accuracy"].n == 6  # the arm's own mean leaves its failed runs out
    assert any("excluded from its means and CIs" in n for n in s.notes)
    from optimlab.report.markdown import table_notes

    assert any("leave them out" in n and "sign-flip" in n for n in table_notes(s, []))

    every_run_failed = [_run(lab, s, 0.1, 9.0, diverged=True) for lab in ("base", "opt") for s in range(3)]
    p = summarize(every_run_failed, baseline="base", metrics=("accuracy",)).comparison("opt", "accuracy")
    assert (p.n_pairs, p.ties, p.decision) == (0, 3, "too few seeds") and math.isnan(p.mean_diff)
    assert p.notes == [
        "3 seed(s) with a diverged or errored run, and no finished run in either arm to compare",
        "no paired seeds",
    ]


def test_failure_rate_is_clopper_pearson_and_failures_are_counted():
    r = failure_rate(1, 5)
    assert (r.low, r.high) == pytest.approx((0.005050763, 0.7164179), rel=1e-6)  # exact 95% CI of 1/5
    assert failure_rate(0, 10).low == 0.0 and failure_rate(0, 10).high == pytest.approx(0.3084971, rel=1e-6)
    assert math.isnan(failure_rate(0, 0).low)
    results = [_run("sgdm-ema", s, 0.9, 0.3) for s in range(4)]
    results += [
        _run("rsgdm", 0, 0.1, 9.0, diverged=True),
        _run("rsgdm", 1, 0.9, 0.3),
        _run("rsgdm", 2, 0, 0, error=True),
        _run("rsgdm", 3, 0.9, 0.3),
    ]
    f = summarize(results, baseline="sgdm-ema").group("rsgdm").failures
    assert (f.k, f.n) == (2, 4)


def test_mcnemar_exact_is_a_binomial_test_on_discordant_seeds():
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(5, 0) == pytest.approx(2 * 0.5**5)
    assert mcnemar_exact_p(3, 1) == pytest.approx(ss.binomtest(3, 4).pvalue)


def test_bootstrap_is_shown_only_from_30_pairs():
    rng = np.random.default_rng(0)
    d = rng.normal(0.01, 0.01, size=40)
    assert all(math.isnan(v) for v in bootstrap_ci(d[:29]))
    low, high = bootstrap_ci(d)
    ref = ss.bootstrap((d,), np.mean, n_resamples=9999, method="percentile", rng=np.random.default_rng(BOOTSTRAP_SEED))
    assert (low, high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high), rel=1e-12)
