"""The data of one run: train/validation/test splits, sampler weights and augmentation.

The validation split is carved, stratified, from the dataset's TRAINING split with the run seed:
every optimizer sees the same split at a given seed, different seeds see different splits (so the
seed-to-seed spread includes split variation), and the test split is never touched.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from optimlab.data import Augment, TensorSplit, class_balancing_weights, load_dataset, stratified_split
from optimlab.train.config import TrainConfig

MIN_AUGMENT_SIDE = 16  # random crop with padding 4 would wreck 8×8 digits


@dataclass
class RunData:
    train: TensorSplit  # what the optimizer sees (training split minus validation)
    val: TensorSplit  # stratified carve-out of the dataset's training split
    test: TensorSplit  # the dataset's own test split, untouched
    num_classes: int
    input_shape: tuple[int, int, int]
    sampler_weights: Tensor | None  # [len(train)] class-balancing weights, or None
    augment: Augment | None  # None when not requested or images are smaller than 16 px


def prepare_data(config: TrainConfig, seed: int, device: torch.device | str = "cpu") -> RunData:
    """Load config.dataset and split it for run `seed`.

    Tensors end up on `device` when config.data_on_device (one copy up front, batches are then
    indexed on the device), else they stay on the CPU and fit moves each batch. With
    config.channels_last, 4-D images are stored channels_last (indexing keeps the format).
    """
    data = load_dataset(config.dataset, config.data_dir, **config.dataset_options)
    train, val = stratified_split(data.train, config.val_fraction, seed=seed)
    weights = class_balancing_weights(train.y, data.num_classes) if config.weighted_sampler else None
    augment = None
    if config.augment:
        if min(data.input_shape[1:]) >= MIN_AUGMENT_SIDE:
            augment = Augment()
        else:
            warnings.warn(
                f"augment=True ignored: {config.dataset} images are "
                f"{data.input_shape[1]}×{data.input_shape[2]}, smaller than "
                f"{MIN_AUGMENT_SIDE}×{MIN_AUGMENT_SIDE}",
                stacklevel=3,
            )
    device = torch.device(device)
    test = data.test
    if device.type != "cpu" and config.data_on_device:
        train, val, test = (TensorSplit(s.x.to(device), s.y.to(device)) for s in (train, val, test))
    if config.channels_last and train.x.dim() == 4:
        train, val, test = (
            TensorSplit(s.x.contiguous(memory_format=torch.channels_last), s.y) for s in (train, val, test)
        )
    c, h, w = data.input_shape
    return RunData(train, val, test, data.num_classes, (c, h, w), weights, augment)
