"""Every torch optimizer (torch's own and optimlab's) against its NumPy reference.

Both sides get the SAME gradient sequence (given, not computed from a loss: p.grad is set by hand
each step) on several tensors of random shapes, with random hyperparameters drawn by hypothesis
(derandomized, so CI is deterministic), in float64; the iterates must agree to 1e-10 relative after
every step. Where torch's convention differs from the paper's, the reference is run with
TORCH_CONVENTION[name] (convention="torch"); optimlab.reference.CONVENTION_NOTES says what differs:
momentum buffer start and lr placement (sgdm), look-ahead point (nag), ε outside the root (adagrad,
rmsprop, radam), lr factor (adadelta), bias-corrected max (amsgrad), ψ = 0.004 momentum-decay
schedule (nadam), rectification threshold ρ_t > 5 instead of 4 (radam).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer_cases import CASES, DECAY, _adam_kw, _rmsprop_kw
from optimlab import optim
from optimlab.reference import REFERENCES, TORCH_CONVENTION

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
)
RTOL, ATOL = 1e-10, 1e-12

LR = st.floats(1e-4, 0.5)
WD = st.one_of(st.just(0.0), st.floats(1e-4, 0.1))
SHAPE = st.lists(st.integers(1, 4), min_size=0, max_size=4).map(tuple)


@st.composite
def problems(draw: Any, shapes: Any = st.lists(SHAPE, min_size=1, max_size=3)) -> tuple[list, list]:  # noqa: B008 (a strategy is an immutable value)
    """(theta0 per tensor, gradients per step per tensor), some entries exactly zero sometimes."""
    shape_list = draw(shapes)
    n_steps = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-2, 1.0, 10.0]))
    zero_frac = draw(st.sampled_from([0.0, 0.3]))
    theta0 = [rng.normal(size=s) for s in shape_list]
    grads = []
    for _ in range(n_steps):
        gs = [scale * rng.normal(size=s) * (rng.random(size=s) >= zero_frac) for s in shape_list]
        grads.append(gs)
    return theta0, grads


@contextmanager
def float64_default() -> Iterator[None]:
    # torch keeps scalar state (step counts, NAdam's μ-product) in float32 unless the default dtype
    # is float64; NAdam's coefficients would then be off by ~1e-7 relative.
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def run_torch(
    make: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    theta0: list,
    grads: list,
    before_step: Callable[[int, Any], None] | None = None,
) -> list[list[np.ndarray]]:
    with float64_default():
        params = [torch.tensor(t, dtype=torch.float64, requires_grad=True) for t in theta0]
        opt = make(params)
        out = []
        for k, gs in enumerate(grads):
            for p, g in zip(params, gs):
                p.grad = torch.tensor(g, dtype=torch.float64)
            if before_step is not None:
                before_step(k, opt)
            opt.step()
            out.append([p.detach().numpy().copy() for p in params])
    return out


def run_reference(
    name: str, theta0: list, grads: list, hp: dict[str, Any], extra: Callable[[int], dict[str, Any]] | None = None
) -> list[list[np.ndarray]]:
    init, update, defaults = REFERENCES[name]
    thetas = [np.array(t, dtype=np.float64) for t in theta0]
    states = [init(t) for t in thetas]
    out = []
    for k, gs in enumerate(grads):
        kw = {**defaults, **hp, **(extra(k) if extra else {})}
        for i, g in enumerate(gs):
            thetas[i], states[i] = update(states[i], thetas[i], g, **kw)
        out.append([np.array(t) for t in thetas])
    return out


def assert_trajectories_equal(got: list, want: list) -> None:
    assert len(got) == len(want)
    for k, (gs, ws) in enumerate(zip(got, want)):
        for i, (a, b) in enumerate(zip(gs, ws)):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"step {k}, tensor {i}")


# ----------------------------------------------------------------------------- torch's own
@st.composite
def common(draw: Any) -> dict[str, Any]:
    return {"lr": draw(LR), "weight_decay": draw(WD), "maximize": draw(st.booleans())}


# name -> (torch constructor, strategy of extra reference hyperparameters, reference -> torch kwargs)
# name -> (torch constructor, strategy of extra reference hyperparameters, reference -> torch kwargs),
# from the columns of the one table (tests/optimizer_cases.py)
TORCH_CASES: dict[str, tuple[Callable, Any, Callable[[dict], dict]]] = {
    c.name: (c.torch_ctor, c.reference_hp, c.to_torch) for c in CASES if c.torch_ctor is not None
}


@pytest.mark.parametrize("name", list(TORCH_CASES))
@SETTINGS
@given(problem=problems(), base=common(), data=st.data(), foreach=st.booleans())
def test_torch_optimizer_matches_reference(name: str, problem: tuple, base: dict, data: Any, foreach: bool) -> None:
    """torch.optim's own optimizer == optimlab.reference[name] with TORCH_CONVENTION[name] (both
    torch code paths: foreach and single-tensor)."""
    cls, extra, to_torch = TORCH_CASES[name]
    hp = {**base, **data.draw(extra)}
    theta0, grads = problem
    got = run_torch(lambda p: cls(p, foreach=foreach, **to_torch(hp)), theta0, grads)
    want = run_reference(name, theta0, grads, {**hp, **TORCH_CONVENTION[name]})
    assert_trajectories_equal(got, want)


def test_torch_convention_is_needed() -> None:
    """The paper conventions really differ from torch where CONVENTION_NOTES says so (else the flag
    would be dead code): with the paper's form the same run moves elsewhere."""
    rng = np.random.default_rng(0)
    theta0 = [rng.normal(size=(3, 2))]
    grads = [[0.01 * rng.normal(size=(3, 2))] for _ in range(8)]
    cases: dict[str, tuple[Callable[..., torch.optim.Optimizer], dict[str, float]]] = {
        "adagrad": (torch.optim.Adagrad, {"lr": 0.1, "eps": 1e-3}),
        "rmsprop": (torch.optim.RMSprop, {"lr": 0.1, "rho": 0.9, "eps": 1e-3}),
        "amsgrad": (
            lambda p, **kw: torch.optim.Adam(p, amsgrad=True, **_adam_kw(kw)),
            {"lr": 0.1, "beta1": 0.9, "beta2": 0.999},
        ),
        "nadam": (lambda p, **kw: torch.optim.NAdam(p, **_adam_kw(kw)), {"lr": 0.1, "beta1": 0.9, "beta2": 0.999}),
        "radam": (lambda p, **kw: torch.optim.RAdam(p, **_adam_kw(kw)), {"lr": 0.1, "beta1": 0.9, "beta2": 0.999}),
    }
    for name, (cls, hp) in cases.items():
        torch_kw = _rmsprop_kw(hp) if name == "rmsprop" else hp
        got = run_torch(partial(cls, **torch_kw), theta0, grads)
        paper = run_reference(name, theta0, grads, hp)
        assert not np.allclose(got[-1][0], paper[-1][0], rtol=1e-6, atol=0), name


