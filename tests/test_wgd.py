"""WGD (paper 003): both centralization modes against explicit means, which tensors it touches,
weight decay folded before centralization, maximize, decoupled decay, and any base optimizer."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch

from optimlab.optim import RSGDM, SGDMEMA, TMSGD, WGD, centralize_gradient, create_optimizer


def explicit_filter(g: torch.Tensor) -> torch.Tensor:
    """Each output filter i minus the plain average of its entries (Gradient Centralization)."""
    out = g.clone()
    for i in range(g.shape[0]):
        out[i] = g[i] - g[i].sum() / g[i].numel()
    return out


def explicit_kernel(g: torch.Tensor) -> torch.Tensor:
    """Paper Eq. 11: every kernel minus μ = (1/P) Σ_i ∇J(i, ·), the mean of the layer's P kernels."""
    mu = sum(g[i] for i in range(g.shape[0])) / g.shape[0]
    return torch.stack([g[i] - mu for i in range(g.shape[0])])


@pytest.mark.parametrize("shape", [(8, 3, 3, 3), (5, 4, 1, 1), (6, 7)])
def test_filter_mode_subtracts_each_filters_mean(shape: tuple[int, ...]) -> None:
    g = torch.randn(shape, dtype=torch.float64)
    out = centralize_gradient(g, "filter")
    torch.testing.assert_close(out, explicit_filter(g), rtol=1e-12, atol=1e-14)
    sums = out.sum(dim=tuple(range(1, g.dim())))
    torch.testing.assert_close(sums, torch.zeros(shape[0], dtype=torch.float64), rtol=0, atol=1e-12)
    assert not torch.equal(out, g)


