r"""NumPy references for the classical non-adaptive rules: mini-batch GD, EMA momentum, heavy-ball
SGDM, Nesterov, and the first adaptive three (Adagrad, Adadelta, RMSprop).

Every rule is a pair of pure functions in optax style,

    state = init(theta)
    theta_new, state_new = update(state, theta, g, **hparams)

with ``g`` the raw gradient ∇f(θ) given by the caller (never computed here) and the state a
NamedTuple of float64 arrays plus the step counter ``t`` (number of steps taken). Inputs are never
modified. ``weight_decay`` is coupled L2 (g ← ±g + λθ, after the ``maximize`` sign flip), as in the
torch counterparts. Where the paper's equation and torch differ, ``convention="paper"`` (default)
follows the paper and ``convention="torch"`` reproduces torch.optim exactly; each docstring says how.
Symbols: lr is the paper's α (000, 002), t_k / η (003) or ε (004).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from optimlab.reference._common import (
    Convention,
    check_convention,
    check_nonnegative,
    check_unit,
    effective_gradient,
)


class StepState(NamedTuple):
    t: int  # steps taken


class EMAState(NamedTuple):
    v: np.ndarray  # EMA of gradients, v_0 = 0 (paper 002 eq. 4)
    t: int


class MomentumState(NamedTuple):
    buf: np.ndarray  # heavy-ball buffer (torch: buf; paper 003 eq. 4-5: v, which includes lr)
    t: int


class AdagradState(NamedTuple):
    G: np.ndarray  # running sum of squared gradients (paper 003 eq. 6)
    t: int


class AdadeltaState(NamedTuple):
    Eg2: np.ndarray  # E[g²], EMA of squared gradients
    Edx2: np.ndarray  # E[Δx²], EMA of squared updates
    t: int


class RMSpropState(NamedTuple):
    s: np.ndarray  # EMA of squared gradients (paper 002 s_dw, paper 003 E[g²])
    t: int


# ----------------------------------------------------------------------------- mini-batch GD
def gd_init(theta: np.ndarray) -> StepState:
    return StepState(t=0)


def gd_update(
    state: StepState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.01,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> tuple[np.ndarray, StepState]:
    """Mini-batch gradient descent, paper 003 eq. 3 / paper 004 eq. 3: θ ← θ − lr·g.

    torch.optim.SGD(momentum=0) is the same rule; no convention difference.
    """
    check_nonnegative("lr", lr)
    g = effective_gradient(g, theta, weight_decay, maximize)
    return theta - lr * g, StepState(t=state.t + 1)


# ----------------------------------------------------------------------------- EMA momentum
def ema_sequence(xs: np.ndarray | Sequence[ArrayLike], beta: float, bias_correction: bool = False) -> np.ndarray:
    """The exponentially weighted averages v_1..v_n of x_1..x_n (paper 002 eqs. 4-7, 10).

    v_0 = 0, v_t = β v_{t−1} + (1 − β) x_t; with ``bias_correction`` each v_t is reported as
    v_t / (1 − β^t). The correction is applied to the reported value only: the recursion runs on the
    uncorrected v (feeding v_t / (1 − β^t) back into the recursion, as eq. 10's "v_t = ..." could be
    read, would be a different estimator).
    """
    check_unit("beta", beta)
    v = np.zeros_like(np.asarray(xs[0], dtype=np.float64))
    out = []
    for t, x in enumerate(xs, start=1):
        v = beta * v + (1.0 - beta) * np.asarray(x, dtype=np.float64)
        out.append(v / (1.0 - beta**t) if bias_correction else v)
    return np.array(out)


def ema_init(theta: np.ndarray) -> EMAState:
    return EMAState(v=np.zeros_like(theta, dtype=np.float64), t=0)


def ema_update(
    state: EMAState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.01,
    beta: float = 0.9,
    bias_correction: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> tuple[np.ndarray, EMAState]:
    """GD with EMA momentum (paper 002 §3.2 listing 1; paper 000 eqs. 1-2 = ``sgdm-ema``).

    v_t = β v_{t−1} + (1 − β) g_t,   θ_t = θ_{t−1} − lr·v̂_t,
    v̂_t = v_t / (1 − β^t) with ``bias_correction`` (paper 002 eq. 10), else v̂_t = v_t.

    This is the papers' SGDM. It is NOT torch's momentum (heavy ball, see ``sgdm_update``): the EMA
    buffer is (1 − β) times the heavy-ball buffer, so at equal lr its steps are (1 − β) times as
    long. No torch.optim counterpart; optimlab's SGDMEMA implements it (bias_correction=False).
    """
    check_nonnegative("lr", lr)
    check_unit("beta", beta)
    g = effective_gradient(g, theta, weight_decay, maximize)
    t = state.t + 1
    v = beta * state.v + (1.0 - beta) * g
    v_hat = v / (1.0 - beta**t) if bias_correction else v
    return theta - lr * v_hat, EMAState(v=v, t=t)


# ----------------------------------------------------------------------------- heavy-ball SGDM
def momentum_init(theta: np.ndarray) -> MomentumState:
    return MomentumState(buf=np.zeros_like(theta, dtype=np.float64), t=0)


def _heavy_ball(buf: np.ndarray, g: np.ndarray, t: int, momentum: float, dampening: float) -> np.ndarray:
    # torch: the first buffer is g itself (undamped); afterwards buf = μ·buf + (1 − d)·g.
    return g.copy() if t == 1 else momentum * buf + (1.0 - dampening) * g


def sgdm_update(
    state: MomentumState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.01,
    momentum: float = 0.9,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    maximize: bool = False,
    convention: Convention = "paper",
) -> tuple[np.ndarray, MomentumState]:
    """Heavy-ball SGD with momentum (``sgdm``), torch's convention of momentum.

    paper 003 eq. 4 (Qian):  v_k = m·v_{k−1} + lr_k·g_k,  x_{k+1} = x_k − v_k   (v_0 = 0; lr inside v)
    torch.optim.SGD:         buf_k = μ·buf_{k−1} + (1 − d)·g_k,  buf_1 = g_1,  θ ← θ − lr_k·buf_k

    With a constant lr and dampening d = 0 the two are the same iteration (v = lr·buf, and
    buf_1 = g_1 = μ·0 + g_1). They differ when lr changes between steps (the paper's v keeps the old
    lr inside; torch rescales the whole buffer by the new lr) and under dampening (torch does not damp
    the first buffer). ``dampening`` exists only in the torch convention. Compare ``ema_update``.
    """
    check_convention(convention)
    check_nonnegative("lr", lr)
    check_unit("momentum", momentum)
    if convention == "paper" and dampening:
        raise ValueError(f"dampening={dampening!r} is torch-only: paper 003 eq. 4 has none (use convention='torch')")
    g = effective_gradient(g, theta, weight_decay, maximize)
    t = state.t + 1
    if convention == "paper":
        v = momentum * state.buf + lr * g
        return theta - v, MomentumState(buf=v, t=t)
    buf = _heavy_ball(state.buf, g, t, momentum, dampening)
    return theta - lr * buf, MomentumState(buf=buf, t=t)


# ----------------------------------------------------------------------------- Nesterov
def nag_lookahead(state: MomentumState, theta: np.ndarray, *, momentum: float = 0.9) -> np.ndarray:
    """The point x_k − m·v_{k−1} where paper 003 eq. 5 evaluates the gradient (paper convention)."""
    return theta - momentum * state.buf


def nag_update(
    state: MomentumState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.01,
    momentum: float = 0.9,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    maximize: bool = False,
    convention: Convention = "paper",
) -> tuple[np.ndarray, MomentumState]:
    """Nesterov accelerated gradient (``nag``), in the paper's form or in torch's form.

    paper 003 eq. 5 (Sutskever et al.):  v_k = m·v_{k−1} + lr·∇f(x_k − m·v_{k−1}),  x_{k+1} = x_k − v_k.
        With ``convention="paper"`` the caller must pass g = ∇f at ``nag_lookahead(state, theta)``.
    torch.optim.SGD(nesterov=True) (Bengio et al.'s reformulation): with g = ∇f(θ_k),
        buf_k = μ·buf_{k−1} + (1 − d)·g_k (buf_1 = g_1),  θ_{k+1} = θ_k − lr·(g_k + μ·buf_k).

    Torch implements the second. For constant lr and d = 0 the two are one method seen from two
    points: torch's θ_k is the paper's look-ahead point φ_k = x_k − m·v_{k−1} (v = lr·buf), since
    φ_{k+1} = φ_k − (1 + m)·lr·∇f(φ_k) − m²·v_{k−1}. ``optimlab``'s ``nag`` is torch's; the torch
    convention here matches it exactly, tests/test_reference_unit.py checks the equivalence.
    """
    check_convention(convention)
    check_nonnegative("lr", lr)
    check_unit("momentum", momentum)
    if convention == "paper" and dampening:
        raise ValueError(f"dampening={dampening!r} is torch-only: paper 003 eq. 5 has none (use convention='torch')")
    g = effective_gradient(g, theta, weight_decay, maximize)
    t = state.t + 1
    if convention == "paper":
        v = momentum * state.buf + lr * g
        return theta - v, MomentumState(buf=v, t=t)
    buf = _heavy_ball(state.buf, g, t, momentum, dampening)
    return theta - lr * (g + momentum * buf), MomentumState(buf=buf, t=t)


# ----------------------------------------------------------------------------- Adagrad
def adagrad_init(theta: np.ndarray) -> AdagradState:
    return AdagradState(G=np.zeros_like(theta, dtype=np.float64), t=0)


def adagrad_update(
    state: AdagradState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.01,
    eps: float = 1e-10,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    maximize: bool = False,
    convention: Convention = "paper",
) -> tuple[np.ndarray, AdagradState]:
    """Adagrad (paper 003 eq. 6): G_k = G_{k−1} + g_k²,  x_{k+1} = x_k − lr / sqrt(G_k + ε) · g_k.

    torch.optim.Adagrad puts ε outside the root, lr / (sqrt(G_k) + ε), and scales lr by
    1 / (1 + (k − 1)·lr_decay) (torch-only; 0 = none, the paper). torch's
    ``initial_accumulator_value`` (G_0) is not modelled: G_0 = 0 as in the paper and torch's default.
    """
    check_convention(convention)
    check_nonnegative("lr", lr)
    check_nonnegative("eps", eps)
    check_nonnegative("lr_decay", lr_decay)
    g = effective_gradient(g, theta, weight_decay, maximize)
    t = state.t + 1
    G = state.G + g * g
    clr = lr / (1.0 + (t - 1) * lr_decay)
    denom = np.sqrt(G + eps) if convention == "paper" else np.sqrt(G) + eps
    return theta - clr * g / denom, AdagradState(G=G, t=t)


# ----------------------------------------------------------------------------- Adadelta
def adadelta_init(theta: np.ndarray) -> AdadeltaState:
    z = np.zeros_like(theta, dtype=np.float64)
    return AdadeltaState(Eg2=z, Edx2=z.copy(), t=0)


def adadelta_update(
    state: AdadeltaState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> tuple[np.ndarray, AdadeltaState]:
    """Adadelta (Zeiler; paper 003 eq. 7):

        E[g²]_k = ρ·E[g²]_{k−1} + (1 − ρ)·g_k²
        Δx_k = −sqrt(E[Δx²]_{k−1} + ε) / sqrt(E[g²]_k + ε) · g_k
        E[Δx²]_k = ρ·E[Δx²]_{k−1} + (1 − ρ)·Δx_k²
        x_{k+1} = x_k + lr·Δx_k

    The paper has no learning rate (lr = 1, the default here); torch.optim.Adadelta multiplies the
    step by ``lr`` (default 1.0) but accumulates the unscaled Δx_k in E[Δx²], as done here, so any lr
    matches torch. ε sits inside both roots in paper and torch alike. (Eq. 7 prints E[x̂]_{k−1} in the
    numerator; Zeiler's E[Δx²]_{k−1} is meant.)
    """
    check_nonnegative("lr", lr)
    check_unit("rho", rho)
    check_nonnegative("eps", eps)
    g = effective_gradient(g, theta, weight_decay, maximize)
    Eg2 = rho * state.Eg2 + (1.0 - rho) * g * g
    dx = -np.sqrt(state.Edx2 + eps) / np.sqrt(Eg2 + eps) * g
    Edx2 = rho * state.Edx2 + (1.0 - rho) * dx * dx
    return theta + lr * dx, AdadeltaState(Eg2=Eg2, Edx2=Edx2, t=state.t + 1)


# ----------------------------------------------------------------------------- RMSprop
def rmsprop_init(theta: np.ndarray) -> RMSpropState:
    return RMSpropState(s=np.zeros_like(theta, dtype=np.float64), t=0)


def rmsprop_update(
    state: RMSpropState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.01,
    rho: float = 0.9,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
    convention: Convention = "paper",
) -> tuple[np.ndarray, RMSpropState]:
    """RMSprop (paper 002 eqs. 11-12 and listing 2; paper 003 eq. 8):

        s_k = ρ·s_{k−1} + (1 − ρ)·g_k²,   θ ← θ − lr / sqrt(s_k + ε) · g_k.

    torch.optim.RMSprop calls ρ ``alpha`` (default 0.99; paper 003: 0.9) and puts ε outside the root:
    lr / (sqrt(s_k) + ε). torch's ``momentum`` and ``centered`` options are not modelled (parity is
    held at their defaults, 0 and False). (Eq. 11 of 002 prints dw_n for dw_n²; listing 2 squares.)
    """
    check_convention(convention)
    check_nonnegative("lr", lr)
    check_unit("rho", rho)
    check_nonnegative("eps", eps)
    g = effective_gradient(g, theta, weight_decay, maximize)
    s = rho * state.s + (1.0 - rho) * g * g
    denom = np.sqrt(s + eps) if convention == "paper" else np.sqrt(s) + eps
    return theta - lr * g / denom, RMSpropState(s=s, t=state.t + 1)
