"""fused=True (one compiled C++ pass over all tensors, optimlab.optim.compiled) ≡ the unfused path.

Over many steps, float64 and float32, two param groups with different hyperparameters, an lr
scheduler changing lr mid-run (with a check that nothing is rebuilt), resume across fused and
unfused optimizers in both directions, non-contiguous parameters (left to the unfused path), and the
fallback when the kernel cannot be built (one warning, unfused results).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypedDict

import pytest
import torch

import optimlab
from optimlab.optim import _common, compiled, start_multistep
from optimlab.optim.wgd import WGD
from step_path_cases import PathCase, grads_of, ids, rows

# each row (tests/step_path_cases.py) is run with fused=True and fused=False on the base
FUSED_CASES = rows("compiled")
SHAPES = [(8, 3, 3, 3), (8,), (6, 8, 1, 1), (5, 7), (5,), (), (4, 2, 5)]


class Tolerance(TypedDict, total=False):
    rtol: float
    atol: float


TOL: dict[torch.dtype, Tolerance] = {
    torch.float64: {"rtol": 1e-10, "atol": 1e-12},
    torch.float32: {"rtol": 1e-4, "atol": 1e-5},
}


@pytest.fixture(scope="module", autouse=True)
def kernel() -> None:
    """These tests compare the compiled kernel with the unfused path: it must build here (CI has g++)."""
    compiled.reset()
    assert compiled.available(), f"the fused CPU kernel did not build: {compiled._state['error']}"


def make_params(dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype).requires_grad_() for s in SHAPES]


def build(name: str, hp: dict[str, Any], params: list[torch.Tensor], fused: bool | None) -> torch.optim.Optimizer:
    """Two param groups (the second with its own lr), fused or not on the base (None: the default path)."""
    groups = [{"params": params[:4]}, {"params": params[4:], "lr": 0.02}]
    opt = optimlab.create_optimizer(name, groups, lr=0.05, fused=fused, **hp)
    if isinstance(opt, WGD):
        assert opt.uses_kernel() == (bool(fused) and compiled.available())
    return opt


def run(opt: torch.optim.Optimizer, params: list[torch.Tensor], steps: range, seed: int = 1) -> None:
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.7)
    gen = torch.Generator().manual_seed(seed + steps.start)
    for k in steps:
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
        if k == 2 and "multistep" in opt.param_groups[0] and opt.param_groups[0]["switch_step"] is None:
            start_multistep(opt)
        opt.step()
        sched.step()


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor], dtype: torch.dtype) -> None:
    for x, y in zip(a, b):
        torch.testing.assert_close(x.detach(), y.detach(), **TOL[dtype])
        if x.grad is not None:  # WGD writes the whitened gradient into p.grad on both paths
            torch.testing.assert_close(x.grad, y.grad, **TOL[dtype])


def state_tensors(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    out = []
    for st in opt.state.values():
        out += [v for k, v in sorted(st.items()) if torch.is_tensor(v)]
    return out


def spy_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Calls of a single-pass kernel: optimlab's compiled one (its kind), or torch's fused SGD (-1), which
    fused=True runs for sgdm-ema and rsgdm."""
    calls: list[int] = []
    real, real_torch = compiled.run, _common.torch_sgd

    def counting(kind: int, *args: Any, **kw: Any) -> None:
        calls.append(kind)
        real(kind, *args, **kw)

    def counting_torch(*args: Any, **kw: Any) -> None:
        calls.append(-1)
        real_torch(*args, **kw)

    monkeypatch.setattr(compiled, "run", counting)
    monkeypatch.setattr(_common, "torch_sgd", counting_torch)
    return calls


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", FUSED_CASES, ids=ids(FUSED_CASES))
def test_fused_equals_unfused_over_many_steps(case: PathCase, dtype: torch.dtype, monkeypatch) -> None:
    name, hp = case.name, case.hparams
    calls = spy_runs(monkeypatch)
    pf, pu = make_params(dtype), make_params(dtype)
    of, ou = build(name, hp, pf, True), build(name, hp, pu, False)
    run(of, pf, range(120))
    run(ou, pu, range(120))
    assert len(calls) >= 120, "the fused optimizer did not run the kernel"
    assert_same(pf, pu, dtype)
    for x, y in zip(state_tensors(of), state_tensors(ou)):
        torch.testing.assert_close(x, y, **TOL[dtype])
    assert [g["lr"] for g in of.param_groups] == [g["lr"] for g in ou.param_groups]
    assert [g["lr"] for g in of.param_groups] != [0.05, 0.02], "the scheduler did not change lr"


