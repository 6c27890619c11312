"""WGD's own step (whiten tensor i, then update it: optimlab.optim.wgd_step) against the generic
wrapper (fold every gradient, centre every gradient, then the base's step): the same numbers."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from optimlab.optim import WGD, create_optimizer
from step_path_cases import grads_of, ids, rows

# Conv1d, Conv2d and Linear layers with their biases (what a user's model hands WGD), and one conv
# weight of SMALL_TENSOR_NUMEL elements: the fused step runs the small tensors as multi-tensor ops
# and the large one per tensor, so both are held equal to the generic path
SHAPES = [(6, 4, 3), (6,), (8, 4, 3, 3), (8,), (8, 4, 3, 3), (5, 7), (5,), (64, 32, 4, 4), (5, 7)]
# (repeated shapes: the small gradients of one shape are centred as one stacked reduction)

CONFIGS: list[tuple[str, str, dict[str, Any]]] = [(c.id, c.name, c.hparams) for c in rows("wgd-own")]
IDS = ids(rows("wgd-own"))  # the rows of tests/step_path_cases.py
# On the default path the fused step runs torch's SGD or Adam update with torch's fused kernel, the
# generic path with torch's per-tensor loop (their CPU default): the same arithmetic, rounded
# differently (a few ulps a step in float64). optimlab's bases run the same kernel on both paths.
TORCH_BASES = {"wgd-sgd", "wgd-sgdm", "wgd-nag", "wgd-adam", "wgd-adamw", "wgd-amsgrad"}


def bit_equal(name: str, hp: dict[str, Any]) -> bool:
    return name not in TORCH_BASES or hp.get("foreach") is False


def make_params(dtype: torch.dtype) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype).requires_grad_() for s in SHAPES]


def groups(params: list[torch.Tensor]) -> list[dict[str, Any]]:
    """Two groups: the conv layers with the config's settings, the linear layer with its own lr,
    weight decay and WGD mode (kernel), so each group's settings reach its own tensors."""
    return [{"params": params[:5]}, {"params": params[5:], "lr": 0.003, "weight_decay": 2e-2, "wgd_mode": "kernel"}]


def set_grads(params: list[torch.Tensor], step: int) -> None:
    gen = torch.Generator().manual_seed(1000 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)


def build(name: str, params: list[torch.Tensor], hp: dict[str, Any], fused: bool, split: bool) -> WGD:
    target = groups(params) if split else params
    opt = create_optimizer(name, target, lr=0.01, wgd_fused=fused, **hp)
    assert isinstance(opt, WGD) and opt.uses_fused_step() is fused
    return opt


def wgd_optimizer(name: str, params: list[torch.Tensor], **hp: Any) -> WGD:
    opt = create_optimizer(name, params, **hp)
    assert isinstance(opt, WGD), name
    return opt


def run(opt: WGD, params: list[torch.Tensor], steps: range) -> None:
    for t in steps:
        set_grads(params, t)
        opt.step()


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor], exact: bool | None) -> None:
    """exact: bit-equal; None: float64 rounding apart (rtol 1e-12); False: float32 allclose."""
    for x, y in zip(a, b):
        if exact:
            assert torch.equal(x.detach(), y.detach()), (x - y).abs().max()
        elif exact is None:
            torch.testing.assert_close(x.detach(), y.detach(), rtol=1e-12, atol=1e-14)
        else:
            torch.testing.assert_close(x.detach(), y.detach(), rtol=1e-5, atol=1e-6)


def state_tensors(opt: WGD, params: list[torch.Tensor]) -> list[torch.Tensor]:
    return [v for p in params for v in opt.state[p].values() if torch.is_tensor(v)]


@pytest.mark.parametrize(("cid", "name", "hp"), CONFIGS, ids=IDS)
@pytest.mark.parametrize("split", [False, True], ids=["one-group", "two-groups"])
def test_fused_equals_generic_float64_over_200_steps(cid: str, name: str, hp: dict[str, Any], split: bool) -> None:
    pf, pg = make_params(torch.float64), make_params(torch.float64)
    fused, generic = build(name, pf, hp, True, split), build(name, pg, hp, False, split)
    for t in range(200):
        set_grads(pf, t)
        set_grads(pg, t)
        fused.step()
        generic.step()
        if t in (0, 1, 199):  # p.grad is whitened in place by both paths
            assert_same(grads_of(pf), grads_of(pg), exact=bit_equal(name, hp) or None)
    assert_same(pf, pg, exact=bit_equal(name, hp) or None)
    assert_same(state_tensors(fused, pf), state_tensors(generic, pg), exact=bit_equal(name, hp) or None)
    assert fused.state_dict()["param_groups"] == generic.state_dict()["param_groups"]
    assert not torch.equal(pf[2].detach(), make_params(torch.float64)[2])  # it moved


