r"""RSGDM (Qin et al., "Reducing Bias in Deep Learning Optimization: The RSGDM Approach", paper 000/001).

The paper's recurrences keep three buffers (m, z, g_prev). Unrolled, they are Nesterov momentum in
EMA form with ONE buffer, so RSGDM here costs exactly what SGD(nesterov=True) costs: one state
tensor per parameter, and by default one pass over memory on torch's own fused SGD kernel
(docs/speed.md).

Identity. With Δg_1 = 0 and m_0 = z_0 = 0, write m_t = (1 − β) Σ_{i=1..t} β^{t−i} g_i and let
m̃_t = (1 − β) Σ_{i=2..t} β^{t−i} g_i be the same EMA with g_1 left out (m̃_1 = 0). Unrolling z,

    z_t = (1 − β) Σ_{i=2..t} β^{t−i} (g_i − g_{i−1}) = m̃_t − m_{t−1}            (t ≥ 2),

so n_t = m_t + β z_t = (m_t − β m_{t−1}) + β m̃_t = (1 − β) g_t + β m̃_t
       = β² m̃_{t−1} + (1 − β²) g_t,          m̃_t = β m̃_{t−1} + (1 − β) g_t,

and n_1 = m_1 = (1 − β) g_1. One buffer (m̃) replaces three (m, z, g_prev).
tests/test_rsgdm_identity.py checks this against the literal recurrences over 200+ steps.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from optimlab.optim._common import HeavyBallStep, pick
from optimlab.optim.sgdm_ema import EMAMomentumOptimizer


def rsgdm_update_(param: Tensor, grad: Tensor, buf: Tensor, step: int, lr: float, beta: float) -> None:
    """One RSGDM step on one tensor, in place. `step` is this step's index t (1-based).

    `grad` already includes weight decay and the maximize sign. `buf` is the heavy-ball buffer
    b = m̃/(1−β) (zeros before step 2): b_t = βb_{t−1} + g_t, and n_t = (1−β)(g_t + βb_t).
    """
    if step == 1:
        param.add_(grad, alpha=-lr * (1.0 - beta))  # n_1 = (1-β) g_1; m̃_1 = 0 stays zero
        return
    torch.add(grad, buf, alpha=beta, out=buf)  # b_t = β b_{t-1} + g_t in one pass (out= may alias an input)
    # θ −= γ n_t with n_t = (1-β) g_t + β(1-β) b_t, as two in-place passes: no temporary
    param.add_(grad, alpha=-lr * (1.0 - beta))
    param.add_(buf, alpha=-lr * (1.0 - beta) * beta)


def rsgdm_foreach_update_(
    params: list[Tensor], grads: list[Tensor], bufs: list[Tensor], steps: list[int], lr: float, beta: float
) -> None:
    """The same step for a list of tensors with torch._foreach_* kernels."""
    first = [i for i, s in enumerate(steps) if s == 1]
    if first:
        torch._foreach_add_([params[i] for i in first], [grads[i] for i in first], alpha=-lr * (1.0 - beta))
    rest = [i for i, s in enumerate(steps) if s != 1]
    if not rest:
        return
    if len(rest) != len(params):
        params, grads, bufs = ([xs[i] for i in rest] for xs in (params, grads, bufs))
    # b_t = g_t + β b_{t−1} as the per-tensor path computes it (same rounding); the temporaries are
    # small: the default path takes this only where torch's fused kernel cannot (see RSGDM)
    torch._foreach_copy_(bufs, torch._foreach_add(grads, bufs, alpha=beta))
    torch._foreach_add_(params, grads, alpha=-lr * (1.0 - beta))
    torch._foreach_add_(params, bufs, alpha=-lr * (1.0 - beta) * beta)


class RSGDM(EMAMomentumOptimizer):
    r"""RSGDM: SGDM in EMA form corrected by an EMA of gradient differences (paper 000/001).

    .. math::
        \begin{aligned}
        &\textbf{input}: \gamma \text{ (lr)}, \beta, \theta_0, f(\theta), \lambda \text{ (weight decay)},
            \textit{maximize};\quad m_0 = 0,\ z_0 = 0,\ \Delta g_1 = 0 \\
        &\textbf{for}\ t = 1, 2, \ldots \\
        &\quad g_t \leftarrow \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1}
            \quad(- \text{ if maximize}) \\
        &\quad \Delta g_t \leftarrow g_t - g_{t-1}\ (t \ge 2) \\
        &\quad m_t \leftarrow \beta m_{t-1} + (1-\beta) g_t \\
        &\quad z_t \leftarrow \beta z_{t-1} + (1-\beta)\Delta g_t \\
        &\quad n_t \leftarrow m_t + \beta z_t \\
        &\quad \theta_t \leftarrow \theta_{t-1} - \gamma n_t
        \end{aligned}

    Implemented with one buffer m̃ through the identity n_t = β²m̃_{t-1} + (1−β²)g_t,
    m̃_t = βm̃_{t-1} + (1−β)g_t, m̃_1 = 0, n_1 = (1−β)g_1 (see the module docstring).

    Relation to torch: from step 2 on, RSGDM with lr γ is exactly
    ``torch.optim.SGD(lr=γ(1−β), momentum=β, nesterov=True)`` whose heavy-ball buffer is RSGDM's
    ``momentum_buffer`` (m̃/(1−β)); the default step runs on that torch kernel. To match the two,
    take RSGDM's step 1 (θ_1 = θ_0 − γ(1−β)g_1), copy θ_1 into the torch model and set torch's
    ``momentum_buffer`` to zeros; every later step is then the same. (Torch's own step 1 would move
    by γ(1−β)(1+β)g_1 and start its buffer at g_1.)

    Conventions: state ``momentum_buffer`` is torch's heavy-ball buffer b = m̃/(1−β)
    (b_t = βb_{t−1} + g_t), allocated as zeros at step 1, and ``buffer_beta`` the β it is scaled for
    (a changed β rescales it once; a checkpoint without ``buffer_beta``, from before optimlab kept b,
    holds m̃ and is converted on its first step); ``step`` counts the steps this parameter took.
    Weight decay is coupled L2 added to the gradient after the maximize sign flip, as in
    torch.optim.SGD. At equal lr the steady-state step is that of ``sgdm-ema``,
    i.e. (1−β) times torch's heavy-ball ``sgdm``.

    Args:
        params: iterable of parameters or param groups.
        lr: learning rate γ (paper 000: 0.01).
        beta: momentum coefficient β in [0, 1) (paper 000: 0.9).
        weight_decay: coupled L2 coefficient λ ≥ 0.
        maximize: maximize the objective instead of minimizing.
        foreach: True: torch's multi-tensor ops; False: a per-tensor loop; None (default): torch's own
            fused SGD kernel (Nesterov at lr γ(1−β), above: one pass) for float32/float64 on CPU or
            CUDA, the multi-tensor ops or the loop otherwise.
        fused: True: torch's fused SGD kernel, as the default (float32/float64 on CPU or CUDA; refused
            otherwise); False: never a fused kernel (the foreach/loop paths).
    """

    def _step_group(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], foreach: bool) -> None:
        bufs, steps = self._buffers(params, scale_beta=group["beta"])
        if foreach:
            rsgdm_foreach_update_(params, grads, bufs, steps, group["lr"], group["beta"])
        else:
            for p, g, b, s in zip(params, grads, bufs, steps):
                rsgdm_update_(p, g, b, s, group["lr"], group["beta"])

    def heavy_ball_steps(self, group: dict[str, Any], params: list[Tensor]) -> list[HeavyBallStep]:
        """Step 1 is plain SGD at lr γ(1−β) (the buffer stays zero); every later step is SGD with momentum β,
        no dampening, Nesterov, at lr γ(1−β), on the buffer b = m̃/(1−β), scaled for this β."""
        beta = group["beta"]
        bufs, steps = self._buffers(params, scale_beta=beta)
        first = [i for i, s in enumerate(steps) if s == 1]
        later = [i for i, s in enumerate(steps) if s != 1]
        lr = group["lr"] * (1.0 - beta)
        plan = []
        if first:
            plan.append(HeavyBallStep(first, lr, 0.0, 0.0, False, None))
        if later:
            plan.append(HeavyBallStep(later, lr, beta, 0.0, True, pick(bufs, later)))
        return plan
