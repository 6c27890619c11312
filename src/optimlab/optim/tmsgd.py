r"""TM-SGD and TM-SGD-M (paper 004): SGD whose iteration is the Taylor multi-step rule

    W_{k+1} = 1.5 W_k − W_{k−1} + 0.5 W_{k−2} − ε d_k,

with d_k the gradient (TM-SGD) or torch's heavy-ball momentum buffer (TM-SGD-M). In displacement
form, v_k = W_k − W_{k−1}:  v_{k+1} = 0.5 v_k − 0.5 v_{k−1} − ε d_k,  W_{k+1} = W_k + v_{k+1}.

The paper reports early instability of the multi-step rule, so training starts with plain SGD
(v_{k+1} = −ε d_k) and switches at a "switch epoch". The displacement history (v_k, v_{k−1}) is
recorded during the SGD phase too, so the first multi-step step uses the real W_{k−1}, W_{k−2}.
Short history: a displacement that does not exist yet is 0, i.e. W_{−1} = W_{−2} = W_0 (start from
rest). Switching at step 0 therefore makes step 0 a plain SGD step and step 1 v_2 = 0.5 v_1 − ε d_1.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from optimlab.optim import compiled
from optimlab.optim._common import (
    ParamsT,
    check_lr,
    check_nonnegative,
    check_unit_interval,
    effective_grads,
    heavy_ball_,
    pick,
    torch_fused_ready,
    torch_fused_sgd,
)
from optimlab.optim.dispatch import (
    COMPILED,
    FOREACH,
    PER_TENSOR,
    SMALL_TENSOR_NUMEL,
    TORCH_FUSED,
    PaperOptimizer,
)


def _check_switch_step(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"Invalid {name}={value!r}: must be None or an int >= 0")
    return value


# Why units: the literal v-update needs a pass that rescales v_{k-1} (mul_) before the two adds,
# i.e. four passes over memory per step against torch SGD-momentum's three. Storing each
# displacement as unit·buffer lets the rescale ride on the alphas of the adds (three passes; two
# on the default path, see below). Units halve every other step; once tiny, the buffer is folded
# back to unit 1 (one pass, every ~40 steps).
_MIN_UNIT = {torch.float16: 2.0**-10}
_MIN_UNIT_DEFAULT = 2.0**-30


def _min_unit(dtype: torch.dtype) -> float:
    return _MIN_UNIT.get(dtype, _MIN_UNIT_DEFAULT)


def tmsgd_update_(
    param: Tensor,
    d: Tensor,
    buf_k: Tensor,
    buf_km1: Tensor,
    unit_k: float,
    unit_km1: float,
    lr: float,
    multistep: bool,
) -> float:
    """One TM-SGD step on one tensor, in place; returns the unit of the new displacement.

    Displacements are stored as v_k = unit_k·buf_k and v_{k−1} = unit_km1·buf_km1. `d` is the
    descent direction (gradient, or momentum buffer). v_{k+1} is written into `buf_km1` (the caller
    swaps the two buffers afterwards):

        SGD phase:  buf ← d,                                 unit −lr      (v_{k+1} = −lr·d)
        multi-step: buf ← buf_km1 − (u_k/u_{k−1}) buf_k + (2lr/u_{k−1}) d,  unit −u_{k−1}/2
                    (v_{k+1} = 0.5 v_k − 0.5 v_{k−1} − lr·d)

    then param ← param + unit·buf.
    """
    if not multistep:
        if lr == 0.0:
            buf_km1.zero_()
            return 1.0
        buf_km1.copy_(d)
        param.add_(buf_km1, alpha=-lr)
        return -lr
    buf_km1.add_(buf_k, alpha=-unit_k / unit_km1).add_(d, alpha=2.0 * lr / unit_km1)
    unit = -0.5 * unit_km1
    param.add_(buf_km1, alpha=unit)
    if abs(unit) < _min_unit(param.dtype):
        buf_km1.mul_(unit)
        unit = 1.0
    return unit


def tmsgd_foreach_update_(
    params: list[Tensor],
    ds: list[Tensor],
    bufs_k: list[Tensor],
    bufs_km1: list[Tensor],
    unit_k: float,
    unit_km1: float,
    lr: float,
    multistep: bool,
) -> float:
    """tmsgd_update_ for tensors that share their units, with torch._foreach_* kernels."""
    if not multistep:
        if lr == 0.0:
            torch._foreach_zero_(bufs_km1)
            return 1.0
        torch._foreach_copy_(bufs_km1, ds)
        torch._foreach_add_(params, bufs_km1, alpha=-lr)
        return -lr
    torch._foreach_add_(bufs_km1, bufs_k, alpha=-unit_k / unit_km1)
    torch._foreach_add_(bufs_km1, ds, alpha=2.0 * lr / unit_km1)
    unit = -0.5 * unit_km1
    torch._foreach_add_(params, bufs_km1, alpha=unit)
    if abs(unit) < min(_min_unit(d) for d in {p.dtype for p in params}):
        torch._foreach_mul_(bufs_km1, unit)
        unit = 1.0
    return unit


# The default multi-step path (foreach None, fused not False) takes two passes instead of three:
#   1. buf_km1 ← buf_km1 − (u_k/u_{k−1}) buf_k          (one multi-tensor add, 12 bytes per float32 param)
#   2. torch's fused SGD kernel, which computes per element  B ← μB + (1 − τ)G;  X ← X − γB,  with
#      X = θ, G = d, B = buf_km1, μ = 1, 1 − τ = 2lr/u_{k−1}, γ = −unit (20 bytes):
#      buf_km1 ← buf_km1 + (2lr/u_{k−1}) d  and  θ ← θ + unit·buf_km1  in one pass.
# 32 bytes a step instead of 36 (the same arithmetic, rounded by the kernel). Against torch's foreach
# SGD(momentum) step, 1/2 threads, two interleaved runs on the shared 2-core machine: ResNet18
# 0.98/0.96 and 1.09/1.15 (the three-pass path 1.06/1.08 and 1.14/1.17), the 324-tensor stack
# 0.93/0.93 and 1.03/1.05 (0.99/1.06 and 0.97/1.12): level with foreach within this machine's noise,
# and mostly ahead of three passes. Small CPU tensors keep the multi-tensor passes: with 3,600 of
# them the kernel was 0.93/1.15, the passes 0.94/0.96. The kernel walks memory in order, so θ, d and
# buf_km1 must be laid out alike (_kernel_ready: contiguous; on CPU the kernel also measured 3× slower on
# channels_last tensors). So the torch-fused path of a group runs pass 2 on the kernel for the tensors it
# addresses well and as the multi-tensor add for the others: the same two-pass update (equal to the
# per-tensor path to rounding, tests/test_tmsgd_kernel.py), one path.
def _kernel_ready(param: Tensor, d: Tensor, buf_km1: Tensor) -> bool:
    """(X, G, B) = (θ, d, buf_km1) fit torch's fused SGD kernel (torch_fused_ready), all contiguous."""
    return param.is_contiguous() and torch_fused_ready(param, d) and buf_km1.is_contiguous()


