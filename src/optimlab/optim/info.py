"""A registry entry: what create_optimizer builds for a name, and what `optimlab list` shows."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from torch.optim import Optimizer

WGD_PREFIX = "wgd-"
LOOKAHEAD_PREFIX = "lookahead-"
WGD_HPARAMS = {"wgd_mode": "filter", "wgd_include_linear": False, "wgd_target": "gradient", "wgd_min_dim": 3}
WGD_OPTIONS = {"wgd_fused": None}  # accepted by create_optimizer, not a hyperparameter of the rule
LOOKAHEAD_HPARAMS = {"lookahead_k": 5, "lookahead_alpha": 0.5}
ORIGINS = ("torch", "optimlab", "published-code", "pytorch_optimizer")


@dataclass(frozen=True)
class OptimizerInfo:
    name: str  # registry name, as used in configs and reports
    summary: str
    convention: str  # "plain", "heavy-ball", "nesterov (heavy-ball)", "ema", "adaptive", "multi-step", "wgd + …"
    paper: str  # where the rule comes from
    defaults: dict[str, Any] = field(default_factory=dict)  # hyperparameters create_optimizer fills in
    cls: type = field(default=Optimizer, repr=False, compare=False)  # the class constructed
    fixed: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # set, not settable
    origin: str = "torch"  # who implements it: one of ORIGINS
    wrappers: tuple[str, ...] = ()  # applied inside out over cls: "wgd", "lookahead"

    @property
    def hparams(self) -> list[str]:
        """Hyperparameters a user may pass (constructor arguments minus params and fixed ones)."""
        sig = inspect.signature(self.cls).parameters  # the class's constructor signature
        names = [
            n
            for n, prm in sig.items()
            if n not in ("self", "params") and prm.kind not in (prm.VAR_KEYWORD, prm.VAR_POSITIONAL)
        ]
        if "wgd" in self.wrappers:
            names += [*WGD_HPARAMS, *WGD_OPTIONS]
        if "lookahead" in self.wrappers:
            names += list(LOOKAHEAD_HPARAMS)
        return [n for n in names if n not in self.fixed]


def _info(
    name: str,
    cls: type,
    summary: str,
    convention: str,
    paper: str,
    defaults: dict[str, Any],
    fixed: dict[str, Any] | None = None,
    origin: str = "torch",
    wrappers: tuple[str, ...] = (),
) -> OptimizerInfo:
    return OptimizerInfo(name, summary, convention, paper, defaults, cls, fixed or {}, origin, wrappers)
