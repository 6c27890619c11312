"""optimlab's torch optimizers and their registry.

Ours: RSGDM (000/001), SGDMEMA (the papers' SGDM), TMSGD (004, TM-SGD and TM-SGD-M), WGD (003, a
wrapper over any optimizer). Torch's own classical optimizers are registered under plain names.
"""

from __future__ import annotations

from optimlab.optim.registry import OptimizerInfo, create_optimizer, list_optimizers, optimizer_info
from optimlab.optim.rsgdm import RSGDM, rsgdm_update_
from optimlab.optim.sgdm_ema import SGDMEMA, sgdm_ema_update_
from optimlab.optim.tmsgd import TMSGD, start_multistep, tmsgd_update_
from optimlab.optim.wgd import WGD, WGD_MODES, centralize_gradient

__all__ = [
    "RSGDM",
    "SGDMEMA",
    "TMSGD",
    "WGD",
    "WGD_MODES",
    "OptimizerInfo",
    "centralize_gradient",
    "create_optimizer",
    "list_optimizers",
    "optimizer_info",
    "rsgdm_update_",
    "sgdm_ema_update_",
    "start_multistep",
    "tmsgd_update_",
]
