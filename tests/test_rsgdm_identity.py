"""RSGDM's one-buffer implementation is the paper's three-buffer recurrence (paper 000, eq. 3–5),
and from step 2 on it is torch's Nesterov SGD with lr·(1−β)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optimlab.optim import RSGDM

BETAS = [0.0, 0.5, 0.9, 0.99]


def literal_rsgdm(
    theta0: np.ndarray, noise: list[np.ndarray], lr: float, beta: float, wd: float, maximize: bool
) -> np.ndarray:
    """The paper's recurrences with all three buffers, in NumPy: m, z and the previous gradient."""
    theta = theta0.copy()
    m = np.zeros_like(theta)
    z = np.zeros_like(theta)
    g_prev = np.zeros_like(theta)  # not read at t = 1 (Δg_1 = 0)
    for t, eps in enumerate(noise, start=1):
        grad = eps + 0.5 * theta  # a gradient that depends on θ: f = 0.25·θ² + εᵀθ
        g = (-grad if maximize else grad) + wd * theta
        dg = np.zeros_like(g) if t == 1 else g - g_prev  # Δg_1 = 0
        m = beta * m + (1 - beta) * g
        z = beta * z + (1 - beta) * dg
        n = m + beta * z
        theta = theta - lr * n
        g_prev = g
    return theta


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("foreach", [False, True, None])  # None: the default, torch's fused kernel
@pytest.mark.parametrize(("wd", "maximize"), [(0.0, False), (1e-2, False), (1e-2, True)])
def test_one_buffer_equals_the_three_buffer_recurrence(
    beta: float, foreach: bool | None, wd: float, maximize: bool
) -> None:
    rng = np.random.default_rng(int(beta * 100) + 7)
    steps, lr = 250, 0.05
    theta0 = rng.standard_normal((3, 4))
    noise = [rng.standard_normal((3, 4)) for _ in range(steps)]
    expected = literal_rsgdm(theta0, noise, lr, beta, wd, maximize)

    p = torch.tensor(theta0, requires_grad=True)
    opt = RSGDM([p], lr=lr, beta=beta, weight_decay=wd, maximize=maximize, foreach=foreach)
    for eps in noise:
        p.grad = torch.from_numpy(eps) + 0.5 * p.detach()
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    assert set(opt.state[p]) == {"step", "momentum_buffer", "buffer_beta"} and opt.state[p]["step"] == steps


def test_first_step_moves_by_one_minus_beta_and_leaves_the_buffer_at_zero() -> None:
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = RSGDM([p], lr=0.1, beta=0.9)
    p.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(
        p.detach(),
        torch.tensor([1.0 - 0.1 * 0.1 * 3.0, -2.0 - 0.1 * 0.1 * 4.0], dtype=torch.float64),
        rtol=0,
        atol=1e-15,
    )
    assert torch.equal(opt.state[p]["momentum_buffer"], torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_from_step_two_it_is_torch_nesterov_with_lr_times_one_minus_beta(beta: float) -> None:
    """The recipe in RSGDM's docstring: after our step 1, copy the params into torch's model and
    set torch's momentum_buffer to zeros; every later step is then the same."""
    gen = torch.Generator().manual_seed(3)
    lr, steps = 0.05, 200
    ours = torch.randn(6, 5, generator=gen, dtype=torch.float64).requires_grad_()
    grads = [torch.randn(6, 5, generator=gen, dtype=torch.float64) for _ in range(steps)]
    opt = RSGDM([ours], lr=lr, beta=beta)
    ours.grad = grads[0].clone()
    opt.step()

    theirs = ours.detach().clone().requires_grad_()
    ref = torch.optim.SGD([theirs], lr=lr * (1 - beta), momentum=beta, nesterov=True)
    ref.state[theirs]["momentum_buffer"] = torch.zeros_like(theirs)
    for g in grads[1:]:
        ours.grad, theirs.grad = g.clone(), g.clone()
        opt.step()
        ref.step()
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-13)
    # RSGDM keeps torch's heavy-ball buffer (m̃/(1 − β))
    torch.testing.assert_close(
        opt.state[ours]["momentum_buffer"], ref.state[theirs]["momentum_buffer"], rtol=1e-10, atol=1e-12
    )


