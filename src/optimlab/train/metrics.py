"""Evaluation passes and the final metrics (paper 003's set), computed with scikit-learn.

`evaluate` runs the model in eval mode under inference_mode over a whole split and returns the
mean cross-entropy and the predicted classes; `classification_metrics` turns predictions into
accuracy, mean (macro) recall, mean (macro) precision, Cohen's kappa and the confusion matrix.
Macro averages use zero_division=0: a class never predicted counts as precision 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optimlab.data import TensorSplit
from optimlab.train.accel import autocast, to_input
from optimlab.train.vocabulary import METRICS

METRIC_NAMES = METRICS  # optimlab.train.vocabulary


@dataclass
class Evaluation:
    loss: float  # mean cross-entropy over the split (NaN/Inf when the model diverged)
    accuracy: float
    predictions: Tensor  # int64 [N] on the CPU


def evaluate(
    model: nn.Module,
    split: TensorSplit,
    batch_size: int = 1024,
    *,
    device: torch.device | str | None = None,
    amp: str = "none",
    channels_last: bool = False,
) -> Evaluation:
    """Mean loss, accuracy and predictions of `model` on `split` (eval mode, no autograd).

    device: where the model lives (default: the split's device); batches are moved there.
    amp / channels_last: as in TrainConfig (the same autocast and memory format as training).
    The model is left in eval mode; the caller switches back to train mode.
    """
    model.eval()
    n = len(split)
    device = torch.device(device) if device is not None else split.x.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    preds = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            x = to_input(split.x[start : start + batch_size].to(device, non_blocking=True), channels_last)
            y = split.y[start : start + batch_size].to(device, non_blocking=True)
            with autocast(device, amp):
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
    """(metrics dict with METRIC_NAMES, confusion matrix [true][pred] over all num_classes labels)."""
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


def diverged_metrics(
    model: nn.Module, evaluation: Evaluation, y_true: Tensor, num_classes: int
) -> tuple[dict[str, float], list[list[int]]]:
    """Final metrics of a diverged run: loss NaN; the rest from the current weights' predictions
    when every weight is finite (argmax of NaN logits means nothing), else NaN and no confusion."""
    finite = all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())
    if not finite:
        return {name: math.nan for name in METRIC_NAMES}, []
    metrics, confusion = classification_metrics(y_true, evaluation.predictions, num_classes, math.nan)
    return metrics, confusion
