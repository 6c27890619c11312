r"""NumPy references for the Adam family: Adam, AMSGrad, Nadam, RAdam.

Same shape as ``classical``: ``init(theta) -> state``, ``update(state, theta, g, **hparams) ->
(theta_new, state_new)``, pure, float64, coupled L2 ``weight_decay`` after the ``maximize`` flip.
``convention="paper"`` (default) follows the paper's equations; ``convention="torch"`` reproduces
torch.optim exactly. Symbols: β1, β2 → beta1, beta2; m, v the first and second moment EMAs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from optimlab.reference._common import (
    Convention,
    check_convention,
    check_nonnegative,
    check_unit,
    effective_gradient,
)


class AdamState(NamedTuple):
    m: np.ndarray  # EMA of gradients, m_0 = 0
    v: np.ndarray  # EMA of squared gradients, v_0 = 0
    t: int  # steps taken


class AMSGradState(NamedTuple):
    m: np.ndarray
    v: np.ndarray
    v_max: np.ndarray  # running max of the second moments (paper: of v_t; torch: of raw v_t too)
    t: int


class NAdamState(NamedTuple):
    m: np.ndarray
    v: np.ndarray
    mu_product: float  # torch convention: Π_{i≤t} μ_i of the momentum-decay schedule (1.0 at start)
    t: int


def _check_adam(lr: float, beta1: float, beta2: float, eps: float) -> None:
    check_nonnegative("lr", lr)
    check_unit("beta1", beta1)
    check_unit("beta2", beta2)
    check_nonnegative("eps", eps)


def _moments(m: np.ndarray, v: np.ndarray, g: np.ndarray, beta1: float, beta2: float) -> tuple[np.ndarray, np.ndarray]:
    return beta1 * m + (1.0 - beta1) * g, beta2 * v + (1.0 - beta2) * g * g


def adam_init(theta: np.ndarray) -> AdamState:
    z = np.zeros_like(theta, dtype=np.float64)
    return AdamState(m=z, v=z.copy(), t=0)


def adam_update(
    state: AdamState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    bias_correction: bool = True,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> tuple[np.ndarray, AdamState]:
    """Adam (Kingma & Ba; paper 003 eq. 9):

        m_t = β1·m_{t−1} + (1 − β1)·g_t,   v_t = β2·v_{t−1} + (1 − β2)·g_t²
        m̂_t = m_t / (1 − β1^t),   v̂_t = v_t / (1 − β2^t),   θ_t = θ_{t−1} − lr·m̂_t / (sqrt(v̂_t) + ε)

    torch.optim.Adam computes the same quantity as (lr / (1 − β1^t))·m_t / (sqrt(v_t)/sqrt(1 − β2^t) + ε):
    no convention difference. ``bias_correction=False`` gives paper 002's listing 3 shape (no m̂, v̂;
    002 also puts ε inside the root, not modelled). Eq. 9's typos (v from m_{k−1}, "η k") are not.
    """
    _check_adam(lr, beta1, beta2, eps)
    g = effective_gradient(g, theta, weight_decay, maximize)
    t = state.t + 1
    m, v = _moments(state.m, state.v, g, beta1, beta2)
    m_hat = m / (1.0 - beta1**t) if bias_correction else m
    v_hat = v / (1.0 - beta2**t) if bias_correction else v
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), AdamState(m=m, v=v, t=t)


def adamw_update(
    state: AdamState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    maximize: bool = False,
) -> tuple[np.ndarray, AdamState]:
    """AdamW (Loshchilov & Hutter 2019, decoupled weight decay), as torch.optim.AdamW:

        θ' = θ_{t−1}·(1 − lr·λ),   then Adam's step on the raw (±) gradient from θ'.

    The decay is not in the gradient, so it never enters m or v.
    """
    _check_adam(lr, beta1, beta2, eps)
    check_nonnegative("weight_decay", weight_decay)
    decayed = theta * (1.0 - lr * weight_decay)
    return adam_update(state, decayed, g, lr=lr, beta1=beta1, beta2=beta2, eps=eps, maximize=maximize)


def amsgrad_init(theta: np.ndarray) -> AMSGradState:
    z = np.zeros_like(theta, dtype=np.float64)
    return AMSGradState(m=z, v=z.copy(), v_max=z.copy(), t=0)


def amsgrad_update(
    state: AMSGradState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
    convention: Convention = "paper",
) -> tuple[np.ndarray, AMSGradState]:
    """AMSGrad (Reddi et al. 2018, Algorithm 2, cited by paper 000):

        m_t, v_t as in Adam;   v̂_t = max(v̂_{t−1}, v_t);   θ_t = θ_{t−1} − lr·m_t / (sqrt(v̂_t) + ε)

    The paper has no bias correction (and no ε; ε is added outside the root here, as everywhere).
    torch.optim.Adam(amsgrad=True) keeps the max of the raw v_t and bias-corrects both moments at the
    current step: θ_t = θ_{t−1} − lr·(m_t / (1 − β1^t)) / (sqrt(v̂_t) / sqrt(1 − β2^t) + ε).
    """
    check_convention(convention)
    _check_adam(lr, beta1, beta2, eps)
    g = effective_gradient(g, theta, weight_decay, maximize)
    t = state.t + 1
    m, v = _moments(state.m, state.v, g, beta1, beta2)
    v_max = np.maximum(state.v_max, v)
    if convention == "paper":
        step = lr * m / (np.sqrt(v_max) + eps)
    else:
        step = lr / (1.0 - beta1**t) * m / (np.sqrt(v_max) / np.sqrt(1.0 - beta2**t) + eps)
    return theta - step, AMSGradState(m=m, v=v, v_max=v_max, t=t)


def nadam_init(theta: np.ndarray) -> NAdamState:
    z = np.zeros_like(theta, dtype=np.float64)
    return NAdamState(m=z, v=z.copy(), mu_product=1.0, t=0)


def nadam_update(
    state: NAdamState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.002,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    momentum_decay: float = 0.004,
    weight_decay: float = 0.0,
    maximize: bool = False,
    convention: Convention = "paper",
) -> tuple[np.ndarray, NAdamState]:
    """Nadam (Dozat; paper 003 eq. 10), with m_t, v_t, m̂_t, v̂_t as in Adam:

        θ_t = θ_{t−1} − lr / (sqrt(v̂_t) + ε) · (β1·m̂_t + (1 − β1)·g_t / (1 − β1^t))

    torch.optim.NAdam follows Dozat's momentum-decay schedule instead of a constant β1:
        μ_t = β1·(1 − 0.5·0.96^(t·ψ)), ψ = ``momentum_decay`` (default 0.004), Π_t = μ_1⋯μ_t,
        θ_t = θ_{t−1} − lr·(1 − μ_t)/(1 − Π_t)·g_t / d_t − lr·μ_{t+1}/(1 − Π_t·μ_{t+1})·m_t / d_t,
        d_t = sqrt(v_t / (1 − β2^t)) + ε.
    No ψ turns one into the other (ψ = 0 gives μ_t = β1/2). ψ is used by the torch convention only.
    (Eq. 10's "m_k = γ m_{k−1} + η g_k" line is the NAG recursion misprinted; Adam's m_t is meant.)
    """
    check_convention(convention)
    _check_adam(lr, beta1, beta2, eps)
    check_nonnegative("momentum_decay", momentum_decay)
    g = effective_gradient(g, theta, weight_decay, maximize)
    t = state.t + 1
    m, v = _moments(state.m, state.v, g, beta1, beta2)
    bc2 = 1.0 - beta2**t
    if convention == "paper":
        bc1 = 1.0 - beta1**t
        denom = np.sqrt(v / bc2) + eps
        theta_new = theta - lr / denom * (beta1 * m / bc1 + (1.0 - beta1) * g / bc1)
        return theta_new, NAdamState(m=m, v=v, mu_product=state.mu_product, t=t)
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    mu_product = state.mu_product * mu
    denom = np.sqrt(v / bc2) + eps
    theta_new = (
        theta
        - lr * (1.0 - mu) / (1.0 - mu_product) * g / denom
        - lr * mu_next / (1.0 - mu_product * mu_next) * m / denom
    )
    return theta_new, NAdamState(m=m, v=v, mu_product=mu_product, t=t)


def radam_rho(t: int, beta2: float) -> tuple[float, float]:
    """(ρ_∞, ρ_t): the maximum and current length of the approximated SMA (paper 003 Algorithm 1)."""
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    return rho_inf, rho_inf - 2.0 * t * beta2**t / (1.0 - beta2**t)


def radam_update(
    state: AdamState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
    convention: Convention = "paper",
) -> tuple[np.ndarray, AdamState]:
    """RAdam (Liu et al.; paper 003 Algorithms 1-2), with m_t, v_t, m̂_t as in Adam:

        ρ_∞ = 2/(1 − β2) − 1,   ρ_t = ρ_∞ − 2t·β2^t / (1 − β2^t)
        if ρ_t > 4:  l_t = sqrt((1 − β2^t) / v_t),
                     r_t = sqrt((ρ_t − 4)(ρ_t − 2)ρ_∞ / ((ρ_∞ − 4)(ρ_∞ − 2)ρ_t)),
                     θ_t = θ_{t−1} − lr·r_t·m̂_t·l_t
        else:        θ_t = θ_{t−1} − lr·m̂_t          (un-adapted momentum)

    torch.optim.RAdam differs twice: it rectifies only when ρ_t > 5 (so with β2 = 0.999 step 5, where
    ρ_5 ≈ 4.995, is rectified by the paper and not by torch), and it adds ε outside the root,
    l_t = sqrt(1 − β2^t) / (sqrt(v_t) + ε). The paper's l_t has no ε (``eps`` is unused there).
    (Algorithm 1 misprints the v update as 1/(β2 v_{t−1}) and puts the root of r_t on the denominator
    only; Algorithm 2 and Liu et al. have the root over the whole fraction, as here.)
    """
    check_convention(convention)
    _check_adam(lr, beta1, beta2, eps)
    g = effective_gradient(g, theta, weight_decay, maximize)
    t = state.t + 1
    m, v = _moments(state.m, state.v, g, beta1, beta2)
    m_hat = m / (1.0 - beta1**t)
    bc2 = 1.0 - beta2**t
    rho_inf, rho_t = radam_rho(t, beta2)
    threshold = 4.0 if convention == "paper" else 5.0
    if rho_t > threshold:
        r = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)) ** 0.5
        l_t = np.sqrt(bc2 / v) if convention == "paper" else bc2**0.5 / (np.sqrt(v) + eps)
        theta_new = theta - lr * r * m_hat * l_t
    else:
        theta_new = theta - lr * m_hat
    return theta_new, AdamState(m=m, v=v, t=t)
