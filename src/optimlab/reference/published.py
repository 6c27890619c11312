r"""NumPy references for WGD as its authors' published code runs it (paper 003, github.com/hoseingh69/WGD).

Written from reading that code (files SGD.py, Adam.py, RAdam.py, NAdam.py at commit f326d02; the
``centralized_gradient`` helper RAdam.py imports is Gradient Centralization's, Yonghongwei/
Gradient-Centralization, algorithm-GC/algorithm/Centralization.py), never copied. Same optax-style
API as the other references: pure ``init`` / ``update``, float64 arrays, state as a NamedTuple.

What the published classes do, per tensor (C(x) = x minus the mean of each output filter over axes
1..n, applied only when ``ndim >= min_dim``; the authors' test is ``len(size) > 3``, i.e. min_dim 4):

* ``WGD_SGD``   g ← ∇ + λθ; g ← C(g); torch's heavy-ball SGD step on g.        (= the paper's rule)
* ``WGD_Adam``  g ← ∇ + λθ; g ← C(g); Adam step on g.                           (= the paper's rule)
* ``WGD_Adam2`` g ← ∇ + λθ; Adam's moments on g; δ = lr/(1−β1^t)·m/(sqrt(v)/sqrt(1−β2^t)+ε);
  θ ← θ − C(δ): the *step* is centred, not the gradient.
* ``WGD_RAdam`` (default ``gc_loc=False``) moments on the raw g (no λ); direction
  d = m/(sqrt(v)+ε) when ρ_t ≥ 5, else d = m itself (the same array: what follows also changes m);
  d ← d + λθ; d ← C(d); θ ← θ − lr·s_t·d with s_t RAdam's step size. ``gc_loc=True`` centres g
  before the moments and leaves d uncentred.
* ``WGD_Nadam`` no centralization at all: it is their ``Nadam`` renamed, and that Nadam divides the
  second moment by β2^t where Nadam divides by (1 − β2^t). With that one line corrected it is
  torch.optim.NAdam (momentum_decay = their schedule_decay).

``maximize`` (absent from the published code) flips the gradient's sign before anything else.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from optimlab.reference._common import check_nonnegative, check_unit

V_CORRECTIONS = ("beta2^t", "1-beta2^t")  # published Nadam's divisor of v, and the corrected one
TARGETS = ("update", "gradient")  # published WGD_RAdam: gc_loc=False, gc_loc=True


class MomentState(NamedTuple):
    m: np.ndarray  # first moment (heavy-ball buffer for SGD)
    v: np.ndarray  # second moment (unused by SGD)
    mu_product: float  # Nadam's running product of the momentum schedule (m_schedule), 1.0 at start
    t: int


def moment_init(theta: np.ndarray) -> MomentState:
    z = np.zeros_like(theta, dtype=np.float64)
    return MomentState(m=z, v=z.copy(), mu_product=1.0, t=0)


def centralize_filters(x: np.ndarray, min_dim: int = 4) -> np.ndarray:
    """C(x): each output filter (index along axis 0) minus its mean over axes 1..n, for ndim >= min_dim;
    smaller arrays are returned as they are (a copy)."""
    x = np.array(x, dtype=np.float64, copy=True)
    if x.ndim < min_dim:
        return x
    return x - x.mean(axis=tuple(range(1, x.ndim)), keepdims=True)


def _grad(g: np.ndarray, maximize: bool) -> np.ndarray:
    g = np.asarray(g, dtype=np.float64)
    return -g if maximize else g


def wgd_sgd_published_update(
    state: MomentState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.01,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
    min_dim: int = 4,
) -> tuple[np.ndarray, MomentState]:
    """WGD_SGD: d = C(g + λθ); buf = d at the first step, then μ·buf + (1 − dampening)·d; step along
    buf (or d + μ·buf with nesterov); θ ← θ − lr·step."""
    check_nonnegative("lr", lr)
    d = centralize_filters(_grad(g, maximize) + weight_decay * theta, min_dim)
    t = state.t + 1
    m = state.m
    if momentum != 0.0:
        m = d.copy() if t == 1 else momentum * state.m + (1.0 - dampening) * d
        d = d + momentum * m if nesterov else m
    return theta - lr * d, state._replace(m=m, t=t)


def _adam_moments(state: MomentState, g: np.ndarray, beta1: float, beta2: float) -> tuple[np.ndarray, np.ndarray]:
    return beta1 * state.m + (1.0 - beta1) * g, beta2 * state.v + (1.0 - beta2) * g * g


def wgd_adam_published_update(
    state: MomentState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
    min_dim: int = 4,
    centre: str = "gradient",
) -> tuple[np.ndarray, MomentState]:
    """WGD_Adam (``centre="gradient"``): g ← C(g + λθ), then Adam. WGD_Adam2 (``centre="update"``):
    Adam on g + λθ, and the step δ = lr/(1−β1^t)·m/(sqrt(v)/sqrt(1−β2^t) + ε) is centred: θ ← θ − C(δ)."""
    check_unit("beta1", beta1)
    check_unit("beta2", beta2)
    if centre not in ("gradient", "update"):
        raise ValueError(f"Invalid centre={centre!r}: must be 'gradient' or 'update'")
    g = _grad(g, maximize) + weight_decay * theta
    if centre == "gradient":
        g = centralize_filters(g, min_dim)
    t = state.t + 1
    m, v = _adam_moments(state, g, beta1, beta2)
    delta = lr / (1.0 - beta1**t) * m / (np.sqrt(v) / np.sqrt(1.0 - beta2**t) + eps)
    if centre == "update":
        delta = centralize_filters(delta, min_dim)
    return theta - delta, state._replace(m=m, v=v, t=t)


def wgd_radam_published_update(
    state: MomentState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.001,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
    min_dim: int = 4,
    target: str = "update",
) -> tuple[np.ndarray, MomentState]:
    """WGD_RAdam as published (degenerated_to_sgd=True):

        (target "gradient" = gc_loc=True: g ← C(g) first)
        m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  ρ_∞ = 2/(1−β2) − 1;  ρ_t = ρ_∞ − 2tβ2^t/(1−β2^t)
        ρ_t ≥ 5:  s = sqrt((1−β2^t)·(ρ_t−4)/(ρ_∞−4)·(ρ_t−2)/ρ_t·ρ_∞/(ρ_∞−2)) / (1−β1^t),  d = m/(sqrt(v)+ε)
        else:     s = 1/(1−β1^t),  d ≡ m  (the first moment itself)
        d ← d + λθ;  (target "update" = gc_loc=False: d ← C(d));  θ ← θ − lr·s·d

    In the un-rectified steps d is m, so the λθ term and the centring are written into m as well.
    """
    check_unit("beta1", beta1)
    check_unit("beta2", beta2)
    if target not in TARGETS:
        raise ValueError(f"Invalid target={target!r}: must be one of {TARGETS}")
    g = _grad(g, maximize)
    if target == "gradient":
        g = centralize_filters(g, min_dim)
    t = state.t + 1
    m, v = _adam_moments(state, g, beta1, beta2)
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * t * beta2**t / (1.0 - beta2**t)
    rectified = rho_t >= 5.0
    if rectified:
        s = np.sqrt(
            (1.0 - beta2**t) * (rho_t - 4.0) / (rho_inf - 4.0) * (rho_t - 2.0) / rho_t * rho_inf / (rho_inf - 2.0)
        ) / (1.0 - beta1**t)
        d = m / (np.sqrt(v) + eps)
    else:
        s = 1.0 / (1.0 - beta1**t)
        d = m
    d = d + weight_decay * theta
    if target == "update":
        d = centralize_filters(d, min_dim)
    if not rectified:
        m = d  # the direction was the first-moment buffer: the decay term and the centring stay in it
    return theta - lr * s * d, state._replace(m=m, v=v, t=t)


def nadam_published_update(
    state: MomentState,
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
    v_correction: str = "beta2^t",
) -> tuple[np.ndarray, MomentState]:
    """The authors' Nadam and WGD_Nadam (the same code; no centralization):

        g ← g + λθ;  μ_t = β1(1 − 0.5·0.96^(tψ));  μ_{t+1} likewise;  Π_t = Π_{t−1}·μ_t
        m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  v' = v / β2^t   (published)
                                                     v' = v / (1 − β2^t)   (v_correction "1-beta2^t")
        θ ← θ − lr(1−μ_t)/(1−Π_t)·g/(sqrt(v')+ε) − lr·μ_{t+1}/(1−Π_t·μ_{t+1})·m/(sqrt(v')+ε)

    The published line is ``exp_avg_sq.div(1. - bias_correction2)`` with bias_correction2 = 1 − β2^t.
    Dividing by β2^t = e^{t·ln β2} multiplies the step by sqrt(β2^t): with β2 = 0.999 the effective lr
    halves every ln 4/0.001 ≈ 1386 steps.
    """
    check_unit("beta1", beta1)
    check_unit("beta2", beta2)
    if v_correction not in V_CORRECTIONS:
        raise ValueError(f"Invalid v_correction={v_correction!r}: must be one of {V_CORRECTIONS}")
    g = _grad(g, maximize) + weight_decay * theta
    t = state.t + 1
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    mu_product = state.mu_product * mu
    m, v = _adam_moments(state, g, beta1, beta2)
    divisor = beta2**t if v_correction == "beta2^t" else 1.0 - beta2**t
    denom = np.sqrt(v / divisor) + eps
    theta_new = (
        theta
        - lr * (1.0 - mu) / (1.0 - mu_product) * g / denom
        - lr * mu_next / (1.0 - mu_product * mu_next) * m / denom
    )
    return theta_new, MomentState(m=m, v=v, mu_product=mu_product, t=t)
