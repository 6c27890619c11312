r"""WGD's own step: fold λθ, centre, then run the base's update itself, through the base's step rule.

The generic WGD wrapper folds λθ into every gradient, centres every gradient, then calls the base's
step. For the bases below WGD knows the update, through a small public protocol, the *step rule*:

* ``paths``: the paths the update has (optimlab.optim.dispatch);
* ``torch_fused_refusal(group, params, grads)``: None when torch's fused kernel takes the group, else why;
* ``update(group, params, grads, path)``: the update on raw gradients (maximize and the group's
  ``weight_decay`` applied inside);
* for the compiled kernel, ``heavy_ball_steps(group, params)``: the update as torch-style SGD coefficients.

optimlab's ``SGDMEMA`` and ``RSGDM`` are their own step rules (PaperOptimizer's protocol); torch's
``SGD``, ``Adam`` and ``AdamW`` get theirs here (TorchSGDRule, TorchAdamRule: torch's documented update
on torch's public state). Exact types only: a subclass may override step.

Per param group, ONE path (dispatch.choose, and WGD's conditions in plan_group):

* ``torch-fused`` (``foreach`` and ``fused`` None): the fold and centring (per tensor for large tensors,
  one stacked mean per shape for small ones), then the base's update of all tensors in one call of
  torch's fused kernel. It rounds like torch's fused step: float64 results agree with the generic path
  to ~1e-15 relative (tests/step_path_cases.py);
* ``per-tensor`` (``foreach=False``, or a tensor the kernel cannot take): fold g_i, centre g_i, update
  θ_i while they are in cache, the same operations in the same order as the generic path (float64
  bit-equal); ``foreach`` on CPU groups of small tensors: the same as multi-tensor ops;
* ``compiled`` (``fused=True`` on the base): optimlab.optim.wgd_compiled.

A group is wrapped (the base's own step) for target "update", ``foreach`` resolving to True, decoupled
decay on the SGD family, ``fused=True`` on torch's SGD without optimlab's kernel, ``differentiable``,
Tensor hyperparameters or an AMP grad scaler; and when one group is wrapped, the whole step is (the
base's step runs every group). The base's own step hooks do not run on WGD's own step (WGD's do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.adam import adam as _torch_adam

from optimlab.optim import compiled
from optimlab.optim._common import effective_grads, heavy_ball_, pick, torch_fused_ready, torch_fused_sgd
from optimlab.optim.dispatch import (
    COMPILED,
    FOREACH,
    PER_TENSOR,
    TORCH_FUSED,
    Dispatch,
    choose,
    split_paths,
    torch_fused_refusal,
    use_foreach,
)
from optimlab.optim.rsgdm import RSGDM
from optimlab.optim.sgdm_ema import SGDMEMA
from optimlab.optim.wgd_compiled import ADAM_BASES, adam_state, compiled_refusal, kernel_base
from optimlab.optim.wgd_decay import folds_coupled_decay, maximizes

# torch's public functional Adam, bound as a name of this module: the seam the path tests spy on
torch_adam = _torch_adam

Centre = Callable[[Tensor, dict[str, Any]], None]


class TorchSGDRule:
    """torch.optim.SGD's update (torch/optim/sgd.py) on its own state, for WGD's own step."""

    paths = (PER_TENSOR, FOREACH, TORCH_FUSED)

    def __init__(self, base: Optimizer) -> None:
        self.base = base

    def torch_fused_refusal(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> str | None:
        return torch_fused_refusal(params, grads, torch_fused_ready)

    def update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], path: str) -> None:
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        maximize = bool(group.get("maximize", False))
        states = [self.base.state[p] for p in params]
        if path == TORCH_FUSED:
            common = dict(lr=lr, momentum=momentum, dampening=group["dampening"], nesterov=group["nesterov"])
            common.update(weight_decay=wd, maximize=maximize)
            if momentum == 0:
                torch_fused_sgd(params, grads, [None] * len(params), **common)
                return
            old = [i for i, st in enumerate(states) if st.get("momentum_buffer") is not None]
            fresh = [i for i, st in enumerate(states) if st.get("momentum_buffer") is None]
            if old:  # torch's step: b ← μb + (1−τ)g'
                bufs = [states[i]["momentum_buffer"] for i in old]
                torch_fused_sgd(pick(params, old), pick(grads, old), bufs, **common)
            if fresh:  # torch's first step: b = g' (an all-None list makes the kernel start the buffers)
                new: list[Tensor | None] = [None] * len(fresh)
                torch_fused_sgd(pick(params, fresh), pick(grads, fresh), new, **common)
                for i, b in zip(fresh, new):
                    states[i]["momentum_buffer"] = b
            return
        foreach = path == FOREACH
        ds = effective_grads(params, grads, wd, maximize, foreach)
        if momentum != 0:
            bufs = heavy_ball_(states, ds, momentum, group["dampening"], foreach)
            if not group["nesterov"]:
                ds = bufs
            elif foreach:
                ds = list(torch._foreach_add(ds, bufs, alpha=momentum))
            else:
                ds = [d.add(b, alpha=momentum) for d, b in zip(ds, bufs)]
        if foreach:
            torch._foreach_add_(params, ds, alpha=-lr)
        else:
            for p, d in zip(params, ds):
                p.add_(d, alpha=-lr)


class TorchAdamRule:
    """torch's Adam/AdamW update as one call of its fused kernel (torch.optim.adam.adam, fused=True: the
    state and update of torch.optim.Adam(fused=True)). No per-tensor loop here: other paths wrap."""

    paths = (TORCH_FUSED,)

    def __init__(self, base: Optimizer) -> None:
        self.base = base

    def torch_fused_refusal(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> str | None:
        return torch_fused_refusal(params, grads, torch_fused_ready)

    def update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], path: str) -> None:
        assert path == TORCH_FUSED, path
        amsgrad = bool(group["amsgrad"])
        states = adam_state(self.base, params, amsgrad)
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
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=bool(group.get("maximize", False)),
        )


StepRule = SGDMEMA | RSGDM | TorchSGDRule | TorchAdamRule


def step_rule(base: Optimizer) -> StepRule | None:
    """The step rule WGD runs `base`'s update through (None: WGD only wraps base.step)."""
    if type(base) is SGDMEMA or type(base) is RSGDM:  # exact types, not isinstance
        return base
    if type(base) is torch.optim.SGD:
        return TorchSGDRule(base)
    if type(base) in ADAM_BASES:
        return TorchAdamRule(base)
    return None


