"""Whose weight decay WGD folds, and whose it leaves to the base.

WGD (target "gradient") can fold a base's *coupled L2* decay into the gradient before centring it —
the base then sees centralize(±∇ + λθ) with λ = 0, the authors' order — only when the base's decay
is exactly "add λθ to the sign-flipped gradient, then run the rule". Any other decay is part of the
base's rule and is left alone: decoupled decay (AdamW, ``decoupled_weight_decay=True``,
pytorch_optimizer's ``weight_decouple=True``), Adan's proximal θ/(1 + lr·λ), Schedule-Free AdamW's
decay added to the preconditioned step, Apollo's 'decoupled' and 'stable' types, MARS (its 1-D
tensors decay by ``weight_decay_1d``), and every optimizer optimlab does not know (plugins,
references). The table below lists what optimlab knows; everything else is not folded.

The sign: a base maximizing negates the gradient before adding λθ, so the fold adds −λθ then
(the base sees −(∇ − λθ) = −∇ + λθ). torch and optimlab keep ``maximize`` in each param group,
pytorch_optimizer on the optimizer (``self.maximize``); both are read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_optimizer as po
import torch
from torch.optim import Optimizer

from optimlab.optim.rsgdm import RSGDM
from optimlab.optim.sgdm_ema import SGDMEMA
from optimlab.optim.tmsgd import TMSGD


def _coupled_unless_decoupled(group: dict[str, Any]) -> bool:
    return not group.get("decoupled_weight_decay", False)


def _coupled_unless_weight_decouple(group: dict[str, Any]) -> bool:
    return not group.get("weight_decouple", True)


# base class -> whether a param group's weight_decay is coupled L2 added after the maximize flip.
# Checked in order with isinstance: AdamW (a subclass of Adam in torch) comes first.
COUPLED_L2: tuple[tuple[type, Callable[[dict[str, Any]], bool]], ...] = (
    (torch.optim.AdamW, lambda group: False),
    (torch.optim.SGD, lambda group: True),
    (torch.optim.Adam, _coupled_unless_decoupled),
    (torch.optim.NAdam, _coupled_unless_decoupled),
    (torch.optim.RAdam, _coupled_unless_decoupled),
    (torch.optim.Adagrad, lambda group: True),
    (torch.optim.Adadelta, lambda group: True),
    (torch.optim.RMSprop, lambda group: True),
    (torch.optim.Adamax, lambda group: True),
    (SGDMEMA, lambda group: True),
    (RSGDM, lambda group: True),
    (TMSGD, lambda group: True),
    (po.QHM, _coupled_unless_weight_decouple),
    (po.Lion, _coupled_unless_weight_decouple),
    (po.ApolloDQN, lambda group: group.get("weight_decay_type") == "l2"),
    (po.ScheduleFreeSGD, lambda group: True),  # λθ added to the gradient at y, before the update
)


def folds_coupled_decay(base: Optimizer, group: dict[str, Any]) -> bool:
    """Whether WGD may fold this group's weight_decay into the gradient (coupled L2 it knows)."""
    for cls, coupled in COUPLED_L2:
        if isinstance(base, cls):
            return coupled(group)
    return False


def maximizes(base: Optimizer, group: dict[str, Any]) -> bool:
    """Whether the base negates this group's gradient (group key, or pytorch_optimizer's attribute)."""
    return bool(group.get("maximize", getattr(base, "maximize", False)))
