"""Image classification: the first task (optimlab's original one), and the metrics every classifier shares.

Data: a registered image data set (optimlab.data: digits, cifar10/100, imagefolder), the validation
split carved stratified from its training split with the run seed (every optimizer sees the same split
at a given seed, different seeds see different splits, the test split is never touched). Model: a
registered image network (optimlab.models). Loss: cross-entropy. Metrics (paper 003's set, from
scikit-learn): accuracy, mean (macro) recall and precision, Cohen's kappa, confusion matrix; macro
averages use zero_division=0 (a class never predicted counts as precision 0).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optimlab.data import (
    Augment,
    Split,
    TensorSplit,
    class_balancing_weights,
    list_datasets,
    load_dataset,
    stratified_split,
)
from optimlab.models import create_model, list_models
from optimlab.plugins import is_reference
from optimlab.tasks.base import Evaluation, Runtime, Task, TaskData

CLASSIFICATION_METRICS = ("accuracy", "loss", "mean_recall", "mean_precision", "kappa")
MIN_AUGMENT_SIDE = 16  # random crop with padding 4 would wreck 8×8 digits


def evaluate_classifier(model: nn.Module, split: Split, batch_size: int, runtime: Runtime) -> Evaluation:
    """Mean cross-entropy, accuracy and predicted classes of `model` on `split` (eval mode, no autograd).

    The model is left in eval mode; the caller switches back to train mode."""
    model.eval()
    n = len(split)
    device = runtime.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    preds = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            x = runtime.to_input(split.x[start : start + batch_size].to(device, non_blocking=True))
            y = split.y[start : start + batch_size].to(device, non_blocking=True)
            with runtime.autocast():
                logits = model(x)
                loss = F.cross_entropy(logits, y, reduction="sum")
            loss_sum += loss.double()
            preds.append(logits.argmax(dim=1))
    predictions = torch.cat(preds).cpu()
    accuracy = float((predictions == split.y.cpu()).double().mean())
    return Evaluation(loss=float(loss_sum) / n, accuracy=accuracy, predictions=predictions)


def classification_metrics(
    y_true: Tensor | np.ndarray, y_pred: Tensor | np.ndarray, num_classes: int, loss: float
) -> tuple[dict[str, float], list[list[int]]]:
    """(metrics dict with CLASSIFICATION_METRICS, confusion matrix [true][pred] over all num_classes labels)."""
    from sklearn.metrics import (
        accuracy_score,
        cohen_kappa_score,
        confusion_matrix,
        precision_score,
        recall_score,
    )

    t = np.asarray(torch.as_tensor(y_true).cpu(), dtype=np.int64)
    p = np.asarray(torch.as_tensor(y_pred).cpu(), dtype=np.int64)
    labels = list(range(num_classes))
    with warnings.catch_warnings():
        # kappa is undefined (0/0) when both raters use one class; sklearn warns and returns NaN.
        warnings.simplefilter("ignore", RuntimeWarning)
        kappa = float(cohen_kappa_score(t, p, labels=labels))
    metrics = {
        "accuracy": float(accuracy_score(t, p)),
        "loss": float(loss),
        "mean_recall": float(recall_score(t, p, labels=labels, average="macro", zero_division=0)),
        "mean_precision": float(precision_score(t, p, labels=labels, average="macro", zero_division=0)),
        "kappa": kappa,
    }
    confusion = confusion_matrix(t, p, labels=labels).astype(int).tolist()
    return metrics, confusion


class ClassifierTask(Task):
    """What every single-label classifier shares: cross-entropy on logits [B, K], argmax predictions,
    CLASSIFICATION_METRICS. Subclasses supply the data and the model."""

    metrics = CLASSIFICATION_METRICS
    headline = "accuracy"
    curve = "accuracy"

    def loss(self, output: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
        return F.cross_entropy(output, y, reduction=reduction)

    def correct(self, output: Tensor, y: Tensor) -> Tensor:
        return (output.argmax(dim=1) == y).sum()

    def evaluate(self, model: nn.Module, split: Split, batch_size: int, runtime: Runtime) -> Evaluation:
        return evaluate_classifier(model, split, batch_size, runtime)

    def final_metrics(
        self, split: Split, evaluation: Evaluation, data: TaskData
    ) -> tuple[dict[str, float], list[list[int]]]:
        return classification_metrics(split.y, evaluation.predictions, data.num_classes, evaluation.loss)


class ClassificationTask(ClassifierTask):
    name = "classification"
    summary = "image classification: a registered image data set and network, cross-entropy, accuracy"
    datasets = ()  # every image data set of optimlab.data (see check)
    models = ()  # every network of optimlab.models

    def check(self, config: Any) -> None:
        images = {d.name for d in list_datasets() if d.task == self.name}
        if config.dataset not in images and not is_reference(config.dataset):  # a reference resolves on load
            raise ValueError(f"dataset {config.dataset!r} is not an image data set; valid: {sorted(images)}")
        names = [m.name for m in list_models()]
        if config.model not in names and not is_reference(config.model):
            raise ValueError(f"model {config.model!r} is not an image network; valid: {names}")

    def prepare(self, config: Any, seed: int, device: torch.device) -> TaskData:
        """Tensors end up on `device` when config.data_on_device (one copy up front, batches are then
        indexed on the device), else they stay on the CPU and fit moves each batch. With
        config.channels_last, 4-D images are stored channels_last (indexing keeps the format)."""
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
                    stacklevel=4,
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
        return TaskData(
            train,
            val,
            test,
            data.num_classes,
            list(data.class_names),
            {"input_shape": (c, h, w)},
            weights,
            augment,
        )

    def build_model(self, config: Any, data: TaskData) -> nn.Module:
        return create_model(config.model, data.num_classes, data.info["input_shape"], width=config.width)


__all__ = ["CLASSIFICATION_METRICS", "ClassificationTask", "ClassifierTask", "classification_metrics"]
