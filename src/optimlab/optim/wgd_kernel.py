"""WGD on optimlab's compiled single-pass kernel (``fused=True`` on a known base; optim/fused_cpu.py).

The decay is folded, each filter's mean is summed one row ahead of the update, and the base's update
runs in the same C++ loop: the gradient, parameter and state are read once and written once. Bases:
torch's SGD (none, heavy ball, Nesterov), Adam, AdamW and AMSGrad, and optimlab's sgdm-ema and rsgdm.
A parameter the kernel cannot take (not float32/float64 contiguous on CPU) runs wgd_fused's step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from optimlab.optim import fused_cpu
from optimlab.optim._common import pick
from optimlab.optim.rsgdm import RSGDM, rsgdm_heavy_ball_plan
from optimlab.optim.sgdm_ema import SGDMEMA
from optimlab.optim.wgd_fused import FUSED_BASES, Centre, adam_state, group_step

# bases the compiled kernel (fused=True on the base) runs: those of wgd_fused and torch's Adam and AdamW
KERNEL_BASES: tuple[type[Optimizer], ...] = (*FUSED_BASES, torch.optim.Adam, torch.optim.AdamW)


def kernel_base(base: Optimizer) -> bool:
    """Whether the compiled kernel knows `base`'s update (its exact type is one of KERNEL_BASES)."""
    return type(base) in KERNEL_BASES


def _group_kernel(base: Optimizer, group: dict[str, Any]) -> bool:
    """Whether the compiled kernel can run this group: fused=True on the base, filter/none mode, target
    gradient (each parameter's dtype and layout are checked at the step; see kernel_step)."""
    if not group.get("fused") or group["wgd_mode"] == "kernel":
        return False
    if group["wgd_target"] != "gradient" and group["wgd_mode"] != "none":
        return False
    if group.get("differentiable") or group.get("capturable"):
        return False
    if group.get("decoupled_weight_decay") and not isinstance(base, torch.optim.Adam):
        return False
    if any(isinstance(group.get(k), Tensor) for k in ("lr", "weight_decay", "momentum")):
        return False
    if any(isinstance(b, Tensor) for b in group.get("betas", ())):
        return False
    return getattr(base, "grad_scale", None) is None and getattr(base, "found_inf", None) is None


def can_use_kernel(base: Optimizer, param_groups: list[dict[str, Any]]) -> bool:
    """Whether this step runs on the compiled single-pass kernel (fused=True on a known base; see fused_cpu)."""
    return kernel_base(base) and all(_group_kernel(base, g) for g in param_groups) and fused_cpu.load() is not None


def _adam_group(
    base: Optimizer, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], rows: list[int]
) -> None:
    """torch's Adam/AdamW (fused=True state: a float32 `step` tensor per parameter) on the kernel,
    one call per distinct step count (bias corrections as in torch's _single_tensor_adam)."""
    beta1, beta2 = group["betas"]
    lr, eps, amsgrad = group["lr"], group["eps"], group["amsgrad"]
    decoupled = bool(group.get("decoupled_weight_decay", False))
    whiten = group["wgd_mode"] != "none"
    wd = float(group.get("weight_decay", 0.0) or 0.0)
    states = adam_state(base, params, amsgrad)
    steps = [st["step"] for st in states]
    torch._foreach_add_(steps, 1)
    by_step: dict[float, list[int]] = {}
    for i, t in enumerate(steps):
        by_step.setdefault(float(t), []).append(i)
    for step, idx in by_step.items():
        bc1, bc2 = 1 - beta1**step, 1 - beta2**step
        coef = fused_cpu.coefficients(
            lr,
            0.0 if decoupled else wd,  # coupled: folded into g (WGD) or the base's own L2 (mode none)
            bool(group.get("maximize", False)),
            mom_mode=int(amsgrad),
            beta=beta1,
            beta2=beta2,
            eps=eps,
            step_size=lr / bc1,
            bc2_sqrt=bc2**0.5,
            decay_mul=1 - lr * wd if decoupled and wd != 0 else 1.0,
        )
        sts = pick(states, idx)
        fused_cpu.run(
            fused_cpu.ADAM,
            pick(params, idx),
            pick(grads, idx),
            coef,
            [st["exp_avg"] for st in sts],
            [st["exp_avg_sq"] for st in sts],
            [st["max_exp_avg_sq"] for st in sts] if amsgrad else None,
            rows=pick(rows, idx),
            write_grad=whiten,
        )


