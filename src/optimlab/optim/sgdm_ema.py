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

from optimlab.optim._common import (
    HeavyBallStep,
    ParamsT,
    check_lr,
    check_nonnegative,
    check_unit_interval,
    pick,
    torch_fused_ready,
    torch_fused_sgd,
)
from optimlab.optim.dispatch import FOREACH, PER_TENSOR, TORCH_FUSED, PaperOptimizer, torch_fused_refusal


def sgdm_ema_update_(param: Tensor, grad: Tensor, buf: Tensor, lr: float, beta: float) -> None:
    """One step on one tensor, in place: buf ← β·buf + (1−β)·grad; param ← param − lr·buf."""
    buf.lerp_(grad, 1.0 - beta)
    param.add_(buf, alpha=-lr)


def sgdm_ema_foreach_update_(
    params: list[Tensor], grads: list[Tensor], bufs: list[Tensor], lr: float, beta: float
) -> None:
    torch._foreach_lerp_(bufs, grads, 1.0 - beta)
    torch._foreach_add_(params, bufs, alpha=-lr)


class EMAMomentumOptimizer(PaperOptimizer):
    """The shared shape of the papers' EMA-form momentum rules (SGDMEMA, RSGDM): hyperparameters
    lr, beta, weight_decay, maximize, foreach, fused, and one momentum buffer per parameter, zeros
    before step 1 (no bias correction). A subclass gives its update twice: per tensor / foreach in
    _step_group, and as torch-style SGD steps in heavy_ball_steps (its coefficients: what the
    torch-fused path runs, and what WGD's own step and compiled kernel take from it)."""

    _checks = {"lr": check_lr, "beta": check_unit_interval, "weight_decay": check_nonnegative}
    # both updates are torch's fused SGD kernel's, so fused=True runs that kernel: nothing to build
    paths = (PER_TENSOR, FOREACH, TORCH_FUSED)

    def __init__(
        self,
        params: ParamsT,
        lr: float = 0.01,
        beta: float = 0.9,
        weight_decay: float = 0.0,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr, beta=beta, weight_decay=weight_decay, maximize=bool(maximize), foreach=foreach, fused=fused
        )
        super().__init__(params, defaults)

    def heavy_ball_steps(self, group: dict[str, Any], params: list[Tensor]) -> list[HeavyBallStep]:
        """This step of `params` as torch-style SGD steps (creating and advancing their state)."""
        raise NotImplementedError

    def torch_fused_refusal(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> str | None:
        if group["beta"] == 0.0:  # torch skips the buffer at momentum 0, and m (or b) must still track g
            return "beta = 0"
        return torch_fused_refusal(params, grads, torch_fused_ready)

    def _step_torch_fused(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        # the buffers are real (zero) tensors from step 1 on, so torch's first-step rule (b = g') never applies
        for s in self.heavy_ball_steps(group, params):
            torch_fused_sgd(
                pick(params, s.idx),
                pick(grads, s.idx),
                list(s.bufs) if s.bufs is not None else [None] * len(s.idx),
                lr=s.lr,
                momentum=s.momentum,
                dampening=s.dampening,
                nesterov=s.nesterov,
                weight_decay=group["weight_decay"],
                maximize=group["maximize"],
            )

    def _buffers(self, params: list[Tensor], scale_beta: float | None = None) -> tuple[list[Tensor], list[int]]:
        """(momentum buffers, step counts after this step) of params, creating zero buffers at step 1.

        scale_beta (RSGDM's heavy-ball buffer b = m̃/(1−β)): each buffer is kept scaled for this β,
        rescaled once when β changed since it was written (``buffer_beta``; a buffer without it is m̃
        itself, as in older checkpoints). One loop: it runs per parameter and step."""
        bufs, steps = [], []
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if scale_beta is not None:
                    state["buffer_beta"] = scale_beta
            elif scale_beta is not None and state.get("buffer_beta") != scale_beta:
                old = state.get("buffer_beta")
                if state["step"] > 0:
                    state["momentum_buffer"].mul_((1.0 - (0.0 if old is None else old)) / (1.0 - scale_beta))
                state["buffer_beta"] = scale_beta
            state["step"] += 1
            steps.append(state["step"])
            bufs.append(state["momentum_buffer"])
        return bufs, steps


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

    def heavy_ball_steps(self, group: dict[str, Any], params: list[Tensor]) -> list[HeavyBallStep]:
        # torch's b ← μb + (1−τ)g', θ ← θ − γb with μ = τ = β is m ← βm + (1−β)g', θ ← θ − γm exactly
        bufs, _ = self._buffers(params)
        beta = group["beta"]
        return [HeavyBallStep(list(range(len(params))), group["lr"], beta, beta, False, bufs, ema=True)]
