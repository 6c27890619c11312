"""The studies' findings, asserted: each study runs once (module fixtures) into a temporary folder.

What is checked is what the pages claim: the paper 000 bias identities and the β-factor lag
reduction, the Euler / multi-step orders and stability bounds (re-derived here from np.roots, not
only read from the study), paper 002's worked example, and that the trajectories table covers every
registered optimizer at learning rates from the stated grid. The checked-in pages under
docs/studies/ must be what the current code generates.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import numpy as np
import pytest

from optimlab.cli.study import add_parser, run_from_args
from optimlab.studies import STUDIES, bias_lag, ema, ode, relatives, run_study, trajectories

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "studies"


FAST = [name for name in STUDIES if name != relatives.NAME]  # relatives trains on digits (~2 min): slow test


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("studies")
    return {name: run_study(name, out) for name in FAST}


def test_registry_and_pages(results):
    assert list(STUDIES) == ["bias-lag", "ode", "ema", "trajectories", "relatives"]
    for name, r in results.items():
        assert r.name == name and r.page.name == f"{name}.md" and r.page.is_file()
        text = r.page.read_text(encoding="utf-8")
        links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
        assert sorted(links) == sorted(f.name for f in r.figures), name  # every figure linked, relatively
        for f in r.figures:
            assert f.parent == r.page.parent and f.stat().st_size < 300_000
            assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _table_rows(text: str) -> list[tuple[str, str]]:
    """(optimizer, chosen lr) of every row of a trajectories page's tables."""
    return re.findall(r"^\| ([a-z0-9-]+) \| ([0-9.e-]+) \|", text, re.M)


@pytest.mark.parametrize("name", FAST)
def test_checked_in_pages_are_current(results, name):
    generated = results[name].page.read_text(encoding="utf-8")
    checked_in = DOCS / f"{name}.md"
    assert checked_in.is_file(), f"{checked_in} missing: run `optimlab study all --out docs/studies`"
    stale = f"{checked_in} is stale: regenerate with `optimlab study all --out docs/studies`"
    if name == "trajectories":
        # 300 torch steps at large lrs amplify last-bit differences between CPUs (FMA or not), so the
        # numbers may legitimately differ elsewhere; the optimizers and the chosen lrs must not.
        assert _table_rows(checked_in.read_text(encoding="utf-8")) == _table_rows(generated), stale
    else:
        assert checked_in.read_text(encoding="utf-8") == generated, stale
    for fig in results[name].figures:
        assert (DOCS / fig.name).is_file()


def test_deterministic(tmp_path):
    a, b = ema.run(tmp_path / "a"), ema.run(tmp_path / "b")
    assert a.page.read_text() == b.page.read_text()
    assert [f.read_bytes() for f in a.figures] == [f.read_bytes() for f in b.figures]
    assert a.findings == b.findings


# ----------------------------------------------------------------------------- bias-lag
def test_bias_lag_paper_algebra(results):
    f = results["bias-lag"].findings
    for sig in bias_lag.SIGNALS:
        for beta in bias_lag.BETAS:
            c = {
                k: f[f"claim/{sig}/{beta}/{k}"]
                for k in ("eq11_vs_definition", "varsigma_identity", "bias_m_identity", "bias_n_identity")
            }
            scale = 1.0 + f[f"claim/{sig}/{beta}/max_abs_xi"]
            assert max(c.values()) < 1e-12 * scale * 1e3, (sig, beta, c)
            assert f[f"claim/{sig}/{beta}/nesterov_vs_rsgdm_steady"] < 1e-6
            assert f[f"claim/{sig}/{beta}/holds_fraction_steady"] == 1.0


def test_bias_lag_where_the_claim_holds(results):
    f = results["bias-lag"].findings
    for beta in bias_lag.BETAS:
        assert f[f"claim/ramp/{beta}/violations"] == 0
        assert f[f"claim/step/{beta}/violations"] == 0
    assert f["claim/sinusoid/0.99/violations"] > 0  # the neglected β^t term matters early on
    assert f["claim/sinusoid/0.99/last_violation_t"] < bias_lag.T // 2


def test_bias_lag_ramp_lag_and_bias(results):
    f = results["bias-lag"].findings
    for beta in bias_lag.BETAS:
        lag_m, lag_n = f[f"ramp/{beta}/sgdm/lag"], f[f"ramp/{beta}/rsgdm/lag"]
        assert lag_n < lag_m
        assert lag_m == pytest.approx(beta / (1 - beta), rel=0.03, abs=0.1)
        assert lag_n == pytest.approx(beta**2 / (1 - beta), rel=0.03, abs=0.1)
        assert lag_m - lag_n == pytest.approx(beta, abs=0.05)  # RSGDM gains β steps, no more
        assert f[f"ramp/{beta}/rsgdm/bias"] / f[f"ramp/{beta}/sgdm/bias"] == pytest.approx(beta, abs=0.02)
        # the EMA with RSGDM's lag has the same lag ...
        assert f[f"ramp/{beta}/ema-matched/lag"] == pytest.approx(lag_n, abs=0.05)


