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
import importlib
from collections.abc import Iterable

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
}

TASK_NAMES = tuple(_REGISTRY)


@functools.cache
def get_task(name: str) -> Task:
    """The Task registered as `name` (one shared instance: tasks hold no state)."""
    path = _REGISTRY.get(name)
    if path is None:
        raise ValueError(f"unknown task {name!r}; valid: {sorted(_REGISTRY)}")
    module_name, class_name = path.split(":")
    task: Task = getattr(importlib.import_module(module_name), class_name)()
    return task


def list_tasks() -> list[Task]:
    """Every registered task, in registry order."""
    return [get_task(name) for name in _REGISTRY]


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
