"""One place decides how an optimizer steps: per param group, exactly one path, with a reason.

Like torch's own optimizers (``_default_to_fused_or_foreach``), every step of optimlab's optimizers
picks, for each param group, ONE of four paths and keeps the reason it can report
(``optimizer.step_paths()`` -> ``{group index: Dispatch(path, reason)}``):

* ``compiled``    optimlab's C++ single-pass kernel (optimlab.optim.compiled), asked for with
                  ``fused=True`` on an optimizer that has one, when it is built and takes every tensor;
* ``torch-fused`` torch's own fused kernel (torch.optim.sgd.sgd / adam with ``fused=True``), by default
                  (or ``fused=True`` where the update IS torch's kernel's) when it takes every tensor;
* ``foreach``     torch's multi-tensor ops (``foreach=True``; by default on an accelerator, and on CPU
                  when every tensor is small);
* ``per-tensor``  a loop over the tensors (``foreach=False``; the CPU default for groups holding a large
                  tensor, whose passes run while it is in cache).

A group is never split across paths: when one tensor cannot take a kernel (its dtype, its layout) the
whole group takes the most general path that handles all of them (foreach or per-tensor), whose numbers
agree with the kernels' to rounding (the path-equality tests, tests/step_path_cases.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from optimlab.optim import compiled
from optimlab.optim._common import (
    Check,
    ParamsT,
    check_param_dtypes,
    closure_loss,
    effective_grads,
    gather_grads,
    validate_group,
)

PER_TENSOR, FOREACH, TORCH_FUSED, COMPILED = "per-tensor", "foreach", "torch-fused", "compiled"
PATHS = (PER_TENSOR, FOREACH, TORCH_FUSED, COMPILED)

# On CPU, a group whose tensors are all below this many elements takes the multi-tensor (foreach) path
# by default, and one holding a larger tensor the per-tensor loop: for small tensors the per-op Python
# cost dominates, which foreach pays once per list; a larger tensor gains from the loop running all of a
# step's passes over it while it is still in cache. Measured on the 62-, 324- and 3,600-tensor layouts
# of benchmarks/bench_optimizers.py (docs/speed.md).
SMALL_TENSOR_NUMEL = 32768


class Dispatch(NamedTuple):
    path: str  # one of PATHS
    reason: str  # why, in words (what step_paths() reports)


def use_foreach(foreach: bool | None, params: list[Tensor]) -> bool:
    """None picks the multi-tensor path when every tensor is on an accelerator (as torch does)."""
    if foreach is not None:
        return bool(foreach)
    return len(params) > 0 and all(p.device.type != "cpu" for p in params)


def split_paths(
    foreach: bool | None, params: list[Tensor], grads: list[Tensor]
) -> list[tuple[bool, list[Tensor], list[Tensor]]]:
    """[(small?, params, grads)]: the tensors by size, in order: under SMALL_TENSOR_NUMEL elements (or on an
    accelerator) first, then the large CPU ones. Not a choice of path: WGD batches the centring of the
    small gradients with it (one stacked mean per shape) and centres large ones in place (wgd_step).
    An explicit foreach, or a group all on an accelerator, is one batch."""
    if foreach is not None or use_foreach(None, params):
        return [(use_foreach(foreach, params), params, grads)]
    small = [p.numel() < SMALL_TENSOR_NUMEL or not p.is_cpu for p in params]  # numel first: the cheap test
    out = []
    for flag in (True, False):
        ps = [p for p, s in zip(params, small) if s == flag]
        if ps:
            out.append((flag, ps, [g for g, s in zip(grads, small) if s == flag]))
    return out


def uses_torch_fused(group: dict[str, Any]) -> bool:
    """The default (fused and foreach both None, or fused=True whose compiled kernel is missing) may take
    torch's fused kernel; an explicit foreach or fused=False does not."""
    return group.get("foreach") is None and group.get("fused") is not False


def general_path(foreach: bool | None, params: list[Tensor]) -> Dispatch:
    """The path for a group no kernel takes: foreach or per-tensor, by the user's flag or the default."""
    if foreach is not None:
        return Dispatch(FOREACH if foreach else PER_TENSOR, f"foreach={foreach}")
    if use_foreach(None, params):
        return Dispatch(FOREACH, "default on an accelerator: multi-tensor ops")
    if all(p.numel() < SMALL_TENSOR_NUMEL for p in params):
        return Dispatch(FOREACH, f"default on CPU, every tensor under {SMALL_TENSOR_NUMEL} elements")
    return Dispatch(PER_TENSOR, f"default on CPU with a tensor of {SMALL_TENSOR_NUMEL}+ elements (cache reuse)")


# A kernel's offer for a group: None when it takes the group, else why not (a reason to report)
Offer = Callable[[dict[str, Any], list[Tensor], list[Tensor]], "str | None"]


