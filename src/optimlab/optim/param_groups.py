"""Parameter groups users expect: no weight decay on biases and normalization weights.

    groups = no_decay_groups(model, weight_decay=5e-4)
    opt = create_optimizer("sgdm", groups, lr=0.1)
    # the harness: TrainConfig(no_decay=True), or `no_decay = true` in an experiment TOML

A parameter goes to the zero-decay group when it is a bias (any module's ``bias``) or belongs to a
normalization layer, recognised by module type (BatchNorm*, SyncBatchNorm, InstanceNorm*, LayerNorm,
GroupNorm, RMSNorm) — not by name, so a custom model's ``norm_weight`` is judged by
what it is. Everything else (conv, linear, embedding weights) keeps ``weight_decay``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm1d/2d/3d, SyncBatchNorm, InstanceNorm1d/2d/3d, Lazy*
    nn.LayerNorm,
    nn.GroupNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)


def no_decay_groups(model: nn.Module, weight_decay: float | None = None, **group_options: Any) -> list[dict[str, Any]]:
    """Two param groups over the model's trainable parameters: ``{"params": decay, "weight_decay": λ}``
    and ``{"params": no_decay, "weight_decay": 0.0, "weight_decay_1d": 0.0}`` (MARS's own decay of 1-D
    tensors; other optimizers carry the key unused) (both with ``group_options``); an empty group is
    left out. ``weight_decay=None`` leaves the key out of the first group, so it takes the optimizer's
    own weight_decay. Each parameter appears once even when modules share it (the first owner decides)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"no_decay_groups needs an nn.Module, got {type(model).__name__}")
    decay: list[torch.Tensor] = []
    no_decay: list[torch.Tensor] = []
    seen: set[int] = set()
    for module in model.modules():
        is_norm = isinstance(module, NORM_TYPES)
        for pname, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (no_decay if is_norm or pname == "bias" else decay).append(p)
    groups = []
    if decay:
        groups.append(
            {"params": decay, **({} if weight_decay is None else {"weight_decay": weight_decay}), **group_options}
        )
    if no_decay:
        # weight_decay_1d: MARS decays 1-D tensors by its own coefficient, which must stop here too
        groups.append({"params": no_decay, "weight_decay": 0.0, "weight_decay_1d": 0.0, **group_options})
    return groups