def test_bias_lag_noise(results):
    f = results["bias-lag"].findings
    for beta in bias_lag.BETAS:
        for sig in bias_lag.SIGNALS:
            v_m, v_n, v_e = (f[f"{sig}/{beta}/{e}/variance"] for e in ("sgdm", "rsgdm", "ema-matched"))
            assert v_n > v_m and v_e < v_n  # RSGDM is noisier than SGDM and than an EMA of equal lag
        th_m, th_n = f[f"theory/{beta}/sgdm/noise_factor"], f[f"theory/{beta}/rsgdm/noise_factor"]
        assert th_m == pytest.approx((1 - beta) / (1 + beta), rel=1e-6)
        assert th_n == pytest.approx((1 - beta**2) ** 2 + beta**4 * (1 - beta) / (1 + beta), rel=1e-6)
        assert f[f"ramp/{beta}/rsgdm/variance"] == pytest.approx(th_n, rel=0.05)


def test_bias_lag_step_and_sinusoid_lags(results):
    f = results["bias-lag"].findings
    for beta in bias_lag.BETAS:
        for est in ("sgdm", "rsgdm"):
            assert f[f"step/{beta}/{est}/lag"] == pytest.approx(f[f"theory/{beta}/{est}/mean_delay"], rel=0.03, abs=0.1)
            assert f[f"sinusoid/{beta}/{est}/lag"] == pytest.approx(f[f"theory/{beta}/{est}/phase_delay"], abs=0.3)
        assert f[f"sinusoid/{beta}/rsgdm/lag"] < f[f"sinusoid/{beta}/sgdm/lag"]
        assert f[f"theory/{beta}/rsgdm/gain"] == pytest.approx(1.0, abs=1e-6)


def test_xi_varsigma_small_case():
    mu = np.array([1.0, 3.0, 2.0, 5.0])
    beta = 0.5
    xs = bias_lag.xi_varsigma(mu, beta)
    # by hand, t = 4: ξ = Σ_{i=1}^{3} β^{4−i}(μ_i − μ_4) = .125·(−4) + .25·(−2) + .5·(−3) = −2.5
    # eq. 11: ς = β³(μ_2 − μ_4) + β²(μ_3 − μ_4) = .125·(−2) + .25·(−3) = −1.0
    assert xs["xi"][3] == pytest.approx(-2.5) and xs["varsigma"][3] == pytest.approx(-1.0)
    assert xs["varsigma_def"][3] == pytest.approx(-1.0)


# ----------------------------------------------------------------------------- ode
def test_ode_orders(results):
    f = results["ode"].findings
    for o in ode.TEST_ODES:
        assert abs(f[f"order/{o.name}/euler"] - 1.0) < 0.15
        assert abs(f[f"order/{o.name}/multistep-exact"] - 2.0) < 0.15
        assert abs(f[f"order/{o.name}/multistep-euler"] - 2.0) < 0.15
        assert abs(f[f"order/{o.name}/multistep-rest"] - 1.0) < 0.15  # start from rest costs an order
        assert abs(f[f"order/{o.name}/ab2"] - 2.0) < 0.15
        assert abs(f[f"lte_order/{o.name}/euler"] - 2.0) < 0.15
        assert abs(f[f"lte_order/{o.name}/multistep"] - 3.0) < 0.15


def test_ode_lte_constant():
    lin = ode.TEST_ODES[0]  # y = e^{−2t}: y''' = −8 e^{−2t}
    tau = 1e-3
    err = ode.local_errors(lin, np.array([tau]), t=0.5)["multistep"][0]
    assert err == pytest.approx(2 / 3 * tau**3 * 8 * math.exp(-1.0), rel=0.01)