def tmsgd_kernel_multistep_(
    params: list[Tensor],
    ds: list[Tensor],
    bufs_k: list[Tensor],
    bufs_km1: list[Tensor],
    unit_k: float,
    unit_km1: float,
    lr: float,
) -> float:
    """tmsgd_foreach_update_'s multi-step branch in two passes, the second on torch's fused SGD kernel (above)."""
    torch._foreach_add_(bufs_km1, bufs_k, alpha=-unit_k / unit_km1)
    unit = -0.5 * unit_km1
    torch_fused_sgd(
        params,
        ds,
        list(bufs_km1),  # real buffers: the kernel must not take this for its first step
        lr=-unit,
        momentum=1.0,
        dampening=1.0 - 2.0 * lr / unit_km1,
    )
    if abs(unit) < min(_min_unit(d) for d in {p.dtype for p in params}):
        torch._foreach_mul_(bufs_km1, unit)
        unit = 1.0
    return unit


class TMSGD(PaperOptimizer):
    r"""TM-SGD (momentum = 0) and TM-SGD-M (momentum > 0), paper 004.

    .. math::
        \begin{aligned}
        &\textbf{input}: \varepsilon \text{ (lr)}, \mu \text{ (momentum)}, \lambda \text{ (weight decay)},
            k_s \text{ (switch step)};\quad v_0 = v_{-1} = 0 \\
        &\textbf{for}\ k = 0, 1, \ldots \\
        &\quad g_k \leftarrow \pm\nabla f_k(W_k) + \lambda W_k \\
        &\quad d_k \leftarrow g_k \ \text{if}\ \mu = 0 \ \text{else}\ b_k = \mu b_{k-1} + g_k\ (b_0 = g_0) \\
        &\quad v_{k+1} \leftarrow \begin{cases} -\varepsilon d_k & k < k_s \\
            \tfrac12 v_k - \tfrac12 v_{k-1} - \varepsilon d_k & k \ge k_s \end{cases} \\
        &\quad W_{k+1} \leftarrow W_k + v_{k+1}
            \quad(= 1.5W_k - W_{k-1} + 0.5W_{k-2} - \varepsilon d_k \text{ after the switch})
        \end{aligned}

    Switching: ``switch_step=k_s`` switches automatically when a parameter has taken k_s steps
    (0-based count of earlier steps); ``switch_step=None`` keeps SGD until ``start_multistep()``
    is called (the harness calls it at the paper's switch epoch). Both are per param group.

    Conventions: state holds the displacement history as ``v_prev``·``v_prev_unit`` = v_k and
    ``v_prev2``·``v_prev2_unit`` = v_{k−1} (scaled storage saves one pass over memory per step;
    ``displacements(p)`` returns the plain values), ``step``, and with momentum ``momentum_buffer``
    (torch's heavy ball: first buffer = g, no dampening). Short history: a displacement that does
    not exist yet is 0, i.e. W_{−1} = W_{−2} = W_0 (start from rest), so switching at step 0 or 1
    is defined. Weight decay is coupled L2 added after the maximize sign flip. Before the switch the
    steps are bit-identical to torch.optim.SGD with the same lr/momentum/weight_decay.
    State memory: two buffers per parameter (three with momentum).

    Args:
        params: iterable of parameters or param groups.
        lr: learning rate ε (default 0.1, paper 004's CIFAR setting).
        momentum: heavy-ball μ in [0, 1); 0 = TM-SGD, > 0 = TM-SGD-M.
        weight_decay: coupled L2 coefficient λ ≥ 0.
        switch_step: first step index (0-based) that uses the multi-step rule; None = SGD until
            ``start_multistep()``.
        maximize: maximize the objective instead of minimizing.
        foreach: use the multi-tensor path (None: on an accelerator; on CPU for tensors under
            ``SMALL_TENSOR_NUMEL`` elements, the per-tensor loop for larger ones). With None (the
            default) the multi-step update of float32/float64 contiguous tensors takes two passes, the
            second on torch's fused SGD kernel (the buffer update and the parameter step in one):
            32 bytes per float32 parameter instead of 36, the same numbers up to rounding.
            foreach=True/False keep their three passes (bit-equal to each other).
        fused: True: one C++ pass over all tensors on CPU (optimlab.optim.compiled; built at first
            use, falls back to the default path with one warning when no compiler is present);
            False: no fused kernel at all (neither optimlab's nor torch's).
    """

    paths = (PER_TENSOR, FOREACH, TORCH_FUSED, COMPILED)
    _checks = {
        "lr": check_lr,
        "momentum": check_unit_interval,
        "weight_decay": check_nonnegative,
        "switch_step": _check_switch_step,
    }

    def __init__(
        self,
        params: ParamsT,
        lr: float = 0.1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        switch_step: int | None = None,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            switch_step=switch_step,
            multistep=False,
            maximize=bool(maximize),
            foreach=foreach,
            fused=fused,
        )
        super().__init__(params, defaults)

    def start_multistep(self) -> None:
        """Use the Taylor multi-step rule from the next step on, in every param group."""
        for group in self.param_groups:
            group["multistep"] = True

    @property
    def is_multistep(self) -> bool:
        """True when every group has switched (by start_multistep() or by reaching switch_step)."""
        return all(self._group_multistep(g) for g in self.param_groups)

    def _group_multistep(self, group: dict[str, Any]) -> bool:
        if group["multistep"]:
            return True
        k_s = group["switch_step"]
        if k_s is None:
            return False
        steps = [self.state[p]["step"] for p in group["params"] if self.state.get(p)]
        return bool(steps) and min(steps) >= k_s

    def displacements(self, p: Tensor) -> tuple[Tensor, Tensor]:
        """(v_k, v_{k−1}) = (W_k − W_{k−1}, W_{k−1} − W_{k−2}) of parameter `p`, as new tensors."""
        state = self.state[p]
        if not state:
            return torch.zeros_like(p), torch.zeros_like(p)
        return state["v_prev"] * state["v_prev_unit"], state["v_prev2"] * state["v_prev2_unit"]

    def _init_state(self, p: Tensor, mu: float) -> dict[str, Any]:
        state: dict[str, Any] = self.state[p]
        if not state:
            state["step"] = 0
            state["v_prev"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["v_prev2"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["v_prev_unit"] = state["v_prev2_unit"] = 1.0
            if mu != 0.0:
                state["momentum_buffer"] = None
        return state

    @staticmethod
    def _rotate(state: dict[str, Any], unit: float) -> None:
        """v_prev2 now holds v_{k+1} with `unit`: rotate the history and count the step."""
        state["v_prev"], state["v_prev2"] = state["v_prev2"], state["v_prev"]
        state["v_prev2_unit"], state["v_prev_unit"] = state["v_prev_unit"], unit
        state["step"] += 1

    def _phase(self, group: dict[str, Any], state: dict[str, Any]) -> bool:
        """Whether this parameter's next step is a multi-step one."""
        k_s = group["switch_step"]
        return group["multistep"] or (k_s is not None and state.get("step", 0) >= k_s)

    def compiled_refusal(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> str | None:
        for i, (p, g) in enumerate(zip(params, grads)):
            if not compiled.kernel_ready(p, g):
                return f"tensor {i} (shape {tuple(p.shape)}) or its gradient is not contiguous"
        return None

    def torch_fused_refusal(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> str | None:
        # torch's kernel runs pass 2 of the multi-step update, for contiguous float32/float64 tensors (on CPU
        # the large ones: small CPU tensors measured faster as multi-tensor passes)
        if not any(self._phase(group, self.state[p]) for p in params):
            return "SGD phase (the kernel runs the multi-step update)"
        if not any(
            (not p.is_cpu or p.numel() >= SMALL_TENSOR_NUMEL) and _kernel_ready(p, g, p) for p, g in zip(params, grads)
        ):
            return f"no contiguous float32/float64 tensor (of {SMALL_TENSOR_NUMEL}+ elements on CPU)"
        return None

    def _step_compiled(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        mu, lr = group["momentum"], group["lr"]
        buckets: dict[tuple[bool, float, float, int], list[int]] = {}
        for i, p in enumerate(params):
            state = self._init_state(p, mu)
            mbuf = state.get("momentum_buffer")
            mode = 0 if mu == 0.0 else (1 if mbuf is not None else 2)
            if mode == 2:
                state["momentum_buffer"] = torch.zeros_like(p)  # the kernel starts it at g
            key = (self._phase(group, state), state["v_prev_unit"], state["v_prev2_unit"], mode)
            buckets.setdefault(key, []).append(i)
        for (flag, u1, u2, mode), idx in buckets.items():
            ps = pick(params, idx)
            states = [self.state[p] for p in ps]
            v1 = [st["v_prev"] for st in states]
            v2 = [st["v_prev2"] for st in states]
            mb = [st["momentum_buffer"] for st in states] if mode else None
            common = dict(lr=lr, weight_decay=group["weight_decay"], maximize=group["maximize"], momentum=mu)
            if flag:
                unit = -0.5 * u2
                coef = compiled.coefficients(**common, mom_mode=mode, c1=-u1 / u2, c2=2.0 * lr / u2, unit=unit)
                compiled.run(compiled.TM_MULTI, ps, pick(grads, idx), coef, v2, v1, mb)
                if abs(unit) < min(_min_unit(p.dtype) for p in ps):
                    torch._foreach_mul_(v2, unit)
                    unit = 1.0
            else:
                unit = -lr if lr != 0.0 else 1.0
                coef = compiled.coefficients(**common, mom_mode=mode)
                compiled.run(compiled.TMSGD, ps, pick(grads, idx), coef, v2, v1, mb)
            for st in states:
                self._rotate(st, unit)

    def _step_torch_fused(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> None:
        ds = effective_grads(params, grads, group["weight_decay"], group["maximize"], foreach=True)
        self._step(group, params, ds, foreach=True, kernel=True)

    def _step_group(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], foreach: bool) -> None:
        self._step(group, params, grads, foreach, kernel=False)

    def _step(
        self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], foreach: bool, kernel: bool
    ) -> None:
        # Python work per parameter is kept to one state lookup and a few list appends: with thousands of
        # small tensors it is what the step costs (benchmarks/bench_optimizers.py, 3,600-tensor layout)
        mu = group["momentum"]
        states = [self._init_state(p, mu) for p in params]
        v1 = [st["v_prev"] for st in states]
        v2 = [st["v_prev2"] for st in states]
        if mu != 0.0:
            grads = heavy_ball_(states, grads, mu, 0.0, foreach)
        # bucket by (phase, units): normally one bucket, all params having taken the same steps
        buckets: dict[tuple[bool, float, float], list[int]] = {}
        forced, k_s = group["multistep"], group["switch_step"]
        for i, st in enumerate(states):  # _phase, inlined: it runs per parameter and step
            multi = forced or (k_s is not None and st["step"] >= k_s)
            buckets.setdefault((multi, st["v_prev_unit"], st["v_prev2_unit"]), []).append(i)
        lr = group["lr"]
        for (flag, u1, u2), idx in buckets.items():
            if flag and kernel:  # the torch-fused path: pass 2 on torch's kernel where it serves (above)
                ready = [
                    i
                    for i in idx
                    if _kernel_ready(params[i], grads[i], v2[i])
                    and (not params[i].is_cpu or params[i].numel() >= SMALL_TENSOR_NUMEL)
                ]
                if ready:
                    unit = tmsgd_kernel_multistep_(
                        pick(params, ready), pick(grads, ready), pick(v1, ready), pick(v2, ready), u1, u2, lr
                    )
                    for i in ready:
                        self._rotate(states[i], unit)
                    if len(ready) == len(idx):
                        continue
                    taken = set(ready)
                    idx = [i for i in idx if i not in taken]  # the others: the same pass 2 as a multi-tensor add
            if foreach:
                unit = tmsgd_foreach_update_(
                    pick(params, idx), pick(grads, idx), pick(v1, idx), pick(v2, idx), u1, u2, lr, flag
                )
                units = [unit] * len(idx)
            else:
                units = [tmsgd_update_(params[i], grads[i], v1[i], v2[i], u1, u2, lr, flag) for i in idx]
            for i, unit in zip(idx, units):  # v_prev2 now holds v_{k+1}: rotate the history
                self._rotate(states[i], unit)


def start_multistep(optimizer: Optimizer) -> bool:
    """Switch `optimizer` (a TMSGD, or a WGD or Lookahead wrapping one) to the multi-step rule.

    Returns True when it had a multi-step phase to start; a no-op returning False otherwise, so the
    harness can call it at the switch epoch whatever the optimizer.
    """
    target: Any = optimizer
    for _ in range(3):  # unwrap lookahead(wgd(base)): Lookahead keeps it in .optimizer, WGD in .base
        if isinstance(target, TMSGD):
            target.start_multistep()
            return True
        target = getattr(target, "base", None) or getattr(target, "optimizer", None)
        if target is None:
            break
    return False
