"""Hand-checkable values of the NumPy references, taken from the papers or worked out by hand, and
the reference package's own contracts (pure functions, clear errors, no torch import)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, cast

import numpy as np
import pytest
from numpy.typing import ArrayLike

import optimlab.reference as R


def _run(name: str, theta0: ArrayLike, grads: list, **hp: object) -> np.ndarray:
    return R.trajectory(
        name, np.asarray(theta0, dtype=np.float64), [np.asarray(g, dtype=np.float64) for g in grads], **hp
    )


# ----------------------------------------------------------------------------- EMA, paper 002
def test_ema_temperature_example_of_paper_002() -> None:
    """§3.1: β = 0.8, temperatures 20, 23, 17 -> v = 4, 7.8, 9.64 (v_0 = 0)."""
    np.testing.assert_allclose(R.ema_sequence([20.0, 23.0, 17.0], beta=0.8), [4.0, 7.8, 9.64], rtol=1e-14)
    # the optimizer's buffer is the same EMA when the "gradients" are the temperatures
    state = R.ema_init(np.zeros(()))
    theta = np.zeros(())
    for temp, want in zip([20.0, 23.0, 17.0], [4.0, 7.8, 9.64]):
        theta, state = R.ema_update(state, theta, np.array(temp), lr=1.0, beta=0.8)
        assert state.v == pytest.approx(want, rel=1e-14)
    assert theta == pytest.approx(-(4.0 + 7.8 + 9.64), rel=1e-14)  # θ −= lr·v each day


def test_bias_correction_of_paper_002() -> None:
    """Eq. 10: v_t / (1 − β^t): 4/0.2 = 20, 7.8/0.36 = 21.666..., 9.64/0.488 = 19.754...; a constant
    sequence is reproduced exactly from the first step."""
    got = R.ema_sequence([20.0, 23.0, 17.0], beta=0.8, bias_correction=True)
    np.testing.assert_allclose(got, [20.0, 7.8 / 0.36, 9.64 / 0.488], rtol=1e-14)
    np.testing.assert_allclose(R.ema_sequence([5.0] * 6, beta=0.9, bias_correction=True), [5.0] * 6, rtol=1e-14)
    # gd-ema applies it to the step: constant gradient c -> every step is exactly lr·c
    np.testing.assert_allclose(_run("gd-ema", 0.0, [2.0] * 4, lr=0.5, beta=0.9), [-1.0, -2.0, -3.0, -4.0], rtol=1e-14)
    # without it (sgdm-ema), step 1 is only (1 − β)·lr·c
    assert _run("sgdm-ema", 0.0, [2.0], lr=0.5, beta=0.9)[0] == pytest.approx(-0.1, rel=1e-14)


def test_adam_bias_correction_gives_sign_steps_for_a_constant_gradient() -> None:
    """m̂_t = c and v̂_t = c² exactly, so with ε = 0 every Adam step is lr·sign(c)."""
    np.testing.assert_allclose(_run("adam", [1.0, 1.0], [[3.0, -0.2]] * 5, lr=0.1, eps=0.0)[-1], [0.5, 1.5], rtol=1e-13)


# ----------------------------------------------------------------------------- RSGDM, paper 000
def test_rsgdm_first_two_steps() -> None:
    """n_1 = (1 − β)g_1 and n_2 = (1 − β²)g_2 (the g_1 terms of m_2 and βz_2 cancel).
    β = 0.5, lr = 1, g = 4, 8: m_1 = 2, z_1 = 0, n_1 = 2; m_2 = 5, Δg_2 = 4, z_2 = 2, n_2 = 6."""
    init, update, _ = R.REFERENCES["rsgdm"]
    theta, state = np.array(10.0), init(np.zeros(()))
    theta, state = update(state, theta, np.array(4.0), lr=1.0, beta=0.5)
    assert (theta, state.m, state.z) == (8.0, 2.0, 0.0)
    theta, state = update(state, theta, np.array(8.0), lr=1.0, beta=0.5)
    assert (theta, state.m, state.z) == (2.0, 5.0, 2.0)
    # the same for any β and g_1: n_2 = (1 − β²)·g_2
    rng = np.random.default_rng(0)
    for beta in (0.0, 0.3, 0.9, 0.99):
        g1, g2 = rng.normal(size=3), rng.normal(size=3)
        th = _run("rsgdm", np.zeros(3), [g1, g2], lr=1.0, beta=beta)
        np.testing.assert_allclose(th[0], -(1 - beta) * g1, rtol=1e-14)
        np.testing.assert_allclose(th[1] - th[0], -(1 - beta**2) * g2, rtol=1e-12, atol=1e-15)


def test_rsgdm_is_nesterov_ema_with_one_buffer() -> None:
    """Unrolled, n_t = β²·m̃_{t−1} + (1 − β²)·g_t with m̃ the EMA that leaves g_1 out (DEVELOPERS.md)."""
    rng = np.random.default_rng(1)
    beta, grads = 0.9, rng.normal(size=(50, 4))
    steps = -np.diff(np.vstack([np.zeros(4), _run("rsgdm", np.zeros(4), list(grads), lr=1.0, beta=beta)]), axis=0)
    m_tilde = np.zeros(4)
    for t, g in enumerate(grads, start=1):
        n = (1 - beta) * g if t == 1 else beta**2 * m_tilde + (1 - beta**2) * g
        np.testing.assert_allclose(steps[t - 1], n, rtol=1e-9, atol=1e-13)
        if t > 1:
            m_tilde = beta * m_tilde + (1 - beta) * g


# ----------------------------------------------------------------------------- TM-SGD, paper 004
def test_tmsgd_scalar_by_hand() -> None:
    """ε = 0.1, W_0 = 1, g = 1, 2, 3, 4, switch at k = 2:
    W_1 = 0.9, W_2 = 0.7 (SGD); W_3 = 1.5·0.7 − 0.9 + 0.5·1 − 0.3 = 0.35; W_4 = 1.5·0.35 − 0.7 + 0.5·0.9 − 0.4
    = −0.125."""
    g = [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_allclose(_run("tmsgd", 1.0, g, lr=0.1, switch_step=2), [0.9, 0.7, 0.35, -0.125], rtol=1e-13)
    # no switch: plain SGD
    np.testing.assert_allclose(_run("tmsgd", 1.0, g, lr=0.1), [0.9, 0.7, 0.4, 0.0], atol=1e-14)


def test_tmsgd_switch_with_short_history() -> None:
    """Missing iterates equal W_0 (zero displacement). Switch at 0: W_1 = 1.5 − 1 + 0.5 − 0.1 = 0.9
    (an SGD step), W_2 = 1.5·0.9 − 1 + 0.5·1 − 0.2 = 0.65. TM-SGD-M, μ = 0.5, switch at 1:
    b_0 = 1, W_1 = 0.9; b_1 = 0.5 + 2 = 2.5, W_2 = 1.5·0.9 − 1 + 0.5·1 − 0.25 = 0.6."""
    np.testing.assert_allclose(_run("tmsgd", 1.0, [1.0, 2.0], lr=0.1, switch_step=0), [0.9, 0.65], rtol=1e-13)
    np.testing.assert_allclose(_run("tmsgd", 1.0, [1.0, 2.0], lr=0.1, multistep=True), [0.9, 0.65], rtol=1e-13)
    np.testing.assert_allclose(
        _run("tmsgdm", 1.0, [1.0, 2.0], lr=0.1, momentum=0.5, switch_step=1), [0.9, 0.6], rtol=1e-13
    )


# ----------------------------------------------------------------------------- WGD, paper 003
def test_wgd_means_by_hand() -> None:
    g = np.array([[1.0, 3.0], [5.0, 11.0]])
    np.testing.assert_array_equal(R.wgd_filter(g), [[-1.0, 1.0], [-3.0, 3.0]])  # rows minus row means 2, 8
    np.testing.assert_array_equal(R.wgd_kernel(g), [[-2.0, -4.0], [2.0, 4.0]])  # kernels minus mean kernel (3, 7)


@pytest.mark.parametrize("shape", [(5, 3, 3, 3), (4, 2, 1, 5), (6, 7), (3, 2, 4)])
def test_wgd_means_are_zero_along_the_stated_axes(shape: tuple) -> None:
    g = np.random.default_rng(2).normal(loc=3.0, size=shape)
    f, k = R.wgd_filter(g), R.wgd_kernel(g)
    np.testing.assert_allclose(f.mean(axis=tuple(range(1, len(shape)))), 0.0, atol=1e-14)  # per output filter
    np.testing.assert_allclose(k.mean(axis=0), 0.0, atol=1e-14)  # over the P kernels
    assert not np.allclose(f.mean(axis=0), 0.0) and not np.allclose(k.mean(axis=tuple(range(1, len(shape)))), 0.0)
    np.testing.assert_allclose(R.wgd_filter(f), f, atol=1e-14)  # projections: idempotent
    np.testing.assert_allclose(R.wgd_kernel(k), k, atol=1e-14)


def test_wgd_leaves_biases_alone_and_folds_weight_decay_first() -> None:
    b = np.array([1.0, 2.0, 4.0])
    np.testing.assert_array_equal(R.wgd_filter(b), b)
    np.testing.assert_array_equal(R.wgd_kernel(b), b)
    init, update, _ = R.REFERENCES["wgd-sgd"]
    theta = np.arange(8.0).reshape(2, 1, 2, 2)
    g = np.ones_like(theta)  # centralizes to zero: only the decay term λθ is left, then centralized
    new, _ = update(init(theta), theta, g, lr=1.0, weight_decay=0.5)
    np.testing.assert_allclose(theta - new, 0.5 * R.wgd_filter(theta), atol=1e-15)
    new_b, _ = update(init(b), b, np.ones(3), lr=1.0, weight_decay=0.5)  # 1-D: plain SGD with decay
    np.testing.assert_allclose(b - new_b, 1.0 + 0.5 * b, atol=1e-15)


# ----------------------------------------------------------------------------- conventions
def test_nag_paper_form_equals_torch_form_at_the_lookahead_point() -> None:
    """Paper 003 eq. 5 (gradient at x − m·v) and torch's form (gradient at θ) on f = ½xᵀAx: torch's
    θ_k is the paper's look-ahead point x_k − m·v_{k−1}."""
    A = np.array([[3.0, 0.5], [0.5, 1.0]])
    lr, mu = 0.1, 0.8
    x, ps = np.array([1.0, -2.0]), R.momentum_init(np.zeros(2))
    th, ts = x.copy(), R.momentum_init(np.zeros(2))
    for _ in range(30):
        look = R.nag_lookahead(ps, x, momentum=mu)
        np.testing.assert_allclose(th, look, rtol=1e-12, atol=1e-14)
        x, ps = R.nag_update(ps, x, A @ look, lr=lr, momentum=mu)
        th, ts = R.nag_update(ts, th, A @ th, lr=lr, momentum=mu, convention="torch")
    assert np.linalg.norm(th) < 0.1  # and it does converge


