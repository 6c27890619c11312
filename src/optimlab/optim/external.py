"""Optimizers from outside optimlab: installed plugins (entry-point group ``optimlab.optimizers``) and
references ``package.module:attribute``, turned into registry entries like the built-ins'.

What a plugin may be: a ``torch.optim.Optimizer`` subclass, or a factory ``(params, **hparams) ->
Optimizer``. Its hyperparameters and their defaults are read from its signature (every keyword
parameter after ``params``; ``optimlab list`` shows the defaults), its summary from the first line of
its docstring, and ``OptimizerInfo.origin`` says where it comes from ("plugin <dist> <version>
(<module:attr>)" or "reference"). ``wgd-<name>`` and ``lookahead-<name>`` wrap it as any base.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Collection
from typing import Any

from torch.optim import Optimizer

from optimlab.optim.info import LOOKAHEAD_PREFIX, WGD_PREFIX, OptimizerInfo
from optimlab.plugins import PluginError, discover, resolve_reference

GROUP = "optimlab.optimizers"


def external_info(name: str, obj: Any, origin: str) -> OptimizerInfo:
    """The registry entry of a user's optimizer; TypeError when `obj` cannot be one."""
    is_class = isinstance(obj, type)
    if is_class and not issubclass(obj, Optimizer):
        raise TypeError(f"{obj.__module__}.{obj.__qualname__} is a class but not a torch.optim.Optimizer subclass")
    if not is_class and not callable(obj):
        raise TypeError(f"it is a {type(obj).__name__}, not an Optimizer subclass or a factory (params, **hparams)")
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError) as e:
        raise TypeError(f"its signature cannot be read ({e})") from None
    positional = [p for p in signature.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not positional or positional[0].name != "params":
        raise TypeError("its first argument must be `params`: an optimizer is built as f(params, **hparams)")
    defaults = {
        n: p.default
        for n, p in list(signature.parameters.items())[1:]
        if p.default is not p.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }
    summary = (inspect.getdoc(obj) or "").strip().split("\n")[0] or f"user optimizer {name}"
    paper = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', name)}"
    return OptimizerInfo(name, summary, "user-defined", paper, defaults, obj, {}, origin)


def plugin_optimizers(builtin: Collection[str]) -> dict[str, OptimizerInfo]:
    """Installed optimizer plugins by name (read once per process; see optimlab.plugins.discover)."""
    return discover(GROUP, builtin, external_info, (WGD_PREFIX, LOOKAHEAD_PREFIX))


@functools.cache
def reference_info(ref: str) -> OptimizerInfo:
    """The registry entry of `package.module:attribute`; PluginError (a ValueError) naming the reference
    when it does not import or is no optimizer."""
    obj = resolve_reference(ref, "optimizer")
    try:
        return external_info(ref, obj, "reference")
    except TypeError as e:
        raise PluginError(f"optimizer reference {ref!r}: {e}") from None