def choose(
    group: dict[str, Any],
    params: list[Tensor],
    grads: list[Tensor],
    compiled_offer: Offer | None,
    torch_fused_offer: Offer | None,
) -> Dispatch:
    """THE decision: compiled if asked for (fused=True) and it takes the group, else torch's fused kernel on
    the default path if it takes the group, else foreach or per-tensor (general_path). An offer of None
    means the optimizer has no such kernel; the reason says which kernel declined and why."""
    why: list[str] = []
    if group.get("fused") and compiled_offer is not None:
        if compiled.load() is None:
            why.append(f"compiled kernel unavailable ({compiled.error() or 'not built'})")
        else:
            refusal = compiled_offer(group, params, grads)
            if refusal is None:
                return Dispatch(COMPILED, "fused=True: optimlab's compiled kernel")
            why.append(f"compiled declined: {refusal}")
    if torch_fused_offer is not None and uses_torch_fused(group):
        refusal = torch_fused_offer(group, params, grads)
        if refusal is None:
            how = "fused=True" if group.get("fused") else "default"
            return Dispatch(TORCH_FUSED, "; ".join([f"{how}: torch's fused kernel takes the group", *why]))
        why.append(f"torch-fused declined: {refusal}")
    general = general_path(group.get("foreach"), params)
    return general if not why else Dispatch(general.path, f"{general.reason}; {'; '.join(why)}")


def torch_fused_refusal(params: list[Tensor], grads: list[Tensor], ready: Callable[..., bool]) -> str | None:
    """None when `ready(param, grad)` holds for every tensor, else which tensor fails (a reason)."""
    for i, (p, g) in enumerate(zip(params, grads)):
        if not ready(p, g):
            return f"tensor {i} ({p.dtype}, shape {tuple(p.shape)}, strides {p.stride()}/{g.stride()})"
    return None


class PaperOptimizer(torch.optim.Optimizer):
    """What optimlab's own optimizers share: validated hyperparameters (`_checks`, also on add_param_group),
    float-only params, and a step() that evaluates the closure, gathers each group's gradients (skipping
    params without one), picks the group's path (choose) and runs it (update).

    The protocol a subclass implements (and WGD uses, for the bases it runs itself):

    * ``update(group, params, grads, path)`` (public): the group's step on raw gradients on that path;
      it applies the maximize sign and the group's ``weight_decay`` itself. Built here from the hooks:
    * ``_step_group(group, params, grads, foreach)``: per-tensor or foreach, on effective gradients;
    * ``torch_fused_refusal`` / ``_step_torch_fused`` and ``compiled_refusal`` / ``_step_compiled``:
      the kernels an optimizer has (named in ``paths``); a refusal is None when the kernel takes the
      group, else the reason it does not.
    """

    _checks: dict[str, Check] = {}
    _coupled_decay = True  # False: _step_group gets ±∇ without λθ and places weight decay itself
    paths: tuple[str, ...] = (PER_TENSOR, FOREACH)  # the paths this optimizer's update has

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        validate_group(defaults, self._checks)
        self.last_dispatch: dict[int, Dispatch] = {}
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        validate_group(param_group, self._checks)
        super().add_param_group(param_group)
        check_param_dtypes(self.param_groups[-1:], type(self).__name__)
        compiled.check_fused_group(self.param_groups[-1], type(self).__name__, compiled=COMPILED in self.paths)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load state and hyperparameters; the implementation choice (foreach, fused) stays this optimizer's,
        so a checkpoint moves between fused and unfused optimizers in either direction."""
        impl: list[dict[str, Any]] = [{k: g[k] for k in ("foreach", "fused") if k in g} for g in self.param_groups]
        super().load_state_dict(state_dict)
        for group, keep in zip(self.param_groups, impl):
            group.update(keep)

    def step_paths(self) -> dict[int, Dispatch]:
        """{group index: (path, reason)} of the last step (groups without gradients are absent)."""
        return dict(self.last_dispatch)

    def choose_path(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> Dispatch:
        if PER_TENSOR in self.paths and FOREACH not in self.paths:
            return Dispatch(PER_TENSOR, f"{type(self).__name__} has only a per-tensor loop")
        return choose(
            group,
            params,
            grads,
            self.compiled_refusal if COMPILED in self.paths else None,
            self.torch_fused_refusal if TORCH_FUSED in self.paths else None,
        )

    def torch_fused_refusal(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> str | None:
        return "no torch-fused path"

    def compiled_refusal(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> str | None:
        return "no compiled path"

    def update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], path: str) -> None:
        """The group's step on `path` with raw gradients `grads` (maximize and group['weight_decay'] applied here)."""
        if path == COMPILED:
            self._step_compiled(group, params, grads)
        elif path == TORCH_FUSED:
            self._step_torch_fused(group, params, grads)
        else:
            foreach = path == FOREACH
            wd = group["weight_decay"] if self._coupled_decay else 0.0
            self._step_group(group, params, effective_grads(params, grads, wd, group["maximize"], foreach), foreach)

    def _step_group(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], foreach: bool) -> None:
        raise NotImplementedError

    def _step_torch_fused(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no torch-fused path")

    def _step_compiled(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no compiled path")

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure_loss(closure)
        self.last_dispatch = {}
        for gi, group in enumerate(self.param_groups):
            params, grads = gather_grads(group, type(self).__name__)
            if not params:
                continue
            choice = self.last_dispatch[gi] = self.choose_path(group, params, grads)
            self.update(group, params, grads, choice.path)
        return loss
