r"""WGD fused with a base whose update optimlab knows: fold, centre, then the base's update in few passes.

The generic WGD wrapper folds λθ into every gradient, centres every gradient, then calls the base's
step. For the bases below the update rule is known, so WGD runs the update itself:

* by default (``foreach`` and ``fused`` None), the base's update of all tensors is ONE call of torch's
  own fused kernel (``torch.optim.sgd.sgd`` / ``torch.optim.adam.adam`` with ``fused=True``: one pass
  per element), after the fold and centring (per tensor for large tensors, one stacked mean per shape
  for small ones). The kernel rounds like torch's fused step, not like its per-tensor loop: float64
  results agree with the generic path to ~1e-15 relative (tests/test_wgd_fused.py,
  tests/test_torch_fused_default.py);
* with ``foreach=False`` (torch's SGD and optimlab's bases), ONE per-tensor loop: fold g_i, centre
  g_i, update θ_i while they are in cache, the same operations in the same order as the generic
  path (float64 bit-equal).

Bases (exact types, not subclasses, which may override step): ``torch.optim.SGD`` (``sgd``,
``sgdm``, ``nag``), ``SGDMEMA`` (``sgdm-ema``), ``RSGDM`` (``rsgdm``), and on the default path only,
torch's ``Adam`` and ``AdamW`` (``adam``, ``amsgrad``, ``adamw``; every parameter float32/float64 on
CPU or CUDA and laid out like its gradient).

A step is fused only when every param group qualifies: target "gradient" (or mode "none"),
``foreach`` not True (on an accelerator, None resolves to the multi-tensor path and the generic
wrapper keeps it), and no ``fused=True`` (that is wgd_kernel's), ``differentiable=True``, Tensor lr,
betas or weight decay, or AMP grad scaler. Otherwise the step runs the generic wrapper. The base's
own step hooks do not run on a fused step (WGD's do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.adam import adam as torch_adam  # torch's public functional Adam

from optimlab.optim._common import (
    SMALL_TENSOR_NUMEL,
    effective_grads,
    pick,
    torch_fused_ready,
    torch_fused_sgd,
    use_foreach,
    uses_torch_fused,
)
from optimlab.optim.rsgdm import RSGDM, rsgdm_foreach_update_, rsgdm_update_
from optimlab.optim.sgdm_ema import SGDMEMA, sgdm_ema_foreach_update_, sgdm_ema_update_

FUSED_BASES: tuple[type[Optimizer], ...] = (torch.optim.SGD, SGDMEMA, RSGDM)
# bases fused on the default path only (torch's fused Adam kernel; no per-tensor loop here)
ADAM_BASES: tuple[type[Optimizer], ...] = (torch.optim.Adam, torch.optim.AdamW)

# update(param, its gradient with WGD applied, weight decay the base still applies)
Update = Callable[[Tensor, Tensor, float], None]
Centre = Callable[[Tensor, dict[str, Any]], None]


def fusable_base(base: Optimizer) -> bool:
    """Whether WGD knows `base`'s update rule (its exact type is one of FUSED_BASES or ADAM_BASES)."""
    return type(base) in FUSED_BASES or type(base) in ADAM_BASES


def _group_fusable(base: Optimizer, group: dict[str, Any]) -> bool:
    if group["wgd_target"] != "gradient" and group["wgd_mode"] != "none":
        return False
    params = [p for p in group["params"] if p.grad is not None]
    if type(base) in ADAM_BASES:
        if not _torch_fused_base(base, group) or group.get("differentiable") or group.get("capturable"):
            return False
        if any(isinstance(group[k], Tensor) for k in ("lr", "weight_decay")) or any(
            isinstance(b, Tensor) for b in group["betas"]
        ):
            return False
        if getattr(base, "grad_scale", None) is not None or getattr(base, "found_inf", None) is not None:
            return False
        return all(torch_fused_ready(p, _grad(p)) for p in params)
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


def _grad(p: Tensor) -> Tensor:
    assert p.grad is not None  # callers pass params that have a gradient
    return p.grad


