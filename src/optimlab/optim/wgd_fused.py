r"""WGD fused with a base whose update optimlab knows: whiten tensor i, then update tensor i.

The generic WGD wrapper makes three passes over every tensor in turn (fold λθ into every gradient,
centre every gradient, then the base's step over every tensor), so on CPU each tensor leaves the
cache between the passes. For the bases below the update rule is known, so WGD runs them as ONE
per-tensor loop: fold the decay into g_i, centre g_i, and apply the base's update to θ_i while g_i
and θ_i are still in cache. The arithmetic is the same operations on the same tensors in the same
order per tensor as the generic path (float64 bit-equal; tests/test_wgd_fused.py holds the two
equal over hundreds of steps, with param groups, weight decay, maximize and resume across paths).

Bases fused (exact types, not subclasses, which may override step):

* ``torch.optim.SGD`` — ``sgd``, ``sgdm``, ``nag`` (torch's ``_single_tensor_sgd``, re-expressed
  per tensor: same ops, same ``momentum_buffer`` state);
* ``SGDMEMA`` (``sgdm-ema``) and ``RSGDM`` (``rsgdm``) — their own per-tensor update functions.

A step is fused only when every param group takes torch's / optimlab's per-tensor path anyway:
target "gradient" (or mode "none"), ``foreach`` resolving to False (the CPU default; on an
accelerator the multi-tensor kernels are faster and the generic path keeps them), and for torch's
SGD no ``fused=True``, ``differentiable=True``, Tensor lr or weight decay, or AMP grad scaler.
Otherwise the step runs the generic wrapper. The base's own step hooks do not run on a fused step
(WGD's do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from optimlab.optim import fused_cpu
from optimlab.optim._common import (
    SMALL_TENSOR_NUMEL,
    effective_grads,
    pick,
    torch_fused_ready,
    torch_fused_sgd,
    use_foreach,
    uses_torch_fused,
)
from optimlab.optim.rsgdm import RSGDM, rsgdm_foreach_update_, rsgdm_heavy_ball_plan, rsgdm_update_
from optimlab.optim.sgdm_ema import SGDMEMA, sgdm_ema_foreach_update_, sgdm_ema_update_

FUSED_BASES: tuple[type[Optimizer], ...] = (torch.optim.SGD, SGDMEMA, RSGDM)
# bases the compiled kernel (fused=True on the base) also runs: torch's Adam and AdamW
KERNEL_BASES: tuple[type[Optimizer], ...] = (*FUSED_BASES, torch.optim.Adam, torch.optim.AdamW)

# update(param, its gradient with WGD applied, weight decay the base still applies)
Update = Callable[[Tensor, Tensor, float], None]
Centre = Callable[[Tensor, dict[str, Any]], None]


def fusable_base(base: Optimizer) -> bool:
    """Whether WGD knows `base`'s update rule (its exact type is one of FUSED_BASES)."""
    return type(base) in FUSED_BASES


def _group_fusable(base: Optimizer, group: dict[str, Any]) -> bool:
    if group["wgd_target"] != "gradient" and group["wgd_mode"] != "none":
        return False
    params = [p for p in group["params"] if p.grad is not None]
    if group.get("decoupled_weight_decay") or group.get("weight_decouple"):
        return False
    if use_foreach(group.get("foreach"), params):
        return False
    if type(base) is torch.optim.SGD:
        if group.get("fused") or group.get("differentiable"):
            return False
        if isinstance(group["lr"], Tensor) or isinstance(group["weight_decay"], Tensor):
            return False
        if getattr(base, "grad_scale", None) is not None or getattr(base, "found_inf", None) is not None:
            return False
    return True


def can_fuse(base: Optimizer, param_groups: list[dict[str, Any]]) -> bool:
    """Whether this step can run as one per-tensor loop (every group qualifies; see the module doc)."""
    return fusable_base(base) and all(_group_fusable(base, g) for g in param_groups)


def _sgd_update(base: Optimizer, group: dict[str, Any]) -> Update:
    """torch.optim.SGD's single-tensor update for one parameter (torch/optim/sgd.py, _single_tensor_sgd)."""
    lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
    nesterov, maximize = group["nesterov"], group["maximize"]

    def update(p: Tensor, g: Tensor, wd: float) -> None:
        grad = g if not maximize else -g
        if wd != 0:
            grad = grad.add(p, alpha=wd)
        if momentum != 0:
            state = base.state[p]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = grad.detach().clone()
                state["momentum_buffer"] = buf
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            grad = grad.add(buf, alpha=momentum) if nesterov else buf
        p.add_(grad, alpha=-lr)

    return update


