"""The default step (foreach=None, fused=None) of sgdm-ema, rsgdm and WGD over the SGD family runs on
torch's own fused SGD kernel (optimlab.optim._common.torch_fused_sgd), which computes the same update
in one pass: held equal here to the explicit per-tensor and multi-tensor paths over many steps."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import optimlab
from optimlab.optim import _common
from step_path_cases import ids, rows

NAMES: list[tuple[str, dict[str, Any]]] = [(c.name, c.hparams) for c in rows("default")]  # tests/step_path_cases.py
IDS = ids(rows("default"))
# conv weights large and small (the default centres small ones as one stacked mean), a channels_last
# conv weight (the kernel takes strided tensors), a linear layer and biases
SHAPES = [(16, 8, 3, 3), (40, 16, 8, 8), (16,), (10, 16), (10,)]


def make_params(dtype: torch.dtype) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    ps = [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in SHAPES]
    ps[1] = ps[1].contiguous(memory_format=torch.channels_last)
    return [p.requires_grad_() for p in ps]


def train(name: str, hp: dict[str, Any], dtype: torch.dtype, steps: int, **path: Any) -> list[torch.Tensor]:
    ps = make_params(dtype)
    groups = [{"params": ps[:3]}, {"params": ps[3:], "lr": 0.02}]
    opt = optimlab.create_optimizer(name, groups, lr=0.05, **hp, **path)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=9, gamma=0.6)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in ps:  # the gradient laid out like its parameter, as autograd makes it
            p.grad = (
                torch.randn(p.shape, generator=gen, dtype=torch.float64)
                .to(dtype)
                .contiguous(memory_format=torch.channels_last if p is ps[1] else torch.contiguous_format)
            )
        opt.step()
        sched.step()
    return ps


class Spy:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = _common.torch_sgd

        def counted(*args: Any, **kwargs: Any) -> None:
            self.calls += 1
            real(*args, **kwargs)

        monkeypatch.setattr(_common, "torch_sgd", counted)


@pytest.mark.parametrize(("name", "hp"), NAMES, ids=IDS)
def test_default_equals_the_explicit_paths_in_float64_over_150_steps(
    name: str, hp: dict[str, Any], monkeypatch
) -> None:
    spy = Spy(monkeypatch)
    default = train(name, hp, torch.float64, 150)
    assert spy.calls >= 150  # at least one kernel call a step: the default really is torch's kernel
    spy.calls = 0
    loop = train(name, hp, torch.float64, 150, foreach=False)
    multi = train(name, hp, torch.float64, 150, foreach=True)
    assert spy.calls == 0  # an explicit foreach never takes it
    for a, b, c in zip(default, loop, multi):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)
        torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-13)
        assert not torch.equal(a, make_params(torch.float64)[0]) or a.shape != SHAPES[0]  # it moved


@pytest.mark.parametrize(("name", "hp"), NAMES[::2], ids=IDS[::2])
def test_default_equals_the_loop_in_float32(name: str, hp: dict[str, Any]) -> None:
    for a, b in zip(train(name, hp, torch.float32, 60), train(name, hp, torch.float32, 60, foreach=False)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["sgdm-ema", "rsgdm", "wgd-rsgdm"])
def test_fused_false_and_low_precision_params_keep_the_unfused_path(name: str, monkeypatch) -> None:
    spy = Spy(monkeypatch)
    train(name, {}, torch.float64, 5, fused=False)
    assert spy.calls == 0
    ps = train(name, {}, torch.bfloat16, 5)  # the kernel is used for float32/float64 only
    assert spy.calls == 0 and all(torch.isfinite(p.float()).all() for p in ps)


def test_beta_zero_keeps_the_buffer_tracking_the_gradient() -> None:
    """At β = 0 torch's kernel would leave the buffer alone; optimlab's loop keeps m = g (sgdm-ema) and
    b = g (rsgdm), so a later β > 0 starts from the right buffer."""
    for name in ("sgdm-ema", "rsgdm"):
        p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        opt = optimlab.create_optimizer(name, [p], lr=0.1, beta=0.0)
        for g in (1.0, 2.0):
            p.grad = torch.full((3,), g, dtype=torch.float64)
            opt.step()
        torch.testing.assert_close(opt.state[p]["momentum_buffer"], torch.full((3,), 2.0, dtype=torch.float64))


def test_a_gradient_laid_out_unlike_its_parameter_takes_the_loop(monkeypatch) -> None:
    """torch's kernel pairs elements by memory order: a channels_last parameter with a contiguous
    gradient must not reach it (it would update the wrong elements)."""
    spy = Spy(monkeypatch)
    p = torch.randn(4, 3, 2, 2, dtype=torch.float64).contiguous(memory_format=torch.channels_last).requires_grad_()
    q = p.detach().clone().requires_grad_()
    gen = torch.Generator().manual_seed(2)
    opt_p = optimlab.create_optimizer("rsgdm", [p], lr=0.1)
    opt_q = optimlab.create_optimizer("rsgdm", [q], lr=0.1, foreach=False)
    for _ in range(5):
        g = torch.randn(4, 3, 2, 2, generator=gen, dtype=torch.float64)  # contiguous
        p.grad, q.grad = g, g.clone()
        opt_p.step()
        opt_q.step()
    assert spy.calls == 0
    torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize(("name", "hp"), [("wgd-adam", {"weight_decay": 1e-3}), ("wgd-adamw", {"weight_decay": 1e-2})])
def test_wgd_over_adam_runs_torch_fused_adam_by_default(name: str, hp: dict[str, Any], monkeypatch) -> None:
    from optimlab.optim import wgd_step

    calls: list[bool] = []
    real = wgd_step.torch_adam

    def recording(*args: Any, **kwargs: Any) -> None:
        calls.append(kwargs["fused"])
        real(*args, **kwargs)

    monkeypatch.setattr(wgd_step, "torch_adam", recording)
    default = train(name, hp, torch.float64, 80)
    assert calls == [True] * 160  # one fused call per group and step
    generic = train(name, hp, torch.float64, 80, foreach=False)  # the wrapper over torch's own loop
    assert len(calls) == 160
    for a, b in zip(default, generic):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)
