"""Semantic segmentation (paper 004's SEG row: LR-ASPP on VOC2007, mIoU).

Data: optimlab.data: "voc2007-segmentation" (the official VOCdevkit/VOC2007 layout) or
"mnist-segmentation" (the CPU stand-in: real mnist-5k digits on procedural textured backgrounds,
mask = the digit's pixels labelled 1 + its class; optimlab.data.segmentation_mnist). Targets are
[H, W] class ids; 255 marks "void" pixels (VOC's object borders), which no loss or metric counts.
The validation split is a random `val_fraction` of the training split drawn with the run seed;
the test split is never touched.
Model: LR-ASPP (optimlab.models.lraspp: `lraspp` on MobileNetV3-Large, `lraspp-resnet18` on the CIFAR
ResNet-18 for small images), logits [B, K, H, W].
Loss: pixel-wise cross-entropy over the non-void pixels of the batch (torch's
cross_entropy(ignore_index=255), as torchvision's segmentation reference), mean over those pixels.
Metrics (test split): mIoU and pixel accuracy from the confusion matrix of the non-void pixels of
every test image (scikit-learn's confusion_matrix, rows = true class):

    IoU_k = C_kk / (Σ_j C_kj + Σ_i C_ik − C_kk)       mIoU = mean of IoU_k over the classes k whose
    pixel accuracy = Σ_k C_kk / Σ C                   union is non-empty (present in truth or prediction)

(a class absent from both the truth and the predictions has no IoU and is left out of the mean, as
mmsegmentation's nanmean does; the VOC devkit and torchvision's reference average over all classes,
which is the same whenever every class occurs in the test split, as on VOC val). The per-epoch curve (History.train_acc / val_acc /
test_acc) is pixel accuracy: on the evaluated splits pooled over their pixels; while training, the
mean over the images seen of each image's pixel accuracy (an image without labelled pixels counts 0).
Divergence: the default rule (NaN/Inf, or a running training loss above diverge_factor x the first
batch's).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optimlab.data import Split, load_dataset
from optimlab.models import create_model
from optimlab.stats.metrics import Metric
from optimlab.tasks.base import (
    Evaluation,
    Runtime,
    Task,
    TaskData,
    declared_shape,
    random_splits,
    registered_model_macs,
)

IGNORE = 255  # VOC's void label (optimlab.data.voc_segmentation.IGNORE)
MIOU = Metric(
    "miou", "mIoU %", "higher", 0.0, 1.0, percent=True, headline_title="test mIoU"
)  # mean IoU over classes (void ignored)
PIXEL_ACCURACY = Metric("pixel_accuracy", "pixel accuracy %", "higher", 0.0, 1.0, percent=True)  # non-void pixels right
SEGMENTATION_MODELS = ("lraspp", "lraspp-resnet18")


def confusion(true: np.ndarray | Tensor, pred: np.ndarray | Tensor, num_classes: int) -> np.ndarray:
    """int64 [K, K] confusion matrix (rows: true class, columns: predicted) of the pixels whose true
    label is not IGNORE; labels and predictions of any shape, as arrays or tensors."""
    from sklearn.metrics import confusion_matrix

    t = np.asarray(true).reshape(-1)
    p = np.asarray(pred).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"labels ({t.size} pixels) and predictions ({p.size} pixels) differ in size")
    keep = t != IGNORE
    t, p = t[keep], p[keep]
    bad = (t < 0) | (t >= num_classes)
    if bad.any():
        raise ValueError(f"label {int(t[bad][0])} outside 0..{num_classes - 1} (and {IGNORE}, ignored)")
    if t.size == 0:  # every pixel void: an empty matrix (metrics NaN); scikit-learn >= 1.8 rejects empty input
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    return confusion_matrix(t, p, labels=np.arange(num_classes)).astype(np.int64)


def iou_per_class(matrix: np.ndarray) -> np.ndarray:
    """float64 [K]: each class's intersection over union; NaN where the union is empty."""
    m = np.asarray(matrix, dtype=np.float64)
    inter = np.diag(m)
    union = m.sum(axis=0) + m.sum(axis=1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def segmentation_metrics(matrix: np.ndarray) -> dict[str, float]:
    """{"miou", "pixel_accuracy"} of a confusion matrix (NaN when it counts no pixel)."""
    m = np.asarray(matrix, dtype=np.float64)
    total = m.sum()
    if total == 0:
        return {"miou": float("nan"), "pixel_accuracy": float("nan")}
    return {"miou": float(np.nanmean(iou_per_class(m))), "pixel_accuracy": float(np.trace(m) / total)}


def pixel_correct(output: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """(correct, labelled) non-void pixel counts per image, int64 [B] each, of logits [B, K, H, W].

    A pixel is correct when its true class's logit is the largest (amax + gather: ~25x faster on CPU
    than an argmax over the class dimension; it differs from argmax only on exact ties)."""
    labelled = y != IGNORE
    true_logit = output.gather(1, torch.where(labelled, y, 0).unsqueeze(1)).squeeze(1)
    hit = (true_logit >= output.amax(dim=1)) & labelled
    return hit.flatten(1).sum(1), labelled.flatten(1).sum(1)


def predict(output: Tensor) -> Tensor:
    """Class ids [B, H, W] (argmax over K, the first on ties) of logits [B, K, H, W]; the argmax runs
    over a channels-last copy (3x faster on CPU than over the strided class dimension)."""
    return output.permute(0, 2, 3, 1).contiguous().argmax(dim=-1)


class SegmentationTask(Task):
    name = "segmentation"
    summary = "semantic segmentation: images -> a class per pixel (255 void ignored), LR-ASPP, test mIoU"
    title = "semantic segmentation"
    models = SEGMENTATION_MODELS
    metrics = ("miou", "pixel_accuracy")
    declared_metrics = (MIOU, PIXEL_ACCURACY)
    headline = "miou"
    curve = "pixel_accuracy"

    def prepare(self, config: Any, seed: int, device: torch.device) -> TaskData:
        data, (train, val, test) = random_splits(config, seed, device)
        info = {"input_shape": data.input_shape, "num_classes": data.num_classes, "dataset_name": data.name}
        return TaskData(train, val, test, data.num_classes, list(data.class_names), info)

    def build_model(self, config: Any, data: TaskData) -> nn.Module:
        return create_model(config.model, data.num_classes, data.info["input_shape"], width=config.width)

    def forward_macs(self, config: Any) -> int:
        shape, classes = declared_shape(config)
        return registered_model_macs(config, classes, shape)

    def describe(self, config: Any) -> dict[str, Any]:
        data = load_dataset(config.dataset, config.data_dir, **config.dataset_options)
        _, h, w = data.input_shape
        kind = (
            "STAND-IN, not VOC: real mnist-5k digits composited on procedural textured backgrounds, the mask "
            "the digit's pixels labelled by its class (rim void)"
            if config.dataset == "mnist-segmentation"
            else "masks as annotated"
        )
        return {
            "n_train": int(data.train_y.shape[0]),
            "n_test": int(data.test_y.shape[0]),
            "num_classes": data.num_classes,
            "detail": f"a class per pixel of {h}x{w} images (background + {data.num_classes - 1} object classes), "
            f"void 255 ignored; {kind}",
        }

    def loss(self, output: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
        """Mean cross-entropy over the batch's non-void pixels; "sum": that mean x the batch's images,
        so that sum / images is the mean (DDP's uneven last batch scales it by world / global images)."""
        mean = F.cross_entropy(output.float(), y, ignore_index=IGNORE)
        return mean * y.shape[0] if reduction == "sum" else mean

    def correct(self, output: Tensor, y: Tensor) -> Tensor:
        # the running training curve: the batch's sum of per-image pixel accuracies (fit divides by images)
        hit, labelled = pixel_correct(output, y)
        return (hit.double() / labelled.clamp_min(1).double()).sum()

    def evaluate(self, model: nn.Module, split: Split, batch_size: int, runtime: Runtime) -> Evaluation:
        """Loss pooled over the split's non-void pixels; predictions: uint8 [N, H, W] class ids."""
        model.eval()
        predictions, loss_sum, hits, count = [], 0.0, 0, 0
        with torch.inference_mode():
            for start in range(0, len(split), batch_size):
                x = runtime.to_input(split.x[start : start + batch_size].to(runtime.device, non_blocking=True))
                y = split.y[start : start + batch_size].to(runtime.device, non_blocking=True)
                with runtime.autocast():
                    output = model(x).float()
                loss_sum += float(F.cross_entropy(output, y, ignore_index=IGNORE, reduction="sum"))
                pred = predict(output)
                labelled = y != IGNORE
                hits, count = hits + int(((pred == y) & labelled).sum()), count + int(labelled.sum())
                predictions.append(pred.to(torch.uint8).cpu())
        loss = loss_sum / count if count else float("nan")
        accuracy = hits / count if count else float("nan")
        return Evaluation(loss=loss, accuracy=accuracy, predictions=torch.cat(predictions))

    def final_metrics(
        self, split: Split, evaluation: Evaluation, data: TaskData
    ) -> tuple[dict[str, float], list[list[int]]]:
        matrix = confusion(split.y.cpu().numpy(), evaluation.predictions.numpy(), data.num_classes)
        metrics = segmentation_metrics(matrix)
        return {**metrics, "loss": float(evaluation.loss)}, matrix.tolist()


__all__ = [
    "MIOU",
    "PIXEL_ACCURACY",
    "SEGMENTATION_MODELS",
    "SegmentationTask",
    "confusion",
    "iou_per_class",
    "pixel_correct",
    "predict",
    "segmentation_metrics",
]