def _ema_update(base: SGDMEMA | RSGDM, group: dict[str, Any]) -> Update:
    """optimlab's EMA-momentum rules for one parameter (PaperOptimizer.step's per-tensor path)."""
    lr, beta, maximize = group["lr"], group["beta"], group["maximize"]

    def update(p: Tensor, g: Tensor, wd: float) -> None:
        if maximize:
            g = -g
        if wd != 0.0:
            g = g.add(p, alpha=wd)
        if isinstance(base, RSGDM):
            bufs, steps = base._heavy_ball_buffers([p], beta)
            rsgdm_update_(p, g, bufs[0], steps[0], lr, beta)
        else:
            bufs, _ = base._buffers([p])
            sgdm_ema_update_(p, g, bufs[0], lr, beta)

    return update


def _updater(base: Optimizer, group: dict[str, Any]) -> Update:
    if isinstance(base, (SGDMEMA, RSGDM)):
        return _ema_update(base, group)
    return _sgd_update(base, group)


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
    states = [base.state[p] for p in params]
    for p, st in zip(params, states):
        if not st:
            st["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if amsgrad:
                st["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
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
            _python_group(base, group, rest, centre)


def _grad(p: Tensor) -> Tensor:
    assert p.grad is not None  # callers pass params that have a gradient
    return p.grad


def _with_grads(group: dict[str, Any]) -> list[Tensor]:
    params = [p for p in group["params"] if p.grad is not None]
    for p in params:
        if p.grad.is_sparse:
            raise RuntimeError(f"WGD does not support sparse gradients (parameter of shape {tuple(p.shape)})")
    return params


def _python_group(base: Optimizer, group: dict[str, Any], params: list[Tensor], centre: Centre) -> None:
    """Fold the decay, centre, update: per tensor for large tensors, and as multi-tensor ops over the
    group's small ones (under SMALL_TENSOR_NUMEL, with foreach=None) where per-op costs dominate. On the
    default path the base's update then runs as one call of torch's fused SGD kernel (_torch_fused_update)."""
    wd = float(group.get("weight_decay", 0.0) or 0.0)
    whiten = group["wgd_mode"] != "none"
    fold = wd if whiten else 0.0
    sign = -1.0 if group.get("maximize", False) else 1.0
    base_wd = 0.0 if whiten else wd
    if _torch_fused_base(base, group):
        # 12 bytes/param of folding and centring, then the base's 20 in one pass (float32): 32 in all,
        # against 44 for the per-tensor updates below and 32 for torch's foreach SGD(momentum) alone
        small = [p for p in params if p.numel() < SMALL_TENSOR_NUMEL]
        kept = {id(p) for p in small}
        for p in params:
            if id(p) in kept:
                continue
            if fold != 0.0:
                _grad(p).add_(p, alpha=sign * fold)
            if whiten:
                centre(p, group)
        if small:
            grads = [_grad(p) for p in small]
            if fold != 0.0:
                torch._foreach_add_(grads, small, alpha=sign * fold)
            if whiten:
                _centre_batched(small, grads, group)
        update = _updater(base, group)
        for p in _torch_fused_update(base, group, params, base_wd):
            update(p, _grad(p), base_wd)
        return
    few: list[Tensor] = []  # the small tensors, on the multi-tensor path
    if group.get("foreach") is None:
        few = [p for p in params if p.numel() < SMALL_TENSOR_NUMEL]
        if few:
            kept = {id(p) for p in few}
            params = [p for p in params if id(p) not in kept]
    update = _updater(base, group)
    for p in params:
        g = _grad(p)
        if fold != 0.0:
            g.add_(p, alpha=sign * fold)
        if whiten:
            centre(p, group)
        update(p, g, base_wd)
    if few:
        grads = [_grad(p) for p in few]
        if fold != 0.0:
            torch._foreach_add_(grads, few, alpha=sign * fold)
        if whiten:
            _centre_batched(few, grads, group)
        _foreach_update(base, group, few, grads, base_wd)


def _torch_fused_base(base: Optimizer, group: dict[str, Any]) -> bool:
    """Whether the base's update of this group runs on torch's fused SGD kernel: the default path
    (foreach None; fused None for torch's SGD, not False for optimlab's bases)."""
    if isinstance(base, (SGDMEMA, RSGDM)):
        return uses_torch_fused(group)
    return group.get("foreach") is None and group.get("fused") is None


def _torch_fused_update(base: Optimizer, group: dict[str, Any], params: list[Tensor], wd: float) -> list[Tensor]:
    """The base's update of `params` (gradients already whitened in p.grad) on torch's fused SGD kernel,
    with weight decay `wd`; returns the params it left to the per-tensor update."""
    ready = [p for p in params if torch_fused_ready(p, _grad(p))]
    rest = [p for p in params if not torch_fused_ready(p, _grad(p))]
    if not ready:
        return rest
    grads = [_grad(p) for p in ready]
    if isinstance(base, (SGDMEMA, RSGDM)):
        left = base._torch_fused_step_group({**group, "weight_decay": wd}, ready, grads)
        return rest + [ready[i] for i in left]
    momentum = group["momentum"]
    common = dict(
        lr=group["lr"],
        momentum=momentum,
        dampening=group["dampening"],
        nesterov=group["nesterov"],
        weight_decay=wd,
        maximize=bool(group.get("maximize", False)),
    )
    if momentum == 0:
        torch_fused_sgd(ready, grads, [None] * len(ready), **common)
        return rest
    states = [base.state[p] for p in ready]
    fresh = [i for i, st in enumerate(states) if st.get("momentum_buffer") is None]
    old = [i for i, st in enumerate(states) if st.get("momentum_buffer") is not None]
    if old:  # torch's step: b ← μb + (1−τ)g'
        sel = [[xs[i] for i in old] for xs in (ready, grads)]
        torch_fused_sgd(sel[0], sel[1], [states[i]["momentum_buffer"] for i in old], **common)
    if fresh:  # torch's first step: b = g' (an all-None list makes the kernel start the buffers)
        bufs: list[Tensor | None] = [None] * len(fresh)
        torch_fused_sgd([ready[i] for i in fresh], [grads[i] for i in fresh], bufs, **common)
        for i, b in zip(fresh, bufs):
            states[i]["momentum_buffer"] = b
    return rest


def _centre_batched(params: list[Tensor], grads: list[Tensor], group: dict[str, Any]) -> None:
    """WGD's centring of the eligible small gradients, in place, one mean per shape: the gradients
    of one shape are stacked, their means taken in one reduction (each over the same elements as
    the per-tensor mean: bit-equal in tests/test_wgd_fused.py) and subtracted with one multi-tensor op."""
    min_dim, linear, mode = group["wgd_min_dim"], group["wgd_include_linear"], group["wgd_mode"]
    by_shape: dict[tuple[int, ...], list[Tensor]] = {}
    for p, g in zip(params, grads):
        d = p.dim()
        if d >= min_dim or (linear and d == 2):
            by_shape.setdefault(tuple(p.shape), []).append(g)
    for shape, gs in by_shape.items():
        dims = (1,) if mode == "kernel" else tuple(range(2, len(shape) + 1))
        means = torch.stack(gs).mean(dim=dims, keepdim=True)
        torch._foreach_sub_(gs, list(means.unbind(0)))


def _foreach_update(
    base: Optimizer, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], wd: float
) -> None:
    """The base's update of `params` with multi-tensor ops: the same operations per tensor as
    _sgd_update / _ema_update (so the same results), p.grad never modified."""
    ds = effective_grads(params, grads, wd, bool(group.get("maximize", False)), foreach=True)
    if isinstance(base, RSGDM):
        bufs, steps = base._heavy_ball_buffers(params, group["beta"])
        rsgdm_foreach_update_(params, ds, bufs, steps, group["lr"], group["beta"])
        return
    if isinstance(base, SGDMEMA):
        bufs, _ = base._buffers(params)
        sgdm_ema_foreach_update_(params, ds, bufs, group["lr"], group["beta"])
        return
    momentum, dampening = group["momentum"], group["dampening"]
    if momentum != 0:
        states = [base.state[p] for p in params]
        old = [i for i, st in enumerate(states) if st.get("momentum_buffer") is not None]
        for i, st in enumerate(states):
            if st.get("momentum_buffer") is None:
                st["momentum_buffer"] = ds[i].detach().clone()
        if old:
            olds = [states[i]["momentum_buffer"] for i in old]
            torch._foreach_mul_(olds, momentum)
            torch._foreach_add_(olds, [ds[i] for i in old], alpha=1 - dampening)
        bufs = [st["momentum_buffer"] for st in states]
        ds = list(torch._foreach_add(ds, bufs, alpha=momentum)) if group["nesterov"] else bufs
    torch._foreach_add_(params, ds, alpha=-group["lr"])


@torch.no_grad()
def fused_step(base: Optimizer, param_groups: list[dict[str, Any]], centre: Centre) -> None:
    """One WGD step over `param_groups` (shared with `base`) as a single per-tensor loop.

    Same results as WGD's generic path: under target "gradient" λθ is folded into p.grad (with the
    maximize sign), p.grad is centred in place if the tensor is eligible, and the base's update
    runs with weight decay 0; under mode "none" the base's update applies its own decay.
    `centre(p, group)` is WGD's transform of p.grad in place (it skips tensors it does not touch).
    """
    for group in param_groups:
        params = _with_grads(group)
        if params:
            _python_group(base, group, params, centre)