# ----------------------------------------------------------------------------- optimlab's own
@pytest.mark.parametrize("name", ["rsgdm", "sgdm-ema"])
@SETTINGS
@given(problem=problems(), base=common(), beta=DECAY, foreach=st.booleans())
def test_ema_family_matches_reference(name: str, problem: tuple, base: dict, beta: float, foreach: bool) -> None:
    """RSGDM (one-buffer Nesterov-EMA form) == the literal m, z, n recurrences; SGDMEMA == EMA."""
    cls = {"rsgdm": optim.RSGDM, "sgdm-ema": optim.SGDMEMA}[name]
    theta0, grads = problem
    got = run_torch(lambda p: cls(p, beta=beta, foreach=foreach, **base), theta0, grads)
    want = run_reference(name, theta0, grads, {**base, "beta": beta})
    assert_trajectories_equal(got, want)


@SETTINGS
@given(
    problem=problems(),
    base=common(),
    momentum=st.one_of(st.just(0.0), DECAY),
    foreach=st.sampled_from([None, False, True]),  # None: the multi-step phase on torch's fused SGD kernel
    switch=st.one_of(st.none(), st.integers(0, 8)),
    manual=st.one_of(st.none(), st.integers(0, 8)),
)
def test_tmsgd_matches_reference(
    problem: tuple, base: dict, momentum: float, foreach: bool | None, switch: int | None, manual: int | None
) -> None:
    """TMSGD (displacement form, scaled buffers) == W_{k+1} = 1.5W_k − W_{k−1} + 0.5W_{k−2} − ε·d_k
    with the iterate history, for switch steps 0, 1, ..., None, and a start_multistep() call before
    step `manual` (the harness's switch epoch)."""
    theta0, grads = problem
    name = "tmsgdm" if momentum else "tmsgd"

    def before_step(k: int, opt: Any) -> None:
        if manual is not None and k == manual:
            opt.start_multistep()

    got = run_torch(
        lambda p: optim.TMSGD(p, momentum=momentum, switch_step=switch, foreach=foreach, **base),
        theta0,
        grads,
        before_step,
    )
    want = run_reference(
        name,
        theta0,
        grads,
        {**base, "momentum": momentum, "switch_step": switch},
        extra=lambda k: {"multistep": manual is not None and k >= manual},
    )
    assert_trajectories_equal(got, want)


