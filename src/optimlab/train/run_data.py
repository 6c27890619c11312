"""The data of one run: the task's train/validation/test splits, sampler weights and augmentation.

The validation split is carved from the data set's TRAINING split with the run seed (stratified for
classifiers): every optimizer sees the same split at a given seed, different seeds see different splits
(so the seed-to-seed spread includes split variation), and the test split is never touched. The task
(optimlab.tasks, TrainConfig.task) does the loading; see e.g. optimlab.tasks.classification.
"""

from __future__ import annotations

import torch

from optimlab.tasks import TaskData, get_task
from optimlab.train.config import TrainConfig

RunData = TaskData  # the name this module used before tasks existed


def prepare_data(config: TrainConfig, seed: int, device: torch.device | str = "cpu") -> TaskData:
    """Load config.dataset through config.task and split it for run `seed` (see the task's prepare)."""
    return get_task(config.task).prepare(config, seed, torch.device(device))


__all__ = ["RunData", "prepare_data"]
