"""The metrics optimlab knows: direction (which way is better), range, unit and title.

Pure data (no torch), so the statistics, the reports and the catalogue read the same facts as
training. A task names its metrics from this table (optimlab.tasks, ``Task.metrics``).
"""

from __future__ import annotations

import math

__all__ = [
    "METRIC_SPECS",
    "METRICS",
    "LOWER_IS_BETTER",
    "PERCENT_METRICS",
    "METRIC_RANGES",
    "METRIC_TITLES",
    "metric_label",
]

# name -> (low, high, which way is better). Test-set metrics use History.final's names; fractions, not percent.
METRIC_SPECS: dict[str, tuple[float, float, str]] = {
    "accuracy": (0.0, 1.0, "higher"),  # test accuracy (History.final["accuracy"])
    "loss": (0.0, math.inf, "lower"),  # test cross-entropy (History.final["loss"])
    "mean_recall": (0.0, 1.0, "higher"),  # macro recall over classes
    "mean_precision": (0.0, 1.0, "higher"),  # macro precision over classes
    "kappa": (-1.0, 1.0, "higher"),  # Cohen's kappa
    "train_accuracy": (0.0, 1.0, "higher"),  # last epoch's training accuracy (History.train_acc[-1]); claims only
    "auc": (0.0, 1.0, "higher"),  # ROC AUC of a binary label's scores (click-through rate)
    "log_loss": (0.0, math.inf, "lower"),  # binary cross-entropy of the predicted probabilities, sklearn's
    "mse": (0.0, math.inf, "lower"),  # mean squared error of a regression (key points)
    "fid": (0.0, math.inf, "lower"),  # Frechet distance between Inception-v3 features of real and generated images
    "fid_classifier": (0.0, math.inf, "lower"),  # the same distance over a small classifier's features (CPU scale)
    "map": (0.0, 1.0, "higher"),  # detection: VOC2007 11-point mean average precision at IoU 0.5
    "map_allpoint": (0.0, 1.0, "higher"),  # detection: all-point (VOC2010+) mean average precision at IoU 0.5
    "miou": (0.0, 1.0, "higher"),  # segmentation: mean over classes of intersection over union (void ignored)
    "pixel_accuracy": (0.0, 1.0, "higher"),  # segmentation: share of non-void pixels labelled right
}
# image classification's History.final keys, in table order; every task's own: optimlab.tasks (Task.metrics)
METRICS = ("accuracy", "loss", "mean_recall", "mean_precision", "kappa")
LOWER_IS_BETTER = frozenset(m for m, (_, _, better) in METRIC_SPECS.items() if better == "lower")
PERCENT_METRICS = frozenset(
    {"accuracy", "mean_recall", "mean_precision", "map", "map_allpoint", "miou", "pixel_accuracy"}
)  # fractions shown in % (with train_accuracy)
METRIC_RANGES = {m: (lo, hi) for m, (lo, hi, _) in METRIC_SPECS.items()}
METRIC_TITLES = {  # how tables name a metric (with its unit)
    "accuracy": "accuracy %",
    "loss": "loss",
    "mean_recall": "mean recall %",
    "mean_precision": "mean precision %",
    "kappa": "Cohen's kappa",
    "auc": "AUC",
    "log_loss": "log loss",
    "mse": "MSE",
    "fid": "FID (Inception features)",
    "fid_classifier": "FID (classifier features)",
    "map": "mAP@0.5 (VOC07 11-point) %",
    "map_allpoint": "mAP@0.5 (all-point) %",
    "miou": "mIoU %",
    "pixel_accuracy": "pixel accuracy %",
}


def metric_label(metric: str) -> str:
    """How verdict pages name a metric in their claim rows: the key, except for the FIDs, whose titles
    say which features they use (so "FID (classifier features)" is never read as Inception FID)."""
    return METRIC_TITLES[metric] if metric in ("fid", "fid_classifier") else metric
