"""The field's baselines beside the papers' optimizers, by name, from pytorch_optimizer (pinned in
pyproject) and torch — not written again here.

Momentum conventions, stated because they decide what "the same lr" means:

* ``apollo`` — Apollo of Ma (2020), the quasi-Newton method with a diagonal Hessian approximation
  and EMA momentum (β; rebound, warm-up of init_lr→lr over 500 steps). pytorch_optimizer calls it
  ``ApolloDQN``; its ``APOLLO`` is a different method (Zhu et al. 2024, SGD-like memory for LLMs),
  not registered here.
* ``adan`` — Adan (Xie et al. 2022): EMA of g, of the gradient difference g_t − g_{t−1} and of the
  squared Nesterov-corrected gradient. pytorch_optimizer writes the betas as 1 − the paper's
  (0.98, 0.92, 0.99) ↔ paper (0.02, 0.08, 0.01).
* ``mars`` — MARS-AdamW (Yuan et al. 2024): c_t = g_t + γ·β1/(1−β1)·(g_t − g_{t−1}), clipped to norm 1,
  then AdamW on c (EMA betas (0.95, 0.99)). 1-D tensors get plain AdamW with lr_1d and a decoupled
  weight_decay_1d = 0.1 (the library's default).
  Registered through a subclass that applies ``maximize`` itself (the library's seeds Δg wrongly).
* ``qhm`` — quasi-hyperbolic momentum (Ma & Yarats 2019): buf = β·buf + (1−β)·g (EMA, buf_0 = 0),
  θ −= lr·(ν·buf + (1−ν)·g). With ν = β it is RSGDM from step 2 on (tests/test_field.py).
* ``lion`` — Lion (Chen et al. 2023): θ −= lr·sign(β1·m + (1−β1)·g), m = β2·m + (1−β2)·g (EMA);
  decoupled weight decay. Steps are ±lr per entry: use a ~10× smaller lr than AdamW.
* ``schedulefree-sgd``, ``schedulefree-adamw`` — Schedule-Free (Defazio et al. 2024): interpolation
  momentum between the gradient point y and the averaged point x; the optimizer has train()/eval()
  switches that move the parameters between y and x (the harness calls them through
  optimlab.optim.set_train_mode). No lr schedule is needed.
* ``adamw`` — torch.optim.AdamW: Adam with decoupled weight decay (default 0.01).
"""

from __future__ import annotations

from typing import Any

import pytorch_optimizer as po
import torch

from optimlab.optim._common import ParamsT, closure_loss
from optimlab.optim.info import OptimizerInfo, _info


class Adan(po.Adan):
    """pytorch_optimizer's Adan with ``maximize`` done here: in 4.1.0 its first gradient difference is
    seeded with the un-negated gradient, so under maximize step 1 sees Δg = 2∇f instead of 0
    (tests/test_optimizers.py's maximize test shows it). The gradient is negated before Adan sees it."""

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, ...] = (0.98, 0.92, 0.99),
        weight_decay: float = 0.0,
        weight_decouple: bool = False,
        max_grad_norm: float = 0.0,
        foreach: bool | None = None,
        eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,  # type: ignore[arg-type]  # 3 betas, checked by the library
            weight_decay=weight_decay,
            weight_decouple=weight_decouple,
            max_grad_norm=max_grad_norm,
            foreach=foreach,
            eps=eps,
            maximize=False,
        )
        self.negate_grad = bool(maximize)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure_loss(closure)
        if self.negate_grad:
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.neg_()
        super().step()
        return loss


def _po(
    name: str,
    cls: type,
    summary: str,
    convention: str,
    paper: str,
    defaults: dict[str, Any],
    fixed: dict[str, Any] | None = None,
) -> OptimizerInfo:
    return _info(name, cls, summary, convention, paper, defaults, fixed, origin="pytorch_optimizer")


FIELD: dict[str, OptimizerInfo] = {
    info.name: info
    for info in [
        _info(
            "adamw",
            torch.optim.AdamW,
            "AdamW: Adam with decoupled weight decay θ −= lr·λ·θ",
            "adaptive (decoupled wd)",
            "Loshchilov & Hutter 2019; torch.optim.AdamW",
            {"lr": 0.001, "weight_decay": 0.01},
            {"amsgrad": False},
        ),
        _po(
            "apollo",
            po.ApolloDQN,
            "Apollo (Ma 2020): diagonal quasi-Newton, EMA momentum β, rectified curvature "
            "(pytorch_optimizer.ApolloDQN, not its 2024 APOLLO); warm-up init_lr → lr over warmup_steps",
            "quasi-newton (ema β)",
            "004's baseline; Ma 2020 arXiv:2009.13586",
            {"lr": 0.01, "beta": 0.9, "init_lr": 1e-5, "warmup_steps": 500},
        ),
        _po(
            "adan",
            Adan,
            "Adan: EMAs of g, of g_t − g_{t−1} and of the squared corrected gradient",
            "ema + gradient difference (betas = 1 − paper's)",
            "Xie et al. 2022 arXiv:2208.06677",
            {"lr": 0.001, "betas": (0.98, 0.92, 0.99)},
        ),
        _po(
            "mars",
            po.MARS,
            "MARS-AdamW: AdamW on g + γβ1/(1−β1)(g_t − g_{t−1}) (clipped); AdamW on 1-D tensors",
            "ema + gradient difference (adaptive)",
            "Yuan et al. 2024 arXiv:2411.10438",
            {"lr": 0.003, "betas": (0.95, 0.99), "gamma": 0.025},
            {"mars_type": "adamw"},
        ),
        _po(
            "qhm",
            po.QHM,
            "QHM: buf = β·buf + (1−β)·g, θ −= lr·(ν·buf + (1−ν)·g); ν = β is RSGDM from step 2",
            "ema (momentum = β, ν)",
            "Ma & Yarats 2019 arXiv:1810.06801",
            {"lr": 0.01, "momentum": 0.9, "nu": 0.7},
        ),
        _po(
            "lion",
            po.Lion,
            "Lion: θ −= lr·sign(β1·m + (1−β1)·g), m = β2·m + (1−β2)·g; decoupled decay",
            "sign of ema (betas)",
            "Chen et al. 2023 arXiv:2302.06675",
            {"lr": 1e-4, "betas": (0.9, 0.99)},
        ),
        _po(
            "schedulefree-sgd",
            po.ScheduleFreeSGD,
            "Schedule-Free SGD: interpolation momentum with iterate averaging; train()/eval() switch the parameters",
            "schedule-free (momentum = interpolation β)",
            "Defazio et al. 2024 arXiv:2405.15682",
            {"lr": 1.0, "momentum": 0.9},
        ),
        _po(
            "schedulefree-adamw",
            po.ScheduleFreeAdamW,
            "Schedule-Free AdamW: AdamW's denominator, interpolation "
            "momentum with iterate averaging; train()/eval() switch the parameters",
            "schedule-free (adaptive, betas)",
            "Defazio et al. 2024 arXiv:2405.15682",
            {"lr": 0.0025, "betas": (0.9, 0.999)},
        ),
    ]
}
