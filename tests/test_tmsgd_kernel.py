"""TM-SGD's default multi-step path: two passes, the second (buffer update and parameter step) on torch's
fused SGD kernel (torch.optim.sgd.sgd(fused=True), see optimlab.optim.tmsgd). It must give the numbers of
the explicit per-tensor path (foreach=False) up to rounding, take only tensors it can address correctly,
and stay off when the user picks a path (foreach=True/False, fused=False)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from optimlab.optim import TMSGD, _common, compiled
from optimlab.optim.dispatch import SMALL_TENSOR_NUMEL
from step_path_cases import PathCase, ids, rows

# (shape, param layout, grad layout): channels_last conv weights with a matching gradient and with a
# contiguous one (the kernel takes neither: it walks storage, and is slow on channels_last), a
# contiguous one, a tensor above SMALL_TENSOR_NUMEL (the per-tensor half of the default CPU split),
# small ones. On CPU the kernel takes the large contiguous one (TAKEN); small CPU tensors keep the
# multi-tensor passes.
CL, CF = torch.channels_last, torch.contiguous_format
GROUP0 = [((8, 4, 3, 3), CL, CL), ((6, 3, 3, 3), CL, CF), ((16, 8, 3, 3), CF, CF), ((SMALL_TENSOR_NUMEL + 7,), CF, CF)]
GROUP1 = [((8,), CF, CF), ((5, 4), CF, CF)]
TAKEN = [3]


def make_params(dtype: torch.dtype) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [
        torch.randn(s, generator=gen, dtype=dtype).contiguous(memory_format=fmt).requires_grad_()
        for s, fmt, _ in GROUP0 + GROUP1
    ]


def run(
    foreach: bool | None,
    dtype: torch.dtype = torch.float64,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    maximize: bool = False,
    steps: int = 160,
    lr: float = 0.05,
    lr_at: Callable[[int], float] = lambda k: 1.0 if k < 60 else (0.5 if k < 110 else 0.8),
    fused: bool | None = None,
) -> tuple[TMSGD, list[torch.Tensor], list[list[torch.Tensor]]]:
    """`steps` steps of TM-SGD (switch at step 10) on 0.15·θ² + noiseᵀθ (or its negative with maximize)
    in two param groups, with a LambdaLR schedule; returns the optimizer, params and the trajectory."""
    ps = make_params(dtype)
    n0 = len(GROUP0)
    groups: list[dict[str, Any]] = [{"params": ps[:n0]}, {"params": ps[n0:], "lr": lr / 2, "weight_decay": 0.0}]
    opt = TMSGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, maximize=maximize, switch_step=10)
    opt.param_groups[0]["foreach"] = opt.param_groups[1]["foreach"] = foreach
    opt.param_groups[0]["fused"] = opt.param_groups[1]["fused"] = fused
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(1)
    sign = -1.0 if maximize else 1.0
    traj = []
    for _ in range(steps):
        for p, (_, _, gfmt) in zip(ps, GROUP0 + GROUP1):
            noise = torch.randn(p.shape, generator=gen, dtype=dtype)
            p.grad = (sign * (noise + 0.3 * p.detach())).contiguous(memory_format=gfmt)
        opt.step()
        sched.step()
        traj.append([p.detach().clone() for p in ps])
    return opt, ps, traj


class KernelSpy:
    """Wraps torch's functional SGD as optimlab calls it (optimlab.optim._common.torch_sgd): records, per
    call, the data pointers of its first list (X, the parameters)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[int]] = []
        real = _common.torch_sgd

        def spy(params: list[torch.Tensor], *args: Any, **kwargs: Any) -> None:
            assert kwargs.get("fused") is True
            self.calls.append([t.data_ptr() for t in params])
            real(params, *args, **kwargs)

        monkeypatch.setattr(_common, "torch_sgd", spy)


@pytest.mark.parametrize("case", rows("tmsgd"), ids=ids(rows("tmsgd")))  # tests/step_path_cases.py
def test_default_multistep_equals_the_per_tensor_path_in_float64(case: PathCase) -> None:
    hp = case.hparams
    opt_d, ps_d, got = run(None, **hp)
    opt_f, ps_f, want = run(False, **hp)
    for k, (a, b) in enumerate(zip(got, want)):
        for i, (x, y) in enumerate(zip(a, b)):
            torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12, msg=f"step {k}, tensor {i}")
    for p, q in zip(ps_d, ps_f):
        for v, w in zip(opt_d.displacements(p), opt_f.displacements(q)):
            torch.testing.assert_close(v, w, rtol=1e-12, atol=1e-15)
        # the unit folding still bounds the scaled storage on the kernel path
        assert max(opt_d.state[p]["v_prev"].abs().max(), opt_d.state[p]["v_prev2"].abs().max()) < 2.0**31
    assert opt_d.is_multistep
    assert ps_d[0].is_contiguous(memory_format=torch.channels_last)


