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

import inspect

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim import Optimizer

from optimlab.optim.rsgdm import RSGDM
from optimlab.optim.sgdm_ema import SGDMEMA
from optimlab.optim.tmsgd import TMSGD
from optimlab.optim.wgd import WGD

WGD_PREFIX = "wgd-"
WGD_HPARAMS = {"wgd_mode": "filter", "wgd_include_linear": False}


@dataclass(frozen=True)
class OptimizerInfo:
    name: str  # registry name, as used in configs and reports
    summary: str
    convention: str  # "plain", "heavy-ball", "nesterov (heavy-ball)", "ema", "adaptive", "multi-step", "wgd + …"
    paper: str  # where the rule comes from
    defaults: dict[str, Any] = field(default_factory=dict)  # hyperparameters create_optimizer fills in
    cls: type = field(default=Optimizer, repr=False, compare=False)  # the class constructed
    fixed: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # set, not settable

    @property
    def hparams(self) -> list[str]:
        """Hyperparameters a user may pass (constructor arguments minus params and fixed ones)."""
        names = [n for n in inspect.signature(self.cls.__init__).parameters if n not in ("self", "params")]
        names = [n for n in names if n not in self.fixed]
        return names + (list(WGD_HPARAMS) if self.name.startswith(WGD_PREFIX) else [])


def _info(name: str, cls: type, summary: str, convention: str, paper: str, defaults: dict[str, Any],
          fixed: dict[str, Any] | None = None) -> OptimizerInfo:
    return OptimizerInfo(name, summary, convention, paper, defaults, cls, fixed or {})


_BASES: dict[str, OptimizerInfo] = {
    info.name: info
    for info in [
        _info("sgd", torch.optim.SGD, "mini-batch SGD, no momentum", "plain", "002/003; torch.optim.SGD",
              {"lr": 0.01}, {"momentum": 0.0, "nesterov": False, "dampening": 0.0}),
        _info("sgdm", torch.optim.SGD, "torch's SGD momentum: buf = μ·buf + g (buf_1 = g), θ −= lr·buf",
              "heavy-ball", "003 (torch SGD momentum)", {"lr": 0.01, "momentum": 0.9}, {"nesterov": False}),
        _info("nag", torch.optim.SGD, "torch's Nesterov: θ −= lr·(g + μ·buf)", "nesterov (heavy-ball)",
              "002/003 (torch SGD nesterov=True)", {"lr": 0.01, "momentum": 0.9}, {"nesterov": True}),
        _info("adagrad", torch.optim.Adagrad, "Adagrad", "adaptive", "002/003; torch.optim.Adagrad", {"lr": 0.01}),
        _info("adadelta", torch.optim.Adadelta, "Adadelta", "adaptive", "002/003; torch.optim.Adadelta", {"lr": 1.0}),
        _info("rmsprop", torch.optim.RMSprop, "RMSprop", "adaptive", "002/003; torch.optim.RMSprop", {"lr": 0.01}),
        _info("adam", torch.optim.Adam, "Adam with bias correction", "adaptive", "002/003; torch.optim.Adam",
              {"lr": 0.001}, {"amsgrad": False}),
        _info("amsgrad", torch.optim.Adam, "AMSGrad (Adam with max of second moments)", "adaptive",
              "003; torch.optim.Adam(amsgrad=True)", {"lr": 0.001}, {"amsgrad": True}),
        _info("nadam", torch.optim.NAdam, "Nadam (Adam + Nesterov, torch's momentum-decay schedule)", "adaptive",
              "003; torch.optim.NAdam", {"lr": 0.002}),
        _info("radam", torch.optim.RAdam, "RAdam (rectified Adam)", "adaptive", "003; torch.optim.RAdam", {"lr": 0.001}),
        _info("sgdm-ema", SGDMEMA, "papers' SGDM: m = β·m + (1−β)·g, θ −= lr·m", "ema", "000/001 eq. 1–2, 002",
              {"lr": 0.01, "beta": 0.9}),
        _info("rsgdm", RSGDM, "RSGDM: EMA momentum corrected by an EMA of gradient differences", "ema",
              "000/001 eq. 3–5", {"lr": 0.01, "beta": 0.9}),
        _info("tmsgd", TMSGD, "TM-SGD: SGD, then W ← 1.5W_k − W_{k−1} + 0.5W_{k−2} − lr·g after the switch",
              "multi-step", "004", {"lr": 0.1}, {"momentum": 0.0}),
        _info("tmsgdm", TMSGD, "TM-SGD-M: the multi-step rule on torch's heavy-ball momentum buffer",
              "multi-step (heavy-ball)", "004", {"lr": 0.1, "momentum": 0.9}),
    ]
}

# wgd-<base> exists for every base; these are the ones listed (paper 003's four, plus the EMA form).
_LISTED_WGD = ("sgdm", "sgdm-ema", "adam", "nadam", "radam")


def _wgd_info(base: OptimizerInfo) -> OptimizerInfo:
    return _info(WGD_PREFIX + base.name, base.cls, f"WGD (whitened conv gradients, paper 003) on {base.name}",
                 f"wgd + {base.convention}", f"003 (WGD) on {base.paper}", {**base.defaults, **WGD_HPARAMS}, base.fixed)


def list_optimizers() -> list[OptimizerInfo]:
    """Every registered optimizer (wgd-<base> also works for bases not listed here)."""
    return [*_BASES.values(), *(_wgd_info(_BASES[b]) for b in _LISTED_WGD)]


def optimizer_info(name: str) -> OptimizerInfo:
    """The registry entry for `name`; ValueError listing the valid names if there is none."""
    if name in _BASES:
        return _BASES[name]
    if name.startswith(WGD_PREFIX) and name[len(WGD_PREFIX):] in _BASES:
        return _wgd_info(_BASES[name[len(WGD_PREFIX):]])
    valid = ", ".join(i.name for i in list_optimizers())
    raise ValueError(f"Unknown optimizer {name!r}. Valid names: {valid} (and wgd-<any base>)")


def create_optimizer(name: str, params: Any, **hparams: Any) -> Optimizer:
    """Build the optimizer registered as `name` over `params` (an iterable of tensors or param groups)."""
    info = optimizer_info(name)
    allowed = info.hparams
    unknown = sorted(set(hparams) - set(allowed))
    if unknown:
        raise TypeError(f"Unknown hyperparameter(s) {unknown} for optimizer {name!r}; valid: {allowed}")
    kwargs = {**info.defaults, **hparams}
    wgd = {k: kwargs.pop(k) for k in list(kwargs) if k in WGD_HPARAMS}
    base = info.cls(params, **kwargs, **info.fixed)
    if name.startswith(WGD_PREFIX):
        return WGD(base, mode=wgd["wgd_mode"], include_linear=wgd["wgd_include_linear"])
    return base


