"""The names every layer shares: metrics (with their direction, range and unit), schedules, weight decay.

One place, so a metric added here is known to training (History.final), the statistics (which way
is better), the pages (% or not, clipping) and the catalogue (what a claim may name).
"""

from __future__ import annotations

import math

# name -> (low, high, which way is better). Test-set metrics use History.final's names; fractions, not percent.
METRIC_SPECS: dict[str, tuple[float, float, str]] = {
    "accuracy": (0.0, 1.0, "higher"),  # test accuracy (History.final["accuracy"])
    "loss": (0.0, math.inf, "lower"),  # test cross-entropy (History.final["loss"])
    "mean_recall": (0.0, 1.0, "higher"),  # macro recall over classes
    "mean_precision": (0.0, 1.0, "higher"),  # macro precision over classes
    "kappa": (-1.0, 1.0, "higher"),  # Cohen's kappa
    "train_accuracy": (0.0, 1.0, "higher"),  # last epoch's training accuracy (History.train_acc[-1]); claims only
}
METRICS = ("accuracy", "loss", "mean_recall", "mean_precision", "kappa")  # History.final's keys, in table order
LOWER_IS_BETTER = frozenset(m for m, (_, _, better) in METRIC_SPECS.items() if better == "lower")
PERCENT_METRICS = frozenset({"accuracy", "mean_recall", "mean_precision"})  # fractions shown in % (with train_accuracy)
METRIC_RANGES = {m: (lo, hi) for m, (lo, hi, _) in METRIC_SPECS.items()}

SCHEDULES = ("constant", "step", "cosine")
WEIGHT_DECAY_MODES = ("coupled", "decoupled")
AMP_MODES = ("none", "bf16")
