"""Evaluation passes and the final classification metrics, as the harness used them before tasks.

The metrics now live with their task (optimlab.tasks.classification); this module keeps the old entry
points: `evaluate(model, split, ...)` (mean cross-entropy, accuracy, predicted classes) and
`classification_metrics` / `diverged_metrics` for image classification.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from optimlab.data import Split
from optimlab.tasks import Evaluation, Runtime
from optimlab.tasks.classification import CLASSIFICATION_METRICS, classification_metrics, evaluate_classifier
from optimlab.train.accel import autocast, to_input


def runtime(device: torch.device | str, amp: str = "none", channels_last: bool = False) -> Runtime:
    """The Runtime a task's forward passes use: this device, autocast mode and memory format."""
    dev = torch.device(device)
    return Runtime(
        device=dev,
        amp=amp,
        channels_last=channels_last,
        autocast=lambda: autocast(dev, amp),
        to_input=lambda x: to_input(x, channels_last),
    )


def evaluate(
    model: nn.Module,
    split: Split,
    batch_size: int = 1024,
    *,
    device: torch.device | str | None = None,
    amp: str = "none",
    channels_last: bool = False,
) -> Evaluation:
    """Mean loss, accuracy and predictions of classifier `model` on `split` (eval mode, no autograd).

    device: where the model lives (default: the split's device); batches are moved there.
    amp / channels_last: as in TrainConfig (the same autocast and memory format as training).
    The model is left in eval mode; the caller switches back to train mode.
    """
    dev = torch.device(device) if device is not None else split.x.device
    return evaluate_classifier(model, split, batch_size, runtime(dev, amp, channels_last))


def diverged_metrics(
    model: nn.Module, evaluation: Evaluation, y_true: Tensor | np.ndarray, num_classes: int
) -> tuple[dict[str, float], list[list[int]]]:
    """Final metrics of a diverged run: loss NaN; the rest from the current weights' predictions
    when every weight is finite (argmax of NaN logits means nothing), else NaN and no confusion."""
    finite = all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())
    if not finite:
        return {name: math.nan for name in CLASSIFICATION_METRICS}, []
    return classification_metrics(y_true, evaluation.predictions, num_classes, math.nan)


__all__ = ["Evaluation", "classification_metrics", "diverged_metrics", "evaluate", "runtime"]
