"""Click-through-rate prediction (paper 004's CTR-P row: Wide&Deep on Avazu): hashed ids -> one logit.

Data: optimlab.data.ctr (avazu, and the CPU stand-in adult); the validation split is carved from the
training split, stratified by label, with the run seed. Model "wide-deep": optimlab.models.wide_deep
(embedding 8, MLP 256-128, x width). Loss: binary cross-entropy on the logit. Metrics (scikit-learn,
on the predicted probabilities sigmoid(logit)): ROC AUC (higher is better), log loss (lower), and
accuracy at the 0.5 threshold; the per-epoch curve is that accuracy. Divergence: every task's rule.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optimlab.data import Split, load_dataset, stratified_split
from optimlab.models.wide_deep import WideDeep
from optimlab.stats.metrics import Metric
from optimlab.tasks.base import Evaluation, Runtime, Task, TaskData
from optimlab.tasks.classification import ACCURACY

AUC = Metric("auc", "AUC", "higher", 0.0, 1.0, headline_title="test AUC")  # ROC AUC of the binary label's scores
LOG_LOSS = Metric(
    "log_loss", "log loss", "lower", 0.0, math.inf
)  # binary cross-entropy of the probabilities, sklearn's
CTR_METRICS = ("auc", "log_loss", "accuracy")


def ctr_metrics(y_true: Tensor | np.ndarray, prob: Tensor | np.ndarray, loss: float) -> dict[str, float]:
    """auc, log_loss, accuracy (threshold 0.5) of probabilities `prob` for labels in {0, 1}; plus loss.

    AUC is NaN when the labels hold one class only; a non-finite probability makes every metric NaN."""
    from sklearn.metrics import log_loss, roc_auc_score

    t = np.asarray(torch.as_tensor(y_true).cpu(), dtype=np.int64)
    p = np.asarray(torch.as_tensor(prob).cpu(), dtype=np.float64)
    if not np.isfinite(p).all():
        return {"auc": math.nan, "log_loss": math.nan, "accuracy": math.nan, "loss": float(loss)}
    auc = float(roc_auc_score(t, p)) if len(np.unique(t)) == 2 else math.nan
    return {
        "auc": auc,
        "log_loss": float(log_loss(t, p, labels=[0, 1])),
        "accuracy": float(np.mean((p > 0.5) == (t == 1))),
        "loss": float(loss),
    }


class CTRTask(Task):
    name = "ctr"
    title = "click-through rate prediction"
    summary = "click-through rate: hashed categorical ids -> Wide&Deep logit (BCE; AUC, log loss)"
    models = ("wide-deep",)
    metrics = CTR_METRICS
    declared_metrics = (AUC, LOG_LOSS, ACCURACY)
    headline = "auc"
    curve = "accuracy"

    def prepare(self, config: Any, seed: int, device: torch.device) -> TaskData:
        data = load_dataset(config.dataset, config.data_dir, **config.dataset_options)
        train, val = stratified_split(data.train, config.val_fraction, seed=seed)
        test = data.test
        if device.type != "cpu" and config.data_on_device:
            train, val, test = (s.to(device) for s in (train, val, test))
        info = {"buckets": data.buckets, "n_fields": len(data.fields), "n_crosses": len(data.crosses)}
        weights = None
        if config.weighted_sampler:
            from optimlab.data import class_balancing_weights

            weights = class_balancing_weights(train.y, 2)
        return TaskData(train, val, test, 2, list(data.class_names), info, weights, None)

    def build_model(self, config: Any, data: TaskData) -> nn.Module:
        return WideDeep(data.info["buckets"], data.info["n_fields"], width=config.width)

    def forward_macs(self, config: Any) -> int:
        """The deep MLP's multiply-accumulates (the embeddings are look-ups), for ~23 fields."""
        e, h1, h2 = (max(1, round(v * float(config.width))) for v in (8, 256, 128))
        return 23 * e * h1 + h1 * h2 + h2

    def describe(self, config: Any) -> dict[str, Any]:
        data = load_dataset(config.dataset, config.data_dir, **config.dataset_options)
        positive = float(data.train.y.double().mean())
        return {
            "n_train": len(data.train),
            "n_test": len(data.test),
            "num_classes": 2,
            "detail": f"{len(data.fields)} fields + {len(data.crosses)} crosses hashed into {data.buckets:,} ids, "
            f"{positive:.1%} positive",
        }

    def loss(self, output: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
        return F.binary_cross_entropy_with_logits(output, y.to(output.dtype), reduction=reduction)

    def correct(self, output: Tensor, y: Tensor) -> Tensor:
        return ((output > 0) == (y == 1)).sum()

    def evaluate(self, model: nn.Module, split: Split, batch_size: int, runtime: Runtime) -> Evaluation:
        model.eval()
        n = len(split)
        device = runtime.device
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        probs = []
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                x = split.x[start : start + batch_size].to(device, non_blocking=True)
                y = split.y[start : start + batch_size].to(device, non_blocking=True)
                with runtime.autocast():
                    logit = model(x)
                    loss = self.loss(logit, y, reduction="sum")
                loss_sum += loss.double()
                probs.append(torch.sigmoid(logit.double()))
        prob = torch.cat(probs).cpu()
        predictions = (prob > 0.5).long()
        accuracy = float((predictions == split.y.cpu()).double().mean())
        return Evaluation(float(loss_sum) / n, accuracy, predictions, prob)

    def final_metrics(
        self, split: Split, evaluation: Evaluation, data: TaskData
    ) -> tuple[dict[str, float], list[list[int]]]:
        from sklearn.metrics import confusion_matrix

        assert evaluation.scores is not None
        metrics = ctr_metrics(split.y, evaluation.scores, evaluation.loss)
        t = np.asarray(split.y.cpu(), dtype=np.int64)
        confusion = confusion_matrix(t, evaluation.predictions.numpy(), labels=[0, 1]).astype(int).tolist()
        return metrics, confusion


__all__ = ["AUC", "CTR_METRICS", "LOG_LOSS", "CTRTask", "ctr_metrics"]
