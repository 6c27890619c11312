"""TM-SGD / TM-SGD-M (paper 004): torch's SGD before the switch, the literal Taylor multi-step
recurrence W_{k+1} = 1.5W_k − W_{k−1} + 0.5W_{k−2} − lr·d_k after it, with a seamless history."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from optimlab.optim import TMSGD, WGD, create_optimizer, start_multistep


def grads_for(steps: int, shape: tuple[int, ...] = (4, 3), seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(steps)]


def literal_w(
    w0: torch.Tensor, gs: list[torch.Tensor], lr: float, switch: int, momentum: float = 0.0, wd: float = 0.0
) -> list[torch.Tensor]:
    """The paper's recurrence on W itself (W_{-1} = W_{-2} = W_0), d_k = g_k or torch's heavy ball."""
    ws = [w0.clone()]
    buf = None
    for k, noise in enumerate(gs):
        w = ws[-1]
        g = noise + 0.3 * w + wd * w  # gradient of 0.15·W² + noiseᵀW, plus coupled L2
        d = g
        if momentum:
            buf = g.clone() if buf is None else momentum * buf + g
            d = buf
        if k < switch:
            ws.append(w - lr * d)
        else:
            w_m1 = ws[-2] if len(ws) >= 2 else ws[0]
            w_m2 = ws[-3] if len(ws) >= 3 else ws[0]
            ws.append(1.5 * w - w_m1 + 0.5 * w_m2 - lr * d)
    return ws


def run_ours(
    w0: torch.Tensor, gs: list[torch.Tensor], switch_at_call: int | None = None, **hp: Any
) -> tuple[TMSGD, torch.Tensor, list[torch.Tensor]]:
    p = w0.clone().requires_grad_()
    opt = TMSGD([p], **hp)
    traj = [p.detach().clone()]
    for k, noise in enumerate(gs):
        if k == switch_at_call:
            opt.start_multistep()
        p.grad = noise + 0.3 * p.detach()
        opt.step()
        traj.append(p.detach().clone())
    return opt, p, traj


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("wd", [0.0, 5e-4])
@pytest.mark.parametrize("foreach", [False, True])
def test_sgd_phase_is_bit_identical_to_torch_sgd(momentum: float, wd: float, foreach: bool) -> None:
    gs = grads_for(25)
    w0 = torch.randn(4, 3, dtype=torch.float64)
    _, _, traj = run_ours(w0, gs, lr=0.05, momentum=momentum, weight_decay=wd, foreach=foreach)
    q = w0.clone().requires_grad_()
    ref = torch.optim.SGD([q], lr=0.05, momentum=momentum, weight_decay=wd, foreach=foreach)
    for k, noise in enumerate(gs):
        q.grad = noise + 0.3 * q.detach()
        ref.step()
        assert torch.equal(q.detach(), traj[k + 1]), f"step {k}"


@pytest.mark.parametrize("switch", [0, 1, 2, 7])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("foreach", [False, True])
def test_after_the_switch_it_is_the_literal_w_recurrence(switch: int, momentum: float, foreach: bool) -> None:
    gs = grads_for(220, seed=switch)
    w0 = torch.randn(4, 3, dtype=torch.float64)
    lr = 0.02 if momentum else 0.1
    expected = literal_w(w0, gs, lr, switch, momentum, wd=1e-3)
    opt, p, traj = run_ours(w0, gs, lr=lr, momentum=momentum, weight_decay=1e-3, switch_step=switch, foreach=foreach)
    for k, (a, b) in enumerate(zip(traj, expected)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=f"W_{k}")
    assert opt.is_multistep
    v_k, v_km1 = opt.displacements(p)
    torch.testing.assert_close(v_k, expected[-1] - expected[-2], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(v_km1, expected[-2] - expected[-3], rtol=1e-9, atol=1e-12)
    # the scaled storage is folded back to unit 1 before it grows large
    assert max(opt.state[p]["v_prev"].abs().max(), opt.state[p]["v_prev2"].abs().max()) < 2.0**31


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_start_multistep_equals_switch_step(momentum: float) -> None:
    gs = grads_for(40, seed=5)
    w0 = torch.randn(4, 3, dtype=torch.float64)
    opt_a, _, by_call = run_ours(w0, gs, switch_at_call=6, lr=0.05, momentum=momentum)
    _, _, by_step = run_ours(w0, gs, lr=0.05, momentum=momentum, switch_step=6)
    for a, b in zip(by_call, by_step):
        assert torch.equal(a, b)
    assert opt_a.is_multistep


def test_history_is_seamless_across_the_switch() -> None:
    """The first multi-step step uses the W_{k−1}, W_{k−2} reached by the SGD phase, not rest."""
    gs = grads_for(6, seed=9)
    w0 = torch.randn(4, 3, dtype=torch.float64)
    opt, p, traj = run_ours(w0, gs[:5], lr=0.1)
    assert not opt.is_multistep
    opt.start_multistep()
    assert opt.is_multistep
    p.grad = gs[5] + 0.3 * p.detach()
    g = p.grad.clone()
    opt.step()
    expected = 1.5 * traj[5] - traj[4] + 0.5 * traj[3] - 0.1 * g
    torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=1e-14)
    from_rest = traj[5] - 0.1 * g  # what forgetting the SGD-phase history would give
    assert not torch.allclose(p.detach(), from_rest)


def test_short_history_starts_from_rest() -> None:
    """switch_step=0: W_{-1} = W_{-2} = W_0, so step 0 is an SGD step and step 1 adds 0.5·v_1."""
    w0 = torch.randn(3, dtype=torch.float64)
    g0, g1 = torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    p = w0.clone().requires_grad_()
    opt = TMSGD([p], lr=0.1, switch_step=0)
    p.grad = g0
    opt.step()
    w1 = w0 - 0.1 * g0
    torch.testing.assert_close(p.detach(), w1, rtol=0, atol=1e-15)
    p.grad = g1
    opt.step()
    torch.testing.assert_close(p.detach(), w1 + 0.5 * (w1 - w0) - 0.1 * g1, rtol=1e-12, atol=1e-15)


def test_tmsgdm_sgd_phase_uses_torch_heavy_ball_buffer() -> None:
    opt = create_optimizer("tmsgdm", [torch.zeros(2, requires_grad=True)], lr=0.1)
    assert isinstance(opt, TMSGD)
    assert opt.defaults["momentum"] == 0.9 and not opt.is_multistep
    p = opt.param_groups[0]["params"][0]
    for g in (1.0, 2.0):
        p.grad = torch.full((2,), g)
        opt.step()
    torch.testing.assert_close(opt.state[p]["momentum_buffer"], torch.full((2,), 0.9 * 1.0 + 2.0))


def test_start_multistep_helper_on_tmsgd_wgd_and_others() -> None:
    ps = [torch.zeros(2, 2, 1, 1, requires_grad=True)]
    tm = TMSGD(ps, lr=0.1)
    assert start_multistep(tm) is True and tm.is_multistep
    base = TMSGD(ps, lr=0.1)
    wrapped = WGD(base)
    assert start_multistep(wrapped) is True and wrapped.base is base and base.is_multistep
    sgd = torch.optim.SGD(ps, lr=0.1)
    assert start_multistep(sgd) is False
    assert start_multistep(WGD(torch.optim.Adam(ps))) is False


def test_start_multistep_survives_state_dict_round_trip() -> None:
    p = torch.zeros(3, requires_grad=True)
    opt = TMSGD([p], lr=0.1)
    opt.start_multistep()
    p.grad = torch.ones(3)
    opt.step()
    fresh = TMSGD([p], lr=0.1)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.is_multistep