@pytest.mark.parametrize("direction", ["fused->unfused", "unfused->fused"])
@pytest.mark.parametrize(
    "name,hp", [("rsgdm", {}), ("tmsgdm", {"switch_step": 5}), ("wgd-sgdm", {}), ("wgd-amsgrad", {})]
)
def test_resume_across_fused_and_unfused(name: str, hp: dict, direction: str) -> None:
    first, second = direction == "fused->unfused", direction != "fused->unfused"
    ref_p = make_params(torch.float64)
    ref = build(name, hp, ref_p, first)
    run(ref, ref_p, range(30))
    run(ref, ref_p, range(30, 60))
    p = make_params(torch.float64)
    a = build(name, hp, p, first)
    run(a, p, range(30))
    b = build(name, hp, p, second)
    b.load_state_dict(a.state_dict())
    assert all(bool(g["fused"]) == second for g in b.param_groups), "load_state_dict changed the implementation"
    run(b, p, range(30, 60))
    assert_same(p, ref_p, torch.float64)


def test_lr_change_rebuilds_nothing(monkeypatch) -> None:
    params = make_params(torch.float32)
    opt = optimlab.create_optimizer("wgd-rsgdm", params, lr=0.1, fused=True, wgd_include_linear=True)
    assert isinstance(opt, WGD) and opt.uses_kernel()
    run(opt, params, range(3))

    def no_build() -> None:
        raise AssertionError("the kernel was built again")

    monkeypatch.setattr(compiled, "_build", no_build)
    for lr in (0.05, 0.01, 0.3):
        for g in opt.param_groups:
            g["lr"], g["beta"] = lr, lr
        run(opt, params, range(3, 5))


def test_non_contiguous_params_take_the_unfused_path() -> None:
    base = torch.randn(6, 8, 3, 3, dtype=torch.float64)
    pf = [base.clone().to(memory_format=torch.channels_last).requires_grad_(), torch.randn(4, 5).t().requires_grad_()]
    pu = [p.detach().clone().requires_grad_() for p in pf]
    for name in ("sgdm-ema", "tmsgdm", "wgd-rsgdm"):
        of = optimlab.create_optimizer(name, pf, lr=0.1, fused=True)
        ou = optimlab.create_optimizer(name, pu, lr=0.1, fused=False)
        for k in range(10):
            for a, b in zip(pf, pu):
                a.grad = torch.full_like(a, 0.1 * (k + 1))
                b.grad = a.grad.clone()
            of.step()
            ou.step()
        for a, b in zip(pf, pu):  # the unfused path rounds like the kernel in float64, not in float32
            tol: Tolerance = {"rtol": 1e-12, "atol": 1e-14} if a.dtype == torch.float64 else {}
            torch.testing.assert_close(a, b, **tol)


