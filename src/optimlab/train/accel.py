"""The accelerator path of fit: device checks, bf16 autocast, channels_last and torch.compile.

Every option here defaults to the plain fp32 eager behaviour, and every one also runs on the CPU
(where the tests exercise it), so a GPU-only code path never exists that CI cannot reach:

  * resolve_device: "cuda" on a machine without CUDA is a ValueError naming TrainConfig.device,
    not a crash deep inside the first .to(); under DDP "cuda" means cuda:LOCAL_RANK.
  * autocast(device, amp): torch.autocast(device.type, dtype=torch.bfloat16) for amp="bf16", else a
    no-op context. bf16 keeps fp32's exponent range, so no GradScaler is needed (fp16 would).
    Parameters, gradients and optimizer state stay fp32; only the autocast-eligible ops
    (matmul, conv) run in bf16. cross_entropy is on autocast's fp32 list, so the loss is fp32.
  * to_input(x, channels_last): 4-D batches to channels_last (a no-op when already in it).
  * compile_model(module): torch.compile, with a failure at the first call re-raised as a
    RuntimeError that names TrainConfig.compile (compilation is lazy, so errors surface there).
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.train.config import TrainConfig


def resolve_device(config: TrainConfig, local_rank: int | None = None) -> torch.device:
    """The torch.device fit trains on; ValueError (naming the field) when it is unavailable.

    local_rank: set under DDP; a bare "cuda" then becomes cuda:local_rank (one GPU per process).
    """
    device = torch.device(config.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"TrainConfig.device={config.device!r} was requested but CUDA is not available "
                f"on this machine (torch {torch.__version__}, cuda build: {torch.version.cuda}); "
                "use device='cpu'"
            )
        if local_rank is not None:
            if device.index is not None and device.index != local_rank:
                raise ValueError(
                    f"TrainConfig.device={config.device!r} names a GPU index, but distributed "
                    f"training gives each process the GPU of its LOCAL_RANK ({local_rank}); "
                    "use device='cuda'"
                )
            device = torch.device("cuda", local_rank)
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"TrainConfig.device={config.device!r}: GPU index {index} does not exist "
                f"({torch.cuda.device_count()} visible)"
            )
        if config.amp == "bf16" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"TrainConfig.amp='bf16' is not supported by GPU {torch.cuda.get_device_name(index)}")
    elif device.type not in ("cpu",):
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"TrainConfig.device={config.device!r} was requested but MPS is not available")
    return device


def autocast(device: torch.device, amp: str) -> AbstractContextManager[Any]:
    """The autocast context of a forward + loss (a no-op for amp="none")."""
    if amp == "none":
        return contextlib.nullcontext()
    if amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    raise ValueError(f"TrainConfig.amp={amp!r} is not one of ('none', 'bf16')")


def to_input(x: Tensor, channels_last: bool) -> Tensor:
    """x in the memory format the model expects (channels_last applies to 4-D image batches only)."""
    if channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def prepare_model(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """Move `model` to `device` (in channels_last format when asked); returns the same module."""
    if channels_last:
        return model.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model.to(device)


class CompiledForward:
    """Calls torch.compile(module); a failure of the first call names TrainConfig.compile.

    Deliberately not an nn.Module: the optimizer, train()/eval() and checkpoints keep using the
    original module (no `_orig_mod.` prefixes in state_dicts); this object is only the forward.
    """

    def __init__(self, inner: nn.Module, compiled: Any) -> None:
        self.inner = inner
        self._compiled = compiled
        self._checked = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._checked:
            return self._compiled(*args, **kwargs)
        try:
            out = self._compiled(*args, **kwargs)
        except Exception as exc:
            raise RuntimeError(
                f"TrainConfig.compile=True: torch.compile failed on the first batch "
                f"({type(exc).__name__}: {exc}); run with compile=False"
            ) from exc
        self._checked = True
        return out


def compile_model(module: nn.Module) -> CompiledForward:
    """torch.compile(module), or a clear error when torch.compile cannot run here."""
    if not hasattr(torch, "compile"):
        raise RuntimeError(f"TrainConfig.compile=True needs torch.compile (torch >= 2.0), got {torch.__version__}")
    try:
        from torch import _dynamo

        supported = _dynamo.is_dynamo_supported()
    except Exception:  # the private check moved or failed: let the first call decide
        supported = True
    if not supported:
        raise RuntimeError(
            "TrainConfig.compile=True: torch.compile is not supported on this Python/platform; run with compile=False"
        )
    return CompiledForward(module, torch.compile(module))


__all__ = ["CompiledForward", "autocast", "compile_model", "prepare_model", "resolve_device", "to_input"]
