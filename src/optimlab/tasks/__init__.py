"""Task registry: what an experiment trains (data + model family + loss + metrics + divergence rule).

    task = get_task("classification")      # the Task of TrainConfig.task
    [t.name for t in list_tasks()]         # ['classification', 'text', 'ctr', ...]

Adding a task is one module (a Task subclass, see base.py) and one line in `_REGISTRY` below;
metrics it reports that optimlab does not know yet get a line in optimlab.train.vocabulary.
"""

from __future__ import annotations

import functools
import importlib

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
    "function": "optimlab.tasks.function:FunctionTask",
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


__all__ = ["TASK_NAMES", "Evaluation", "Runtime", "StepContext", "Task", "TaskData", "get_task", "list_tasks"]
