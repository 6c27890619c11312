r"""WGD — Whitened Gradient Descent (paper 003): subtract a mean from conv-weight gradients before
any base optimizer (SGDM, Adam, NAdam, RAdam, ours, …).

Two means, both offered and named:

* ``mode="filter"`` — what the authors' published code does, and what produced the paper's tables:
  for every output filter, subtract the mean of its gradient over dims 1..n (in_channels × kH × kW).
  This is Gradient Centralization (Yong et al., 2020). Applied to 4-D (conv) weights only, after
  coupled L2 weight decay has entered the gradient.
* ``mode="kernel"`` — the paper's Eq. 11: h_{k,x} = ∇_x J(k, x) − μ_x, μ_x = (1/P) Σ_i ∇_x J(i, x),
  the mean over the layer's P kernels (dim 0), subtracted from every kernel.

``include_linear=True`` also treats 2-D (linear) weights. Biases, norm parameters and every other
tensor are left untouched. The transform is linear, so it commutes with the maximize sign flip.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

WGD_MODES = ("filter", "kernel")


def _check_mode(mode: Any) -> str:
    if mode not in WGD_MODES:
        raise ValueError(f"Invalid wgd mode={mode!r}: must be one of {WGD_MODES} "
                         "('filter' = the authors' code / Gradient Centralization, 'kernel' = paper Eq. 11)")
    return mode


def centralize_gradient(grad: Tensor, mode: str = "filter") -> Tensor:
    """Return grad minus its WGD mean (a new tensor). Tensors with fewer than 2 dims are returned as is.

    filter: grad − mean over dims 1..n (one mean per output filter, shape [P, 1, ..., 1]);
    kernel: grad − mean over dim 0 (one mean kernel of shape [1, C, kH, kW]).
    """
    _check_mode(mode)
    if grad.dim() < 2:
        return grad.clone()
    return grad - _wgd_mean(grad, mode)


def _wgd_mean(grad: Tensor, mode: str) -> Tensor:
    if mode == "filter":
        return grad.mean(dim=tuple(range(1, grad.dim())), keepdim=True)
    return grad.mean(dim=0, keepdim=True)


def centralize_gradient_(grad: Tensor, mode: str = "filter") -> Tensor:
    """In-place variant of centralize_gradient (used by WGD.step)."""
    if grad.dim() >= 2:
        grad.sub_(_wgd_mean(grad, mode))
    return grad


def _is_decoupled(base: Optimizer, group: dict[str, Any]) -> bool:
    return isinstance(base, torch.optim.AdamW) or bool(group.get("decoupled_weight_decay", False))


class WGD(Optimizer):
    r"""Wrap any torch optimizer so that it steps on whitened conv-weight gradients (paper 003).

    .. math::
        \begin{aligned}
        &\textbf{for each step, for each 4-D weight } W \text{ (and 2-D if include\_linear):} \\
        &\quad g \leftarrow \nabla_W J + \lambda W \qquad \text{(coupled L2 first, as the authors' code)} \\
        &\quad h \leftarrow g - \mu(g),\quad \mu = \begin{cases}
            \text{mean over dims } 1..n \text{ per output filter} & \text{filter (code, paper's tables)} \\
            \text{mean over the } P \text{ kernels (dim 0)} & \text{kernel (Eq. 11)} \end{cases} \\
        &\quad \text{base optimizer step with } h \text{ in place of } \nabla_W J \text{ and } \lambda = 0
        \end{aligned}

    Conventions: the wrapper shares ``param_groups`` and ``state`` with the base, so lr schedulers,
    ``state_dict``/``load_state_dict`` and ``add_param_group`` work on either. With coupled weight
    decay, the wrapper folds λθ into the gradients of the group's params, sets the base's
    ``weight_decay`` to 0 for the step and restores it, so the base sees exactly
    ``centralize(±∇ + λθ)``. With decoupled decay (AdamW, ``decoupled_weight_decay=True``) the raw
    gradient is centralized and the base applies its own decay. ``p.grad`` is modified in place
    (as Gradient Centralization implementations do).

    Args:
        base: the optimizer to wrap (already constructed over the parameters).
        mode: "filter" (default; the authors' code) or "kernel" (paper Eq. 11).
        include_linear: also centralize 2-D weights.
    """

    def __init__(self, base: Optimizer, mode: str = "filter", include_linear: bool = False) -> None:
        if not isinstance(base, Optimizer):
            raise TypeError(f"WGD wraps a torch.optim.Optimizer, got {type(base).__name__}")
        if isinstance(base, WGD):
            raise TypeError("WGD is already applied: do not wrap a WGD optimizer twice")
        _check_mode(mode)
        self.base = base
        self._wgd_defaults = {"wgd_mode": mode, "wgd_include_linear": bool(include_linear)}
        self._wgd_ready = False
        # Optimizer.__init__ sets up hooks; hand it the base's params, then share the base's containers.
        super().__init__([p for g in base.param_groups for p in g["params"]], {})
        self._wgd_ready = True
        self._share_base()

    def _share_base(self) -> None:
        self.param_groups = self.base.param_groups
        self.state = self.base.state
        self.defaults = self.base.defaults
        for group in self.param_groups:
            for key, value in self._wgd_defaults.items():
                group.setdefault(key, value)
            _check_mode(group["wgd_mode"])

    def __repr__(self) -> str:
        return f"WGD(mode={self._wgd_defaults['wgd_mode']!r}, base={self.base!r})"

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if not self._wgd_ready:  # called by Optimizer.__init__ before sharing
            return super().add_param_group(param_group)
        self.base.add_param_group(param_group)
        self._share_base()

    def state_dict(self) -> dict[str, Any]:
        return self.base.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base.load_state_dict(state_dict)
        self._share_base()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def start_multistep(self) -> None:
        """Forward TM-SGD's switch to the base (no-op for bases without a multi-step phase)."""
        if hasattr(self.base, "start_multistep"):
            self.base.start_multistep()

    def _eligible(self, p: Tensor, include_linear: bool) -> bool:
        return p.dim() == 4 or (include_linear and p.dim() == 2)

    @torch.no_grad()
    def whiten_(self) -> None:
        """Apply the transform to the current gradients (what step() does before the base step)."""
        for group in self.param_groups:
            self._whiten_group(group, fold_decay=False)

    def _whiten_group(self, group: dict[str, Any], fold_decay: bool) -> float:
        params = [p for p in group["params"] if p.grad is not None]
        for p in params:
            if p.grad.is_sparse:
                raise RuntimeError(f"WGD does not support sparse gradients (parameter of shape {tuple(p.shape)})")
        wd = float(group.get("weight_decay", 0.0) or 0.0)
        folded = 0.0
        if fold_decay and wd != 0.0 and params and not _is_decoupled(self.base, group):
            # base negates the gradient under maximize; fold −λθ then so that it sees −∇ + λθ
            sign = -1.0 if group.get("maximize", False) else 1.0
            torch._foreach_add_([p.grad for p in params], params, alpha=sign * wd)
            folded = wd
        mode, include_linear = group["wgd_mode"], group["wgd_include_linear"]
        for p in params:
            if self._eligible(p, include_linear):
                centralize_gradient_(p.grad, mode)
        return folded

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        restore: list[tuple[dict[str, Any], float]] = []
        try:
            for group in self.param_groups:
                folded = self._whiten_group(group, fold_decay=True)
                if folded:
                    group["weight_decay"] = 0.0
                    restore.append((group, folded))
            self.base.step()
        finally:
            for group, wd in restore:
                group["weight_decay"] = wd
        return loss

