"""THE table of step paths: (optimizer, the path under test, the path it must equal) per row.

Every path-equality test runs on rows of this table, each through the harness named in its `harness`
column (the parameter layouts and step counts the test files set up):

    default   tests/test_torch_fused_default.py  torch's fused kernel by default ≡ foreach=False and True
    tmsgd     tests/test_tmsgd_kernel.py         TM-SGD's two-pass multi-step path ≡ foreach=False
    compiled  tests/test_fused_cpu.py            fused=True ≡ fused=False (f64 and f32)
    wgd-own   tests/test_wgd_fused.py            WGD's own step (wgd_fused=True) ≡ the wrapped base.step()
    contract  tests/test_optimizers.py           foreach=True ≡ foreach=False (fused rows: fused ≡ unfused)

and tests/test_step_paths.py checks every row's `path` and `reference` columns against what the
optimizer's dispatch reports (step_paths()) on a standard layout: the table says which path each
row really exercises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from optimizer_cases import CASES
from optimlab.optim.dispatch import COMPILED, FOREACH, PER_TENSOR, TORCH_FUSED


@dataclass(frozen=True)
class PathCase:
    id: str  # pytest id
    name: str  # registry name
    hparams: dict[str, Any]
    path: str  # the path under test (what step_paths() reports with `option`)
    option: dict[str, Any]  # what selects it ({} = the default)
    reference: str  # the path it must equal (what step_paths() reports with `reference_option`)
    reference_option: dict[str, Any]
    harness: str  # which test runs it (module docstring)
    lr: float = 0.05  # the contract harness's lr (optimizer_cases.Case.quad_lr)
    wrapped: bool = field(default=False)  # the reference is WGD wrapping the base's own step


def _default(i: int, name: str, hp: dict[str, Any]) -> PathCase:
    return PathCase(f"{name}-{i}", name, hp, TORCH_FUSED, {}, PER_TENSOR, {"foreach": False}, "default")


def _tmsgd(momentum: float, weight_decay: float, maximize: bool) -> PathCase:
    hp = dict(momentum=momentum, weight_decay=weight_decay, maximize=maximize, lr=0.02 if momentum else 0.05)
    cid = f"{weight_decay}-{maximize}-{momentum}"  # the ids pytest gave the old parametrization
    return PathCase(
        cid, "tmsgdm" if momentum else "tmsgd", hp, TORCH_FUSED, {}, PER_TENSOR, {"foreach": False}, "tmsgd"
    )


def _compiled(cid: str, name: str, hp: dict[str, Any]) -> PathCase:
    # sgdm-ema's and rsgdm's fused=True is torch's fused SGD kernel: their update is its step
    path = TORCH_FUSED if name in ("sgdm-ema", "rsgdm") else COMPILED
    return PathCase(cid, name, hp, path, {"fused": True}, PER_TENSOR, {"fused": False}, "compiled")


def _wgd_own(cid: str, name: str, hp: dict[str, Any]) -> PathCase:
    path = PER_TENSOR if hp.get("foreach") is False else TORCH_FUSED
    # wrapped, the base's own step: optimlab's EMA bases take torch's kernel too, torch's own SGD and
    # Adam their CPU default, the per-tensor loop
    ref = TORCH_FUSED if name in ("wgd-sgdm-ema", "wgd-rsgdm") else PER_TENSOR
    return PathCase(cid, name, hp, path, {"wgd_fused": True}, ref, {"wgd_fused": False}, "wgd-own", wrapped=True)


# the contract rows (optimizer_cases.CASES marked `ours`) whose path is not foreach=True's multi-tensor ops
_CONTRACT_PATHS = {
    "sgdm-ema-fused": TORCH_FUSED,
    "rsgdm-fused-wd": TORCH_FUSED,
    "tmsgdm-fused": COMPILED,
    "wgd-rsgdm-kernel-linear": COMPILED,
    "wgd-radam-published": PER_TENSOR,  # the published loop, as written: foreach is accepted, not used
    "wgd-radam-published-gc_loc": PER_TENSOR,
    "wgd-nadam-published": PER_TENSOR,
}


def _contract(case: Any) -> PathCase:
    option = "fused" if case.hparams.get("fused") else "foreach"
    path = _CONTRACT_PATHS.get(case.id, FOREACH)
    return PathCase(
        case.id, case.name, case.hparams, path, {option: True}, PER_TENSOR, {option: False}, "contract", case.quad_lr
    )


PATH_CASES: list[PathCase] = [
    *(
        _default(i, n, hp)
        for i, (n, hp) in enumerate(
            [
                ("sgdm-ema", {"beta": 0.9, "weight_decay": 1e-3}),
                ("sgdm-ema", {"beta": 0.6, "maximize": True}),
                ("rsgdm", {"beta": 0.9, "weight_decay": 1e-3}),
                ("rsgdm", {"beta": 0.5, "maximize": True, "weight_decay": 1e-2}),
                ("wgd-sgdm", {"momentum": 0.9, "weight_decay": 5e-4}),
                ("wgd-nag", {"momentum": 0.9, "weight_decay": 5e-4, "maximize": True}),
                ("wgd-sgdm-ema", {"beta": 0.9, "weight_decay": 1e-3}),
                ("wgd-rsgdm", {"beta": 0.9, "weight_decay": 1e-3}),
            ]
        )
    ),
    *(_tmsgd(m, wd, mx) for wd, mx in [(0.0, False), (5e-4, True)] for m in (0.0, 0.9)),
    _compiled("sgdm-ema", "sgdm-ema", {"beta": 0.9}),
    _compiled("sgdm-ema-wd-max", "sgdm-ema", {"beta": 0.7, "weight_decay": 1e-2, "maximize": True}),
    _compiled("rsgdm", "rsgdm", {"beta": 0.9}),
    _compiled("rsgdm-wd", "rsgdm", {"beta": 0.5, "weight_decay": 1e-2}),
    _compiled("tmsgd-switch3", "tmsgd", {"switch_step": 3, "weight_decay": 1e-3}),
    _compiled("tmsgdm-switch4-max", "tmsgdm", {"switch_step": 4, "momentum": 0.8, "maximize": True}),
    _compiled("wgd-sgdm", "wgd-sgdm", {"weight_decay": 1e-2}),
    _compiled("wgd-nag-linear", "wgd-nag", {"wgd_include_linear": True, "weight_decay": 1e-3}),
    _compiled("wgd-sgd-max", "wgd-sgd", {"weight_decay": 1e-2, "maximize": True}),
    _compiled("wgd-sgdm-ema", "wgd-sgdm-ema", {"weight_decay": 1e-2}),
    _compiled("wgd-rsgdm", "wgd-rsgdm", {"wgd_include_linear": True}),
    _compiled("wgd-sgdm-dampening", "wgd-sgdm", {"dampening": 0.3, "wgd_min_dim": 4}),
    # torch's Adam family under WGD (the base built with fused=True runs on optimlab's kernel)
    _compiled("wgd-adam-wd", "wgd-adam", {"weight_decay": 1e-2}),
    _compiled("wgd-amsgrad-max-linear", "wgd-amsgrad", {"maximize": True, "wgd_include_linear": True}),
    _compiled("wgd-adamw", "wgd-adamw", {"weight_decay": 1e-2}),
    _compiled("wgd-adam-beta1-0.3", "wgd-adam", {"betas": (0.3, 0.99), "eps": 1e-6}),
    _wgd_own("sgd", "wgd-sgd", {}),
    _wgd_own("sgd-wd-maximize", "wgd-sgd", {"weight_decay": 1e-2, "maximize": True}),
    _wgd_own("sgdm", "wgd-sgdm", {"momentum": 0.9, "weight_decay": 1e-3}),
    _wgd_own("sgdm-loop", "wgd-sgdm", {"momentum": 0.9, "weight_decay": 1e-3, "foreach": False}),
    _wgd_own("sgdm-dampening-kernel", "wgd-sgdm", {"momentum": 0.8, "dampening": 0.3, "wgd_mode": "kernel"}),
    _wgd_own("sgdm-maximize-linear", "wgd-sgdm", {"momentum": 0.9, "maximize": True, "wgd_include_linear": True}),
    _wgd_own("nag", "wgd-nag", {"momentum": 0.9, "weight_decay": 5e-3, "wgd_min_dim": 4}),
    _wgd_own("sgdm-ema", "wgd-sgdm-ema", {"beta": 0.9, "weight_decay": 1e-3}),
    _wgd_own("sgdm-ema-maximize", "wgd-sgdm-ema", {"beta": 0.7, "maximize": True, "wgd_include_linear": True}),
    _wgd_own("rsgdm", "wgd-rsgdm", {"beta": 0.9, "weight_decay": 1e-3}),
    _wgd_own("rsgdm-kernel-maximize", "wgd-rsgdm", {"beta": 0.5, "maximize": True, "wgd_mode": "kernel"}),
    _wgd_own("adam", "wgd-adam", {"weight_decay": 1e-3}),
    _wgd_own("adamw-maximize", "wgd-adamw", {"weight_decay": 1e-2, "maximize": True}),
    _wgd_own("amsgrad-kernel", "wgd-amsgrad", {"wgd_mode": "kernel", "betas": (0.8, 0.99)}),
    *(_contract(c) for c in CASES if c.ours),
]


def rows(harness: str) -> list[PathCase]:
    """The table's rows for one harness, in table order."""
    out = [c for c in PATH_CASES if c.harness == harness]
    assert out, f"no rows for harness {harness!r}"
    return out


def ids(cases: list[PathCase]) -> list[str]:
    return [c.id for c in cases]


def row(harness: str, cid: str) -> PathCase:
    return next(c for c in rows(harness) if c.id == cid)


def grads_of(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Every tensor's gradient, for the harnesses that compare gradients across paths (all are set)."""
    out = []
    for i, p in enumerate(params):
        assert p.grad is not None, f"tensor {i} has no gradient"
        out.append(p.grad)
    return out
