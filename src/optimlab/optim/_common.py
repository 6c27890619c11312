"""Shared plumbing for optimlab's optimizers: hyperparameter validation, gradient gathering, and the
pure update pieces more than one rule uses (the heavy-ball buffer, torch's fused SGD kernel).

Every optimizer validates with a ValueError that names the hyperparameter and its value, and
refuses sparse or complex gradients outright (never a silent wrong result).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT  # Iterable[Tensor] | Iterable[dict[str, Any]] (param groups)
from torch.optim.sgd import sgd as _torch_sgd

__all__ = ["ParamsT"]  # re-exported: optimlab's optimizers take torch's params type

# torch's public functional SGD, bound as a name of this module: the seam the path tests spy on
torch_sgd = _torch_sgd


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


def closure_loss(closure: Callable[[], Any] | None) -> Any:
    """The closure's loss, evaluated with gradients on (a step runs under no_grad), or None."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


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


class HeavyBallStep(NamedTuple):
    """A rule's update of some of a group's tensors as one torch-style SGD step (its coefficients): the
    shape WGD and the kernels take from optimlab's EMA bases (EMAMomentumOptimizer.heavy_ball_steps).

    Per element, with g' the gradient after the maximize sign and coupled decay:
    b <- momentum*b + (1-dampening)*g';  theta <- theta - lr*(g' + momentum*b if nesterov else b);
    no buffer (bufs None) when momentum is 0. ``ema``: dampening == momentum, which the compiled kernel
    runs as a lerp (its EMA kind)."""

    idx: list[int]  # which of the tensors handed over
    lr: float
    momentum: float
    dampening: float
    nesterov: bool
    bufs: list[Tensor] | None
    ema: bool = False


def pick(xs: list[Any], idx: list[int]) -> list[Any]:
    """xs at the sorted indices idx (xs itself when idx is all of them)."""
    return xs if len(idx) == len(xs) else [xs[i] for i in idx]


def heavy_ball_(
    states: list[dict[str, Any]], grads: list[Tensor], momentum: float, dampening: float, foreach: bool
) -> list[Tensor]:
    r"""torch's heavy-ball buffer, the one place optimlab writes it: b_1 = g,
    b_t = \mu b_{t-1} + (1-\tau) g_t (\mu = momentum, \tau = dampening), in each state's
    ``momentum_buffer`` (missing or None before the first step). Returns the buffers, in order.

    The same operations as torch.optim.SGD's single-tensor and foreach paths, so TM-SGD-M and WGD over
    torch's SGD stay bit-equal to torch's own step (tests/test_tmsgd.py, tests/test_wgd_fused.py)."""
    old = [i for i, st in enumerate(states) if st.get("momentum_buffer") is not None]
    for st, g in zip(states, grads):
        if st.get("momentum_buffer") is None:
            st["momentum_buffer"] = g.detach().clone()
    if old:
        bufs, new_g = [states[i]["momentum_buffer"] for i in old], [grads[i] for i in old]
        if foreach:
            torch._foreach_mul_(bufs, momentum)
            torch._foreach_add_(bufs, new_g, alpha=1 - dampening)
        else:
            for b, g in zip(bufs, new_g):
                b.mul_(momentum).add_(g, alpha=1 - dampening)
    return [st["momentum_buffer"] for st in states]
