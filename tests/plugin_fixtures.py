"""A user's optimizer, optimizer factory, model and data loader, named in tests by reference
(`plugin_fixtures:HeavyBallSign`) or by the entry points of a fake installed distribution."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from optimlab.tasks.classification import ClassificationTask


class HeavyBallSign(Optimizer):
    """heavy-ball momentum on the gradient's sign: buf = μ·buf + sign(g), θ −= lr·buf"""

    def __init__(
        self, params: Iterable[Any], lr: float = 0.01, momentum: float = 0.5, weight_decay: float = 0.0
    ) -> None:
        if not lr > 0:
            raise ValueError(f"Invalid lr={lr!r}: must be > 0")
        if not 0 <= momentum < 1:
            raise ValueError(f"Invalid momentum={momentum!r}: must be in [0, 1)")
        if not weight_decay >= 0:
            raise ValueError(f"Invalid weight_decay={weight_decay!r}: must be >= 0")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("buf", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(torch.sign(p.grad))
                p.mul_(1 - group["lr"] * group["weight_decay"]).add_(buf, alpha=-group["lr"])
        return None


def make_sgd(params: Iterable[Any], lr: float = 0.05, nesterov_momentum: float = 0.9) -> Optimizer:
    """torch's Nesterov SGD under a name of the user's choosing (a factory, not a class)"""
    return torch.optim.SGD(params, lr=lr, momentum=nesterov_momentum, nesterov=True)


def not_an_optimizer(params: Iterable[Any], lr: float = 0.1) -> list[Any]:
    return list(params)


NOT_CALLABLE = 3


def tiny_mlp(num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """flatten -> linear(16·width) -> ReLU -> linear"""
    c, h, w = input_shape
    hidden = max(1, round(16 * width))
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def digits_head(rows: int = 600) -> Any:
    """the first `rows` of scikit-learn's digits, optimlab's own split and normalization"""
    import dataclasses

    from optimlab.data import TensorSplit, load_dataset

    full = load_dataset("digits")
    return dataclasses.replace(full, train=TensorSplit(full.train.x[:rows], full.train.y[:rows]))


class Images2(ClassificationTask):
    """image classification under another name (a task plugin)"""

    name = "images2"
