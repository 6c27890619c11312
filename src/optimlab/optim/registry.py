"""One table of every optimizer optimlab knows, and the two calls that use it.

    create_optimizer("rsgdm", model.parameters(), lr=0.01, beta=0.9)
    create_optimizer("wgd-adam", model.parameters(), lr=1e-3, wgd_mode="filter")
    list_optimizers()  # names, momentum convention, paper, defaults

Momentum conventions (never mix them up): `sgdm`, `nag` and `tmsgdm` are torch's heavy ball
(buf = μ·buf + g, first buf = g; hyperparameter `momentum`); `sgdm-ema` and `rsgdm` are the papers'
EMA form (m = β·m + (1−β)·g, m_0 = 0; hyperparameter `beta`). At equal lr the EMA step is (1−β)
times the heavy-ball step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim import Optimizer

from optimlab.optim._common import ParamsT, check_real_params
from optimlab.optim.external import plugin_optimizers, reference_info
from optimlab.optim.field import FIELD
from optimlab.optim.info import (
    LOOKAHEAD_HPARAMS,
    LOOKAHEAD_PREFIX,
    WGD_HPARAMS,
    WGD_OPTIONS,
    WGD_PREFIX,
    OptimizerInfo,
    _info,
)
from optimlab.optim.rsgdm import RSGDM
from optimlab.optim.sgdm_ema import SGDMEMA
from optimlab.optim.tmsgd import TMSGD
from optimlab.optim.wgd import WGD
from optimlab.optim.wgd_published import NadamPublished, WGDRAdamPublished
from optimlab.plugins import PluginError, is_reference

_BASES: dict[str, OptimizerInfo] = {
    info.name: info
    for info in [
        _info(
            "sgd",
            torch.optim.SGD,
            "mini-batch SGD, no momentum",
            "plain",
            "002/003; torch.optim.SGD",
            {"lr": 0.01},
            {"momentum": 0.0, "nesterov": False, "dampening": 0.0},
        ),
        _info(
            "sgdm",
            torch.optim.SGD,
            "torch's SGD momentum: buf = μ·buf + g (buf_1 = g), θ −= lr·buf",
            "heavy-ball",
            "003 (torch SGD momentum)",
            {"lr": 0.01, "momentum": 0.9},
            {"nesterov": False},
        ),
        _info(
            "nag",
            torch.optim.SGD,
            "torch's Nesterov: θ −= lr·(g + μ·buf)",
            "nesterov (heavy-ball)",
            "002/003 (torch SGD nesterov=True)",
            {"lr": 0.01, "momentum": 0.9},
            {"nesterov": True},
        ),
        _info("adagrad", torch.optim.Adagrad, "Adagrad", "adaptive", "002/003; torch.optim.Adagrad", {"lr": 0.01}),
        _info("adadelta", torch.optim.Adadelta, "Adadelta", "adaptive", "002/003; torch.optim.Adadelta", {"lr": 1.0}),
        _info("rmsprop", torch.optim.RMSprop, "RMSprop", "adaptive", "002/003; torch.optim.RMSprop", {"lr": 0.01}),
        _info(
            "adam",
            torch.optim.Adam,
            "Adam with bias correction",
            "adaptive",
            "002/003; torch.optim.Adam",
            {"lr": 0.001},
            {"amsgrad": False},
        ),
        _info(
            "amsgrad",
            torch.optim.Adam,
            "AMSGrad (Adam with max of second moments)",
            "adaptive",
            "003; torch.optim.Adam(amsgrad=True)",
            {"lr": 0.001},
            {"amsgrad": True},
        ),
        _info(
            "nadam",
            torch.optim.NAdam,
            "Nadam (Adam + Nesterov, torch's momentum-decay schedule)",
            "adaptive",
            "003; torch.optim.NAdam",
            {"lr": 0.002},
        ),
        _info(
            "radam", torch.optim.RAdam, "RAdam (rectified Adam)", "adaptive", "003; torch.optim.RAdam", {"lr": 0.001}
        ),
        _info(
            "sgdm-ema",
            SGDMEMA,
            "papers' SGDM: m = β·m + (1−β)·g, θ −= lr·m",
            "ema",
            "000/001 eq. 1–2, 002",
            {"lr": 0.01, "beta": 0.9},
            origin="optimlab",
        ),
        _info(
            "rsgdm",
            RSGDM,
            "RSGDM: EMA momentum corrected by an EMA of gradient differences",
            "ema",
            "000/001 eq. 3–5",
            {"lr": 0.01, "beta": 0.9},
            origin="optimlab",
        ),
        _info(
            "tmsgd",
            TMSGD,
            "TM-SGD: SGD, then W ← 1.5W_k − W_{k−1} + 0.5W_{k−2} − lr·g after the switch",
            "multi-step",
            "004",
            {"lr": 0.1},
            {"momentum": 0.0},
            origin="optimlab",
        ),
        _info(
            "tmsgdm",
            TMSGD,
            "TM-SGD-M: the multi-step rule on torch's heavy-ball momentum buffer",
            "multi-step (heavy-ball)",
            "004",
            {"lr": 0.1, "momentum": 0.9},
            origin="optimlab",
        ),
    ]
}

_PUBLISHED_CODE = "003 code, github.com/hoseingh69/WGD"
# The authors' published WGD classes, each by what it does (optimlab.optim.wgd_published).
_PUBLISHED: dict[str, OptimizerInfo] = {
    info.name: info
    for info in [
        _info(
            "wgd-sgdm-published",
            torch.optim.SGD,
            "authors' WGD_SGD: centre each filter of g + λθ (Conv2d/3d only), "
            "then torch's SGD momentum (= wgd-sgdm with wgd_min_dim=4)",
            "wgd (code) + heavy-ball",
            f"{_PUBLISHED_CODE} SGD.py",
            {"lr": 0.01, "momentum": 0.9},
            {"wgd_mode": "filter", "wgd_target": "gradient", "wgd_min_dim": 4, "wgd_include_linear": False},
            "published-code",
            ("wgd",),
        ),
        _info(
            "wgd-adam-published",
            torch.optim.Adam,
            "authors' WGD_Adam: centre each filter of g + λθ (Conv2d/3d only), "
            "then Adam (= wgd-adam with wgd_min_dim=4)",
            "wgd (code) + adaptive",
            f"{_PUBLISHED_CODE} Adam.py",
            {"lr": 0.001},
            {
                "amsgrad": False,
                "wgd_mode": "filter",
                "wgd_target": "gradient",
                "wgd_min_dim": 4,
                "wgd_include_linear": False,
            },
            "published-code",
            ("wgd",),
        ),
        _info(
            "wgd-adam2-published",
            torch.optim.Adam,
            "authors' WGD_Adam2: Adam on g + λθ, then centre each filter of the step taken (not the gradient)",
            "wgd-update (code) + adaptive",
            f"{_PUBLISHED_CODE} Adam.py",
            {"lr": 0.001},
            {
                "amsgrad": False,
                "wgd_mode": "filter",
                "wgd_target": "update",
                "wgd_min_dim": 4,
                "wgd_include_linear": False,
            },
            "published-code",
            ("wgd",),
        ),
        _info(
            "wgd-radam-published",
            WGDRAdamPublished,
            "authors' WGD_RAdam: centre RAdam's update direction "
            "(m/(√v+ε), or m itself before rectification) plus λθ; target='gradient' is their gc_loc=True",
            "wgd-update (code) + adaptive",
            f"{_PUBLISHED_CODE} RAdam.py",
            {"lr": 0.001, "target": "update"},
            {"min_dim": 4},
            "published-code",
        ),
        _info(
            "wgd-nadam-published",
            NadamPublished,
            "authors' WGD_Nadam = their Nadam: NO centralization, and v "
            "divided by β2^t (not 1−β2^t); v_correction='1-beta2^t' gives torch's NAdam",
            "adaptive (no wgd)",
            f"{_PUBLISHED_CODE} NAdam.py",
            {"lr": 0.002, "v_correction": "beta2^t"},
            {},
            "published-code",
        ),
    ]
}

# wgd-<base> exists for every base; these are the ones listed (paper 003's four, plus the EMA form).
_LISTED_WGD = ("sgdm", "sgdm-ema", "adam", "nadam", "radam")
# lookahead-<name> exists for every registered name; these are listed.
_LISTED_LOOKAHEAD = ("adam", "sgdm")


def _wgd_info(base: OptimizerInfo) -> OptimizerInfo:
    return _info(
        WGD_PREFIX + base.name,
        base.cls,
        f"WGD (whitened conv gradients, paper 003) on {base.name}",
        f"wgd + {base.convention}",
        f"003 (WGD) on {base.paper}",
        {**base.defaults, **WGD_HPARAMS},
        base.fixed,
        base.origin,
        ("wgd",),
    )


def _lookahead_info(inner: OptimizerInfo) -> OptimizerInfo:
    return _info(
        LOOKAHEAD_PREFIX + inner.name,
        inner.cls,
        f"Lookahead (k fast steps, then slow ← slow + α(fast − slow)) over {inner.name}",
        f"lookahead + {inner.convention}",
        f"Zhang et al. 2019 (pytorch_optimizer.Lookahead) over {inner.paper}",
        {**inner.defaults, **LOOKAHEAD_HPARAMS},
        inner.fixed,
        inner.origin,
        (*inner.wrappers, "lookahead"),
    )


def list_optimizers() -> list[OptimizerInfo]:
    """Every registered optimizer (wgd-<base> and lookahead-<name> also work for names not listed here)."""
    return [
        *_BASES.values(),
        *(_wgd_info(_BASES[b]) for b in _LISTED_WGD),
        *_PUBLISHED.values(),
        *FIELD.values(),
        *(_lookahead_info(optimizer_info(n)) for n in _LISTED_LOOKAHEAD),
        *_plugins().values(),
    ]


def _plugins() -> dict[str, OptimizerInfo]:
    return plugin_optimizers({*_BASES, *FIELD, *_PUBLISHED})


def _all_bases() -> dict[str, OptimizerInfo]:
    return {**_BASES, **FIELD, **_plugins()}


def _base(name: str) -> OptimizerInfo | None:
    """A name that wgd-/lookahead- may wrap: registered, a plugin, or a package.module:attr reference."""
    return _all_bases().get(name) or (reference_info(name) if is_reference(name) else None)


def optimizer_info(name: str) -> OptimizerInfo:
    """The registry entry for `name`; ValueError listing the valid names if there is none."""
    if (base := _base(name)) is not None:
        return base
    if name in _PUBLISHED:
        return _PUBLISHED[name]
    if name.startswith(WGD_PREFIX) and (base := _base(name[len(WGD_PREFIX) :])) is not None:
        return _wgd_info(base)
    if name.startswith(LOOKAHEAD_PREFIX) and not name[len(LOOKAHEAD_PREFIX) :].startswith(LOOKAHEAD_PREFIX):
        try:
            return _lookahead_info(optimizer_info(name[len(LOOKAHEAD_PREFIX) :]))
        except PluginError:
            raise  # a reference that does not resolve: its own message says why
        except ValueError:
            pass
    valid = ", ".join(i.name for i in list_optimizers())
    raise ValueError(
        f"Unknown optimizer {name!r}. Valid names: {valid} (and wgd-<any base>, lookahead-<any name>, "
        "package.module:attribute)"
    )


def _materialize(params: ParamsT) -> Any:
    if isinstance(params, torch.Tensor):
        raise TypeError("params must be an iterable of tensors or of param-group dicts, got a Tensor")
    # None goes to the constructor as is: it checks the hyperparameters first (ValueError naming one)
    return params if params is None else list(params)


def create_optimizer(name: str, params: ParamsT, **hparams: Any) -> Optimizer:
    """Build the optimizer registered as `name` over `params` (an iterable of tensors or param groups).

    Complex parameters are refused for every name (TypeError naming the tensor).
    """
    info = optimizer_info(name)
    allowed = info.hparams
    unknown = sorted(set(hparams) - set(allowed))
    if unknown:
        raise TypeError(f"Unknown hyperparameter(s) {unknown} for optimizer {name!r}; valid: {allowed}")
    kwargs = {**info.defaults, **info.fixed, **hparams}
    wgd = {k: kwargs.pop(k) for k in list(kwargs) if k in WGD_HPARAMS and "wgd" in info.wrappers}
    wgd_fused = kwargs.pop("wgd_fused", WGD_OPTIONS["wgd_fused"])
    look = {k: kwargs.pop(k) for k in list(kwargs) if k in LOOKAHEAD_HPARAMS}
    try:
        built: object = info.cls(_materialize(params), **kwargs)
    except (ValueError, TypeError):
        raise
    except Exception as e:  # pytorch_optimizer's validation errors are plain Exceptions: one kind for callers
        if info.origin != "pytorch_optimizer":
            raise
        given = {k: v for k, v in kwargs.items() if k in hparams}
        raise ValueError(f"Invalid hyperparameters for optimizer {name!r} {given}: {type(e).__name__}: {e}") from e
    if not isinstance(built, Optimizer):  # a user's factory (optimlab.optim.external)
        raise TypeError(f"optimizer {name!r} ({info.paper}) returned a {type(built).__name__}, not a torch Optimizer")
    base: Optimizer = built
    check_real_params(base.param_groups, f"optimizer {name!r}")
    if "wgd" in info.wrappers:
        base = WGD(
            base,
            mode=wgd["wgd_mode"],
            include_linear=wgd["wgd_include_linear"],
            target=wgd["wgd_target"],
            min_dim=wgd["wgd_min_dim"],
            fused=wgd_fused,
        )
    if "lookahead" in info.wrappers:
        from pytorch_optimizer import Lookahead

        k, alpha = look["lookahead_k"], look["lookahead_alpha"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"Invalid lookahead_k={k!r}: must be an int >= 1")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha < 1.0:
            raise ValueError(f"Invalid lookahead_alpha={alpha!r}: must be in (0, 1)")
        base = Lookahead(base, k=k, alpha=float(alpha))
    return base


def set_train_mode(optimizer: Optimizer, training: bool) -> bool:
    """Call the optimizer's train()/eval() switch (schedule-free), through WGD and Lookahead wrappers.

    Returns whether some optimizer in the chain had the switch. The harness calls this before each
    training epoch (True) and before evaluating or checkpointing (False).
    """
    opt: Any = optimizer
    found = False
    for _ in range(4):  # wrappers nest at most lookahead(wgd(base))
        switch = getattr(opt, "train" if training else "eval", None)
        if callable(switch) and not isinstance(opt, WGD) and "train_mode" in opt.param_groups[0]:
            switch()
            found = True
        opt = getattr(opt, "base", None) or getattr(opt, "optimizer", None)
        if opt is None:
            break
    return found
