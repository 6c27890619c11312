"""Shared plumbing for optimlab's optimizers: hyperparameter validation and gradient gathering.

Every optimizer validates with a ValueError that names the hyperparameter and its value, and
refuses sparse or complex gradients outright (never a silent wrong result).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT  # Iterable[Tensor] | Iterable[dict[str, Any]] (param groups)
from torch.optim.sgd import sgd as torch_sgd  # torch's public functional SGD

from optimlab.optim import fused_cpu


def check_lr(name: str, lr: Any) -> float:
    if isinstance(lr, Tensor):
        raise TypeError(f"{name} must be a Python float, got a Tensor ({lr!r})")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr != lr or lr < 0.0:
        raise ValueError(f"Invalid learning rate {name}={lr!r}: must be a float >= 0")
    return float(lr)


def check_unit_interval(name: str, value: Any) -> float:
    """A momentum-like coefficient: 0 <= value < 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value < 1.0):
        raise ValueError(f"Invalid {name}={value!r}: must be in [0, 1)")
    return float(value)


def check_nonnegative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0.0:
        raise ValueError(f"Invalid {name}={value!r}: must be a float >= 0")
    return float(value)


Check = Callable[[str, Any], Any]  # validates one hyperparameter; returns the value to store


def validate_group(group: dict[str, Any], checks: dict[str, Check]) -> None:
    """Validate (and normalize to float) every checked hyperparameter present in `group`."""
    for key, check in checks.items():
        if key in group:
            group[key] = check(key, group[key])


def check_param_dtypes(param_groups: list[dict[str, Any]], owner: str) -> None:
    for group in param_groups:
        for p in group["params"]:
            if p.is_complex():
                raise TypeError(f"{owner} does not support complex parameters (got {p.dtype}, shape {tuple(p.shape)})")
            if not p.is_floating_point():
                raise ValueError(f"{owner} needs floating-point parameters, got {p.dtype} (shape {tuple(p.shape)})")


def check_real_params(param_groups: list[dict[str, Any]], owner: str) -> None:
    """Refuse complex parameters, naming the first one: optimlab's optimizers are defined on real
    parameters only, whoever implements them (ours, torch's, pytorch_optimizer's, any WGD base)."""
    for gi, group in enumerate(param_groups):
        for pi, p in enumerate(group["params"]):
            if p.is_complex():
                raise TypeError(
                    f"{owner} does not support complex parameters: param_groups[{gi}]['params'][{pi}] "
                    f"is {p.dtype}, shape {tuple(p.shape)} (optimize torch.view_as_real(p) instead)"
                )


def gather_grads(group: dict[str, Any], owner: str) -> tuple[list[Tensor], list[Tensor]]:
    """The group's params that have a gradient, and those gradients. Params without grad are skipped."""
    params: list[Tensor] = []
    grads: list[Tensor] = []
    for p in group["params"]:
        g = p.grad
        if g is None:
            continue
        if g.is_sparse:
            raise RuntimeError(f"{owner} does not support sparse gradients (parameter of shape {tuple(p.shape)})")
        if g.is_complex():
            raise TypeError(f"{owner} does not support complex gradients (parameter of shape {tuple(p.shape)})")
        params.append(p)
        grads.append(g)
    return params, grads


# On CPU, a tensor below this many elements takes the multi-tensor (foreach) path by default and a
# larger one the per-tensor loop: for small tensors the per-op Python cost dominates, which foreach
# pays once per list; a larger tensor gains from the loop running all of a step's passes over it
# while it is still in cache. Measured on the 62-, 324- and 3,600-tensor layouts of
# benchmarks/bench_optimizers.py (the README's speed section).
SMALL_TENSOR_NUMEL = 32768


def use_foreach(foreach: bool | None, params: list[Tensor]) -> bool:
    """None picks the multi-tensor path when every tensor is on an accelerator (as torch does).

    On CPU the per-tensor loop is the faster one for large tensors: it runs all of a step's passes
    over one tensor while it is still in cache, where foreach runs each pass over every tensor in
    turn. (PaperOptimizer.step splits a CPU group by size: see split_paths.)
    """
    if foreach is not None:
        return bool(foreach)
    return len(params) > 0 and all(p.device.type != "cpu" for p in params)