def test_sgdm_conventions_agree_at_constant_lr_only() -> None:
    rng = np.random.default_rng(3)
    grads = list(rng.normal(size=(6, 3)))
    p = _run("sgdm", np.zeros(3), grads, lr=0.1, momentum=0.9)
    t = _run("sgdm", np.zeros(3), grads, lr=0.1, momentum=0.9, convention="torch")
    np.testing.assert_allclose(p, t, rtol=1e-12)
    # an lr change: the paper's velocity keeps the old lr inside, torch rescales the whole buffer
    init, update, _ = R.REFERENCES["sgdm"]
    out = {}
    for conv in ("paper", "torch"):
        th, st = np.zeros(3), init(np.zeros(3))
        for k, g in enumerate(grads):
            th, st = update(st, th, g, lr=0.1 if k < 3 else 0.01, momentum=0.9, convention=conv)
        out[conv] = th
    assert not np.allclose(out["paper"], out["torch"], rtol=1e-3)


def test_radam_threshold_paper_4_torch_5() -> None:
    """β2 = 0.999: ρ_5 ≈ 4.996 lies between the two thresholds. Steps 1-4 are un-adapted in both
    conventions (θ_1 = θ_0 − lr·g_1 since m̂_1 = g_1); step 5 is rectified by the paper only."""
    rho_inf, rho5 = R.radam_rho(5, 0.999)
    assert 4.0 < rho5 < 5.0 and R.radam_rho(6, 0.999)[1] > 5.0 and rho_inf == pytest.approx(1999.0)
    rng = np.random.default_rng(4)
    grads = list(rng.normal(size=(6, 3)))
    paper = _run("radam", np.zeros(3), grads, lr=0.1)
    torch_ = _run("radam", np.zeros(3), grads, lr=0.1, convention="torch")
    np.testing.assert_allclose(paper[0], -0.1 * grads[0], rtol=1e-14)
    np.testing.assert_allclose(paper[:4], torch_[:4], rtol=1e-14)
    assert not np.allclose(paper[4], torch_[4], rtol=1e-3)
    m_hat = R.ema_sequence(grads[:5], 0.9, bias_correction=True)[-1]
    np.testing.assert_allclose(torch_[4] - torch_[3], -0.1 * m_hat, rtol=1e-12)  # torch: un-adapted at 5


