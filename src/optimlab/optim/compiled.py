"""optimlab's compiled single-pass CPU kernel behind ``fused=True`` (csrc/fused_steps.cpp), built at first
use: the one seam every ``compiled`` step path goes through (optimlab.optim.dispatch).

``fused=True`` on ``TMSGD`` (and WGD over torch's SGD or Adam/AdamW, ``sgdm-ema`` or ``rsgdm`` with
``fused=True`` on the base) runs one C++ loop over every element of every tensor of a
param group: the gradient, the parameter and the optimizer state are read once and written once
(WGD's per-filter mean is taken over a row while it is in cache). The loop runs on torch's
intra-op threads, so ``torch.set_num_threads`` applies.

Build: ``torch.utils.cpp_extension.load`` compiles the one source file with the system's C++
compiler (g++ or clang, and ninja) the first time a fused step runs in a process, and caches the
library in torch's extension directory (``TORCH_EXTENSIONS_DIR``, default
``~/.cache/torch_extensions``); later processes load the cached library. The name carries a hash of
the source, so an edited source never loads a stale build. ``build_seconds()`` reports the time the
build (or the cached load) took in this process.

Fallback: when the build fails (no compiler, no ninja, a compile error) or ``OPTIMLAB_NO_FUSED=1``
is set, ONE RuntimeWarning says why and every fused step runs the default path instead (the same
update, slower; torch's own fused kernel where the update maps onto it).

``SGDMEMA`` and ``RSGDM`` need no build: their update is torch's fused SGD kernel's (see
optim/sgdm_ema.py, rsgdm.py), which their default step and ``fused=True`` both run.

Coefficients (lr, momentum, …) are runtime arguments: a scheduler changing them rebuilds nothing.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch import Tensor

SOURCE = Path(__file__).with_name("csrc") / "fused_steps.cpp"
DTYPES = (torch.float32, torch.float64)

# kinds of update (the Kind enum of csrc/fused_steps.cpp)
SGD, EMA, TMSGD, TM_MULTI, ADAM = range(5)


class _BuildState(TypedDict):
    tried: bool
    module: Any  # the loaded extension module: torch's loader gives it no static type
    error: str | None
    seconds: float | None


_state: _BuildState = {"tried": False, "module": None, "error": None, "seconds": None}


# -fno-math-errno: sqrt without errno, so Adam's loop vectorizes (the results are the same)
CFLAGS = ["-O3", "-fopenmp", "-fno-math-errno"]


def _extension_name() -> str:
    digest = hashlib.sha1(SOURCE.read_bytes() + " ".join(CFLAGS).encode()).hexdigest()[:12]
    return f"optimlab_fused_steps_{digest}"


def _build() -> Any:
    if os.environ.get("OPTIMLAB_NO_FUSED", "") not in ("", "0"):
        raise RuntimeError("OPTIMLAB_NO_FUSED is set")
    from torch.utils.cpp_extension import get_default_build_root
    from torch.utils.cpp_extension import load as load_extension

    name, t0 = _extension_name(), time.perf_counter()
    # a build folder of this source's hash with a library in it: load from torch's cache, silently
    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root())
    fresh = not any(root.glob(f"{name}/{name}*.so")) and not any(root.glob(f"*/{name}/{name}*.so"))
    if fresh:  # the first fused=True step stalls for the compiler: say why while it builds
        print("optimlab: building the compiled kernel (first use on this machine, ~30-60 s)...", file=sys.stderr)
    module = load_extension(name=name, sources=[str(SOURCE)], extra_cflags=CFLAGS, extra_ldflags=["-fopenmp"])
    if fresh:
        print(f"optimlab: compiled kernel built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return module


def load() -> Any | None:
    """The compiled kernel module, building it on the first call; None (after one warning) if it cannot be built."""
    if not _state["tried"]:
        _state["tried"] = True
        t0 = time.perf_counter()
        try:
            _state["module"] = _build()
        except Exception as e:  # no compiler / ninja, compile or link error: fall back, say so once
            lines = str(e).strip().splitlines() or [""]
            _state["error"] = f"{type(e).__name__}: " + next((x for x in lines if "error" in x), lines[-1]).strip()
            warnings.warn(
                f"optimlab: the fused CPU kernel could not be built ({_state['error']}); fused=True steps run "
                "the default path instead (same update, slower). It needs a C++ compiler (g++ or clang) "
                "and ninja; set OPTIMLAB_NO_FUSED=1 to skip the build.",
                RuntimeWarning,
                stacklevel=2,
            )
        _state["seconds"] = time.perf_counter() - t0
    return _state["module"]


def available() -> bool:
    """Whether fused steps run the compiled kernel (builds it on the first call)."""
    return load() is not None


def error() -> str | None:
    """Why the kernel could not be built in this process (None when it was, or was not tried yet)."""
    return _state["error"]


def build_seconds() -> float | None:
    """Seconds the build (or the load of a cached build) took in this process; None before the first fused step."""
    return _state["seconds"]


def reset() -> None:
    """Forget the loaded kernel and the failed-build flag (tests simulate a failed build with this)."""
    _state.update({"tried": False, "module": None, "error": None, "seconds": None})


def check_fused_group(group: dict[str, Any], owner: str, compiled: bool = True) -> None:
    """Refuse, before any step, what fused=True cannot do: foreach=True as well, non-float32/64 params, and
    params off the CPU (compiled: optimlab's kernel) or off CPU and CUDA (not compiled: torch's kernel)."""
    fused = group.get("fused")
    if fused not in (None, True, False):
        raise ValueError(f"Invalid fused={fused!r}: must be None, True or False")
    if not fused:
        return
    if group.get("foreach"):
        raise ValueError(f"{owner}: fused=True and foreach=True cannot both be set")
    devices = ("cpu",) if compiled else ("cpu", "cuda")
    what = "a CPU kernel" if compiled else "torch's fused SGD kernel on CPU or CUDA"
    for i, p in enumerate(group["params"]):
        if p.device.type not in devices or p.dtype not in DTYPES:
            raise ValueError(
                f"{owner} fused=True is {what} for float32/float64 parameters; params[{i}] is "
                f"{p.dtype} on {p.device} (use fused=False)"
            )


def kernel_ready(param: Tensor, grad: Tensor) -> bool:
    """Whether a parameter can go to the kernel: contiguous, with a contiguous gradient (a channels_last or
    transposed one takes the unfused path). Its state is created like it, and the kernel checks every
    tensor's device, dtype, layout and size again, with an error naming the list and index."""
    return param.is_contiguous() and grad.is_contiguous()


