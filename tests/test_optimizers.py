"""The torch.optim contract for every registered optimizer, driven by ONE table of configurations.

Each row of CASES is a registry name plus hyperparameters; every test below runs on every row (or
on the rows marked `ours`, for behaviour that only our own optimizers promise, e.g. foreach parity).
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch

from optimizer_cases import CASES, Case
from optimlab.optim import (
    RSGDM,
    SGDMEMA,
    TMSGD,
    WGD,
    NadamPublished,
    OptimizerInfo,
    WGDRAdamPublished,
    create_optimizer,
    list_optimizers,
    start_multistep,
)
from step_path_cases import PathCase, ids, rows


def _ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


def make(case: Case, params: Any, lr: float, **extra: Any) -> torch.optim.Optimizer:
    return create_optimizer(case.name, params, lr=lr, **{**case.hparams, **extra})


# --- problems -------------------------------------------------------------------------------------


def small_model(dtype: torch.dtype = torch.float32, seed: int = 0) -> list[torch.Tensor]:
    """A conv weight (4-D, what WGD whitens), a linear weight (2-D) and a bias (1-D)."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(4, 3, 3, 3), (5, 6), (4,)]
    return [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype).requires_grad_() for s in shapes]


def quadratic(params: list[torch.Tensor], seed: int = 1) -> Callable[[], torch.Tensor]:
    """f = Σ 0.5·a⊙(θ − θ*)² with curvatures a in [0.5, 2]; minimum 0."""
    gen = torch.Generator().manual_seed(seed)
    curv = [(0.5 + 1.5 * torch.rand(p.shape, generator=gen, dtype=torch.float64)).to(p.dtype) for p in params]
    target = [torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype) for p in params]

    def loss() -> torch.Tensor:
        total = sum((0.5 * a * (p - t) ** 2).sum() for p, a, t in zip(params, curv, target))
        assert isinstance(total, torch.Tensor)  # params is never empty
        return total

    return loss


def run(
    opt: torch.optim.Optimizer, params: list[torch.Tensor], loss_fn: Callable[[], torch.Tensor], steps: int
) -> float:
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(loss_fn())


def noisy_grads(params: list[torch.Tensor], step: int) -> None:
    """Deterministic pseudo-gradients: a quadratic's gradient plus step-seeded noise."""
    gen = torch.Generator().manual_seed(1000 + step)
    for p in params:
        p.grad = (p.detach() - 0.3) + 0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)


# --- descent ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_quadratic_loss_falls_5x_in_100_steps(case: Case) -> None:
    params = small_model()
    loss_fn = quadratic(params)
    start = float(loss_fn().detach())
    end = run(make(case, params, case.quad_lr), params, loss_fn, 100)
    assert end <= 0.2 * start, f"{case.id}: {start:.4g} -> {end:.4g}"


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_rosenbrock_loss_falls_4x_in_300_steps(case: Case) -> None:
    xy = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)

    def rosen() -> torch.Tensor:
        return (1 - xy[0]) ** 2 + 100 * (xy[1] - xy[0] ** 2) ** 2

    start = float(rosen().detach())
    end = run(make(case, [xy], case.rosen_lr), [xy], rosen, 300)
    assert end <= 0.25 * start, f"{case.id}: {start:.4g} -> {end:.4g}"


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_bfloat16_stays_finite_and_descends(case: Case) -> None:
    params = small_model(torch.bfloat16)
    if case.ours and case.hparams.get("fused"):  # optimlab's kernel is float32/float64: refused up front
        with pytest.raises(ValueError, match=r"bfloat16.*fused=False"):
            make(case, params, case.quad_lr)
        return
    loss_fn = quadratic(params)
    start = float(loss_fn().detach())
    end = run(make(case, params, case.quad_lr), params, loss_fn, 50)
    assert all(torch.isfinite(p).all() for p in params)
    assert all(p.dtype == torch.bfloat16 for p in params)
    assert end <= 0.5 * start, f"{case.id}: {start:.4g} -> {end:.4g}"


# --- state ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_state_dict_resume_is_bit_identical(case: Case) -> None:
    params = small_model(torch.float32)
    opt = make(case, params, case.quad_lr)
    for t in range(4):
        noisy_grads(params, t)
        opt.step()
    saved_state = copy.deepcopy(opt.state_dict())
    saved_params = [p.detach().clone() for p in params]
    for t in range(4, 10):  # crosses every switch_step in the table
        noisy_grads(params, t)
        opt.step()

    resumed = [p.clone().requires_grad_() for p in saved_params]
    opt2 = make(case, resumed, case.quad_lr)
    opt2.load_state_dict(saved_state)
    for t in range(4, 10):
        noisy_grads(resumed, t)
        opt2.step()
    for a, b in zip(params, resumed):
        assert torch.equal(a, b), case.id