def test_adadelta_first_step_by_hand() -> None:
    """Δx_1 = −sqrt(ε)/sqrt((1 − ρ)g² + ε)·g; torch's lr scales it without entering E[Δx²]."""
    g, rho, eps = 2.0, 0.9, 1e-6
    dx = -np.sqrt(eps) / np.sqrt((1 - rho) * g * g + eps) * g
    assert _run("adadelta", 0.0, [g], rho=rho, eps=eps)[0] == pytest.approx(dx, rel=1e-14)
    init, update, _ = R.REFERENCES["adadelta"]
    th, st = update(init(np.zeros(())), np.zeros(()), np.float64(g), lr=0.5, rho=rho, eps=eps)
    assert th == pytest.approx(0.5 * dx, rel=1e-14) and st.Edx2 == pytest.approx((1 - rho) * dx * dx, rel=1e-14)


# ----------------------------------------------------------------------------- contracts
@pytest.mark.parametrize("name", list(R.REFERENCES))
def test_updates_are_pure(name: str) -> None:
    """update() never modifies theta, g or the state it is given (optax style), for every rule."""
    init, update, defaults = R.REFERENCES[name]
    rng = np.random.default_rng(5)
    theta = rng.normal(size=(3, 2, 2, 2))
    state = init(theta)
    for _ in range(3):
        g = rng.normal(size=theta.shape)
        snap = (theta.copy(), g.copy(), [np.copy(x) for x in state])
        new_theta, new_state = update(state, theta, g, **defaults)
        np.testing.assert_array_equal(theta, snap[0])
        np.testing.assert_array_equal(g, snap[1])
        for before, after in zip(snap[2], state):
            np.testing.assert_array_equal(before, after)
        assert new_state.t == state.t + 1 and np.all(np.isfinite(new_theta))
        theta, state = new_theta, new_state