def _kernel_group(
    base: Optimizer, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], rows: list[int]
) -> None:
    """WGD and the base's update of `params` (kernel-ready) in one kernel pass over all of them."""
    if isinstance(base, torch.optim.Adam):
        _adam_group(base, group, params, grads, rows)
        return
    whiten = group["wgd_mode"] != "none"
    wd = float(group.get("weight_decay", 0.0) or 0.0)  # folded under whitening, the base's own decay otherwise
    maximize = bool(group.get("maximize", False))
    if isinstance(base, SGDMEMA):
        bufs, _ = base._buffers(params)
        coef = fused_cpu.coefficients(group["lr"], wd, maximize, beta=group["beta"])
        fused_cpu.run(fused_cpu.EMA, params, grads, coef, bufs, rows=rows, write_grad=whiten)
        return
    if isinstance(base, RSGDM):
        bufs, steps = base._heavy_ball_buffers(params, group["beta"])
        for idx, args in rsgdm_heavy_ball_plan(steps, group["lr"], group["beta"]):
            mom = args["momentum"]
            coef = fused_cpu.coefficients(args["lr"], wd, maximize, mom, 0.0, True, int(bool(mom)))
            mb = pick(bufs, idx) if mom else None
            fused_cpu.run(
                fused_cpu.SGD, pick(params, idx), pick(grads, idx), coef, mb, rows=pick(rows, idx), write_grad=whiten
            )
        return
    # torch.optim.SGD: mode 0 no momentum, 1 update the buffer, 2 first step (the buffer starts at g)
    momentum = group["momentum"]
    modes: dict[int, list[int]] = {}
    sgd_bufs: list[Tensor] = []
    for i, p in enumerate(params):
        if momentum == 0:
            modes.setdefault(0, []).append(i)
            continue
        state = base.state[p]
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = torch.zeros_like(p)  # the kernel starts it at g
            modes.setdefault(2, []).append(i)
        else:
            modes.setdefault(1, []).append(i)
        sgd_bufs.append(buf)
    for mode, idx in sorted(modes.items()):
        coef = fused_cpu.coefficients(group["lr"], wd, maximize, momentum, group["dampening"], group["nesterov"], mode)
        if len(idx) == len(params):
            fused_cpu.run(fused_cpu.SGD, params, grads, coef, sgd_bufs or None, rows=rows, write_grad=whiten)
            continue
        sel = [[xs[i] for i in idx] for xs in (params, grads)]
        mb = [sgd_bufs[i] for i in idx] if mode else None
        fused_cpu.run(fused_cpu.SGD, sel[0], sel[1], coef, mb, rows=[rows[i] for i in idx], write_grad=whiten)


@torch.no_grad()
def kernel_step(base: Optimizer, param_groups: list[dict[str, Any]], centre: Centre) -> None:
    """One WGD step on the compiled kernel (can_use_kernel), filter means taken per row in the kernel;
    a param it cannot take (non-contiguous, not float32/64 on CPU) runs fused_step's loop instead."""
    for group in param_groups:
        whiten = group["wgd_mode"] != "none"
        min_dim, linear = group["wgd_min_dim"], group["wgd_include_linear"]
        ready: list[Tensor] = []
        grads: list[Tensor] = []
        rows: list[int] = []
        rest: list[Tensor] = []
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if g.is_sparse:
                raise RuntimeError(f"WGD does not support sparse gradients (parameter of shape {tuple(p.shape)})")
            if not (p.dtype in fused_cpu.DTYPES and p.is_cpu and fused_cpu.kernel_ready(p, g)):
                rest.append(p)
                continue
            ready.append(p)
            grads.append(g)
            d = p.dim()
            rows.append(
                p.numel() // p.shape[0] if whiten and (d >= min_dim or (linear and d == 2)) and p.numel() else 0
            )
        if ready:
            _kernel_group(base, group, ready, grads, rows)
        if rest:
            group_step(base, group, rest, centre)
