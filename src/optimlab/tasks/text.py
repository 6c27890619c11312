"""Text classification (paper 004's TC row: an LSTM on R8): token ids -> LSTMClassifier -> classes.

Data: optimlab.data.text (r8, womens-reviews); the tokenizer's vocabulary comes from the data set's
training split only, and the validation split is carved from it, stratified, with the run seed.
Model "lstm": embedding 128, one LSTM layer of 128, linear (x width). Loss, metrics and the
divergence rule are every classifier's (ClassifierTask): cross-entropy; accuracy, mean recall, mean
precision, Cohen's kappa (scikit-learn) - on imbalanced sets mean recall and kappa matter most.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from optimlab.data import class_balancing_weights, load_dataset, stratified_split
from optimlab.models.lstm import LSTMClassifier
from optimlab.tasks.base import TaskData
from optimlab.tasks.classification import ClassifierTask


class TextTask(ClassifierTask):
    name = "text"
    title = "text classification"
    summary = "text classification: token ids -> LSTM -> classes (cross-entropy; accuracy, mean recall, kappa)"
    models = ("lstm",)

    def prepare(self, config: Any, seed: int, device: torch.device) -> TaskData:
        data = load_dataset(config.dataset, config.data_dir, **config.dataset_options)
        train, val = stratified_split(data.train, config.val_fraction, seed=seed)
        weights = class_balancing_weights(train.y, data.num_classes) if config.weighted_sampler else None
        test = data.test
        if device.type != "cpu" and config.data_on_device:
            train, val, test = (s.to(device) for s in (train, val, test))
        info = {"vocab_size": len(data.vocab), "max_len": data.max_len}
        return TaskData(train, val, test, data.num_classes, list(data.class_names), info, weights, None)

    def build_model(self, config: Any, data: TaskData) -> nn.Module:
        return LSTMClassifier(data.info["vocab_size"], data.num_classes, width=config.width)

    def forward_macs(self, config: Any) -> int:
        """LSTM gates (4 x hidden x (embed + hidden)) per token over max_len tokens, plus the linear head."""
        width = float(config.width)
        e, h = max(1, round(128 * width)), max(1, round(128 * width))
        max_len = int(config.dataset_options.get("max_len", 100))
        return max_len * 4 * h * (e + h) + h * 8

    def describe(self, config: Any) -> dict[str, Any]:
        data = load_dataset(config.dataset, config.data_dir, **config.dataset_options)
        return {
            "n_train": len(data.train),
            "n_test": len(data.test),
            "num_classes": data.num_classes,
            "detail": f"{len(data.vocab):,}-token vocabulary from the training split, {data.max_len} tokens per document",
        }


__all__ = ["TextTask"]