def split_paths(
    foreach: bool | None, params: list[Tensor], grads: list[Tensor]
) -> list[tuple[bool, list[Tensor], list[Tensor]]]:
    """[(foreach?, params, grads)]: the paths a group's tensors take, in order.

    foreach=True/False: all tensors on that path. None: all on the multi-tensor path when every tensor
    is on an accelerator; otherwise tensors under SMALL_TENSOR_NUMEL elements (on CPU) take the
    multi-tensor path and the others the per-tensor loop. Both paths run the same kernels per tensor
    (torch's CPU foreach ops loop over the per-tensor ones), so the split changes speed, not results.
    """
    if foreach is not None or use_foreach(None, params):
        return [(use_foreach(foreach, params), params, grads)]
    small = [p.device.type != "cpu" or p.numel() < SMALL_TENSOR_NUMEL for p in params]
    out = []
    for flag in (True, False):
        ps = [p for p, s in zip(params, small) if s == flag]
        if ps:
            out.append((flag, ps, [g for g, s in zip(grads, small) if s == flag]))
    return out


def effective_grads(
    params: list[Tensor], grads: list[Tensor], weight_decay: float, maximize: bool, foreach: bool
) -> list[Tensor]:
    """g = ±∇ + wd·θ (maximize flips the sign first, then coupled L2 enters, as torch.optim.SGD).

    Returns new tensors only when something changes the gradient; p.grad is never modified.
    """
    if foreach:
        out_f: list[Tensor] | tuple[Tensor, ...] = grads
        if maximize:
            out_f = torch._foreach_neg(out_f)
        if weight_decay != 0.0:
            out_f = torch._foreach_add(out_f, params, alpha=weight_decay)
        return list(out_f)
    out = []
    for p, g in zip(params, grads):
        if maximize:
            g = -g
        if weight_decay != 0.0:
            g = g.add(p, alpha=weight_decay)
        out.append(g)
    return out


# torch's own fused SGD kernel: the public functional torch.optim.sgd.sgd with fused=True, one pass per
# element over (parameter, gradient, buffer) on CPU and CUDA, nothing to build. Per element it computes
#     g' = ±g + λθ;   b ← μb + (1−τ)g';   θ ← θ − γ(g' + μb if nesterov else b)
# and sgdm-ema (μ = τ = β), RSGDM (its heavy-ball buffer, Nesterov, γ(1−β)) and WGD's SGD-family bases
# are exactly such steps. Measured 0.5–0.7× torch's foreach SGD(momentum) step on the ResNet18 layout
# (benchmarks/bench_optimizers.py), where a per-tensor or foreach update takes two or three passes.
TORCH_FUSED_DTYPES = (torch.float32, torch.float64)  # on CPU and CUDA
_DENSE_FORMATS = (torch.contiguous_format, torch.channels_last, torch.channels_last_3d)


def torch_fused_ready(param: Tensor, grad: Tensor) -> bool:
    """Whether torch's fused kernels take this parameter: float32/float64 on CPU or CUDA, dense, and
    laid out like its gradient (the kernels walk the tensors' memory in order, so a channels_last
    parameter with a contiguous gradient would pair the wrong elements; autograd's gradients match).
    Called per parameter and step, so the common case (both contiguous) is decided first."""
    if param.is_contiguous() and grad.is_contiguous():
        pass
    elif grad.stride() != param.stride() or not any(param.is_contiguous(memory_format=f) for f in _DENSE_FORMATS[1:]):
        return False
    return (
        param.dtype in TORCH_FUSED_DTYPES
        and grad.dtype == param.dtype
        and (param.is_cpu or param.is_cuda)
        and grad.is_cpu == param.is_cpu
    )


