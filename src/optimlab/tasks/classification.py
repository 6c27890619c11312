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
    load_dataset,
    sample_shape,
    stratified_split,
)
from optimlab.models import create_model, list_models
from optimlab.stats.metrics import Metric
from optimlab.tasks.base import Evaluation, Runtime, Task, TaskData, registered_model_macs

ACCURACY = Metric("accuracy", "accuracy %", "higher", 0.0, 1.0, percent=True, headline_title="test accuracy")
MEAN_RECALL = Metric("mean_recall", "mean recall %", "higher", 0.0, 1.0, percent=True)  # macro, over classes
MEAN_PRECISION = Metric("mean_precision", "mean precision %", "higher", 0.0, 1.0, percent=True)  # macro
KAPPA = Metric("kappa", "Cohen's kappa", "higher", -1.0, 1.0)
CLASSIFICATION_METRICS = ("accuracy", "loss", "mean_recall", "mean_precision", "kappa")
MIN_AUGMENT_SIDE = 16  # random crop with padding 4 would wreck 8×8 digits
UNKNOWN_CLASSES = 10  # the class count a MAC estimate assumes when only the files say (imagefolder); it barely matters


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
    declared_metrics = (ACCURACY, MEAN_RECALL, MEAN_PRECISION, KAPPA)
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
    title = "image classification"
    summary = "image classification: a registered image data set and network, cross-entropy, accuracy"

    @property
    def models(self) -> tuple[str, ...]:  # type: ignore[override]
        """Every network of optimlab.models."""
        return tuple(m.name for m in list_models())

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

    def forward_macs(self, config: Any) -> int:
        """From the data set's registry line (one sample's shape); only a set whose line declares none
        is read for it."""
        shape = sample_shape(config.dataset, config.dataset_options)
        if shape is None:
            data = load_dataset(config.dataset, config.data_dir, **config.dataset_options)
            return registered_model_macs(config, data.num_classes, data.input_shape)
        return registered_model_macs(config, shape.outputs or UNKNOWN_CLASSES, shape.input_shape)

    def describe(self, config: Any) -> dict[str, Any]:
        data = load_dataset(config.dataset, config.data_dir, **config.dataset_options)
        _, h, w = data.input_shape
        described: dict[str, Any] = {
            "n_train": len(data.train),
            "n_test": len(data.test),
            "num_classes": data.num_classes,
            "detail": f"{h}x{w}",
        }
        if config.dataset == "cifar10" and len(data.train) < 5_000 * data.num_classes:  # full CIFAR-10: 5,000 a class
            described["title"] = "CIFAR-10 subset"
        if config.dataset_options.get("classes") is not None:
            described["title_note"] = f" restricted to {data.num_classes} classes ({', '.join(data.class_names)})"
        return described

    def data_counts(self, config: Any, described: dict[str, Any]) -> str:
        return (
            f"{described['n_train']:,} train images incl. {config.val_fraction:.0%} held out for validation, "
            f"{described['n_test']:,} test, {described['num_classes']} classes, {described['detail']}"
        )


__all__ = [
    "ACCURACY",
    "CLASSIFICATION_METRICS",
    "KAPPA",
    "MEAN_PRECISION",
    "MEAN_RECALL",
    "ClassificationTask",
    "ClassifierTask",
    "classification_metrics",
]