def test_ode_stability(results):
    f = results["ode"].findings
    assert f["stability/euler"] == pytest.approx(2.0, rel=0.01)
    assert f["stability/multistep"] == pytest.approx(1.0, rel=0.01)
    assert f["stability/ab2"] == pytest.approx(1.0, rel=0.01)
    # independent of the study's bisection: the rule's own polynomial, from y_k = ζ^k
    for h, stable in ((0.3, True), (0.99, True), (1.01, False), (2.0, False), (3.9, False)):
        assert (np.max(np.abs(np.roots([1.0, -(1.5 - h), 1.0, -0.5]))) <= 1.0) == stable, h
    assert f["roots_at_h1"] == pytest.approx([0.5, 1.0, 1.0], abs=1e-9)
    b = f["stability/multistep"]
    assert f[f"decay/multistep/{0.99 * b:.6g}"] < 1e-2 < 1e2 < f[f"decay/multistep/{1.01 * b:.6g}"]
    assert f["reference_max_diff"] < 1e-12  # the "rest" start is optimlab.reference's TM-SGD


def test_ode_early_fluctuation(results):
    f = results["ode"].findings
    for name in ("unit", "quadratic"):
        tv = {s: f[f"transient/{name}/multistep-{s}/tv_excess"] for s in ode.STARTS}
        err = {s: f[f"transient/{name}/multistep-{s}/max_error"] for s in ode.STARTS}
        assert tv["rest"] > 2 * tv["euler"] and tv["rest"] > 2 * tv["exact"]
        assert err["rest"] > 2 * err["euler"] > 2 * err["exact"]


# ----------------------------------------------------------------------------- ema
def test_ema_temperature_example(results):
    f = results["ema"].findings
    assert f["example_v"] == pytest.approx([4.0, 7.8, 9.64], abs=1e-12)
    assert f["example_v_hat"] == pytest.approx([20.0, 7.8 / 0.36, 9.64 / 0.488], abs=1e-12)
    assert f["weights_sum_n20"] == pytest.approx(1 - 0.8**20, abs=1e-12)


def test_ema_window_and_correction(results):
    f = results["ema"].findings
    for beta in ema.BETAS:
        g = lambda k, beta=beta: f[f"beta/{beta}/{k}"]  # noqa: E731
        assert g("window") == pytest.approx(1 / (1 - beta), abs=1e-12)
        assert g("mean_age") == pytest.approx(beta / (1 - beta), abs=1e-12)
        assert 0.25 <= g("weight_left_after_window") < 1 / math.e
        assert abs(g("start_mean_v_hat") - g("start_mean_data")) < abs(g("start_mean_v") - g("start_mean_data"))
    assert f["explode/output_min"] >= f["explode/data_min"] and f["explode/output_max"] <= f["explode/data_max"]
    assert f["explode/feedback_log10_max"] > 100


# ----------------------------------------------------------------------------- trajectories
def test_trajectories_cover_every_optimizer(results):
    from optimlab.optim import list_optimizers

    r = results["trajectories"]
    names = trajectories.optimizer_names()  # the papers' and torch's; the field's are in `relatives`
    assert {"sgd", "rsgdm", "tmsgdm", "wgd-radam", "adam"} <= set(names)
    assert not {"adan", "qhm", "wgd-radam-published", "lookahead-adam"} & set(names)
    assert set(names) < {i.name for i in list_optimizers()}
    assert r.findings["optimizers"] == names
    text = r.page.read_text(encoding="utf-8")
    for fn in trajectories.FUNCTIONS:
        section = text.split(f"## {fn.name}\n", 1)[1].split("\n## ", 1)[0]
        for name in names:
            assert re.search(rf"^\| {re.escape(name)} \| ", section, re.M), (fn.name, name)
            lr = r.findings[f"{fn.name}/{name}/lr"]
            assert any(lr == g for g in trajectories.LR_GRID), (fn.name, name, lr)
            if name.startswith("wgd-"):
                assert r.findings[f"{fn.name}/{name}/identical_to_base"] is True


def test_trajectories_lr_choice_and_tmsgd_stability(results):
    f = results["trajectories"].findings
    grid = trajectories.LR_GRID
    for fn in trajectories.FUNCTIONS:
        for name in f["optimizers"]:
            if name.startswith("wgd-"):
                continue
            gaps = f[f"{fn.name}/{name}/grid_final_gaps"]
            chosen = f[f"{fn.name}/{name}/final_gap"]
            assert chosen == min(max(g, trajectories.GAP_FLOOR) for g in gaps) or chosen < trajectories.GAP_FLOOR
    # quadratic, λ_max = 50: lr = 10^-1.5 is stable for SGD (lr·λ < 2) but not for TM-SGD (lr·λ < 1)
    i = grid.index(10.0**-1.5)
    assert math.isfinite(f["quadratic/sgd/grid_final_gaps"][i])
    assert math.isinf(f["quadratic/tmsgd/grid_final_gaps"][i])
    assert f["quadratic/tmsgd/lr"] * 50 < 1 < 50 * f["quadratic/sgd/lr"] < 2