def coefficients(
    lr: float,
    weight_decay: float = 0.0,
    maximize: bool = False,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    mom_mode: int = 0,
    beta: float = 0.0,
    c1: float = 0.0,
    c2: float = 0.0,
    unit: float = 0.0,
    beta2: float = 0.0,
    eps: float = 0.0,
    step_size: float = 0.0,
    bc2_sqrt: float = 1.0,
    decay_mul: float = 1.0,
) -> list[float]:
    """The kernel's coefficient vector (mom_mode: 0 no momentum, 1 update the buffer, 2 start it at g;
    for ADAM, 1 = amsgrad and beta = beta1)."""
    sign = -1.0 if maximize else 1.0
    values = (lr, weight_decay, sign, momentum, dampening, nesterov, mom_mode, beta, c1, c2, unit)
    return [float(x) for x in (*values, beta2, eps, step_size, bc2_sqrt, decay_mul)]


def run(
    kind: int,
    params: list[Tensor],
    grads: list[Tensor],
    coef: list[float],
    buf1: list[Tensor] | None = None,
    buf2: list[Tensor] | None = None,
    buf3: list[Tensor] | None = None,
    rows: list[int] | None = None,
    write_grad: bool = False,
) -> None:
    """One fused step of `kind` over the tensors (one call per dtype; the caller checked kernel_ready)."""
    module = load()
    assert module is not None, "compiled.run called without a kernel"
    lists = (params, grads, buf1 or [], buf2 or [], buf3 or [])
    row_list = rows if rows is not None else [0] * len(params)
    if len({p.dtype for p in params}) == 1:
        module.step(kind, *lists, row_list, coef, write_grad)
        return
    by_dtype: dict[torch.dtype, list[int]] = {}
    for i, p in enumerate(params):
        by_dtype.setdefault(p.dtype, []).append(i)
    for idx in by_dtype.values():
        if len(idx) == len(params):
            module.step(kind, *lists, row_list, coef, write_grad)
        else:
            sel = [[xs[i] for i in idx] if xs else [] for xs in lists]
            module.step(kind, *sel, [row_list[i] for i in idx], coef, write_grad)
