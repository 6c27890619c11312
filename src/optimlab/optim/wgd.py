r"""WGD — Whitened Gradient Descent (paper 003): subtract a mean from conv-weight gradients before
any base optimizer (SGDM, Adam, NAdam, RAdam, ours, …).

Two means, both offered and named (``mode``):

* ``"filter"`` — what the authors' code does for SGD and Adam (what produced the paper's tables
  for those; see optimlab.optim.wgd_published for RAdam and Nadam): for every output filter, subtract the mean of its gradient over dims 1..n
  (in_channels × kernel). This is Gradient Centralization (Yong et al., 2020). After coupled L2
  weight decay has entered the gradient.
* ``"kernel"`` — the paper's Eq. 11: h_{k,x} = ∇_x J(k, x) − μ_x, μ_x = (1/P) Σ_i ∇_x J(i, x),
  the mean over the layer's P kernels (dim 0), subtracted from every kernel.
* ``"none"`` — leave the group alone (e.g. a param group of ConvTranspose weights).

What is centred (``target``): ``"gradient"`` (default; the paper's Algorithm 2: centre g before the
base's moments) or ``"update"`` (run the base step, then centre the step it took, Δθ ← Δθ − μ(Δθ):
the authors' WGD_Adam2, and their WGD_RAdam up to its weight-decay placement — see wgd_published).

Which tensors (decided by shape, as the authors' and GC's code; WGD sees tensors, not modules):
every weight with ``min_dim`` or more dims (default 3: Conv1d [out, in, k], Conv2d and Conv3d
weights), plus 2-D (Linear) weights when ``include_linear=True``. ``min_dim=4`` is the authors'
test ``len(size) > 3`` (Conv2d and Conv3d only, Conv1d left alone); GC centres every tensor with
more than 1 dim (``include_linear=True``). Biases and norm parameters (1-D) are never touched.
ConvTranspose weights are [in, out/groups, k…]: dim 0 is the *input* channel, so "filter" centres
per input channel and "kernel" averages over input channels; put them in a group with
``wgd_mode="none"`` if that is not wanted.

A tensor the transform would zero entirely is refused at construction, naming it: a layer with a
single kernel (P = 1) in kernel mode, or one whose filters have a single entry ([P, 1, 1, 1]) in
filter mode. Complex parameters are refused (as by every optimlab optimizer). The transform is
linear, so it commutes with the maximize sign flip.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from optimlab.optim._common import check_real_params, closure_loss, gather_grads
from optimlab.optim.dispatch import COMPILED, Dispatch
from optimlab.optim.wgd_compiled import compiled_step, kernel_base
from optimlab.optim.wgd_decay import folds_coupled_decay, maximizes
from optimlab.optim.wgd_step import base_path, own_step, plan_group, step_rule

WGD_MODES = ("filter", "kernel", "none")
WGD_TARGETS = ("gradient", "update")
DEFAULT_MIN_DIM = 3


def _check_mode(mode: Any) -> str:
    if not isinstance(mode, str) or mode not in WGD_MODES:
        raise ValueError(
            f"Invalid wgd mode={mode!r}: must be one of {WGD_MODES} "
            "('filter' = the authors' code / Gradient Centralization, 'kernel' = paper Eq. 11)"
        )
    return mode


def _check_target(target: Any) -> str:
    if not isinstance(target, str) or target not in WGD_TARGETS:
        raise ValueError(
            f"Invalid wgd target={target!r}: must be one of {WGD_TARGETS} "
            "('gradient' = centre g before the base step, 'update' = centre the step taken)"
        )
    return target


def _check_min_dim(min_dim: Any) -> int:
    if isinstance(min_dim, bool) or not isinstance(min_dim, int) or min_dim < 2:
        raise ValueError(
            f"Invalid wgd min_dim={min_dim!r}: must be an int >= 2 (3: every conv weight; 4: the authors' code)"
        )
    return min_dim


def centralize_gradient(grad: Tensor, mode: str = "filter") -> Tensor:
    """Return grad minus its WGD mean (a new tensor). Tensors with fewer than 2 dims are returned as is.

    filter: grad − mean over dims 1..n (one mean per output filter, shape [P, 1, ..., 1]);
    kernel: grad − mean over dim 0 (one mean kernel of shape [1, C, kH, kW]); none: a copy.
    """
    _check_mode(mode)
    if grad.dim() < 2 or mode == "none":
        return grad.clone()
    return grad - _wgd_mean(grad, mode)


def _wgd_mean(grad: Tensor, mode: str) -> Tensor:
    if mode == "filter":
        return grad.mean(dim=tuple(range(1, grad.dim())), keepdim=True)
    return grad.mean(dim=0, keepdim=True)


def centralize_gradient_(grad: Tensor, mode: str = "filter") -> Tensor:
    """In-place variant of centralize_gradient (used by WGD.step)."""
    if grad.dim() >= 2 and mode != "none":
        grad.sub_(_wgd_mean(grad, mode))
    return grad


def wgd_eligible(p: Tensor, min_dim: int = DEFAULT_MIN_DIM, include_linear: bool = False) -> bool:
    """Whether WGD centres this tensor: dims >= min_dim, or 2-D with include_linear."""
    return p.dim() >= min_dim or (include_linear and p.dim() == 2)


def _centre_if_eligible(p: Tensor, group: dict[str, Any]) -> None:
    """Centre p.grad in place when the group's WGD settings select this tensor (the fused step's transform)."""
    if p.grad is not None and wgd_eligible(p, group["wgd_min_dim"], group["wgd_include_linear"]):
        centralize_gradient_(p.grad, group["wgd_mode"])


def _check_not_zeroed(param_groups: list[dict[str, Any]], first_index: int = 0) -> None:
    for gi, group in enumerate(param_groups, start=first_index):
        mode = group["wgd_mode"]
        for pi, p in enumerate(group["params"]):
            if not wgd_eligible(p, group["wgd_min_dim"], group["wgd_include_linear"]):
                continue
            where = f"param_groups[{gi}]['params'][{pi}] (shape {tuple(p.shape)})"
            if mode == "kernel" and p.shape[0] == 1:
                raise ValueError(
                    f"WGD mode='kernel' would zero the whole gradient of {where}: a layer with a single "
                    "kernel (P = 1) equals its own mean. Put it in a param group with wgd_mode='none' "
                    "(or 'filter')."
                )
            if mode == "filter" and p.numel() == p.shape[0] and p.numel() > 0:
                raise ValueError(
                    f"WGD mode='filter' would zero the whole gradient of {where}: each filter has a "
                    "single entry. Put it in a param group with wgd_mode='none'."
                )


class WGD(Optimizer):
    r"""Wrap any torch optimizer so that it steps on whitened conv-weight gradients (paper 003).

    .. math::
        \begin{aligned}
        &\textbf{for each step, for each weight } W \text{ with } \ge \text{min\_dim dims (and 2-D if include\_linear):} \\
        &\quad \textit{target = gradient:}\quad g \leftarrow \nabla_W J + \lambda W,\ \ h \leftarrow g - \mu(g),
            \ \text{base step with } h \text{ in place of } \nabla_W J \text{ and } \lambda = 0 \\
        &\quad \textit{target = update:}\quad W' \leftarrow \text{base step (its own decay)},\ \
            W \leftarrow W + (\Delta - \mu(\Delta)),\ \Delta = W' - W \\
        &\quad \mu(x) = \begin{cases}
            \text{mean over dims } 1..n \text{ per output filter} & \text{filter (code, paper's tables)} \\
            \text{mean over the } P \text{ kernels (dim 0)} & \text{kernel (Eq. 11)} \end{cases}
        \end{aligned}

    Conventions: the wrapper shares ``param_groups`` and ``state`` with the base, so lr schedulers,
    ``state_dict``/``load_state_dict`` and ``add_param_group`` work on either; the WGD settings are
    per-group keys (``wgd_mode``, ``wgd_target``, ``wgd_min_dim``, ``wgd_include_linear``). With
    target "gradient" and coupled weight decay, the wrapper folds λθ into the gradients of the
    group's params, sets the base's ``weight_decay`` to 0 for the step and restores it, so the base
    sees exactly ``centralize(±∇ + λθ)`` (the authors' order). Any other decay (decoupled, proximal,
    a user's optimizer: optimlab.optim.wgd_decay decides) is the base's own: the raw gradient is
    centralized and the base applies its decay. ``p.grad`` is modified in place (as Gradient Centralization implementations do). Target
    "update" leaves ``p.grad`` alone and keeps a copy of each centred tensor during the step.

    Own step: on a base whose update optimlab knows (torch's SGD: ``sgd``, ``sgdm``, ``nag``;
    ``sgdm-ema``; ``rsgdm``; torch's Adam/AdamW on torch's fused kernel) WGD runs the base's update
    itself, through the base's public step rule (optimlab.optim.wgd_step), with the same results as the
    wrapped path: per param group ONE path (optimlab.optim.dispatch), reported by ``step_paths()``.
    ``fused=False`` (the ``wgd_fused`` option) always wraps the base's step; ``fused=True`` refuses a
    base it cannot run. When the base itself is built with ``fused=True`` (torch's SGD, Adam or AdamW,
    ``sgdm-ema``, ``rsgdm``), target "gradient" in "filter" or "none" mode takes the ``compiled`` path:
    fold, per-filter mean and update in one pass over all tensors (optimlab.optim.wgd_compiled; same
    update to float rounding).

    References: Gholamalinejad & Khosravi, WGD (paper 003) and github.com/hoseingh69/WGD; Yong et al.,
    "Gradient Centralization", ECCV 2020.

    Args:
        base: the optimizer to wrap (already constructed over the parameters).
        mode: "filter" (default; the authors' code), "kernel" (paper Eq. 11) or "none".
        include_linear: also centralize 2-D weights.
        target: "gradient" (default) or "update".
        min_dim: centre tensors with at least this many dims (default 3: every conv weight).
        fused: None (default) fuses whitening and update for the bases above and wraps any other
            generically; False always runs the generic wrapper; True requires a fusable base.
    """

    def __init__(
        self,
        base: Optimizer,
        mode: str = "filter",
        include_linear: bool = False,
        target: str = "gradient",
        min_dim: int = DEFAULT_MIN_DIM,
        fused: bool | None = None,
    ) -> None:
        if not isinstance(base, Optimizer):
            raise TypeError(f"WGD wraps a torch.optim.Optimizer, got {type(base).__name__}")
        if isinstance(base, WGD):
            raise TypeError("WGD is already applied: do not wrap a WGD optimizer twice")
        if fused not in (None, True, False):
            raise ValueError(f"Invalid wgd fused={fused!r}: must be None (auto), True or False")
        if fused and not kernel_base(base):
            raise ValueError(
                f"WGD fused=True needs a base whose update optimlab knows (torch.optim.SGD, SGDMEMA, RSGDM; "
                f"torch's Adam/AdamW built with fused=True), got {type(base).__name__}; use fused=None or "
                "False to wrap it generically"
            )
        self.base = base
        self._rule = step_rule(base)  # the base's type is fixed: its step rule (or None) is decided once
        self.fused = fused is not False  # False: always the wrapped base.step()
        self._wgd_defaults = {
            "wgd_mode": _check_mode(mode),
            "wgd_include_linear": bool(include_linear),
            "wgd_target": _check_target(target),
            "wgd_min_dim": _check_min_dim(min_dim),
        }
        self._wgd_ready = False
        self.last_dispatch: dict[int, Dispatch] = {}
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
            _check_target(group["wgd_target"])
            _check_min_dim(group["wgd_min_dim"])
        check_real_params(self.param_groups, "WGD")
        _check_not_zeroed(self.param_groups)

    def __repr__(self) -> str:
        return f"WGD(mode={self._wgd_defaults['wgd_mode']!r}, target={self._wgd_defaults['wgd_target']!r}, base={self.base!r})"

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if not self._wgd_ready:  # called by Optimizer.__init__ before sharing
            return super().add_param_group(param_group)
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        param_group = {**param_group, "params": params}
        tentative = {**self._wgd_defaults, **param_group}  # refuse before the base holds the group
        _check_mode(tentative["wgd_mode"])
        _check_target(tentative["wgd_target"])
        _check_min_dim(tentative["wgd_min_dim"])
        check_real_params([tentative], "WGD")
        _check_not_zeroed([tentative], first_index=len(self.param_groups))
        self.base.add_param_group(param_group)
        self._share_base()

    def state_dict(self) -> dict[str, Any]:
        return self.base.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load the base's state; the implementation choice (foreach, fused) stays this optimizer's."""
        impl: list[dict[str, Any]] = [{k: g[k] for k in ("foreach", "fused") if k in g} for g in self.base.param_groups]
        self.base.load_state_dict(state_dict)
        for group, keep in zip(self.base.param_groups, impl):
            group.update(keep)
        self._share_base()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def start_multistep(self) -> None:
        """Forward TM-SGD's switch to the base (no-op for bases without a multi-step phase)."""
        if hasattr(self.base, "start_multistep"):
            self.base.start_multistep()

    def train(self) -> None:
        """Forward schedule-free's train-mode switch to the base (no-op for other bases)."""
        switch = getattr(self.base, "train", None)
        if callable(switch):
            switch()

    def eval(self) -> None:
        """Forward schedule-free's eval-mode switch to the base (no-op for other bases)."""
        switch = getattr(self.base, "eval", None)
        if callable(switch):
            switch()

    def uses_kernel(self) -> bool:
        """Whether the next step runs every group on the compiled single-pass kernel (base built with
        fused=True; see optimlab.optim.compiled)."""
        return all(own and d.path == COMPILED for own, d, _, _ in self._plan().values())

    def uses_fused_step(self) -> bool:
        """Whether the next step is WGD's own (it runs the base's update itself; optimlab.optim.wgd_step),
        rather than the wrapped base.step()."""
        return all(own for own, _, _, _ in self._plan().values())

    def step_paths(self) -> dict[int, Dispatch]:
        """{group index: (path, reason)} of the last step (groups without gradients are absent)."""
        return dict(self.last_dispatch)

    def _plan(self) -> dict[int, tuple[bool, Dispatch, list[Tensor], list[Tensor]]]:
        """Every group: (own step?, path and reason, its params with gradients). When one group is wrapped,
        every group is: base.step() steps them all."""
        rule = self._rule
        plans = {}
        for gi, group in enumerate(self.param_groups):
            params, grads = gather_grads(group, "WGD")
            plans[gi] = (*plan_group(self.base, rule, self.fused, group, params, grads), params, grads)
        wrapped = [gi for gi, (own, _, _, _) in plans.items() if not own]
        if wrapped and len(wrapped) < len(plans):
            why = f"wrapped: group {wrapped[0]} is ({plans[wrapped[0]][1].reason})"
            for gi, (own, _, params, grads) in plans.items():
                if own:
                    path = base_path(self.base, self.param_groups[gi], params)
                    plans[gi] = (False, Dispatch(path, why), params, grads)
        return plans

    @staticmethod
    def _targets(group: dict[str, Any], target: str) -> list[Tensor]:
        if group["wgd_target"] != target or group["wgd_mode"] == "none":
            return []
        return [
            p
            for p in group["params"]
            if p.grad is not None and wgd_eligible(p, group["wgd_min_dim"], group["wgd_include_linear"])
        ]

    @torch.no_grad()
    def _whiten_group(self, group: dict[str, Any], fold_decay: bool) -> float:
        params = [p for p in group["params"] if p.grad is not None]
        for p in params:
            if p.grad.is_sparse:
                raise RuntimeError(f"WGD does not support sparse gradients (parameter of shape {tuple(p.shape)})")
        if group["wgd_target"] != "gradient" or group["wgd_mode"] == "none":
            return 0.0
        wd = float(group.get("weight_decay", 0.0) or 0.0)
        folded = 0.0
        if fold_decay and wd != 0.0 and params and folds_coupled_decay(self.base, group):
            # base negates the gradient under maximize; fold −λθ then so that it sees −∇ + λθ
            sign = -1.0 if maximizes(self.base, group) else 1.0
            torch._foreach_add_([p.grad for p in params], params, alpha=sign * wd)
            folded = wd
        for p in self._targets(group, "gradient"):
            if p.grad is not None:  # _targets yields parameters with a gradient
                centralize_gradient_(p.grad, group["wgd_mode"])
        return folded

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure_loss(closure)
        plans = self._plan()  # THE decision of this step, per group
        self.last_dispatch = {gi: d for gi, (_, d, params, _) in plans.items() if params}
        if all(own for own, _, _, _ in plans.values()):
            rule = self._rule
            assert rule is not None  # a group runs WGD's own step only through a step rule
            for gi, (_, d, params, grads) in plans.items():
                if not params:
                    continue
                if d.path == COMPILED:
                    compiled_step(self.base, self.param_groups[gi], params, grads)
                else:
                    own_step(self.base, rule, self.param_groups[gi], params, grads, d.path, _centre_if_eligible)
            return loss
        restore: list[tuple[dict[str, Any], float]] = []
        before: list[tuple[Tensor, Tensor, str]] = []
        try:
            for group in self.param_groups:
                folded = self._whiten_group(group, fold_decay=True)
                if folded:
                    group["weight_decay"] = 0.0
                    restore.append((group, folded))
                before.extend((p, p.detach().clone(), group["wgd_mode"]) for p in self._targets(group, "update"))
            self.base.step()
        finally:
            for group, wd in restore:
                group["weight_decay"] = wd
        for p, old, mode in before:  # θ ← θ' − μ(θ' − θ): the step taken, centred
            p.sub_(_wgd_mean(p.detach() - old, mode))
        # an optimlab base reports the path its own dispatch took: that, not torch's flags, is the path
        taken = getattr(self.base, "last_dispatch", {})
        for gi, d in taken.items():
            if gi in self.last_dispatch:
                self.last_dispatch[gi] = Dispatch(d.path, f"{self.last_dispatch[gi].reason}; base: {d.reason}")
        return loss
