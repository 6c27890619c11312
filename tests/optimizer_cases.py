"""THE table of optimizer configurations: every optimizer test runs on its rows.

test_optimizers.py runs the torch.optim contract on every row (and checks that every registered
optimizer has one); test_reference_parity.py runs the float64 parity with optimlab.reference on the
rows of torch's own optimizers, from their torch_ctor / reference_hp / to_torch columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import strategies as st

DECAY = st.floats(0.0, 0.99)  # a momentum / EMA coefficient
BETA2 = st.floats(0.5, 0.9999)
EPS = st.sampled_from([1e-10, 1e-8, 1e-6, 1e-3])


def _sgd(d: dict) -> dict:
    return {**d, "momentum": 0.0}


def _adam_kw(d: dict) -> dict:
    d = dict(d)
    d["betas"] = (d.pop("beta1"), d.pop("beta2"))
    return d


def _rmsprop_kw(d: dict) -> dict:
    d = dict(d)
    d["alpha"] = d.pop("rho")
    return d


ADAM_HP = st.fixed_dictionaries({"beta1": DECAY, "beta2": BETA2, "eps": EPS})


@dataclass(frozen=True)
class Case:
    id: str  # pytest id
    name: str  # registry name
    hparams: dict[str, Any] = field(default_factory=dict)  # passed to create_optimizer (no lr)
    quad_lr: float = 0.1  # lr for the quadratic test (curvatures in [0.5, 2])
    rosen_lr: float = 1e-3  # lr for Rosenbrock from (-1.2, 1) (curvature up to ~1200)
    ours: bool = False  # one of optimlab's own update rules (foreach parity etc. apply)
    # torch's own optimizers: parity with optimlab.reference (tests/test_reference_parity.py)
    torch_ctor: Callable | None = None  # builds torch's optimizer from (params, **torch kwargs)
    reference_hp: Any = None  # hypothesis strategy of the reference's extra hyperparameters
    to_torch: Callable[[dict], dict] = dict  # reference hyperparameters -> torch kwargs


CASES = [
    Case(
        "sgd",
        "sgd",
        quad_lr=0.5,
        torch_ctor=torch.optim.SGD,
        reference_hp=st.just({}),
        to_torch=_sgd,
    ),
    Case(
        "sgdm",
        "sgdm",
        quad_lr=0.05,
        rosen_lr=1e-4,
        torch_ctor=torch.optim.SGD,
        reference_hp=st.fixed_dictionaries(
            {"momentum": DECAY, "dampening": st.one_of(st.just(0.0), st.floats(0.0, 0.9))}
        ),
        to_torch=dict,
    ),
    Case(
        "nag",
        "nag",
        quad_lr=0.05,
        rosen_lr=1e-4,
        torch_ctor=lambda p, **kw: torch.optim.SGD(p, nesterov=True, **kw),
        reference_hp=st.fixed_dictionaries({"momentum": st.floats(0.01, 0.99)}),
        to_torch=dict,
    ),
    Case(
        "adagrad",
        "adagrad",
        quad_lr=0.5,
        rosen_lr=0.1,
        torch_ctor=torch.optim.Adagrad,
        reference_hp=st.fixed_dictionaries({"eps": EPS, "lr_decay": st.one_of(st.just(0.0), st.floats(0.0, 0.5))}),
        to_torch=dict,
    ),
    Case(
        "adadelta",
        "adadelta",
        quad_lr=50.0,
        rosen_lr=30.0,
        torch_ctor=torch.optim.Adadelta,
        reference_hp=st.fixed_dictionaries({"rho": st.floats(0.5, 0.99), "eps": EPS, "lr": st.floats(0.1, 2.0)}),
        to_torch=dict,
    ),
    Case(
        "rmsprop",
        "rmsprop",
        quad_lr=0.02,
        rosen_lr=3e-3,
        torch_ctor=torch.optim.RMSprop,
        reference_hp=st.fixed_dictionaries({"rho": st.floats(0.5, 0.999), "eps": EPS}),
        to_torch=_rmsprop_kw,
    ),
    Case(
        "adam",
        "adam",
        quad_lr=0.1,
        rosen_lr=0.02,
        torch_ctor=torch.optim.Adam,
        reference_hp=ADAM_HP,
        to_torch=_adam_kw,
    ),
    Case(
        "amsgrad",
        "amsgrad",
        quad_lr=0.1,
        rosen_lr=0.02,
        torch_ctor=lambda p, **kw: torch.optim.Adam(p, amsgrad=True, **kw),
        reference_hp=ADAM_HP,
        to_torch=_adam_kw,
    ),
    Case(
        "nadam",
        "nadam",
        quad_lr=0.1,
        rosen_lr=0.02,
        torch_ctor=torch.optim.NAdam,
        reference_hp=st.fixed_dictionaries(
            {
                "beta1": DECAY,
                "beta2": BETA2,
                "eps": EPS,
                "momentum_decay": st.one_of(st.just(0.004), st.floats(0.0, 0.1)),
            }
        ),
        to_torch=_adam_kw,
    ),
    # its un-normalized warm-up steps overshoot at 0.02
    Case(
        "radam",
        "radam",
        quad_lr=0.1,
        rosen_lr=1e-3,
        torch_ctor=torch.optim.RAdam,
        reference_hp=ADAM_HP,
        to_torch=_adam_kw,
    ),
    Case("sgdm-ema", "sgdm-ema", {"beta": 0.9}, quad_lr=0.5, ours=True),
    Case("rsgdm", "rsgdm", {"beta": 0.9}, quad_lr=0.5, ours=True),
    Case("rsgdm-wd", "rsgdm", {"beta": 0.5, "weight_decay": 1e-3}, quad_lr=0.5, ours=True),
    Case("tmsgd-switch5", "tmsgd", {"switch_step": 5}, quad_lr=0.2, rosen_lr=5e-4, ours=True),
    Case("tmsgdm-switch3", "tmsgdm", {"switch_step": 3}, quad_lr=0.02, rosen_lr=5e-5, ours=True),
    Case("wgd-sgdm", "wgd-sgdm", {"weight_decay": 1e-3}, quad_lr=0.05, rosen_lr=1e-4),
    Case("wgd-sgdm-ema", "wgd-sgdm-ema", quad_lr=0.5, ours=True),
    Case("wgd-adam", "wgd-adam", {"eps": 1e-10}, quad_lr=0.1, rosen_lr=0.02),
    Case("wgd-nadam", "wgd-nadam", {"eps": 1e-10}, quad_lr=0.1, rosen_lr=0.02),
    Case("wgd-radam", "wgd-radam", {"wgd_mode": "kernel"}, quad_lr=0.1, rosen_lr=1e-3),
    Case("wgd-rsgdm-kernel", "wgd-rsgdm", {"wgd_mode": "kernel", "wgd_include_linear": True}, quad_lr=0.5, ours=True),
    Case("wgd-tmsgd", "wgd-tmsgd", {"switch_step": 2, "weight_decay": 1e-3}, quad_lr=0.2, rosen_lr=5e-4, ours=True),
    # WGD's fused step (whiten tensor i, then update it) on the bases it knows, and the generic path forced
    Case("wgd-sgd-fused", "wgd-sgd", {"weight_decay": 1e-3, "wgd_fused": True}, quad_lr=0.5),
    Case("wgd-nag-fused", "wgd-nag", {"wgd_fused": True, "wgd_include_linear": True}, quad_lr=0.05, rosen_lr=1e-4),
    Case("wgd-sgdm-generic", "wgd-sgdm", {"weight_decay": 1e-3, "wgd_fused": False}, quad_lr=0.05, rosen_lr=1e-4),
    Case("wgd-rsgdm-fused-wd", "wgd-rsgdm", {"weight_decay": 1e-3, "wgd_fused": True}, quad_lr=0.5, ours=True),
    Case("wgd-sgdm-ema-generic", "wgd-sgdm-ema", {"wgd_fused": False}, quad_lr=0.5, ours=True),
    Case("wgd-sgdm-conv1d", "wgd-sgdm", {"wgd_min_dim": 3, "wgd_target": "update"}, quad_lr=0.05, rosen_lr=1e-4),
    # fused=True: optimlab's compiled single-pass kernel (optimlab.optim.compiled)
    Case("sgdm-ema-fused", "sgdm-ema", {"beta": 0.9, "fused": True}, quad_lr=0.5, ours=True),
    Case("rsgdm-fused-wd", "rsgdm", {"beta": 0.5, "weight_decay": 1e-3, "fused": True}, quad_lr=0.5, ours=True),
    Case("tmsgdm-fused", "tmsgdm", {"switch_step": 3, "fused": True}, quad_lr=0.02, rosen_lr=5e-5, ours=True),
    Case("wgd-nag-kernel", "wgd-nag", {"fused": True, "weight_decay": 1e-3}, quad_lr=0.05, rosen_lr=1e-4),
    Case("wgd-rsgdm-kernel-linear", "wgd-rsgdm", {"fused": True, "wgd_include_linear": True}, quad_lr=0.5, ours=True),
    # the WGD authors' published classes (optimlab.optim.wgd_published)
    Case("wgd-sgdm-published", "wgd-sgdm-published", {"weight_decay": 1e-3}, quad_lr=0.05, rosen_lr=1e-4),
    Case("wgd-adam-published", "wgd-adam-published", quad_lr=0.1, rosen_lr=0.02),
    Case("wgd-adam2-published", "wgd-adam2-published", {"weight_decay": 1e-3}, quad_lr=0.1, rosen_lr=0.02),
    Case("wgd-radam-published", "wgd-radam-published", {"weight_decay": 1e-3}, quad_lr=0.1, rosen_lr=1e-3, ours=True),
    Case(
        "wgd-radam-published-gc_loc",
        "wgd-radam-published",
        {"target": "gradient"},
        quad_lr=0.1,
        rosen_lr=1e-3,
        ours=True,
    ),
    Case("wgd-nadam-published", "wgd-nadam-published", {"weight_decay": 1e-3}, quad_lr=0.02, rosen_lr=2e-3, ours=True),
    # the field's baselines (torch, pytorch_optimizer) and the Lookahead wrapper
    Case(
        "adamw",
        "adamw",
        quad_lr=0.1,
        rosen_lr=0.02,
        torch_ctor=torch.optim.AdamW,
        reference_hp=ADAM_HP,
        to_torch=_adam_kw,
    ),
    Case("apollo", "apollo", {"warmup_steps": 0}, quad_lr=0.01, rosen_lr=1e-5),  # warm-up ignores group lr
    Case("adan", "adan", quad_lr=0.1, rosen_lr=0.02),
    Case("mars", "mars", quad_lr=0.1, rosen_lr=0.02),
    Case("qhm", "qhm", quad_lr=0.5, rosen_lr=1e-3),
    Case("lion", "lion", quad_lr=0.02, rosen_lr=3e-3),
    Case("schedulefree-sgd", "schedulefree-sgd", quad_lr=0.2, rosen_lr=1e-3),
    Case("schedulefree-adamw", "schedulefree-adamw", quad_lr=0.1, rosen_lr=0.02),
    Case("lookahead-adam", "lookahead-adam", quad_lr=0.2, rosen_lr=0.04),
    Case("lookahead-sgdm", "lookahead-sgdm", quad_lr=0.05, rosen_lr=1e-4),
    Case("lookahead-wgd-rsgdm", "lookahead-wgd-rsgdm", {"lookahead_k": 3, "lookahead_alpha": 0.8}, quad_lr=0.5),
]