def _centre_batched(params: list[Tensor], grads: list[Tensor], group: dict[str, Any]) -> None:
    """WGD's centring of the eligible small gradients, in place, one mean per shape: the gradients
    of one shape are stacked, their means taken in one reduction (each over the same elements as
    the per-tensor mean: bit-equal in the path-equality tests) and subtracted with one multi-tensor op."""
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


def own_step(
    base: Optimizer,
    rule: StepRule,
    group: dict[str, Any],
    params: list[Tensor],
    grads: list[Tensor],
    path: str,
    centre: Centre,
) -> None:
    """WGD's own step of one group on `path` (not compiled: wgd_compiled): fold the decay into p.grad,
    centre it in place, then the base's update with the decay it still applies (0 when folded)."""
    wd = float(group.get("weight_decay", 0.0) or 0.0)
    whiten = group["wgd_mode"] != "none"
    # coupled decay is folded into g before centring; under mode "none" the base applies its own
    # which decay is coupled L2 and which way the base steps: wgd_decay's one table, as the wrapped path
    fold = wd if whiten and folds_coupled_decay(base, group) else 0.0
    sign = -1.0 if maximizes(base, group) else 1.0
    base_group = {**group, "weight_decay": wd - fold}
    if path == PER_TENSOR:  # each tensor folded, centred and updated while it is in cache
        for p, g in zip(params, grads):
            if fold != 0.0:
                g.add_(p, alpha=sign * fold)
            if whiten:
                centre(p, group)
            rule.update(base_group, [p], [g], PER_TENSOR)
        return
    # torch-fused and foreach: large tensors folded and centred in place, the small ones as multi-tensor
    # ops with one stacked mean per shape; then the update of all tensors at once
    for small, ps, gs in split_paths(None, params, grads):
        if small:
            if fold != 0.0:
                torch._foreach_add_(gs, ps, alpha=sign * fold)
            if whiten:
                _centre_batched(ps, gs, group)
            continue
        for p, g in zip(ps, gs):
            if fold != 0.0:
                g.add_(p, alpha=sign * fold)
            if whiten:
                centre(p, group)
    rule.update(base_group, params, grads, path)


