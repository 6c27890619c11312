r"""NumPy references for the papers' own rules: RSGDM (000/001), TM-SGD and TM-SGD-M (004), WGD (003).

Written in the papers' literal form (three RSGDM buffers, the TM-SGD iterate history W_{k−1},
W_{k−2}), not in the one-buffer / displacement forms that optimlab.optim uses for speed: the parity
tests then check those reformulations too. Same API as ``classical``: pure ``init`` / ``update``,
float64, coupled L2 ``weight_decay`` after the ``maximize`` flip.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from optimlab.reference._common import check_nonnegative, check_unit, effective_gradient

WGD_MODES = ("filter", "kernel", "none")


class RSGDMState(NamedTuple):
    m: np.ndarray  # EMA of gradients, m_0 = 0 (eq. 3)
    z: np.ndarray  # EMA of gradient differences Δg, z_0 = 0 (eq. 4)
    g_prev: np.ndarray  # g_{t−1} (the gradient after weight decay), for Δg_t = g_t − g_{t−1}
    t: int  # steps taken


class TMSGDState(NamedTuple):
    W_prev: np.ndarray  # W_{k−1}; at init W_{−1} = W_0 (no earlier iterate: zero displacement)
    W_prev2: np.ndarray  # W_{k−2}; at init W_{−2} = W_0
    buf: np.ndarray  # heavy-ball buffer for TM-SGD-M (unused when momentum = 0)
    t: int  # steps taken = the index k of the next step (0-based)


# ----------------------------------------------------------------------------- RSGDM
def rsgdm_init(theta: np.ndarray) -> RSGDMState:
    z = np.zeros_like(theta, dtype=np.float64)
    return RSGDMState(m=z, z=z.copy(), g_prev=z.copy(), t=0)


def rsgdm_update(
    state: RSGDMState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.01,
    beta: float = 0.9,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> tuple[np.ndarray, RSGDMState]:
    """RSGDM (paper 000 eqs. 3-5), literal three-buffer form:

        Δg_t = g_t − g_{t−1} (Δg_1 = 0),   m_t = β·m_{t−1} + (1 − β)·g_t,
        z_t = β·z_{t−1} + (1 − β)·Δg_t,    n_t = m_t + β·z_t,    θ_t = θ_{t−1} − lr·n_t.

    So n_1 = (1 − β)·g_1 and n_2 = (1 − β²)·g_2 + β²(1 − β)·g_1 − β²(1 − β)·g_1 = (1 − β²)·g_2.
    EMA convention (β, not torch's heavy-ball momentum). g_t includes the weight decay term, so Δg
    is the difference of the effective gradients (as optimlab.optim.RSGDM). No torch counterpart.
    """
    check_nonnegative("lr", lr)
    check_unit("beta", beta)
    g = effective_gradient(g, theta, weight_decay, maximize)
    t = state.t + 1
    dg = np.zeros_like(g) if t == 1 else g - state.g_prev
    m = beta * state.m + (1.0 - beta) * g
    z = beta * state.z + (1.0 - beta) * dg
    n = m + beta * z
    return theta - lr * n, RSGDMState(m=m, z=z, g_prev=g.copy(), t=t)


# ----------------------------------------------------------------------------- TM-SGD
def tmsgd_init(theta: np.ndarray) -> TMSGDState:
    W0 = np.array(theta, dtype=np.float64, copy=True)
    return TMSGDState(W_prev=W0, W_prev2=W0.copy(), buf=np.zeros_like(W0), t=0)


def tmsgd_update(
    state: TMSGDState,
    theta: np.ndarray,
    g: np.ndarray,
    *,
    lr: float = 0.1,
    momentum: float = 0.0,
    switch_step: int | None = None,
    multistep: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> tuple[np.ndarray, TMSGDState]:
    """TM-SGD (paper 004 eq. 8) and, with momentum > 0, TM-SGD-M. Step k (0-based, k = state.t):

        d_k = g_k                                    (TM-SGD)
        d_k = b_k = μ·b_{k−1} + g_k, b_0 = g_0       (TM-SGD-M: torch's heavy-ball buffer)
        W_{k+1} = W_k − ε·d_k                                   before the switch (plain SGD)
        W_{k+1} = 1.5·W_k − W_{k−1} + 0.5·W_{k−2} − ε·d_k       from the switch on

    The multi-step rule is used when ``multistep`` is True (the caller's switch, what
    TMSGD.start_multistep() does) or when k ≥ ``switch_step``. The iterate history is kept during
    the SGD phase too, so the first multi-step step uses the real W_{k−1}, W_{k−2}. Iterates before
    W_0 do not exist and are taken equal to W_0 (zero displacement): switching at k = 0 makes step 0
    a plain SGD step, switching at k = 1 uses W_{−1} = W_0. lr is the paper's ε.
    """
    check_nonnegative("lr", lr)
    check_unit("momentum", momentum)
    if switch_step is not None and (
        isinstance(switch_step, bool) or not isinstance(switch_step, int) or switch_step < 0
    ):
        raise ValueError(f"Invalid switch_step={switch_step!r}: must be None or an int >= 0")
    g = effective_gradient(g, theta, weight_decay, maximize)
    k = state.t
    if momentum:
        buf = g.copy() if k == 0 else momentum * state.buf + g
        d = buf
    else:
        buf, d = state.buf, g
    if multistep or (switch_step is not None and k >= switch_step):
        theta_new = 1.5 * theta - state.W_prev + 0.5 * state.W_prev2 - lr * d
    else:
        theta_new = theta - lr * d
    W_k = np.array(theta, dtype=np.float64, copy=True)
    return theta_new, TMSGDState(W_prev=W_k, W_prev2=state.W_prev, buf=buf, t=k + 1)


# ----------------------------------------------------------------------------- WGD
def wgd_kernel(grad: np.ndarray) -> np.ndarray:
    """Paper 003 eq. 11: h_k = ∇J(k, ·) − μ, μ = (1/P)·Σ_i ∇J(i, ·): subtract the mean over the
    layer's P kernels (axis 0) from every kernel. Arrays with ndim < 2 have no kernels to average
    over and are returned unchanged (a copy)."""
    grad = np.asarray(grad, dtype=np.float64)
    if grad.ndim < 2:
        return grad.copy()
    return grad - grad.mean(axis=0, keepdims=True)


def wgd_filter(grad: np.ndarray) -> np.ndarray:
    """The authors' published code (= Gradient Centralization): for arrays with ndim > 1, subtract
    from each output filter (index along axis 0) the mean of its gradient over axes 1..n. This is
    what produced the paper's tables. Arrays with ndim < 2 are returned unchanged (a copy)."""
    grad = np.asarray(grad, dtype=np.float64)
    if grad.ndim < 2:
        return grad.copy()
    return grad - grad.mean(axis=tuple(range(1, grad.ndim)), keepdims=True)


_CENTRALIZE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "filter": wgd_filter,
    "kernel": wgd_kernel,
    "none": lambda g: np.array(g, dtype=np.float64, copy=True),
}


def wgd(
    base_init: Callable[[np.ndarray], Any], base_update: Callable[..., tuple[np.ndarray, Any]]
) -> tuple[Callable[[np.ndarray], Any], Callable[..., tuple[np.ndarray, Any]]]:
    """WGD on top of a base rule (paper 003 Algorithm 2 shows it on RAdam): ``(init, update)``.

    update(state, θ, g, *, wgd_mode="filter", wgd_include_linear=False, wgd_min_dim=3,
    wgd_target="gradient", weight_decay=λ, maximize=..., **base_hparams). θ is centred when
    ndim(θ) >= ``wgd_min_dim`` (3: every conv weight; 4: the authors' code) or, with
    ``wgd_include_linear``, ndim(θ) == 2. Target "gradient": the base steps on
    h = centralize(±g + λθ) with λ = 0 and maximize off, i.e. coupled weight decay enters BEFORE the
    mean is removed (as the authors' code). Target "update": the base steps on the raw gradient
    with its own λ and the step it takes, θ' − θ, is centred. Any other θ (biases, norms) is stepped
    by the base on the raw gradient with its own λ. ``wgd_mode``: "filter" (code, default),
    "kernel" (eq. 11) or "none".
    """

    def update(
        state: Any,
        theta: np.ndarray,
        g: np.ndarray,
        *,
        wgd_mode: str = "filter",
        wgd_include_linear: bool = False,
        wgd_min_dim: int = 3,
        wgd_target: str = "gradient",
        weight_decay: float = 0.0,
        maximize: bool = False,
        **hparams: Any,
    ) -> tuple[np.ndarray, Any]:
        if wgd_mode not in _CENTRALIZE:
            raise ValueError(f"Invalid wgd_mode={wgd_mode!r}: must be one of {WGD_MODES}")
        if wgd_target not in ("gradient", "update"):
            raise ValueError(f"Invalid wgd_target={wgd_target!r}: must be 'gradient' or 'update'")
        ndim = np.ndim(theta)
        if ndim >= wgd_min_dim or (wgd_include_linear and ndim == 2):
            if wgd_target == "update":
                new, state = base_update(state, theta, g, weight_decay=weight_decay, maximize=maximize, **hparams)
                return theta + _CENTRALIZE[wgd_mode](new - theta), state
            h = _CENTRALIZE[wgd_mode](effective_gradient(g, theta, weight_decay, maximize))
            return base_update(state, theta, h, weight_decay=0.0, maximize=False, **hparams)
        return base_update(state, theta, g, weight_decay=weight_decay, maximize=maximize, **hparams)

    return base_init, update
