"""Optimizers, models, data sets and tasks from other packages: by entry point, or by reference.

Installed plugins declare Python entry points in one of four groups (pyproject.toml):

    [project.entry-points."optimlab.optimizers"]
    signsgd = "my_pkg.optim:SignSGD"      # a torch.optim.Optimizer subclass, or (params, **hparams) -> Optimizer
    [project.entry-points."optimlab.models"]
    tinynet = "my_pkg.models:tinynet"     # (num_classes, input_shape, width) -> nn.Module
    [project.entry-points."optimlab.datasets"]   # a DatasetInfo, or a loader function
    [project.entry-points."optimlab.tasks"]      # a Task subclass

and are then named like the built-ins (TOML `name`/`model`/`dataset`/`task`, the CLI, the Python API).
Without any entry point, a reference `package.module:attribute` works wherever a name does.

Each group is read once per process (`discover`); a plugin that fails to import or has the wrong type
becomes ONE warning naming it (PluginWarning) and is left out, so the rest of optimlab is unaffected.
A plugin whose name is a built-in's (or another plugin's) is refused: PluginError names both.

This module is the registries' shared machinery; it imports no torch (each registry passes its own
check of what a plugin must be).
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Callable, Collection
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

GROUPS = ("optimlab.optimizers", "optimlab.models", "optimlab.datasets", "optimlab.tasks")

# package.module:attribute (both parts dotted Python identifiers); hyperparameters (k=v) never match
_REFERENCE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
# a plugin's name also names run files and labels: the characters an optimizer label may use
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")

T = TypeVar("T")

_DISCOVERED: dict[str, dict[str, Any]] = {}  # group -> {name: what the registry's `accept` returned}


class PluginError(ValueError):
    """A plugin refused as a whole (a name collision), or a reference that cannot be resolved."""


class PluginWarning(UserWarning):
    """A plugin that could not be loaded and is left out (the rest of optimlab works without it)."""


def is_reference(name: str) -> bool:
    """Whether `name` is spelled as a reference `package.module:attribute` (not a registry name)."""
    return isinstance(name, str) and bool(_REFERENCE.match(name))


def resolve_reference(ref: str, what: str) -> Any:
    """Import `package.module` and return its `attribute` (dotted attributes walk nested objects).

    PluginError (a ValueError) names the reference and what was missing; `what` ("optimizer", ...)
    says what the reference was given as.
    """
    if not is_reference(ref):
        raise PluginError(f"{what} reference {ref!r} is not of the form package.module:attribute")
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise PluginError(f"{what} reference {ref!r}: cannot import module {module_name!r} ({e})") from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"{what} reference {ref!r}: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def entry_point_origin(ep: EntryPoint) -> str:
    """Who provides an entry point: 'plugin <distribution> <version> (<module:attr>)'."""
    dist = getattr(ep, "dist", None)
    by = f"{dist.name} {dist.version}" if dist is not None else "an unnamed distribution"
    return f"plugin {by} ({ep.value})"


def discover(
    group: str,
    builtin: Collection[str],
    accept: Callable[[str, Any, str], T],
    reserved_prefixes: tuple[str, ...] = (),
) -> dict[str, T]:
    """The installed plugins of entry-point `group`, name -> accept(name, loaded object, origin).

    Read once per process and cached. `builtin` holds the registry's own names: a plugin taking one
    of them (or a name starting with one of `reserved_prefixes`, such as "wgd-"), or two plugins
    taking the same name, raise PluginError naming both. A plugin whose import fails, or whose object
    `accept` refuses (TypeError/ValueError), gives one PluginWarning naming it and is left out.
    """
    if group in _DISCOVERED:
        return _DISCOVERED[group]
    found: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for ep in entry_points(group=group):
        origin = entry_point_origin(ep)
        _check_collision(group, ep.name, origin, builtin, reserved_prefixes, origins)
        origins[ep.name] = origin
        try:
            if not _NAME.match(ep.name):
                raise ValueError("its name must be letters, digits and . _ + - (it names run files)")
            found[ep.name] = accept(ep.name, ep.load(), origin)
        except Exception as e:  # any failure of a third-party import: warn, leave it out, go on
            warnings.warn(
                f"optimlab: {group} plugin {ep.name!r} from {origin} is left out: {type(e).__name__}: {e}",
                PluginWarning,
                stacklevel=2,
            )
    _DISCOVERED[group] = found
    return found


def _check_collision(
    group: str,
    name: str,
    origin: str,
    builtin: Collection[str],
    reserved_prefixes: tuple[str, ...],
    seen: dict[str, str],
) -> None:
    if name in builtin:
        raise PluginError(
            f"{group} plugin {name!r} from {origin} collides with optimlab's built-in {name!r}: "
            "rename the entry point (or uninstall the plugin)"
        )
    prefix = next((p for p in reserved_prefixes if name.startswith(p)), None)
    if prefix is not None:
        raise PluginError(
            f"{group} plugin {name!r} from {origin} collides with optimlab's built-in prefix {prefix!r} "
            f"({prefix}<name> wraps any registered name): rename the entry point"
        )
    if name in seen:
        raise PluginError(
            f"{group} plugin {name!r} from {origin} collides with the plugin {name!r} from {seen[name]}: "
            "uninstall one of them"
        )


def clear_cache() -> None:
    """Forget what `discover` read (tests; a process that installed a plugin after its first lookup)."""
    _DISCOVERED.clear()