def _with_grads(group: dict[str, Any]) -> list[Tensor]:
    params = [p for p in group["params"] if p.grad is not None]
    for p in params:
        if p.grad.is_sparse:
            raise RuntimeError(f"WGD does not support sparse gradients (parameter of shape {tuple(p.shape)})")
    return params


def group_step(base: Optimizer, group: dict[str, Any], params: list[Tensor], centre: Centre) -> None:
    """Fold the decay, centre, update: per tensor for large tensors, and as multi-tensor ops over the
    group's small ones (under SMALL_TENSOR_NUMEL, with foreach=None) where per-op costs dominate. On the
    default path the base's update then runs as one call of torch's fused SGD kernel (_torch_fused_update)."""
    wd = float(group.get("weight_decay", 0.0) or 0.0)
    whiten = group["wgd_mode"] != "none"
    # coupled decay is folded into g before centring; AdamW's decoupled decay stays the base's
    fold = wd if whiten and not group.get("decoupled_weight_decay") else 0.0
    sign = -1.0 if group.get("maximize", False) else 1.0
    base_wd = wd - fold
    if _torch_fused_base(base, group):
        # 12 bytes/param of folding and centring, then the base's 20 in one pass (float32): 32 in all,
        # against 44 for the per-tensor updates below and 32 for torch's foreach SGD(momentum) alone
        grads = [_grad(p) for p in params]
        small = [i for i, p in enumerate(params) if p.numel() < SMALL_TENSOR_NUMEL]
        if len(small) < len(params):
            for p, g, is_small in zip(params, grads, _mask(len(params), small)):
                if is_small:
                    continue
                if fold != 0.0:
                    g.add_(p, alpha=sign * fold)
                if whiten:
                    centre(p, group)
        if small:
            ps, gs = pick(params, small), pick(grads, small)
            if fold != 0.0:
                torch._foreach_add_(gs, ps, alpha=sign * fold)
            if whiten:
                _centre_batched(ps, gs, group)
        left = _torch_fused_update(base, group, params, grads, base_wd)
        if left:
            update = _updater(base, group)
            for p in left:
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


def _mask(n: int, idx: list[int]) -> list[bool]:
    out = [False] * n
    for i in idx:
        out[i] = True
    return out


def _torch_fused_update(
    base: Optimizer, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], wd: float
) -> list[Tensor]:
    """The base's update of `params` (their gradients `grads`, already whitened in p.grad) on torch's
    fused kernel, with weight decay `wd`; returns the params it left to the per-tensor update."""
    if type(base) in ADAM_BASES:  # _group_fusable checked every parameter this step: all are ready
        _torch_adam(base, group, params, grads, wd)
        return []
    ok = [i for i, (p, g) in enumerate(zip(params, grads)) if torch_fused_ready(p, g)]
    if not ok:
        return list(params)
    rest = [] if len(ok) == len(params) else [p for p, r in zip(params, _mask(len(params), ok)) if not r]
    ready, grads = pick(params, ok), pick(grads, ok)
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


def _torch_adam(base: Optimizer, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], wd: float) -> None:
    """torch's Adam/AdamW update of `params` in one call of its fused kernel (torch.optim.adam.adam,
    fused=True: the same state and update as torch.optim.Adam(fused=True))."""
    amsgrad = bool(group["amsgrad"])
    states = adam_state(base, params, amsgrad)
    beta1, beta2 = group["betas"]
    torch_adam(
        params,
        grads,
        [st["exp_avg"] for st in states],
        [st["exp_avg_sq"] for st in states],
        [st["max_exp_avg_sq"] for st in states] if amsgrad else [],
        [st["step"] for st in states],
        fused=True,
        decoupled_weight_decay=bool(group.get("decoupled_weight_decay", False)),
        amsgrad=amsgrad,
        beta1=beta1,
        beta2=beta2,
        lr=group["lr"],
        weight_decay=wd,
        eps=group["eps"],
        maximize=bool(group.get("maximize", False)),
    )


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
            group_step(base, group, params, centre)