@pytest.mark.parametrize("case", rows("contract"), ids=ids(rows("contract")))  # tests/step_path_cases.py
def test_foreach_equals_for_loop_in_float64(case: PathCase) -> None:
    """foreach ≡ per-tensor loop; for a fused=True row (which refuses foreach=True): fused ≡ unfused."""
    runs = []
    for option in (case.reference_option, case.option):
        params = small_model(torch.float64)
        hp = {**case.hparams, **option, "weight_decay": 1e-2, "maximize": False}
        opt = create_optimizer(case.name, params, lr=case.lr, **hp)
        for t in range(30):
            noisy_grads(params, t)
            opt.step()
        runs.append(params)
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


# --- torch.optim contract -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_step_lr_scheduler_halves_lr_without_warnings(case: Case) -> None:
    params = small_model()
    opt = make(case, params, 0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        for t in range(4):
            noisy_grads(params, t)
            opt.step()
            sched.step()
    inner = opt.base if isinstance(opt, WGD) else opt
    for group in inner.param_groups:
        assert group["lr"] == pytest.approx(0.01 * 0.25)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_param_groups_keep_their_own_hparams(case: Case) -> None:
    moving, frozen = small_model(seed=0), small_model(seed=1)
    opt = make(case, moving, case.quad_lr)
    opt.add_param_group({"params": frozen, "lr": 0.0})
    before = [p.detach().clone() for p in moving + frozen]
    for t in range(3):
        noisy_grads(moving + frozen, t)
        opt.step()
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["lr"] == 0.0
    for p, b in zip(frozen, before[3:]):
        assert torch.equal(p, b), "group with lr=0 moved"
    assert not any(torch.equal(p, b) for p, b in zip(moving, before[:3])), "group with lr>0 did not move"


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_params_without_grad_are_untouched(case: Case) -> None:
    params = small_model()
    opt = make(case, params, case.quad_lr)
    untouched = params[1].detach().clone()
    for t in range(3):
        noisy_grads(params, t)
        params[1].grad = None
        opt.step()
    assert torch.equal(params[1], untouched)
    if case.ours:  # (torch's Adagrad allocates all its state up front)
        assert not opt.state.get(params[1]), "state allocated for a parameter without grad"


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_maximize_of_minus_f_equals_minimize_of_f(case: Case) -> None:
    trajectories = []
    for maximize in (False, True):
        params = small_model(torch.float64)
        loss_fn = quadratic(params)
        opt = make(case, params, case.quad_lr, maximize=maximize, weight_decay=1e-2)
        for _ in range(10):
            opt.zero_grad()
            (-loss_fn() if maximize else loss_fn()).backward()
            opt.step()
        trajectories.append(params)
    for a, b in zip(*trajectories):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_step_with_closure_returns_the_loss_and_zero_grad_clears(case: Case) -> None:
    params = small_model()
    loss_fn = quadratic(params)
    opt = make(case, params, case.quad_lr)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    first = opt.step(closure)  # type: ignore[arg-type]  # torch's stub says closure -> float; torch takes the loss tensor
    assert torch.is_tensor(first) and float(first.detach()) == pytest.approx(float(quadratic(small_model())().detach()))
    opt.zero_grad()
    assert all(p.grad is None for p in params)


# --- validation -----------------------------------------------------------------------------------

INVALID = [
    (RSGDM, {"lr": -0.1}, ValueError, r"lr=-0\.1"),
    (RSGDM, {"lr": 0.1, "beta": 1.0}, ValueError, r"beta=1\.0"),
    (RSGDM, {"lr": 0.1, "beta": -0.1}, ValueError, r"beta=-0\.1"),
    (RSGDM, {"lr": 0.1, "weight_decay": -1e-4}, ValueError, r"weight_decay=-0\.0001"),
    (SGDMEMA, {"lr": -1.0}, ValueError, r"lr=-1\.0"),
    (SGDMEMA, {"lr": 0.1, "beta": 1.5}, ValueError, r"beta=1\.5"),
    (TMSGD, {"lr": 0.1, "momentum": 1.0}, ValueError, r"momentum=1\.0"),
    (TMSGD, {"lr": 0.1, "switch_step": -1}, ValueError, r"switch_step=-1"),
    (TMSGD, {"lr": 0.1, "switch_step": 2.5}, ValueError, r"switch_step=2\.5"),
    (TMSGD, {"lr": 0.1, "weight_decay": -1.0}, ValueError, r"weight_decay=-1\.0"),
]


@pytest.mark.parametrize(("cls", "kwargs", "exc", "match"), INVALID)
def test_invalid_hyperparameters_are_named(cls: type, kwargs: dict[str, Any], exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        cls([torch.zeros(3, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("cls", [RSGDM, SGDMEMA, TMSGD, WGDRAdamPublished, NadamPublished])
def test_bad_params_and_grads_are_refused(cls: type) -> None:
    with pytest.raises(ValueError, match=r"floating-point.*torch\.int64"):
        cls([torch.zeros(3, dtype=torch.long)], lr=0.1)
    with pytest.raises(TypeError, match="complex"):
        cls([torch.zeros(3, dtype=torch.complex64, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match=r"lr=-1"):
        cls([torch.zeros(3, requires_grad=True)], lr=0.1).add_param_group(
            {"params": [torch.zeros(2, requires_grad=True)], "lr": -1.0}
        )
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match=r"sparse gradients \(parameter of shape \(3,\)\)"):
        cls([p], lr=0.1).step()


def test_wgd_rejects_unknown_mode_and_non_optimizers() -> None:
    p = [torch.zeros(2, 2, 1, 1, requires_grad=True)]
    with pytest.raises(ValueError, match=r"wgd mode='channel'"):
        WGD(torch.optim.SGD(p, lr=0.1), mode="channel")
    with pytest.raises(ValueError, match=r"wgd mode='nope'"):
        create_optimizer("wgd-adam", p, wgd_mode="nope")
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        WGD(p)  # type: ignore[arg-type]


# --- registry -------------------------------------------------------------------------------------


def test_registry_lists_every_required_name_with_its_convention() -> None:
    infos = {i.name: i for i in list_optimizers()}
    assert set(infos) <= {c.name for c in CASES}, "every registered optimizer has a row in tests/optimizer_cases.py"
    assert {"sgdm-ema", "rsgdm", "tmsgd", "tmsgdm", "wgd-sgdm", "wgd-radam-published", "apollo"} <= set(infos)
    assert all(isinstance(i, OptimizerInfo) for i in infos.values())
    assert infos["sgdm"].convention == "heavy-ball" and infos["sgdm"].defaults["momentum"] == 0.9
    assert infos["sgdm-ema"].convention == "ema" and infos["rsgdm"].convention == "ema"
    assert infos["adam"].convention == "adaptive"
    assert infos["tmsgdm"].defaults["momentum"] == 0.9 and "heavy-ball" in infos["tmsgdm"].convention
    assert all("lr" in i.defaults for i in infos.values()), "every optimizer states its default lr"
    with pytest.raises(dataclasses.FrozenInstanceError):
        infos["rsgdm"].name = "x"  # type: ignore[misc]  # deliberately: the dataclass is frozen


def test_registry_builds_the_classes_it_promises() -> None:
    p = small_model()
    sgdm = create_optimizer("sgdm", p)
    assert type(sgdm) is torch.optim.SGD and sgdm.defaults["momentum"] == 0.9 and not sgdm.defaults["nesterov"]
    nag = create_optimizer("nag", p)
    assert nag.defaults["nesterov"] and nag.defaults["momentum"] == 0.9
    assert create_optimizer("amsgrad", p).defaults["amsgrad"]
    assert isinstance(create_optimizer("rsgdm", p, lr=0.01, beta=0.8), RSGDM)
    tm = create_optimizer("tmsgd", p)
    assert isinstance(tm, TMSGD) and tm.defaults["momentum"] == 0.0
    w = create_optimizer("wgd-amsgrad", p, wgd_mode="kernel", wgd_include_linear=True)  # dynamic wgd-<base>
    assert isinstance(w, WGD) and w.base.defaults["amsgrad"]
    assert w.param_groups[0]["wgd_mode"] == "kernel" and w.param_groups[0]["wgd_include_linear"]
    wt = create_optimizer("wgd-tmsgdm", p, switch_step=None)
    assert isinstance(wt, WGD) and isinstance(wt.base, TMSGD)
    assert start_multistep(wt) and wt.base.is_multistep
    assert start_multistep(sgdm) is False


def test_registry_errors_name_the_culprit_and_the_valid_choices() -> None:
    p = small_model()
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adamw2'.*rsgdm.*wgd-sgdm"):
        create_optimizer("adamw2", p)
    with pytest.raises(ValueError, match=r"Unknown optimizer 'wgd-nope'"):
        create_optimizer("wgd-nope", p)
    with pytest.raises(TypeError, match=r"\['momentum'\].*'rsgdm'.*beta"):
        create_optimizer("rsgdm", p, momentum=0.9)
    with pytest.raises(TypeError, match=r"\['beta'\].*'sgdm'.*momentum"):
        create_optimizer("sgdm", p, beta=0.9)
    with pytest.raises(TypeError, match=r"\['wgd_mode'\]"):
        create_optimizer("adam", p, wgd_mode="filter")