def test_table_covers_every_registered_optimizer() -> None:
    import optimlab

    # pytorch_optimizer's baselines and the Lookahead wrapper are that library's code, not optimlab's
    # update rules: no reference here (QHM is held to RSGDM by tests/test_field.py)
    infos = [i for i in optimlab.list_optimizers() if i.origin != "pytorch_optimizer" and "lookahead" not in i.wrappers]
    names = {info.name for info in infos}
    assert {"adamw", "wgd-radam-published", "wgd-nadam-published"} <= names
    assert names <= set(R.REFERENCES), sorted(names - set(R.REFERENCES))
    assert set(R.TORCH_CONVENTION) | {"sgdm-ema", "rsgdm", "tmsgd", "tmsgdm"} >= {n for n in names if "wgd" not in n}


def test_bad_input_names_the_culprit() -> None:
    init, update, _ = R.REFERENCES["adam"]
    th = np.zeros(2)
    with pytest.raises(ValueError, match="beta2"):
        update(init(th), th, np.ones(2), beta2=1.0)
    with pytest.raises(ValueError, match="lr"):
        R.gd_update(R.gd_init(th), th, np.ones(2), lr=-1.0)
    with pytest.raises(ValueError, match="convention"):
        R.radam_update(R.adam_init(th), th, np.ones(2), convention=cast(Any, "pytorch"))  # not a Convention
    with pytest.raises(ValueError, match="dampening"):
        R.sgdm_update(R.momentum_init(th), th, np.ones(2), dampening=0.1)
    with pytest.raises(ValueError, match="shape"):
        R.gd_update(R.gd_init(th), th, np.ones(3))
    with pytest.raises(ValueError, match="switch_step"):
        R.tmsgd_update(R.tmsgd_init(th), th, np.ones(2), switch_step=-1)
    with pytest.raises(ValueError, match="wgd_mode"):
        R.REFERENCES["wgd-adam"][1](init(th), th, np.ones(2), wgd_mode="gc")
    with pytest.raises(ValueError, match="Unknown reference 'adamw2'"):
        R.reference("adamw2")


def test_import_does_not_pull_torch() -> None:
    code = "import sys, optimlab.reference; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
