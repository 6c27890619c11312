"""Task registry: what an experiment trains (data + model family + loss + metrics + divergence rule).

    task = get_task("classification")      # the Task of TrainConfig.task
    [t.name for t in list_tasks()]         # ['classification', 'text', 'ctr', ...]

    known_metrics()["auc"]                 # Metric("auc", "AUC", "higher", 0.0, 1.0): any task's metric

Adding a task is one module (a Task subclass, see base.py, declaring its metrics as
optimlab.stats.metrics.Metric values) and one line in `_REGISTRY` below; its data sets are the
optimlab.data registry lines that name it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from optimlab.plugins import discover, is_reference, resolve_reference
from optimlab.stats.metrics import Metric
from optimlab.tasks.base import SHARED_METRICS, Evaluation, Runtime, StepContext, Task, TaskData

# name -> "module:class"; imported on first use (a name check needs no torch model code)
_REGISTRY: dict[str, str] = {
    "classification": "optimlab.tasks.classification:ClassificationTask",
    "text": "optimlab.tasks.text:TextTask",
    "ctr": "optimlab.tasks.ctr:CTRTask",
    "keypoints": "optimlab.tasks.keypoints:KeypointTask",
    "gan": "optimlab.tasks.gan:GanTask",
    "detection": "optimlab.tasks.detection:DetectionTask",
    "segmentation": "optimlab.tasks.segmentation:SegmentationTask",
    "function": "optimlab.tasks.function:FunctionTask",
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


@functools.cache
def known_metrics() -> dict[str, Metric]:
    """Every metric a registered task reports (its declared_metrics, plus loss and train_accuracy), by
    name: what claims, --metric and the report tables may name. ValueError when two tasks declare one
    name differently (a metric means one thing, whichever task reports it)."""
    found: dict[str, tuple[Metric, str]] = {}
    for task in list_tasks():  # in registry order, each task's table order first
        for m in (*(task.metric(name) for name in task.metrics), *task.declared_metrics):
            seen = found.setdefault(m.name, (m, task.name))
            if seen[0] != m:
                raise ValueError(
                    f"metric {m.name!r} is declared as {seen[0]} by {seen[1]} but as {m} by task {task.name!r}"
                )
    for m in SHARED_METRICS:
        found.setdefault(m.name, (m, "every task"))
    return {name: m for name, (m, _) in found.items()}


def metric(name: str) -> Metric:
    """The Metric called `name` (known_metrics); ValueError listing the known ones."""
    known = known_metrics()
    if name not in known:
        raise ValueError(f"unknown metric {name!r}; valid: {sorted(known)}")
    return known[name]


def lower_is_better(names: Iterable[str] | None = None) -> frozenset[str]:
    """The metrics among `names` (default: every known one) where lower is better: the direction the
    statistics (optimlab.stats.summarize) take. ValueError for a name no task declares."""
    chosen = known_metrics() if names is None else names
    return frozenset(n for n in chosen if metric(n).lower_is_better)


__all__ = [
    "TASK_NAMES",
    "known_task",
    "Evaluation",
    "Metric",
    "Runtime",
    "StepContext",
    "Task",
    "TaskData",
    "get_task",
    "known_metrics",
    "list_tasks",
    "lower_is_better",
    "metric",
]