def test_default_multistep_is_close_to_the_per_tensor_path_in_float32() -> None:
    _, _, got = run(None, torch.float32, momentum=0.9, weight_decay=5e-4, lr=0.02)
    _, _, want = run(False, torch.float32, momentum=0.9, weight_decay=5e-4, lr=0.02)
    for a, b in zip(got[-1], want[-1]):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_default_path_calls_the_fused_kernel_once_per_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = KernelSpy(monkeypatch)
    steps = []
    ps = make_params(torch.float64)
    n0 = len(GROUP0)
    groups: list[dict[str, Any]] = [{"params": ps[:n0]}, {"params": ps[n0:], "lr": 0.025}]
    opt = TMSGD(groups, lr=0.05, switch_step=10)
    gen = torch.Generator().manual_seed(1)
    for k in range(14):
        for p, (_, _, gfmt) in zip(ps, GROUP0 + GROUP1):
            p.grad = (torch.randn(p.shape, generator=gen, dtype=torch.float64) + p.detach()).contiguous(
                memory_format=gfmt
            )
        before = len(spy.calls)
        ptrs = [p.data_ptr() for p in ps]
        opt.step()
        calls = spy.calls[before:]
        if k < 10:  # SGD phase: today's kernels
            assert calls == [], f"step {k}"
            continue
        # group 0's large tensor: one call; its small tensors and group 1 keep the multi-tensor passes,
        # the channels_last tensors never go in
        assert len(calls) == 1, f"step {k}: {len(calls)} calls"
        taken = sorted(x for c in calls for x in c)
        assert taken == sorted(ptrs[i] for i in TAKEN), f"step {k}"
        steps.append(k)
    assert steps == [10, 11, 12, 13]


@pytest.mark.parametrize("path", [{"foreach": False}, {"foreach": True}, {"fused": False}])
def test_an_explicit_path_does_not_call_the_fused_kernel(monkeypatch: pytest.MonkeyPatch, path: dict) -> None:
    """foreach=True/False keep their own kernels, and fused=False means no fused kernel at all."""
    spy = KernelSpy(monkeypatch)
    monkeypatch.setattr(compiled, "load", lambda: None)
    ps = [
        torch.randn(3, 4, dtype=torch.float64, requires_grad=True),
        torch.randn(SMALL_TENSOR_NUMEL + 1).requires_grad_(),
    ]
    opt = TMSGD(ps, lr=0.1, switch_step=0, **path)
    for _ in range(5):
        for p in ps:
            p.grad = torch.ones_like(p)
        opt.step()
    assert opt.is_multistep and spy.calls == []
    assert ps[0].grad is not None and ps[0].grad.is_contiguous()  # the default path would take these


def test_lr_zero_steps_match_and_move_nothing_from_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """lr = 0 for a while (1 − τ = 0: no gradient enters), then again lr > 0: the same numbers as the
    explicit path; and lr = 0 from the start moves nothing and makes no NaN."""

    def lr_at(k: int) -> float:
        return 0.0 if 30 <= k < 40 else 1.0

    spy = KernelSpy(monkeypatch)
    opt, _, got = run(None, momentum=0.9, lr=0.02, steps=50, lr_at=lr_at)
    assert len(spy.calls) == 50 - 10  # multi-step from step 10, one call a step (the large tensor)
    _, _, want = run(False, momentum=0.9, lr=0.02, steps=50, lr_at=lr_at)
    for a, b in zip(got, want):
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)
    assert not torch.equal(got[39][0], got[29][0])  # the multi-step history still moves at lr = 0

    opt, ps, traj = run(None, lr=0.0, steps=20)
    for p, p0 in zip(ps, make_params(torch.float64)):
        assert torch.equal(p.detach(), p0.detach())


def test_fused_true_without_its_kernel_falls_back_to_the_default_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """fused=True whose compiled kernel is missing (simulated) runs the default path, torch's kernel included."""
    monkeypatch.setattr(compiled, "load", lambda: None)
    spy = KernelSpy(monkeypatch)
    _, _, got = run(None, fused=True, steps=30)
    assert len(spy.calls) == 20
    _, _, want = run(None, steps=30)
    for x, y in zip(got[-1], want[-1]):
        assert torch.equal(x, y)