def test_tmsgd_long_run_matches_reference() -> None:
    """60 steps of TM-SGD-M after an early switch: the scaled-unit storage folds its buffers
    (every ~40 steps) without drifting from the literal iterate history."""
    rng = np.random.default_rng(1)
    theta0 = [rng.normal(size=(4, 3)), rng.normal(size=(5,))]
    grads = [[rng.normal(size=(4, 3)), rng.normal(size=(5,))] for _ in range(60)]
    for foreach in (None, False, True):
        got = run_torch(partial(optim.TMSGD, lr=0.05, momentum=0.9, switch_step=2, foreach=foreach), theta0, grads)
        want = run_reference("tmsgdm", theta0, grads, {"lr": 0.05, "momentum": 0.9, "switch_step": 2})
        assert_trajectories_equal(got, want)


# P >= 2 kernels and >= 2 entries per filter: WGD refuses a tensor it would zero (P = 1 in kernel mode)
WGD_SHAPES = st.tuples(
    st.tuples(st.integers(2, 4), st.integers(2, 3), st.integers(1, 3), st.integers(1, 3)),  # Conv2d weight
    st.tuples(st.integers(2, 4), st.integers(2, 3), st.integers(1, 3)),  # Conv1d weight
    st.tuples(st.integers(2, 3), st.integers(1, 2), st.integers(2, 3), st.integers(1, 2), st.integers(1, 2)),  # Conv3d
    st.tuples(st.integers(2, 4), st.integers(2, 4)),  # linear weight
    st.tuples(st.integers(1, 4)),  # bias
).map(list)


def _wgd_bases() -> dict[str, tuple[Callable, Any, Callable[[dict], dict]]]:
    return {
        "sgdm": (torch.optim.SGD, st.fixed_dictionaries({"momentum": DECAY}), dict),
        "adam": TORCH_CASES["adam"],
        "rsgdm": (optim.RSGDM, st.fixed_dictionaries({"beta": DECAY}), dict),
        "tmsgdm": (optim.TMSGD, st.fixed_dictionaries({"momentum": DECAY, "switch_step": st.integers(0, 6)}), dict),
    }


@pytest.mark.parametrize("base_name", ["sgdm", "adam", "rsgdm", "tmsgdm"])
@SETTINGS
@given(
    problem=problems(shapes=WGD_SHAPES),
    base=common(),
    data=st.data(),
    mode=st.sampled_from(["filter", "kernel"]),
    include_linear=st.booleans(),
    target=st.sampled_from(["gradient", "update"]),
    min_dim=st.sampled_from([3, 4]),
)
def test_wgd_matches_reference(
    base_name: str, problem: tuple, base: dict, data: Any, mode: str, include_linear: bool, target: str, min_dim: int
) -> None:
    """WGD(base) == reference wgd-<base>: target "gradient" folds coupled weight decay into the
    gradient BEFORE the mean is removed, target "update" centres the base's step; for weights with
    >= min_dim dims (Conv1d/2d/3d at 3, the authors' Conv2d/3d at 4), 2-D too with include_linear;
    1-D biases untouched."""
    cls, extra, to_torch = _wgd_bases()[base_name]
    hp = {**base, **data.draw(extra)}
    theta0, grads = problem
    got = run_torch(
        lambda p: optim.WGD(
            cls(p, **to_torch(hp)), mode=mode, include_linear=include_linear, target=target, min_dim=min_dim
        ),
        theta0,
        grads,
    )
    want = run_reference(
        f"wgd-{base_name}",
        theta0,
        grads,
        {
            **hp,
            **TORCH_CONVENTION.get(base_name, {}),
            "wgd_mode": mode,
            "wgd_include_linear": include_linear,
            "wgd_target": target,
            "wgd_min_dim": min_dim,
        },
    )
    assert_trajectories_equal(got, want)


@SETTINGS
@given(shape=SHAPE, seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(["filter", "kernel", "none"]))
def test_centralize_gradient_matches_reference(shape: tuple, seed: int, mode: str) -> None:
    """optimlab.optim.centralize_gradient(grad, mode) == wgd_filter / wgd_kernel, any ndim."""
    from optimlab.reference import wgd_filter, wgd_kernel

    g = np.random.default_rng(seed).normal(size=shape)
    got = optim.centralize_gradient(torch.tensor(g, dtype=torch.float64), mode).numpy()
    reference: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "filter": wgd_filter,
        "kernel": wgd_kernel,
        "none": np.copy,
    }
    want = reference[mode](g)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
