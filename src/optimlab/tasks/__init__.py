"""Task registry: what an experiment trains (data + model family + loss + metrics + divergence rule).

    task = get_task("classification")      # the Task of TrainConfig.task
    [t.name for t in list_tasks()]         # ['classification', 'text', 'ctr', ...]

Adding a task is one module (a Task subclass, see base.py) and one line in `_REGISTRY` below;
metrics it reports that optimlab does not know yet get a line in optimlab.train.vocabulary.
"""

from __future__ import annotations

import functools
from typing import Any

from optimlab.plugins import discover, is_reference, resolve_reference
from optimlab.tasks.base import Evaluation, Runtime, StepContext, Task, TaskData

# name -> "module:class"; imported on first use (a name check needs no torch model code)
_REGISTRY: dict[str, str] = {
    "classification": "optimlab.tasks.classification:ClassificationTask",
    "text": "optimlab.tasks.text:TextTask",
    "ctr": "optimlab.tasks.ctr:CTRTask",
    "keypoints": "optimlab.tasks.keypoints:KeypointTask",
    "gan": "optimlab.tasks.gan:GanTask",
    "detection": "optimlab.tasks.detection:DetectionTask",
    "segmentation": "optimlab.tasks.segmentation:SegmentationTask",
}

TASK_NAMES = tuple(_REGISTRY)


def _plugin_task(name: str, obj: Any, origin: str) -> str:
    if not (isinstance(obj, type) and issubclass(obj, Task)):
        raise TypeError(f"a task plugin is an optimlab.tasks.Task subclass, got {obj!r}")
    return f"{obj.__module__}:{obj.__qualname__}"


def _plugins() -> dict[str, str]:
    """Installed task plugins (entry points optimlab.tasks), name -> "module:class"."""
    return discover("optimlab.tasks", _REGISTRY, _plugin_task)


def known_task(name: str) -> bool:
    """A registered task, an installed plugin, or a package.module:Class reference (resolved on use)."""
    return name in _REGISTRY or name in _plugins() or is_reference(name)


@functools.cache
def get_task(name: str) -> Task:
    """The Task registered as `name` (one shared instance: tasks hold no state)."""
    path = _REGISTRY.get(name) or _plugins().get(name) or (name if is_reference(name) else None)
    if path is None:
        raise ValueError(f"unknown task {name!r}; valid: {sorted([*_REGISTRY, *_plugins()])} or package.module:Class")
    cls = resolve_reference(path, "task")
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ValueError(f"task {name!r} ({path}) is {cls!r}, not an optimlab.tasks.Task subclass")
    task: Task = cls()
    return task


def list_tasks() -> list[Task]:
    """Every registered task, in registry order, then the installed plugins."""
    return [get_task(name) for name in [*_REGISTRY, *_plugins()]]


__all__ = [
    "TASK_NAMES",
    "known_task",
    "Evaluation",
    "Runtime",
    "StepContext",
    "Task",
    "TaskData",
    "get_task",
    "list_tasks",
]