def test_torch_nesterov_differs_at_step_one_so_the_recipe_is_needed() -> None:
    p = torch.ones(3, dtype=torch.float64, requires_grad=True)
    q = p.detach().clone().requires_grad_()
    p.grad = q.grad = torch.ones(3, dtype=torch.float64)
    RSGDM([p], lr=0.1, beta=0.9).step()
    torch.optim.SGD([q], lr=0.1 * 0.1, momentum=0.9, nesterov=True).step()
    # torch moves (1 + β)·lr(1 − β)·g at step 1, RSGDM lr(1 − β)·g
    torch.testing.assert_close(1 - q.detach(), 1.9 * (1 - p.detach()), rtol=1e-12, atol=0)


def test_docstring_states_the_identity_and_the_recipe() -> None:
    import optimlab.optim.rsgdm as mod

    assert mod.__doc__ is not None and "m̃_t − m_{t−1}" in mod.__doc__
    doc = RSGDM.__doc__
    assert doc is not None
    assert "lr=γ(1−β), momentum=β, nesterov=True" in doc and "momentum_buffer`` to zeros" in doc


def one_buffer_rsgdm(theta0: np.ndarray, grads: list[np.ndarray], lr: float, betas: list[float]) -> np.ndarray:
    """The one-buffer form with a β_t per step, in NumPy: m̃_t = β_t m̃ + (1 − β_t) g_t (m̃_1 = 0),
    n_t = (1 − β_t) g_t + β_t m̃_t (n_1 = (1 − β_1) g_1)."""
    theta, mt = theta0.copy(), np.zeros_like(theta0)
    for t, (g, beta) in enumerate(zip(grads, betas), start=1):
        if t == 1:
            theta = theta - lr * (1 - beta) * g
            continue
        mt = beta * mt + (1 - beta) * g
        theta = theta - lr * ((1 - beta) * g + beta * mt)
    return theta


@pytest.mark.parametrize("foreach", [False, True, None])
def test_a_changed_beta_rescales_the_heavy_ball_buffer_once(foreach: bool | None) -> None:
    """The buffer is m̃/(1 − β): when β changes (a momentum schedule), it is rescaled so that m̃ carries on."""
    rng = np.random.default_rng(11)
    theta0 = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(90)]
    betas = [0.9] * 30 + [0.5] * 30 + [0.95] * 30
    p = torch.tensor(theta0, requires_grad=True)
    opt = RSGDM([p], lr=0.05, beta=0.9, foreach=foreach)
    for g, beta in zip(grads, betas):
        opt.param_groups[0]["beta"] = beta
        p.grad = torch.from_numpy(g)
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), one_buffer_rsgdm(theta0, grads, 0.05, betas), rtol=1e-10, atol=1e-12)
    assert opt.state[p]["buffer_beta"] == 0.95


def test_a_checkpoint_holding_the_older_ema_buffer_resumes_exactly() -> None:
    """Checkpoints written before RSGDM kept the heavy-ball buffer hold m̃ and no buffer_beta: loading one
    converts the buffer on the next step, and the run goes on as if never interrupted."""
    gen = torch.Generator().manual_seed(5)
    grads = [torch.randn(5, 2, generator=gen, dtype=torch.float64) for _ in range(60)]
    theta0 = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    whole = theta0.clone().requires_grad_()
    opt = RSGDM([whole], lr=0.1, beta=0.8)
    for g in grads:
        whole.grad = g.clone()
        opt.step()

    first = theta0.clone().requires_grad_()
    opt1 = RSGDM([first], lr=0.1, beta=0.8)
    for g in grads[:30]:
        first.grad = g.clone()
        opt1.step()
    legacy = opt1.state_dict()
    st = legacy["state"][0]
    st["momentum_buffer"] = st["momentum_buffer"] * (1 - 0.8)  # the old convention: m̃ itself
    del st["buffer_beta"]
    second = first.detach().clone().requires_grad_()
    opt2 = RSGDM([second], lr=0.1, beta=0.8)
    opt2.load_state_dict(legacy)
    for g in grads[30:]:
        second.grad = g.clone()
        opt2.step()
    torch.testing.assert_close(second, whole, rtol=1e-12, atol=1e-13)
