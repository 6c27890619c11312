"""Object detection (paper 004's OD row: Fast R-CNN and RFBNet on VOC2007, mAP).

Data: optimlab.data.voc_detection ("voc2007": the official VOCdevkit layout, trainval -> train,
test -> test) or "mnist-detection" (the CPU stand-in: deterministic scenes of 1-4 real mnist-5k digit
crops with their tight boxes, class = digit; optimlab.data.detection_mnist). Targets [N, M, 6]
(class, difficult, x1, y1, x2, y2), padding rows class -1. The validation split is a random
`val_fraction` of the training images drawn with the run seed; the test split is never touched.

Model: optimlab.models.detector.Detector ("ssd-small"), an SSD-style single-stage detector on
strides 8 and 16 with 6 anchors per cell. Loss: SSD's multibox loss (Liu et al. 2016, Eq. 1-3):
anchors match a ground-truth box at IoU >= 0.5, and every box claims its best anchor (a later box
of the same image wins a shared anchor, as ssd.pytorch's match); difficult boxes are not trained on.
Classification: softmax cross-entropy over C + 1 classes (0 = background) on the positives and the
3 × as many highest-loss negatives per image (hard negative mining); localization: smooth L1 (β = 1)
between the positives' box outputs and their boxes encoded against the anchors (optimlab.models.
boxes.encode); both summed and divided by the batch's positives (at least 1).

Metrics (optimlab.tasks.detection_map, the VOC protocol at IoU 0.5 with difficult boxes ignored):
"map", VOC2007's 11-point mAP (the headline: the paper's VOC2007 tables use it) and "map_allpoint"
(VOC2010's area under the precision envelope), both fractions; computed on the detections after
decode, per-class NMS and the top 100 (optimlab.models.detector.postprocess). The per-epoch curve
(History.val_acc / test_acc) is the 11-point mAP; the running training figure (History.train_acc) is
each image's share of positive anchors whose arg-max class is the box's, averaged over the images.
Divergence: the default rule (NaN/Inf, or a running loss above diverge_factor x the first batch's).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optimlab.data import Split, load_dataset
from optimlab.models.boxes import box_iou, encode
from optimlab.models.detector import MAX_DETECTIONS, Detector, postprocess
from optimlab.stats.metrics import Metric
from optimlab.tasks.base import (
    Evaluation,
    Runtime,
    StepContext,
    Task,
    TaskData,
    conv_linear_macs,
    declared_shape,
    random_splits,
)
from optimlab.tasks.detection_map import voc_map

MAP = Metric(  # VOC2007's 11-point mAP
    "map",
    "mAP@0.5 (VOC07 11-point) %",
    "higher",
    0.0,
    1.0,
    percent=True,
    headline_title="test mAP@0.5 (VOC07 11-point)",
)
MAP_ALLPOINT = Metric("map_allpoint", "mAP@0.5 (all-point) %", "higher", 0.0, 1.0, percent=True)  # VOC2010+'s
DETECTION_MODELS = ("ssd-small",)
POSITIVE_IOU = 0.5
NEGATIVES_PER_POSITIVE = 3


def match_anchors(anchors: Tensor, targets: Tensor, positive_iou: float = POSITIVE_IOU) -> tuple[Tensor, Tensor]:
    """(labels [B, A] int64: 0 background or class + 1, boxes [B, A, 4]: each anchor's matched box)."""
    b, m = targets.shape[:2]
    gt = targets[..., 2:].float()
    valid = (targets[..., 0] >= 0) & (targets[..., 1] == 0)  # real, non-difficult objects
    iou = box_iou(anchors.float(), gt.reshape(-1, 4)).reshape(-1, b, m).permute(1, 0, 2)  # [B, A, M]
    iou = torch.where(valid[:, None, :], iou, torch.full_like(iou, -1.0))
    best_iou, best_gt = iou.max(dim=2)  # [B, A]
    best_anchor = iou.argmax(dim=1)  # [B, M]
    rows = torch.arange(b, device=targets.device)
    for j in range(m):  # every box claims its best anchor; in box order, so a later box wins a shared one
        ok = valid[:, j]
        r, a = rows[ok], best_anchor[ok, j]
        best_iou[r, a] = 2.0
        best_gt[r, a] = j
    cls = targets[..., 0].long().gather(1, best_gt) + 1
    labels = torch.where(best_iou >= positive_iou, cls, torch.zeros_like(cls))
    boxes = gt.gather(1, best_gt[..., None].expand(-1, -1, 4))
    return labels, boxes


def multibox_loss(output: tuple[Tensor, Tensor], targets: Tensor, anchors: Tensor) -> tuple[Tensor, Tensor]:
    """(SSD's loss as above, the summed per-image share of correctly classified positive anchors)."""
    logits, deltas = output
    logits, deltas = logits.float(), deltas.float()
    labels, boxes = match_anchors(anchors, targets)
    pos = labels > 0
    n_pos = pos.sum(dim=1)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none").view_as(labels)
    with torch.no_grad():  # hard negative mining: the highest-loss negatives, 3 per positive of the image
        mined = ce.masked_fill(pos, 0.0)
        rank = mined.argsort(dim=1, descending=True, stable=True).argsort(dim=1)
        neg = rank < (NEGATIVES_PER_POSITIVE * n_pos).clamp(max=labels.shape[1] - 1)[:, None]
    conf = ce[pos | neg].sum()
    anchors_b = anchors.float().expand_as(boxes)
    loc = F.smooth_l1_loss(deltas[pos], encode(boxes[pos], anchors_b[pos]), reduction="sum", beta=1.0)
    loss = (conf + loc) / n_pos.sum().clamp(min=1)
    with torch.no_grad():
        right = ((logits.argmax(dim=2) == labels) & pos).sum(dim=1)
        share = (right.double() / n_pos.clamp(min=1)).sum()
    return loss, share


def pad_detections(detections: list[Tensor], width: int = MAX_DETECTIONS) -> Tensor:
    """Per-image [D, 6] detections -> float32 [N, width, 6]; padding rows class -1, score 0."""
    out = torch.zeros(len(detections), width, 6, dtype=torch.float32)
    out[:, :, 5] = -1
    for i, d in enumerate(detections):
        out[i, : d.shape[0]] = d[:width].float().cpu()
    return out


def unpad_detections(predictions: Tensor) -> list[Tensor]:
    return [p[p[:, 5] >= 0] for p in predictions]


class DetectionTask(Task):
    name = "detection"
    summary = "object detection: images -> labelled boxes, SSD-style single-stage detector, VOC mAP@0.5"
    title = "object detection"
    models = DETECTION_MODELS
    metrics = ("map", "map_allpoint")
    declared_metrics = (MAP, MAP_ALLPOINT)
    headline = "map"
    curve = "map"

    def prepare(self, config: Any, seed: int, device: torch.device) -> TaskData:
        data, (train, val, test) = random_splits(config, seed, device)
        info = {"input_shape": data.input_shape, "dataset_name": data.name}
        return TaskData(train, val, test, data.num_classes, list(data.class_names), info)

    def build_model(self, config: Any, data: TaskData) -> nn.Module:
        return Detector(data.num_classes, data.info["input_shape"], width=config.width)

    def forward_macs(self, config: Any) -> int:
        shape, classes = declared_shape(config)
        with torch.device("meta"):  # shapes only: no memory, no weights drawn from the caller's stream
            model = Detector(classes, shape, width=config.width)
        return conv_linear_macs(model, shape)

    def describe(self, config: Any) -> dict[str, Any]:
        data = load_dataset(config.dataset, config.data_dir, **config.dataset_options)
        c, h, w = data.input_shape
        objects = int((data.test_y[..., 0] >= 0).sum())
        kind = (
            "STAND-IN, not VOC2007: deterministic 64x64 scenes of 1-4 real mnist-5k digit crops on black, "
            "tight boxes from the digits' pixels, class = digit"
            if config.dataset == "mnist-detection"
            else "VOC2007 boxes as annotated (difficult ones ignored by the metric)"
        )
        return {
            "n_train": int(data.train_y.shape[0]),
            "n_test": int(data.test_y.shape[0]),
            "num_classes": data.num_classes,
            "detail": f"{objects:,} test boxes, {h}x{w} images; {kind}",
        }

    @staticmethod
    def _anchors(model: Any) -> Tensor:
        """The detector's anchors (a buffer, on the model's device)."""
        anchors: Tensor = model.anchors
        return anchors

    def loss(self, output: Any, y: Tensor, reduction: str = "mean") -> Tensor:
        raise NotImplementedError("detection's loss needs the model's anchors: use multibox_loss")

    def train_step(self, ctx: StepContext, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Forward, SSD's loss (normalized by the batch's positive anchors), one optimizer step."""
        with ctx.runtime.autocast():
            output = ctx.forward(ctx.runtime.to_input(x))
            loss, share = multibox_loss(output, y, self._anchors(ctx.model))
        ctx.step("model", loss)
        return loss.detach(), share

    def correct(self, output: Any, y: Tensor) -> Tensor:
        raise NotImplementedError("detection's running figure comes from train_step (multibox_loss)")

    def evaluate(self, model: nn.Module, split: Split, batch_size: int, runtime: Runtime) -> Evaluation:
        model.eval()
        detections: list[Tensor] = []
        loss_sum = 0.0
        anchors = self._anchors(model)
        size = tuple(split.x.shape[-2:])
        with torch.inference_mode():
            for start in range(0, len(split), batch_size):
                x = runtime.to_input(split.x[start : start + batch_size].to(runtime.device, non_blocking=True))
                y = split.y[start : start + batch_size].to(runtime.device)
                with runtime.autocast():
                    logits, deltas = model(x)
                loss, _ = multibox_loss((logits, deltas), y, anchors)
                loss_sum += float(loss) * x.shape[0]
                detections += [d.cpu() for d in postprocess(logits, deltas, anchors, size)]  # type: ignore[arg-type]
        predictions = pad_detections(detections)
        finite = bool(torch.isfinite(predictions).all())
        result = voc_map(detections, split.y.cpu(), self._classes(model)) if finite else {"map": math.nan}
        return Evaluation(loss=loss_sum / max(len(split), 1), accuracy=float(result["map"]), predictions=predictions)  # type: ignore[arg-type]

    @staticmethod
    def _classes(model: nn.Module) -> int:
        return int(model.num_classes)  # type: ignore[arg-type]

    def final_metrics(
        self, split: Split, evaluation: Evaluation, data: TaskData
    ) -> tuple[dict[str, float], list[list[int]]]:
        if not torch.isfinite(evaluation.predictions).all():
            return {"map": math.nan, "map_allpoint": math.nan, "loss": evaluation.loss}, []
        result = voc_map(unpad_detections(evaluation.predictions), split.y.cpu(), data.num_classes)
        return {
            "map": float(result["map"]),  # type: ignore[arg-type]
            "map_allpoint": float(result["map_allpoint"]),  # type: ignore[arg-type]
            "loss": evaluation.loss,
        }, []


__all__ = [
    "MAP",
    "MAP_ALLPOINT",
    "DETECTION_MODELS",
    "DetectionTask",
    "match_anchors",
    "multibox_loss",
    "pad_detections",
    "unpad_detections",
]