def _wrap_reason(
    base: Optimizer, rule: StepRule | None, fused: bool, group: dict[str, Any], params: list[Tensor]
) -> str | None:
    """Why WGD must wrap base.step() for this group (None: it can run the base's update itself)."""
    if not fused:
        return "wgd_fused=False"
    if rule is None:
        return f"WGD does not run {type(base).__name__}'s update itself"
    if group["wgd_target"] != "gradient" and group["wgd_mode"] != "none":
        return "wgd_target='update' (the base steps first)"
    if group.get("differentiable") or group.get("capturable"):
        return "differentiable or capturable"
    if any(isinstance(group.get(k), Tensor) for k in ("lr", "weight_decay", "momentum")) or any(
        isinstance(b, Tensor) for b in group.get("betas", ())
    ):
        return "a Tensor hyperparameter"
    if getattr(base, "grad_scale", None) is not None or getattr(base, "found_inf", None) is not None:
        return "an AMP grad scaler"
    if type(base) in ADAM_BASES:
        return None
    if group.get("decoupled_weight_decay") or group.get("weight_decouple"):
        return "decoupled weight decay"
    if use_foreach(group.get("foreach"), params):
        return "foreach: the base's multi-tensor step"
    return None


def _torch_fused_true(base: Optimizer, group: dict[str, Any]) -> bool:
    """fused=True on torch's own SGD or Adam that optimlab's compiled kernel cannot run (not built, or the
    group's settings): torch's own fused step. (A group the kernel declines for a tensor's dtype or layout
    takes WGD's own general path instead, as before the dispatch.)"""
    if type(base) not in (torch.optim.SGD, *ADAM_BASES) or not group.get("fused"):
        return False
    return compiled.load() is None or compiled_refusal(base, group, [], []) is not None


def base_path(base: Optimizer, group: dict[str, Any], params: list[Tensor]) -> str:
    """The path base.step() takes for this group, as torch decides it (and optimlab's optimizers too,
    before their kernels: their step reports its own choice in base.step_paths())."""
    if group.get("fused"):
        return TORCH_FUSED
    return FOREACH if use_foreach(group.get("foreach"), params) else PER_TENSOR


def plan_group(
    base: Optimizer,
    rule: StepRule | None,
    allowed: bool,
    group: dict[str, Any],
    params: list[Tensor],
    grads: list[Tensor],
) -> tuple[bool, Dispatch]:
    """(WGD runs the update itself?, the path and why) for one group: WGD's conditions, then dispatch.choose."""
    why = _wrap_reason(base, rule, allowed, group, params)
    if why is None and rule is not None:
        torch_default = group.get("foreach") is None and (
            group.get("fused") is not False if isinstance(base, (SGDMEMA, RSGDM)) else group.get("fused") is None
        )
        d = choose(
            group,
            params,
            grads,
            (lambda g, ps, gs: compiled_refusal(base, g, ps, gs)) if kernel_base(base) else None,
            rule.torch_fused_refusal if TORCH_FUSED in rule.paths and torch_default else None,
        )
        if d.path == COMPILED or (d.path in rule.paths and not _torch_fused_true(base, group)):
            return True, d
        why = f"{type(base).__name__}'s own step ({d.reason})"
    return False, Dispatch(base_path(base, group, params), f"wrapped: {why}")