def test_trajectories_grid_runs_equal_single_runs():
    fn = trajectories.FUNCTIONS[3]
    grid = trajectories.run_paths("adam", fn, (1e-2, 1e-1), steps=20)
    single = trajectories.run_paths("adam", fn, (1e-1,), steps=20)
    np.testing.assert_array_equal(grid[1], single[0])


# ----------------------------------------------------------------------------- cli
def _parser():
    parser = argparse.ArgumentParser(prog="optimlab")
    add_parser(parser.add_subparsers(dest="command"))
    return parser


def test_cli_list_and_run(tmp_path, capsys):
    p = _parser()
    assert run_from_args(p.parse_args(["study", "--list"])) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in STUDIES)
    args = p.parse_args(["study", "ema", "--out", str(tmp_path)])
    assert args.func is run_from_args and run_from_args(args) == 0
    assert (tmp_path / "ema.md").is_file() and (tmp_path / "ema_curves.png").is_file()


def test_cli_bad_name(tmp_path):
    p = _parser()
    with pytest.raises(ValueError, match="Unknown study 'nope'.*bias-lag"):
        run_from_args(p.parse_args(["study", "nope", "--out", str(tmp_path)]))
    with pytest.raises(ValueError, match="--list"):
        run_from_args(p.parse_args(["study"]))


# ----------------------------------------------------------------------------- relatives
def _relatives_rows(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^\| ([a-z0-9=-]+) \| ([0-9.e-]+) \|", text, re.M)


def test_relatives_small_run_states_the_algebra(tmp_path, monkeypatch):
    """The study on a small budget: QHM(ν = β) = NAG (EMA) and RSGDM = QHM from θ_1 at round-off level on
    every function, the first step alone moves RSGDM's path, and every arm appears in every table."""
    for name, value in (
        ("STEPS", 80),
        ("LR_GRID", (0.01, 0.1)),
        ("LR_POINTS", (0.3, 1.0)),
        ("TUNE_SEEDS", (100,)),
        ("FINAL_SEEDS", (0, 1)),
        ("DIGITS_EPOCHS", 1),
    ):
        monkeypatch.setattr(relatives, name, value)
    r = relatives.run(tmp_path)
    f = r.findings
    for fn in trajectories.FUNCTIONS:
        assert f[f"same_lr/{fn.name}/qhm-vs-nag"] < 1e-12
        assert f[f"same_lr/{fn.name}/rsgdm-vs-qhm-from-step-2"] < 1e-12
        assert f[f"same_lr/{fn.name}"] > 1e-4  # the first step differs
        for arm in relatives.ARMS:
            assert f[f"{fn.name}/{arm.label}/lr"] in (0.01, 0.1)
    text = r.page.read_text(encoding="utf-8")
    labels = [a.label for a in relatives.ARMS]
    fns = [fn.name for fn in trajectories.FUNCTIONS]
    assert [row[0] for row in _relatives_rows(text)] == labels * 4 + fns + labels  # functions, same-lr, digits
    for arm in relatives.ARMS:
        assert len(f[f"digits/{arm.label}/test_accuracy"]) == 2
        assert f[f"digits/{arm.label}/lr"] in [arm.anchor * k for k in (0.3, 1.0)]
    assert "digits/nag-ema/delta_mean" not in f and "digits/rsgdm/delta_p" in f
    assert sorted(re.findall(r"\(([^)]+\.png)\)", text)) == sorted(p.name for p in r.figures)


def test_relatives_paired_statistics():
    d = relatives.paired([0.9, 0.8, 0.85], [0.8, 0.8, 0.8])
    assert d["mean"] == pytest.approx(0.05) and d["lo"] < 0.05 < d["hi"]
    from scipy import stats

    assert d["p"] == pytest.approx(stats.ttest_rel([0.9, 0.8, 0.85], [0.8, 0.8, 0.8]).pvalue)


@pytest.mark.slow
def test_relatives_checked_in_page_is_current(tmp_path):
    """The full study (~2 min on one thread): the optimizers and chosen lrs of every table must be those
    of docs/studies/relatives.md (the numbers may differ in last bits across CPUs, as trajectories')."""
    r = run_study(relatives.NAME, tmp_path)
    checked_in = DOCS / "relatives.md"
    assert checked_in.is_file(), "run `optimlab study relatives --out docs/studies`"
    assert _relatives_rows(checked_in.read_text(encoding="utf-8")) == _relatives_rows(
        r.page.read_text(encoding="utf-8")
    )
    for fig in r.figures:
        assert (DOCS / fig.name).is_file()
