"""WGD's ``compiled`` path: optimlab's single-pass kernel (``fused=True`` on a known base; optim/compiled.py).

The decay is folded, each filter's mean is summed one row ahead of the update, and the base's update
runs in the same C++ loop: the gradient, parameter and state are read once and written once. Bases:
torch's SGD (none, heavy ball, Nesterov), Adam, AdamW and AMSGrad, and optimlab's sgdm-ema and rsgdm.
A group with a tensor the kernel cannot take (not float32/float64 contiguous on CPU) takes another
path as a whole (wgd_step; optimlab.optim.dispatch).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from optimlab.optim import compiled
from optimlab.optim._common import pick
from optimlab.optim.rsgdm import RSGDM
from optimlab.optim.sgdm_ema import SGDMEMA

ADAM_BASES: tuple[type[Optimizer], ...] = (torch.optim.Adam, torch.optim.AdamW)
# bases the compiled kernel (fused=True on the base) runs
KERNEL_BASES: tuple[type[Optimizer], ...] = (torch.optim.SGD, SGDMEMA, RSGDM, *ADAM_BASES)


def adam_state(base: Optimizer, params: list[Tensor], amsgrad: bool) -> list[dict[str, Any]]:
    """torch's Adam/AdamW state of `params`, created as torch's fused step creates it (a float32 `step`
    tensor on the parameter's device, zero moments laid out like the parameter) where missing."""
    states = [base.state[p] for p in params]
    for p, st in zip(params, states):
        if not st:
            st["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if amsgrad:
                st["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return states


def kernel_base(base: Optimizer) -> bool:
    """Whether the compiled kernel knows `base`'s update (its exact type is one of KERNEL_BASES)."""
    return type(base) in KERNEL_BASES


def compiled_refusal(base: Optimizer, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> str | None:
    """None when the compiled kernel takes this group (fused=True on the base is dispatch's check), else why."""
    if group["wgd_mode"] == "kernel":
        return "wgd_mode='kernel' (the kernel takes per-filter means)"
    if group["wgd_target"] != "gradient" and group["wgd_mode"] != "none":
        return "wgd_target='update'"
    if group.get("differentiable") or group.get("capturable"):
        return "differentiable or capturable"
    if group.get("decoupled_weight_decay") and not isinstance(base, torch.optim.Adam):
        return "decoupled weight decay"
    if any(isinstance(group.get(k), Tensor) for k in ("lr", "weight_decay", "momentum")):
        return "a Tensor hyperparameter"
    if any(isinstance(b, Tensor) for b in group.get("betas", ())):
        return "Tensor betas"
    if getattr(base, "grad_scale", None) is not None or getattr(base, "found_inf", None) is not None:
        return "an AMP grad scaler"
    dtypes = compiled.DTYPES
    for i, (p, g) in enumerate(zip(params, grads)):  # compiled.kernel_ready, inlined: it runs per tensor and step
        if not (p.is_cpu and p.dtype in dtypes and p.is_contiguous() and g.is_contiguous()):
            return f"tensor {i} (shape {tuple(p.shape)}, {p.dtype} on {p.device}) is not contiguous float32/64 on CPU"
    return None


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
        coef = compiled.coefficients(
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
        compiled.run(
            compiled.ADAM,
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
    if isinstance(base, (SGDMEMA, RSGDM)):  # their update as SGD coefficients (the step-rule protocol)
        for st in base.heavy_ball_steps(group, params):
            if st.ema:  # τ = μ: the kernel's lerp form of the EMA
                coef = compiled.coefficients(st.lr, wd, maximize, beta=st.momentum)
                kind = compiled.EMA
            else:
                coef = compiled.coefficients(
                    st.lr, wd, maximize, st.momentum, st.dampening, st.nesterov, int(bool(st.momentum))
                )
                kind = compiled.SGD
            ps, gs, rs = pick(params, st.idx), pick(grads, st.idx), pick(rows, st.idx)
            compiled.run(kind, ps, gs, coef, st.bufs, rows=rs, write_grad=whiten)
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
        coef = compiled.coefficients(group["lr"], wd, maximize, momentum, group["dampening"], group["nesterov"], mode)
        if len(idx) == len(params):
            compiled.run(compiled.SGD, params, grads, coef, sgd_bufs or None, rows=rows, write_grad=whiten)
            continue
        sel = [[xs[i] for i in idx] for xs in (params, grads)]
        mb = [sgd_bufs[i] for i in idx] if mode else None
        compiled.run(compiled.SGD, sel[0], sel[1], coef, mb, rows=[rows[i] for i in idx], write_grad=whiten)


def compiled_step(base: Optimizer, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
    """WGD and the base's update of one group on the compiled kernel (compiled_refusal was None): the
    decay folded, filter means taken per row in the kernel, the whitened gradient written to p.grad."""
    whiten = group["wgd_mode"] != "none"
    min_dim, linear = group["wgd_min_dim"], group["wgd_include_linear"]
    rows = [0] * len(params)  # a row is one filter: its mean is taken in the kernel
    if whiten:
        for i, p in enumerate(params):
            d = p.dim()
            if (d >= min_dim or (linear and d == 2)) and p.numel():
                rows[i] = p.numel() // p.shape[0]
    _kernel_group(base, group, params, grads, rows)