@pytest.mark.parametrize(("cid", "name", "hp"), CONFIGS, ids=IDS)
def test_fused_equals_generic_float32(cid: str, name: str, hp: dict[str, Any]) -> None:
    pf, pg = make_params(torch.float32), make_params(torch.float32)
    fused, generic = build(name, pf, hp, True, True), build(name, pg, hp, False, True)
    run(fused, pf, range(100))
    run(generic, pg, range(100))
    assert_same(pf, pg, exact=False)


@pytest.mark.parametrize(
    ("cid", "name", "hp"),
    [CONFIGS[2], CONFIGS[3], CONFIGS[7], CONFIGS[9]],
    ids=["sgdm", "sgdm-loop", "sgdm-ema", "rsgdm"],
)
def test_state_dict_resumes_across_the_two_paths(cid: str, name: str, hp: dict[str, Any]) -> None:
    p_ref = make_params(torch.float64)
    ref = build(name, p_ref, hp, False, True)
    run(ref, p_ref, range(60))
    for first, second in ((True, False), (False, True)):
        p1 = make_params(torch.float64)
        opt1 = build(name, p1, hp, first, True)
        run(opt1, p1, range(30))
        p2 = [p.detach().clone().requires_grad_() for p in p1]
        opt2 = build(name, p2, hp, second, True)
        opt2.load_state_dict(opt1.state_dict())
        run(opt2, p2, range(30, 60))
        assert_same(p2, p_ref, exact=bit_equal(name, hp) or None)
        assert_same(state_tensors(opt2, p2), state_tensors(ref, p_ref), exact=bit_equal(name, hp) or None)


def test_mode_none_group_and_closure_take_the_fused_path() -> None:
    pf, pg = make_params(torch.float64), make_params(torch.float64)

    def opt_for(ps: list[torch.Tensor], fused: bool) -> WGD:
        gs: list[dict[str, Any]] = [{"params": ps[:4]}, {"params": ps[4:], "wgd_mode": "none", "weight_decay": 1e-2}]
        return WGD(create_optimizer("rsgdm", gs, lr=0.01, beta=0.9), fused=fused)

    fused, generic = opt_for(pf, True), opt_for(pg, False)
    assert fused.uses_fused_step() and not generic.uses_fused_step()
    for t in range(50):
        for ps, opt in ((pf, fused), (pg, generic)):
            set_grads(ps, t)
            grad_before = grads_of(ps)[4].clone()
            assert opt.step(lambda t=t: torch.tensor(float(t))) == t
            assert torch.equal(grads_of(ps)[4], grad_before)  # mode "none": p.grad left alone
    assert_same(pf, pg, exact=True)


def test_fused_is_chosen_only_for_known_bases_and_per_tensor_groups() -> None:
    ps = make_params(torch.float32)
    assert wgd_optimizer("wgd-sgdm", ps).uses_fused_step()  # the default
    assert not wgd_optimizer("wgd-sgdm", ps, wgd_fused=False).uses_fused_step()
    assert wgd_optimizer("wgd-adam", ps).uses_fused_step()  # torch's fused Adam kernel, by default
    assert not wgd_optimizer("wgd-adam", ps, foreach=False).uses_fused_step()  # Adam: no per-tensor loop here
    assert not wgd_optimizer("wgd-radam", ps).uses_fused_step()  # generic wrapper for other bases
    assert not wgd_optimizer("wgd-tmsgd", ps).uses_fused_step()
    assert not wgd_optimizer("wgd-sgdm", ps, foreach=True).uses_fused_step()  # multi-tensor kernels kept
    assert not wgd_optimizer("wgd-rsgdm", ps, foreach=True).uses_fused_step()
    assert not wgd_optimizer("wgd-sgdm", ps, wgd_target="update").uses_fused_step()
    with pytest.raises(ValueError, match=r"fused=True needs a base.*NAdam"):
        create_optimizer("wgd-nadam", ps, wgd_fused=True)
    with pytest.raises(ValueError, match=r"fused='yes'"):
        create_optimizer("wgd-sgdm", ps, wgd_fused="yes")


def test_fused_refuses_sparse_gradients_like_the_generic_path() -> None:
    p = torch.zeros(4, 3, 2, requires_grad=True)
    opt = create_optimizer("wgd-sgdm", [p])
    p.grad = torch.zeros(4, 3, 2).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()
