r"""WGD as its authors' published code runs it (paper 003, github.com/hoseingh69/WGD), where that code
is not the paper's rule.

The published WGD_SGD and WGD_Adam are the paper's rule: ``WGD(..., mode="filter", min_dim=4)``
(registry: ``wgd-sgdm-published``, ``wgd-adam-published``). Three classes differ:

* ``WGD_Adam2`` centres Adam's *step*: ``WGD(Adam, target="update", min_dim=4)``
  (registry ``wgd-adam2-published``).
* ``WGD_RAdam`` centres RAdam's update *direction* and puts weight decay into that direction:
  :class:`WGDRAdamPublished` (registry ``wgd-radam-published``).
* ``WGD_Nadam`` applies no centralization at all; it is the authors' Nadam, which divides the second
  moment by β2^t instead of 1 − β2^t: :class:`NadamPublished` (registry ``wgd-nadam-published``).

The NumPy references (optimlab.reference.published) were written from reading that code; the parity
tests hold these classes equal to them in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from optimlab.optim._common import ParamsT, check_lr, check_nonnegative, check_unit_interval
from optimlab.optim.dispatch import PER_TENSOR, PaperOptimizer
from optimlab.optim.wgd import _check_min_dim, _wgd_mean, wgd_eligible

PUBLISHED_TARGETS = ("update", "gradient")
V_CORRECTIONS = ("beta2^t", "1-beta2^t")


def _check_betas(name: str, betas: Any) -> tuple[float, float]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"Invalid {name}={betas!r}: must be a pair (beta1, beta2)")
    return (check_unit_interval(f"{name}[0]", betas[0]), check_unit_interval(f"{name}[1]", betas[1]))


def _check_choice(choices: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"Invalid {name}={value!r}: must be one of {choices}")
        return value

    return check


def _centre_(x: Tensor, group: dict[str, Any]) -> None:
    if wgd_eligible(x, group["min_dim"]):
        x.sub_(_wgd_mean(x, "filter"))


class WGDRAdamPublished(PaperOptimizer):
    r"""The authors' WGD_RAdam (RAdam.py, ``degenerated_to_sgd=True``, ``use_gc=True``,
    ``gc_conv_only=True``), per tensor; C(x) = x minus each output filter's mean, on tensors with
    ``min_dim`` (4) or more dims:

    .. math::
        \begin{aligned}
        &g \leftarrow \pm\nabla;\quad \textit{target = gradient (gc\_loc=True)}:\ g \leftarrow C(g) \\
        &m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
            \rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t) \\
        &\rho_t \ge 5:\ s = \tfrac{\sqrt{(1-\beta_2^t) r_t}}{1-\beta_1^t},\ d = m/(\sqrt{v}+\epsilon);
            \qquad \text{else: } s = \tfrac{1}{1-\beta_1^t},\ d \equiv m \text{ (the buffer itself)} \\
        &d \leftarrow d + \lambda\theta;\quad \textit{target = update (default, gc\_loc=False)}:\ d \leftarrow C(d) \\
        &\theta \leftarrow \theta - \text{lr}\cdot s\cdot d
        \end{aligned}

    with r_t = (ρ_t−4)(ρ_t−2)ρ_∞ / ((ρ_∞−4)(ρ_∞−2)ρ_t). Differences from the paper's Algorithm 2
    (centre g, then RAdam): the *direction* is centred; weight decay enters the direction, scaled by
    lr·s (neither torch's coupled nor its decoupled form); in the un-rectified first steps (ρ_t < 5,
    t ≤ 5 at β2 = 0.999) d is the first-moment buffer, so λθ and the centring are written into m.
    Threshold ρ_t ≥ 5 (torch: > 5). ``maximize`` (not in the published code) flips ∇'s sign first.

    References: github.com/hoseingh69/WGD RAdam.py; Liu et al., "On the Variance of the Adaptive
    Learning Rate and Beyond", ICLR 2020.
    """

    _coupled_decay = False
    paths = (PER_TENSOR,)  # the published loop, as written (no multi-tensor form)
    _checks = {
        "lr": check_lr,
        "eps": check_nonnegative,
        "weight_decay": check_nonnegative,
        "betas": _check_betas,
        "target": _check_choice(PUBLISHED_TARGETS),
        "min_dim": lambda n, v: _check_min_dim(v),
    }

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        target: str = "update",
        min_dim: int = 4,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            target=target,
            min_dim=min_dim,
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _step_group(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], foreach: bool) -> None:
        beta1, beta2 = group["betas"]
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        for p, g in zip(params, grads):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            m, v = state["exp_avg"], state["exp_avg_sq"]
            if group["target"] == "gradient" and wgd_eligible(g, group["min_dim"]):
                g = g - _wgd_mean(g, "filter")
            m.lerp_(g, 1.0 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            state["step"] += 1
            t = state["step"]
            rho_t = rho_inf - 2.0 * t * beta2**t / (1.0 - beta2**t)
            if rho_t >= 5.0:
                s = math.sqrt(
                    (1.0 - beta2**t)
                    * (rho_t - 4.0)
                    / (rho_inf - 4.0)
                    * (rho_t - 2.0)
                    / rho_t
                    * rho_inf
                    / (rho_inf - 2.0)
                ) / (1.0 - beta1**t)
                d = m / (v.sqrt() + eps)
            else:
                s = 1.0 / (1.0 - beta1**t)
                d = m  # the published code's alias: what follows is written into the first moment
            if wd != 0.0:
                d.add_(p, alpha=wd)
            if group["target"] == "update":
                _centre_(d, group)
            p.add_(d, alpha=-lr * s)


class NadamPublished(PaperOptimizer):
    r"""The authors' Nadam, published again as WGD_Nadam (NAdam.py): no centralization.

    .. math::
        \begin{aligned}
        &g \leftarrow \pm\nabla + \lambda\theta,\quad \mu_t = \beta_1(1 - \tfrac12 0.96^{t\psi}),\quad
            \Pi_t = \Pi_{t-1}\mu_t \\
        &m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
            v' = v / \beta_2^t \ \ (\textit{published}) \text{ or } v / (1-\beta_2^t) \\
        &\theta \leftarrow \theta - \text{lr}\tfrac{1-\mu_t}{1-\Pi_t}\tfrac{g}{\sqrt{v'}+\epsilon}
            - \text{lr}\tfrac{\mu_{t+1}}{1-\Pi_t\mu_{t+1}}\tfrac{m}{\sqrt{v'}+\epsilon}
        \end{aligned}

    ``v_correction="beta2^t"`` (default) is the published line ``exp_avg_sq.div(1. - bias_correction2)``
    with bias_correction2 = 1 − β2^t: it multiplies every step by sqrt(β2^t) relative to Nadam (an
    exponential lr decay, halving every ≈1386 steps at β2 = 0.999). ``"1-beta2^t"`` corrects it,
    which is exactly torch.optim.NAdam (ψ = ``momentum_decay``, their ``schedule_decay``).

    References: github.com/hoseingh69/WGD NAdam.py; Dozat, "Incorporating Nesterov Momentum into Adam", 2016.
    """

    paths = (PER_TENSOR,)  # the published loop, as written (no multi-tensor form)
    _checks = {
        "lr": check_lr,
        "eps": check_nonnegative,
        "weight_decay": check_nonnegative,
        "momentum_decay": check_nonnegative,
        "betas": _check_betas,
        "v_correction": _check_choice(V_CORRECTIONS),
    }

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        v_correction: str = "beta2^t",
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            v_correction=v_correction,
            maximize=bool(maximize),
            foreach=foreach,
        )
        super().__init__(params, defaults)

    def _step_group(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], foreach: bool) -> None:
        beta1, beta2 = group["betas"]
        lr, eps, psi = group["lr"], group["eps"], group["momentum_decay"]
        for p, g in zip(params, grads):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["mu_product"] = 1.0
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] += 1
            t = state["step"]
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
            mu_product = state["mu_product"] * mu
            state["mu_product"] = mu_product
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m.lerp_(g, 1.0 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            divisor = beta2**t if group["v_correction"] == "beta2^t" else 1.0 - beta2**t
            denom = (v / divisor).sqrt_().add_(eps)
            p.addcdiv_(g, denom, value=-lr * (1.0 - mu) / (1.0 - mu_product))
            p.addcdiv_(m, denom, value=-lr * mu_next / (1.0 - mu_product * mu_next))
