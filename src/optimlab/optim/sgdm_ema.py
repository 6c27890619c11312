r"""SGDM in the papers' EMA form (`sgdm-ema`): m_t = βm_{t-1} + (1−β)g_t, θ_t = θ_{t-1} − γm_t.

This is the SGDM of papers 000/001 (eq. 1–2) and 002. It is NOT torch's SGD momentum (heavy ball,
buf = βbuf + g with buf_1 = g, registered as `sgdm`): the EMA buffer is (1−β) times the heavy-ball
one, so at equal lr an EMA step is (1−β) times a heavy-ball step (10× smaller at β = 0.9), and the
first EMA step is (1−β)g_1 because m_0 = 0 (no bias correction).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from optimlab.optim._common import EMAMomentumOptimizer, torch_fused_sgd


def sgdm_ema_update_(param: Tensor, grad: Tensor, buf: Tensor, lr: float, beta: float) -> None:
    """One step on one tensor, in place: buf ← β·buf + (1−β)·grad; param ← param − lr·buf."""
    buf.lerp_(grad, 1.0 - beta)
    param.add_(buf, alpha=-lr)


def sgdm_ema_foreach_update_(
    params: list[Tensor], grads: list[Tensor], bufs: list[Tensor], lr: float, beta: float
) -> None:
    torch._foreach_lerp_(bufs, grads, 1.0 - beta)
    torch._foreach_add_(params, bufs, alpha=-lr)


class SGDMEMA(EMAMomentumOptimizer):
    r"""SGD with momentum in exponential-moving-average form (the papers' SGDM).

    .. math::
        \begin{aligned}
        &\textbf{input}: \gamma \text{ (lr)}, \beta, \lambda \text{ (weight decay)};\quad m_0 = 0 \\
        &\textbf{for}\ t = 1, 2, \ldots \\
        &\quad g_t \leftarrow \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1} \\
        &\quad m_t \leftarrow \beta m_{t-1} + (1-\beta) g_t \\
        &\quad \theta_t \leftarrow \theta_{t-1} - \gamma m_t
        \end{aligned}

    Conventions: ``momentum_buffer`` is m, zeros before step 1 (no bias correction, as the
    papers). Weight decay is coupled L2 after the maximize sign flip, as torch.optim.SGD.
    Equivalent to ``torch.optim.SGD(lr=γ, momentum=β, dampening=β)`` except at step 1, where torch
    starts its buffer at g_1 (undamped) rather than (1−β)g_1. Against undamped ``sgdm`` (torch's
    heavy ball, buf = βbuf + g) the buffer is (1−β)·buf, so ``sgdm-ema`` with lr γ/(1−β) takes the
    steps of ``sgdm`` with lr γ, apart from the first-step transient.

    Args:
        params: iterable of parameters or param groups.
        lr: learning rate γ (default 0.01, paper 000's setting).
        beta: EMA coefficient β in [0, 1) (default 0.9).
        weight_decay: coupled L2 coefficient λ ≥ 0.
        maximize: maximize the objective instead of minimizing.
        foreach: True: torch's multi-tensor ops; False: a per-tensor loop; None (default): torch's own
            fused SGD kernel (μ = τ = β: the same update, one pass) for float32/float64 on CPU or
            CUDA, the multi-tensor ops or the loop otherwise.
        fused: True: torch's fused SGD kernel, as the default (float32/float64 on CPU or CUDA; refused
            otherwise); False: never a fused kernel (the foreach/loop paths).
    """

    def _step_group(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], foreach: bool) -> None:
        bufs, _ = self._buffers(params)
        if foreach:
            sgdm_ema_foreach_update_(params, grads, bufs, group["lr"], group["beta"])
        else:
            for p, g, b in zip(params, grads, bufs):
                sgdm_ema_update_(p, g, b, group["lr"], group["beta"])

    def _torch_fused_step_group(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> list[int]:
        # torch's b ← μb + (1−τ)g', θ ← θ − γb with μ = τ = β is m ← βm + (1−β)g', θ ← θ − γm exactly; the
        # buffers are real (zero) tensors at step 1, so torch's first-step rule (b = g') never applies.
        beta = group["beta"]
        if beta == 0.0:  # torch would skip the buffer at μ = 0, and m must still track g
            return list(range(len(params)))
        bufs, _ = self._buffers(params)
        torch_fused_sgd(
            params,
            grads,
            list(bufs),
            lr=group["lr"],
            momentum=beta,
            dampening=beta,
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )
        return []
