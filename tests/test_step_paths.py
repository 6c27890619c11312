"""One dispatch point per step (optimlab.optim.dispatch): every param group takes exactly one path, and
the optimizer reports which and why (step_paths()). The rows of tests/step_path_cases.py are checked
here against what the dispatch reports, so the path-equality tests exercise the paths they name."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import optimlab
from optimlab.optim import compiled, optimizer_info, start_multistep
from optimlab.optim.dispatch import PATHS, SMALL_TENSOR_NUMEL
from step_path_cases import PATH_CASES, PathCase

# a conv weight, a large tensor (the CPU default's per-tensor side), a linear weight and a bias
SHAPES = [(8, 4, 3, 3), (SMALL_TENSOR_NUMEL + 7,), (5, 7), (5,)]


def reported(case: PathCase, option: dict[str, Any], steps: int = 6) -> dict[int, Any]:
    """The last step's step_paths() of the row's optimizer built with `option`, on SHAPES in float64."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_() for s in SHAPES]
    allowed = set(optimizer_info(case.name).hparams)
    hp = {k: v for k, v in {**case.hparams, **option}.items() if k in allowed and k != "lr"}
    opt = optimlab.create_optimizer(case.name, params, lr=0.01, **hp)
    for k in range(steps):
        if k == 1:  # TM-SGD rows: the multi-step phase, which the kernels run
            start_multistep(opt)
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        opt.step()
    return opt.step_paths()


@pytest.mark.parametrize("case", PATH_CASES, ids=[f"{c.harness}-{c.id}" for c in PATH_CASES])
def test_each_row_takes_the_path_it_names_and_its_reference_the_other(case: PathCase) -> None:
    if compiled.load() is None and case.path == "compiled":
        pytest.skip("the compiled kernel did not build here")
    got = reported(case, case.option)
    assert [d.path for d in got.values()] == [case.path], got
    ref = reported(case, case.reference_option)
    assert [d.path for d in ref.values()] == [case.reference], ref
    assert all(d.reason for d in (*got.values(), *ref.values()))
    if case.wrapped:  # WGD's reference is the base's own step, and says so
        assert all(d.reason.startswith("wrapped: wgd_fused=False") for d in ref.values()), ref


def test_one_path_per_group_with_a_reason_that_says_why() -> None:
    """Two groups, one that torch's kernel takes and one it does not (bfloat16): each group takes one
    path, and the reason names the tensor the kernel declined."""
    a = torch.randn(8, 4, 3, 3, dtype=torch.float32, requires_grad=True)
    b = torch.randn(SMALL_TENSOR_NUMEL + 1, dtype=torch.float32, requires_grad=True)
    c = torch.randn(5, 7, dtype=torch.bfloat16, requires_grad=True)
    opt = optimlab.create_optimizer("rsgdm", [{"params": [a, b]}, {"params": [c, b.new_zeros(3).requires_grad_()]}])
    for p in (a, b, c):
        p.grad = torch.ones_like(p)
    opt.step()
    paths = opt.step_paths()
    assert set(paths) == {0, 1}  # group 1's float32 bias has no gradient: only c steps
    assert paths[0].path == "torch-fused" and "default" in paths[0].reason
    assert paths[1].path == "foreach"
    assert "torch-fused declined" in paths[1].reason and "bfloat16" in paths[1].reason
    assert all(d.path in PATHS for d in paths.values())


def test_explicit_flags_and_the_wgd_wrapper_report_their_reasons() -> None:
    p = torch.randn(8, 4, 3, 3, requires_grad=True)
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("sgdm-ema", {"foreach": True}, "foreach", "foreach=True"),
        ("tmsgd", {"fused": False}, "foreach", "every tensor under"),
        ("tmsgd", {}, "foreach", "torch-fused declined: SGD phase"),
        ("wgd-sgdm", {"wgd_fused": False}, "per-tensor", "wrapped: wgd_fused=False"),
        ("wgd-sgdm-ema", {"wgd_target": "update"}, "torch-fused", "base: default"),
        ("wgd-radam-published", {}, "per-tensor", "only a per-tensor loop"),
    ]
    for name, hp, path, words in cases:
        opt = optimlab.create_optimizer(name, [p], lr=0.01, **hp)
        p.grad = torch.ones_like(p)
        opt.step()
        (d,) = opt.step_paths().values()
        assert d.path == path and words in d.reason, (name, d)


def test_a_missing_compiled_kernel_is_named_in_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "load", lambda: None)
    p = torch.randn(SMALL_TENSOR_NUMEL + 1, dtype=torch.float64, requires_grad=True)
    opt = optimlab.create_optimizer("tmsgd", [p], lr=0.01, fused=True, switch_step=0)
    for _ in range(2):
        p.grad = torch.ones_like(p)
        opt.step()
    (d,) = opt.step_paths().values()
    assert d.path == "torch-fused" and "compiled kernel unavailable" in d.reason, d