def test_failed_build_falls_back_with_one_warning(monkeypatch) -> None:
    def no_compiler() -> None:
        raise RuntimeError("Ninja is required to load C++ extensions (simulated)")

    compiled.reset()
    monkeypatch.setattr(compiled, "_build", no_compiler)
    try:
        pf, pu = make_params(torch.float64), make_params(torch.float64)
        with pytest.warns(RuntimeWarning, match="could not be built") as record:
            of = build("tmsgdm", {"switch_step": 5}, pf, True)
            of2 = build("wgd-sgdm", {}, make_params(torch.float64), True)
            run(of, pf, range(20))
            run(of2, of2.param_groups[0]["params"] + of2.param_groups[1]["params"], range(5))
        assert len([w for w in record if "could not be built" in str(w.message)]) == 1
        assert "simulated" in str(record[0].message)
        ou = build("tmsgdm", {"switch_step": 5}, pu, None)
        run(ou, pu, range(20))
        for a, b in zip(pf, pu):  # the fallback IS the default path: bit-equal
            assert torch.equal(a, b)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            run(of, pf, range(20, 22))  # no second warning
    finally:
        compiled.reset()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"fused": True, "foreach": True}, "cannot both"),
        ({"fused": "yes"}, "Invalid fused"),
    ],
)
def test_fused_bad_arguments(kwargs: dict, match: str) -> None:
    for name in ("sgdm-ema", "rsgdm", "tmsgd"):
        with pytest.raises(ValueError, match=match):
            optimlab.create_optimizer(name, make_params(torch.float32), lr=0.1, **kwargs)


@pytest.mark.parametrize("make", [lambda: torch.zeros(3, dtype=torch.float16, requires_grad=True)])
def test_fused_refuses_unsupported_dtype_before_stepping(make: Callable[[], torch.Tensor]) -> None:
    with pytest.raises(ValueError, match=r"float16.*fused=False"):
        optimlab.create_optimizer("rsgdm", [make()], lr=0.1, fused=True)
    with pytest.raises(ValueError, match=r"float16.*fused=False"):
        optimlab.create_optimizer("tmsgd", [make()], lr=0.1, fused=True)


def test_fused_sgdm_ema_and_rsgdm_need_no_build(monkeypatch) -> None:
    """Their fused=True is torch's fused SGD kernel: it steps without building optimlab's."""

    def no_build() -> None:
        raise AssertionError("optimlab's kernel was built")

    compiled.reset()
    monkeypatch.setattr(compiled, "_build", no_build)
    try:
        for name in ("sgdm-ema", "rsgdm"):
            params = make_params(torch.float32)
            run(optimlab.create_optimizer(name, params, lr=0.1, fused=True), params, range(3))
    finally:
        compiled.reset()


def test_fused_step_is_parallel_safe_with_two_threads() -> None:
    """Many small tensors and one large one, 2 intra-op threads: same results as 1 thread (chunking)."""
    shapes = [(3, 4)] * 50 + [(300, 200, 3)]
    out = []
    for threads in (1, 2):
        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            gen = torch.Generator().manual_seed(3)
            ps = [torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_() for s in shapes]
            opt = optimlab.create_optimizer("wgd-rsgdm", ps, lr=0.1, fused=True, wgd_include_linear=True)
            run(opt, ps, range(5))
            out.append(ps)
        finally:
            torch.set_num_threads(old)
    for a, b in zip(*out):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "name,hp", [("sgdm-ema", {}), ("rsgdm", {"weight_decay": 1e-3}), ("tmsgdm", {"switch_step": 2})]
)
def test_default_cpu_split_is_bit_equal_to_the_per_tensor_loop(name: str, hp: dict) -> None:
    """foreach=None, fused=False on CPU: small tensors as multi-tensor ops, large ones per tensor — the
    same numbers. (fused=None would take torch's fused kernels instead: tests/test_torch_fused_default.py.)"""
    from optimlab.optim.dispatch import SMALL_TENSOR_NUMEL, split_paths

    shapes = [(SMALL_TENSOR_NUMEL,), (3, 5), (7,), (SMALL_TENSOR_NUMEL // 4, 5)]
    runs = []
    for foreach in (None, False, True):
        gen = torch.Generator().manual_seed(0)
        ps = [torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_() for s in shapes]
        opt = optimlab.create_optimizer(name, ps, lr=0.05, foreach=foreach, fused=False, **hp)
        run(opt, ps, range(40))
        runs.append(ps)
    for a, b, c in zip(*runs):
        assert torch.equal(a, b) and torch.equal(a, c)
    paths = split_paths(None, runs[0], grads_of(runs[0]))
    assert [(f, len(ps)) for f, ps, _ in paths] == [(True, 2), (False, 2)]
