"""optimlab's torch optimizers and their registry.

Ours: RSGDM (000/001), SGDMEMA (the papers' SGDM), TMSGD (004, TM-SGD and TM-SGD-M), WGD (003, a
wrapper over any optimizer) and the WGD authors' published variants (wgd_published). Torch's own
classical optimizers are registered under plain names, the field's baselines (Apollo, Adan, MARS,
QHM, Lion, Schedule-Free, Lookahead) come from pytorch_optimizer (optimlab.optim.field).
"""

from __future__ import annotations

from optimlab.optim._common import ParamsT
from optimlab.optim.info import OptimizerInfo
from optimlab.optim.param_groups import no_decay_groups
from optimlab.optim.registry import create_optimizer, list_optimizers, optimizer_info, set_train_mode
from optimlab.optim.rsgdm import RSGDM, rsgdm_update_
from optimlab.optim.sgdm_ema import SGDMEMA, sgdm_ema_update_
from optimlab.optim.tmsgd import TMSGD, start_multistep, tmsgd_update_
from optimlab.optim.wgd import WGD, WGD_MODES, WGD_TARGETS, centralize_gradient, wgd_eligible
from optimlab.optim.wgd_published import NadamPublished, WGDRAdamPublished

__all__ = [
    "RSGDM",
    "SGDMEMA",
    "TMSGD",
    "WGD",
    "WGD_MODES",
    "WGD_TARGETS",
    "NadamPublished",
    "WGDRAdamPublished",
    "no_decay_groups",
    "set_train_mode",
    "wgd_eligible",
    "OptimizerInfo",
    "ParamsT",
    "centralize_gradient",
    "create_optimizer",
    "list_optimizers",
    "optimizer_info",
    "rsgdm_update_",
    "sgdm_ema_update_",
    "start_multistep",
    "tmsgd_update_",
]