@pytest.mark.parametrize("shape", [(8, 3, 3, 3), (6, 7)])
def test_kernel_mode_subtracts_the_mean_kernel(shape: tuple[int, ...]) -> None:
    g = torch.randn(shape, dtype=torch.float64)
    out = centralize_gradient(g, "kernel")
    torch.testing.assert_close(out, explicit_kernel(g), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(out.sum(dim=0), torch.zeros(shape[1:], dtype=torch.float64), rtol=0, atol=1e-12)
    assert not torch.allclose(out, centralize_gradient(g, "filter"))


def test_one_dimensional_gradients_are_returned_unchanged_and_bad_modes_refused() -> None:
    g = torch.randn(5)
    assert torch.equal(centralize_gradient(g), g)
    with pytest.raises(ValueError, match=r"mode='mean'.*filter.*kernel.*none"):
        centralize_gradient(torch.randn(2, 2), mode="mean")


def model() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    shapes = [(4, 3, 3, 3), (4,), (5, 6), (5,)]  # conv weight, its bias, linear weight, its bias
    return [torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_() for s in shapes]


def set_grads(params: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    grads = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in params]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    return grads


@pytest.mark.parametrize(("mode", "include_linear"), [("filter", False), ("kernel", False), ("filter", True)])
def test_plain_sgd_step_touches_only_4d_weights_or_2d_too_when_asked(mode: str, include_linear: bool) -> None:
    params = model()
    before = [p.detach().clone() for p in params]
    opt = WGD(torch.optim.SGD(params, lr=0.1), mode=mode, include_linear=include_linear)
    grads = set_grads(params, 1)
    opt.step()
    explicit = explicit_filter if mode == "filter" else explicit_kernel
    expected_dirs = [explicit(grads[0]), grads[1], explicit(grads[2]) if include_linear else grads[2], grads[3]]
    for p, b, d in zip(params, before, expected_dirs):
        torch.testing.assert_close(p.detach(), b - 0.1 * d, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(params[0].grad, explicit(grads[0]))  # p.grad is modified in place
    assert params[1].grad is not None and torch.equal(params[1].grad, grads[1])


@pytest.mark.parametrize("maximize", [False, True])
def test_coupled_weight_decay_is_folded_in_before_centralization(maximize: bool) -> None:
    params = model()
    before = [p.detach().clone() for p in params]
    opt = WGD(torch.optim.SGD(params, lr=0.1, weight_decay=0.05, maximize=maximize))
    grads = set_grads(params, 2)
    opt.step()
    sign = -1.0 if maximize else 1.0
    # the base must step on centralize(±∇ + λθ): decay inside the mean, sign flip before the decay
    effective = [sign * g + 0.05 * b for g, b in zip(grads, before)]
    effective[0] = explicit_filter(effective[0])
    for p, b, e in zip(params, before, effective):
        torch.testing.assert_close(p.detach(), b - 0.1 * e, rtol=1e-12, atol=1e-14)
    assert opt.param_groups[0]["weight_decay"] == 0.05, "base weight_decay restored after the step"
    # decay after centralization would differ (the mean of θ is not removed): the order matters
    wrong = explicit_filter(sign * grads[0]) + 0.05 * before[0]
    assert not torch.allclose(params[0].detach(), before[0] - 0.1 * wrong)


@pytest.mark.parametrize(
    "make_base",
    [
        lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
        lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
        lambda ps: create_optimizer("lion", ps, lr=0.01, weight_decay=0.1),  # pytorch_optimizer: weight_decouple
    ],
    ids=["AdamW", "Adam-decoupled", "Lion"],
)
def test_decoupled_decay_centralizes_the_raw_gradient(make_base: Callable) -> None:
    params = model()
    ref_params = [p.detach().clone().requires_grad_() for p in params]
    opt, ref = WGD(make_base(params)), make_base(ref_params)
    for t in range(3):
        grads = set_grads(params, 10 + t)
        for rp, g in zip(ref_params, grads):
            rp.grad = explicit_filter(g) if g.dim() == 4 else g.clone()
        opt.step()
        ref.step()
    for p, r in zip(params, ref_params):
        torch.testing.assert_close(p, r, rtol=1e-12, atol=1e-14)


BASES = {
    "SGD": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=5e-4),
    "Adam": lambda ps: torch.optim.Adam(ps, lr=0.01, eps=1e-10, weight_decay=5e-4),
    "NAdam": lambda ps: torch.optim.NAdam(ps, lr=0.01, eps=1e-10, weight_decay=5e-4),
    "RAdam": lambda ps: torch.optim.RAdam(ps, lr=0.01, eps=1e-10, weight_decay=5e-4),
    "RSGDM": lambda ps: RSGDM(ps, lr=0.05, beta=0.9, weight_decay=5e-4),
    "SGDMEMA": lambda ps: SGDMEMA(ps, lr=0.05, beta=0.9, weight_decay=5e-4),
    "TMSGD": lambda ps: TMSGD(ps, lr=0.05, momentum=0.9, weight_decay=5e-4, switch_step=2),
}


@pytest.mark.parametrize("name", list(BASES))
def test_wrapper_equals_base_stepping_on_explicitly_whitened_gradients(name: str) -> None:
    make_base = BASES[name]
    params = model()
    ref_params = [p.detach().clone().requires_grad_() for p in params]
    opt = WGD(make_base(params), mode="filter")
    ref = make_base(ref_params)
    for group in ref.param_groups:
        group["weight_decay"] = 0.0  # decay is folded into the explicit gradients below
    for t in range(5):
        grads = set_grads(params, 20 + t)
        for rp, g in zip(ref_params, grads):
            e = g + 5e-4 * rp.detach()
            rp.grad = explicit_filter(e) if e.dim() == 4 else e
        opt.step()
        ref.step()
    for p, r in zip(params, ref_params):
        torch.testing.assert_close(p, r, rtol=1e-11, atol=1e-13)


def test_wrapper_shares_groups_and_state_and_round_trips() -> None:
    params = model()
    opt = WGD(torch.optim.SGD(params[:2], lr=0.1, momentum=0.9), mode="kernel")
    assert opt.param_groups is opt.base.param_groups and opt.state is opt.base.state
    opt.add_param_group({"params": params[2:], "lr": 0.01})
    assert len(opt.base.param_groups) == 2 and opt.param_groups[1]["wgd_mode"] == "kernel"
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    set_grads(params, 3)
    opt.step()
    sched.step()
    assert opt.base.param_groups[0]["lr"] == 0.05 and opt.base.param_groups[1]["lr"] == 0.005
    saved = copy.deepcopy(opt.state_dict())
    clone = [p.detach().clone().requires_grad_() for p in params]
    opt2 = WGD(torch.optim.SGD([{"params": clone[:2]}, {"params": clone[2:]}], lr=0.1, momentum=0.9))
    opt2.load_state_dict(saved)
    assert opt2.param_groups is opt2.base.param_groups and opt2.param_groups[0]["wgd_mode"] == "kernel"
    for o, ps in ((opt, params), (opt2, clone)):
        set_grads(ps, 4)
        o.step()
    for a, b in zip(params, clone):
        assert torch.equal(a, b)


def test_sparse_gradients_are_refused() -> None:
    p = torch.zeros(2, 2, 1, 1, requires_grad=True)
    p.grad = torch.zeros(2, 2, 1, 1).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        WGD(torch.optim.SGD([p], lr=0.1)).step()


def test_documentation_names_the_mode_behind_the_papers_tables() -> None:
    import optimlab.optim.wgd as mod

    assert mod.__doc__ is not None and "produced the paper's tables" in mod.__doc__ and "Eq. 11" in mod.__doc__
    assert WGD.__doc__ is not None and "modified in place" in WGD.__doc__


# --- which tensors, which target, what is refused ---------------------------------------------------


def _step_of(opt_factory: Callable, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    module, x = module.double(), x.double()  # float64: the filter sums below are round-off, not cancellation
    weight = module.weight
    assert isinstance(weight, torch.nn.Parameter)  # every module of the cases below has one
    module.zero_grad()
    module(x).pow(2).sum().backward()
    before = weight.detach().clone()
    opt_factory([weight]).step()
    return before - weight.detach()


@pytest.mark.parametrize(
    ("module", "x", "min_dim", "centred"),
    [
        (torch.nn.Conv1d(3, 4, 5), torch.randn(2, 3, 9), 3, True),
        (torch.nn.Conv1d(3, 4, 5), torch.randn(2, 3, 9), 4, False),  # the authors' code: ndim > 3 only
        (torch.nn.Conv2d(3, 4, 3), torch.randn(2, 3, 6, 6), 3, True),
        (torch.nn.Conv3d(2, 3, 2), torch.randn(2, 2, 4, 4, 4), 4, True),
        (torch.nn.ConvTranspose2d(3, 4, 3), torch.randn(2, 3, 5, 5), 3, True),  # dim 0 = input channel
        (torch.nn.Linear(6, 5), torch.randn(2, 6), 3, False),
    ],
)
def test_conv_weights_of_every_rank_are_centred_per_dim0_slice(
    module: torch.nn.Module, x: torch.Tensor, min_dim: int, centred: bool
) -> None:
    step = _step_of(lambda ps: WGD(torch.optim.SGD(ps, lr=0.1), min_dim=min_dim), module, x)
    sums = step.sum(dim=tuple(range(1, step.dim()))).abs().max().item()
    assert (sums < 1e-12) == centred, f"{type(module).__name__} (min_dim={min_dim}): per-slice sums {sums:.3g}"


def test_include_linear_centres_linear_weights() -> None:
    step = _step_of(
        lambda ps: WGD(torch.optim.SGD(ps, lr=0.1), include_linear=True), torch.nn.Linear(6, 5), torch.randn(2, 6)
    )
    assert step.sum(dim=1).abs().max().item() < 1e-12


@pytest.mark.parametrize(
    ("shape", "mode", "match"),
    [
        ((1, 3, 3, 3), "kernel", r"mode='kernel' would zero.*params'\]\[0\] \(shape \(1, 3, 3, 3\)\).*single kernel"),
        ((4, 1, 1, 1), "filter", r"mode='filter' would zero.*\(shape \(4, 1, 1, 1\)\).*single entry"),
        ((1, 5), "kernel", r"shape \(1, 5\)"),
    ],
)
def test_a_tensor_wgd_would_zero_is_refused_by_name(shape: tuple[int, ...], mode: str, match: str) -> None:
    p = torch.zeros(shape, requires_grad=True)
    with pytest.raises(ValueError, match=match):
        WGD(torch.optim.SGD([p], lr=0.1), mode=mode, include_linear=True)
    ok = WGD(torch.optim.SGD([torch.zeros(4, 3, 3, 3, requires_grad=True)], lr=0.1), mode=mode)
    with pytest.raises(ValueError, match="would zero"):
        ok.add_param_group({"params": [p], "wgd_include_linear": True})
    # the way out the message names: a group with wgd_mode='none' leaves the tensor alone
    ok.add_param_group({"params": [p], "wgd_mode": "none"})
    p.grad = torch.ones(shape)
    ok.param_groups[0]["params"][0].grad = torch.zeros(4, 3, 3, 3)
    ok.step()
    assert torch.allclose(p.detach(), torch.full(shape, -0.1))


def test_update_target_centres_the_step_the_base_took() -> None:
    params = model()
    ref = [p.detach().clone().requires_grad_() for p in params]
    opt = WGD(torch.optim.Adam(params, lr=0.01, weight_decay=0.1), target="update")
    base = torch.optim.Adam(ref, lr=0.01, weight_decay=0.1)
    for t in range(4):
        grads = set_grads(params, 40 + t)
        for r, g in zip(ref, grads):
            r.grad = g.clone()
        before = [r.detach().clone() for r in ref]
        base.step()
        with torch.no_grad():  # explicit: conv weight moves by its Adam step minus each filter's mean
            ref[0].copy_(before[0] + explicit_filter(ref[0] - before[0]))
        opt.step()
        assert params[0].grad is not None and torch.equal(params[0].grad, grads[0]), (
            "target='update' leaves p.grad alone"
        )
    for p, r in zip(params, ref):
        torch.testing.assert_close(p, r, rtol=1e-12, atol=1e-14)


def test_complex_parameters_are_refused_by_every_optimizer() -> None:
    from optimlab.optim import list_optimizers

    c = torch.zeros(2, 3, 3, 3, dtype=torch.complex64, requires_grad=True)
    with pytest.raises(TypeError, match=r"WGD does not support complex parameters.*complex64"):
        WGD(torch.optim.SGD([c], lr=0.1))
    for info in list_optimizers():
        with pytest.raises(TypeError, match="complex"):
            create_optimizer(info.name, [torch.zeros(3, requires_grad=True), c])


def test_wgd_settings_are_validated() -> None:
    p = [torch.zeros(2, 2, 1, 1, requires_grad=True)]
    with pytest.raises(ValueError, match=r"wgd target='step'"):
        WGD(torch.optim.SGD(p, lr=0.1), target="step")
    with pytest.raises(ValueError, match=r"wgd min_dim=1"):
        create_optimizer("wgd-sgdm", p, wgd_min_dim=1)
