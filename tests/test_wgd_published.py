"""The WGD authors' published classes (github.com/hoseingh69/WGD), as optimlab runs them, against
NumPy references written from reading that code (optimlab.reference.published): float64, 240 random
steps, weight decay on, two param groups — the second holding a Conv1d and a Conv3d weight."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from optimlab.optim import WGD, NadamPublished, WGDRAdamPublished, create_optimizer
from optimlab.reference import REFERENCES

STEPS = 240
RTOL, ATOL = 1e-9, 1e-12
# group 0: Conv2d weight, its bias, a Linear weight; group 1: Conv1d weight [out, in, k], Conv3d weight
SHAPES = [[(4, 3, 3, 3), (4,), (5, 6)], [(4, 3, 5), (3, 2, 2, 2, 2)]]
GROUP_HP = [{"lr": 0.01, "weight_decay": 1e-2}, {"lr": 0.004, "weight_decay": 5e-3}]


def problem(seed: int = 0) -> tuple[list[list[np.ndarray]], list[list[list[np.ndarray]]]]:
    rng = np.random.default_rng(seed)
    theta0 = [[rng.normal(size=s) for s in shapes] for shapes in SHAPES]
    grads = [
        [[rng.normal(size=s) * (1.0 + 0.5 * np.sin(k / 7)) + 0.3 for s in shapes] for shapes in SHAPES]
        for k in range(STEPS)
    ]
    return theta0, grads


def run_torch(name: str, hp: dict[str, Any], theta0: list, grads: list) -> list[list[np.ndarray]]:
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        params = [[torch.tensor(t, requires_grad=True) for t in ts] for ts in theta0]
        groups = [{"params": ps, **g} for ps, g in zip(params, GROUP_HP)]
        opt = create_optimizer(name, groups, **hp)
        for gs in grads:
            for ps, g_group in zip(params, gs):
                for p, g in zip(ps, g_group):
                    p.grad = torch.tensor(g)
            opt.step()
        return [[p.detach().numpy().copy() for p in ps] for ps in params]
    finally:
        torch.set_default_dtype(old)


def run_reference(name: str, hp: dict[str, Any], theta0: list, grads: list) -> list[list[np.ndarray]]:
    init, update, defaults = REFERENCES[name]
    thetas = [[np.array(t) for t in ts] for ts in theta0]
    states = [[init(t) for t in ts] for ts in thetas]
    for gs in grads:
        for gi, g_group in enumerate(gs):
            kw = {**defaults, **hp, **GROUP_HP[gi]}
            for i, g in enumerate(g_group):
                thetas[gi][i], states[gi][i] = update(states[gi][i], thetas[gi][i], g, **kw)
    return thetas


def _adam(hp: dict[str, Any]) -> dict[str, Any]:
    hp = dict(hp)
    b1, b2 = hp.pop("betas")
    return {**hp, "beta1": b1, "beta2": b2}


CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any] | None]] = {
    # id: (registry name, torch hparams, reference hparams)
    "sgd": ("wgd-sgdm-published", {"momentum": 0.9}, {"momentum": 0.9}),
    "adam": ("wgd-adam-published", {"betas": (0.9, 0.99), "eps": 1e-8}, None),
    "adam2": ("wgd-adam2-published", {"betas": (0.9, 0.99), "eps": 1e-8}, None),
    "radam": ("wgd-radam-published", {"betas": (0.9, 0.999), "eps": 1e-8}, None),
    "radam-gc_loc": ("wgd-radam-published", {"betas": (0.8, 0.99), "eps": 1e-8, "target": "gradient"}, None),
    "nadam": ("wgd-nadam-published", {"betas": (0.9, 0.999), "eps": 1e-8}, None),
    "nadam-corrected": ("wgd-nadam-published", {"betas": (0.9, 0.99), "eps": 1e-8, "v_correction": "1-beta2^t"}, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_published_variant_matches_reference_from_the_code(case: str) -> None:
    name, hp, ref_hp = CASES[case]
    theta0, grads = problem()
    got = run_torch(name, hp, theta0, grads)
    want = run_reference(name, ref_hp if ref_hp is not None else _adam(hp), theta0, grads)
    for gi, (gs, ws) in enumerate(zip(got, want)):
        for i, (a, b) in enumerate(zip(gs, ws)):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"{case}: group {gi}, tensor {i}")
            assert not np.allclose(a, theta0[gi][i]), "the tensor moved"


def test_published_code_centres_conv3d_but_not_conv1d_optimlab_centres_both() -> None:
    """The authors' test is ndim > 3; optimlab's default (wgd_min_dim=3) takes every conv weight."""
    torch.manual_seed(0)
    conv1d, conv3d = torch.nn.Conv1d(3, 4, 5).double(), torch.nn.Conv3d(2, 3, 2).double()
    x1, x3 = torch.randn(2, 3, 9, dtype=torch.float64), torch.randn(2, 2, 4, 4, 4, dtype=torch.float64)
    for name, centred_1d in (("wgd-sgdm-published", False), ("wgd-sgdm", True)):
        for m in (conv1d, conv3d):
            m.zero_grad()
        (conv1d(x1).pow(2).sum() + conv3d(x3).pow(2).sum()).backward()
        before = [conv1d.weight.detach().clone(), conv3d.weight.detach().clone()]
        create_optimizer(name, [conv1d.weight, conv3d.weight], lr=0.1, momentum=0.0).step()
        steps = [b - w.detach() for b, w in zip(before, (conv1d.weight, conv3d.weight))]
        filter_sums = [s.sum(dim=tuple(range(1, s.dim()))).abs().max().item() for s in steps]
        assert filter_sums[1] < 1e-12, f"{name}: Conv3d step centred"
        assert (filter_sums[0] < 1e-12) == centred_1d, f"{name}: Conv1d step centred is {centred_1d}"


def test_radam_gc_loc_without_decay_is_the_papers_rule() -> None:
    """target='gradient' (their gc_loc=True) with λ = 0 is WGD(torch RAdam): centre g, then RAdam."""
    theta0, grads = problem(1)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        runs = []
        for make in (
            lambda ps: WGDRAdamPublished(ps, lr=0.01, target="gradient"),
            lambda ps: WGD(torch.optim.RAdam(ps, lr=0.01), min_dim=4),
        ):
            params = [torch.tensor(t, requires_grad=True) for t in theta0[0] + theta0[1]]
            opt = make(params)
            for gs in grads[:60]:
                for p, g in zip(params, gs[0] + gs[1]):
                    p.grad = torch.tensor(g)
                opt.step()
            runs.append(params)
        for a, b in zip(*runs):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    finally:
        torch.set_default_dtype(old)


def test_radam_default_centres_the_direction_and_writes_into_the_first_moment() -> None:
    """Un-rectified step 1 (ρ_1 < 5): d is exp_avg itself, so exp_avg becomes C((1−β1)g + λθ)."""
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    theta = w.detach().clone()
    g = torch.randn_like(w)
    w.grad = g.clone()
    opt = WGDRAdamPublished([w], lr=0.1, weight_decay=0.05)
    opt.step()
    d = 0.1 * g + 0.05 * theta  # (1 − β1)·g + λθ with β1 = 0.9
    d = d - d.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(opt.state[w]["exp_avg"], d)
    torch.testing.assert_close(w.detach(), theta - 0.1 / (1 - 0.9) * d)
    paper = WGD(torch.optim.RAdam([theta.clone().requires_grad_()], lr=0.1, weight_decay=0.05))
    paper.param_groups[0]["params"][0].grad = g.clone()
    paper.step()
    assert not torch.allclose(paper.param_groups[0]["params"][0], w), "the paper's Algorithm 2 differs"


def test_published_wgd_nadam_does_not_whiten_and_divides_v_by_beta2_power() -> None:
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    theta = w.detach().clone()
    g = torch.randn_like(w) + 1.0
    w.grad = g.clone()
    NadamPublished([w], lr=0.01).step()
    step = theta - w.detach()
    assert step.sum(dim=(1, 2, 3)).abs().min() > 1e-4, "no filter of the step is centred"
    # step 1: v' = (1−β2)g²/β2, so the step is sqrt(β2/(1−β2)) ≈ 31.6x the corrected Nadam's (ε aside)
    w2 = theta.clone().requires_grad_()
    w2.grad = g.clone()
    NadamPublished([w2], lr=0.01, eps=0.0, v_correction="1-beta2^t").step()
    w3 = theta.clone().requires_grad_()
    w3.grad = g.clone()
    NadamPublished([w3], lr=0.01, eps=0.0).step()
    ratio = (theta - w3.detach()) / (theta - w2.detach())
    torch.testing.assert_close(ratio, torch.full_like(ratio, (0.999 / 0.001) ** 0.5))


def test_corrected_published_nadam_is_torch_nadam() -> None:
    theta0, grads = problem(2)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        runs = []
        for make in (
            lambda ps: NadamPublished(ps, lr=0.01, weight_decay=1e-3, v_correction="1-beta2^t"),
            lambda ps: torch.optim.NAdam(ps, lr=0.01, weight_decay=1e-3, momentum_decay=4e-3),
        ):
            params = [torch.tensor(t, requires_grad=True) for t in theta0[0]]
            opt = make(params)
            for gs in grads:
                for p, g in zip(params, gs[0]):
                    p.grad = torch.tensor(g)
                opt.step()
            runs.append(params)
        for a, b in zip(*runs):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    finally:
        torch.set_default_dtype(old)


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (WGDRAdamPublished, {"lr": -1.0}, r"lr=-1\.0"),
        (WGDRAdamPublished, {"target": "direction"}, r"target='direction'"),
        (WGDRAdamPublished, {"betas": (0.9, 1.0)}, r"betas\[1\]=1\.0"),
        (WGDRAdamPublished, {"min_dim": 1}, r"min_dim=1"),
        (NadamPublished, {"v_correction": "none"}, r"v_correction='none'"),
        (NadamPublished, {"eps": -1e-8}, r"eps=-1e-08"),
    ],
)
def test_bad_hyperparameters_are_named(cls: type, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls([torch.zeros(3, requires_grad=True)], **kwargs)