def torch_fused_sgd(
    params: list[Tensor],
    grads: list[Tensor],
    bufs: list[Tensor | None],
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    """One step of torch's fused SGD kernel over the tensors (see the comment above). `bufs` must be
    tensors (never None) when momentum != 0 and the buffers exist: an all-None list makes torch start
    them at g', its first-step rule, and fills the list with the new buffers."""
    torch_sgd(
        params,
        grads,
        bufs,
        fused=True,
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        nesterov=nesterov,
        weight_decay=weight_decay,
        maximize=maximize,
    )


def pick(xs: list[Any], idx: list[int]) -> list[Any]:
    """xs at the sorted indices idx (xs itself when idx is all of them)."""
    return xs if len(idx) == len(xs) else [xs[i] for i in idx]


def uses_torch_fused(group: dict[str, Any]) -> bool:
    """The default path (fused and foreach both None, or fused=True whose kernel could not be built)
    takes torch's fused kernel where the update maps onto it; an explicit foreach or fused=False does not."""
    return group.get("foreach") is None and group.get("fused") is not False


class PaperOptimizer(torch.optim.Optimizer):
    """What optimlab's own optimizers share: validated hyperparameters (`_checks`, also on
    add_param_group), float-only params, and a step() that evaluates the closure, gathers each
    group's gradients (skipping params without one) and applies coupled L2 and the maximize sign
    before handing them to `_step_group`.
    """

    _checks: dict[str, Check] = {}
    _coupled_decay = True  # False: _step_group gets ±∇ without λθ and places weight decay itself
    # fused=True runs optimlab's compiled kernel (fused_cpu) when True; when False, the update maps onto
    # torch's fused SGD kernel, which fused=True (like the default) then runs: nothing to build
    _compiled_fused = True
    _torch_fused = False  # True: _torch_fused_step_group runs torch's fused kernel (else it is not asked)

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        validate_group(defaults, self._checks)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        validate_group(param_group, self._checks)
        super().add_param_group(param_group)
        check_param_dtypes(self.param_groups[-1:], type(self).__name__)
        fused_cpu.check_fused_group(self.param_groups[-1], type(self).__name__, compiled=self._compiled_fused)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load state and hyperparameters; the implementation choice (foreach, fused) stays this optimizer's,
        so a checkpoint moves between fused and unfused optimizers in either direction."""
        impl: list[dict[str, Any]] = [{k: g[k] for k in ("foreach", "fused") if k in g} for g in self.param_groups]
        super().load_state_dict(state_dict)
        for group, keep in zip(self.param_groups, impl):
            group.update(keep)

    def _step_group(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], foreach: bool) -> None:
        raise NotImplementedError

    def _fused_step_group(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> list[int]:
        """The group's step with the fused kernel, on raw gradients (the kernel applies the maximize sign and
        coupled decay itself). Returns the indices of the params it left to the unfused path."""
        raise NotImplementedError

    def _torch_fused_step_group(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> list[int]:
        """The group's step on torch's fused SGD kernel (optimizers with ``_torch_fused``), for params that
        torch_fused_ready, on raw gradients (the kernel applies the maximize sign and coupled decay).
        Returns the indices it left to the unfused path."""
        raise NotImplementedError

    def _take_torch_fused(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> tuple[list, list]:
        if not self._torch_fused or not uses_torch_fused(group):
            return params, grads
        ok = [i for i, (p, g) in enumerate(zip(params, grads)) if torch_fused_ready(p, g)]
        if not ok:
            return params, grads
        left = [ok[i] for i in self._torch_fused_step_group(group, pick(params, ok), pick(grads, ok))]
        keep = left if len(ok) == len(params) else sorted(set(left) | (set(range(len(params))) - set(ok)))
        return pick(params, keep), pick(grads, keep)

    def _take_fused(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> tuple[list, list]:
        """Run the fused kernel on what it can take; return the (params, grads) left to the unfused path."""
        if not group.get("fused") or not self._compiled_fused or fused_cpu.load() is None:
            return params, grads
        rest = self._fused_step_group(group, params, grads)
        return [params[i] for i in rest], [grads[i] for i in rest]

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads = gather_grads(group, type(self).__name__)
            if not params:
                continue
            params, grads = self._take_fused(group, params, grads)
            if params:
                params, grads = self._take_torch_fused(group, params, grads)
            if not params:
                continue
            wd = group["weight_decay"] if self._coupled_decay else 0.0
            for foreach, ps, gs in split_paths(group["foreach"], params, grads):
                gs = effective_grads(ps, gs, wd, group["maximize"], foreach)
                self._step_group(group, ps, gs, foreach)
        return loss


class EMAMomentumOptimizer(PaperOptimizer):
    """The shared shape of the papers' EMA-form momentum rules (SGDMEMA, RSGDM): hyperparameters
    lr, beta, weight_decay, maximize, foreach, and one momentum buffer per parameter, zeros before
    step 1 (no bias correction). Subclasses implement the update in _step_group, using _buffers."""

    _checks = {"lr": check_lr, "beta": check_unit_interval, "weight_decay": check_nonnegative}
    _compiled_fused = False  # both updates are torch's fused SGD kernel's (sgdm_ema.py, rsgdm.py)
    _torch_fused = True

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
