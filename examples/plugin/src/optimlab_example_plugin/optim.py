"""Signum (Bernstein et al. 2018, "signSGD: compressed optimisation for non-convex problems"):
m = β·m + (1 − β)·g, θ −= lr·sign(m). A torch.optim.Optimizer subclass, as optimlab expects of an
optimizer plugin; its keyword arguments are its hyperparameters (optimlab reads them and their
defaults from this signature)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer


class Signum(Optimizer):
    """Signum: θ −= lr·sign(EMA momentum of the gradient); coupled L2 weight decay."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ) -> None:
        # bad input is one ValueError naming the hyperparameter, before any parameter is touched
        if not lr > 0.0:
            raise ValueError(f"Invalid lr={lr!r}: must be > 0")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Invalid momentum={momentum!r}: must be in [0, 1)")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay={weight_decay!r}: must be >= 0")
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "maximize": bool(maximize)}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = -p.grad if group["maximize"] else p.grad
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.mul_(beta).add_(grad, alpha=1.0 - beta)
                p.add_(torch.sign(buf), alpha=-group["lr"])
        return loss
