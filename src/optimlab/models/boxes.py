"""Box operations of the detector and its metric, in torch: IoU, anchor encoding, non-maximum suppression.

Conventions (one set everywhere in optimlab):
- a box is (x1, y1, x2, y2) in continuous pixel coordinates of the network's input image: the image
  spans [0, W] × [0, H], pixel column j covers [j, j + 1) (so a box around pixels 3..5 inclusive is
  x1 = 3, x2 = 6); width = x2 − x1, height = y2 − y1 (no VOC-style "+1": VOC's 1-based inclusive pixel
  indices are converted by the loader, optimlab.data.voc_detection);
- IoU = area(A ∩ B) / area(A ∪ B), 0 when the union is empty;
- anchor encoding (SSD / Faster R-CNN's parameterization with SSD's variances v = (0.1, 0.2)):

      t_x = (c_x − a_x) / (a_w · v_0)     t_y = (c_y − a_y) / (a_h · v_0)
      t_w = log(w / a_w) / v_1            t_h = log(h / a_h) / v_1

  where (c_x, c_y, w, h) are the box's centre and size and (a_x, a_y, a_w, a_h) the anchor's; decode
  is its exact inverse.
- NMS: greedy, by descending score (ties: the lower index first); a box is dropped when its IoU with
  a kept box is strictly greater than the threshold (torchvision.ops.nms's rule).

References: Liu et al., "SSD: Single Shot MultiBox Detector" (ECCV 2016), Section 2.2; Ren et al.,
"Faster R-CNN" (NeurIPS 2015), Eq. (2).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

VARIANCES = (0.1, 0.2)


def _check(boxes: Tensor, name: str) -> None:
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must be [N, 4] (x1, y1, x2, y2), got shape {tuple(boxes.shape)}")


def box_area(boxes: Tensor) -> Tensor:
    """[N] areas of [N, 4] boxes (0 for degenerate ones)."""
    return (boxes[:, 2] - boxes[:, 0]).clamp_min(0) * (boxes[:, 3] - boxes[:, 1]).clamp_min(0)


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """[N, M] IoU of every box of a [N, 4] with every box of b [M, 4]."""
    _check(a, "a")
    _check(b, "b")
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp_min(0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp_min(torch.finfo(union.dtype).tiny), torch.zeros_like(inter))


def to_cxcywh(boxes: Tensor) -> Tensor:
    """[..., 4] (x1, y1, x2, y2) -> (centre x, centre y, width, height)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def to_xyxy(boxes: Tensor) -> Tensor:
    """[..., 4] (centre x, centre y, width, height) -> (x1, y1, x2, y2)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def encode(boxes: Tensor, anchors: Tensor, variances: tuple[float, float] = VARIANCES) -> Tensor:
    """[..., 4] regression targets (t_x, t_y, t_w, t_h) of boxes relative to same-shaped anchors (xyxy)."""
    b, a = to_cxcywh(boxes), to_cxcywh(anchors)
    if bool((b[..., 2:] <= 0).any()) or bool((a[..., 2:] <= 0).any()):
        raise ValueError("encode: every box and anchor needs a positive width and height")
    txy = (b[..., :2] - a[..., :2]) / (a[..., 2:] * variances[0])
    twh = torch.log(b[..., 2:] / a[..., 2:]) / variances[1]
    return torch.cat([txy, twh], dim=-1)


def decode(deltas: Tensor, anchors: Tensor, variances: tuple[float, float] = VARIANCES) -> Tensor:
    """The inverse of encode: [..., 4] boxes (xyxy) from regression outputs and anchors (broadcast).

    The size exponent is clamped at log(1000 / 16) (Detectron's bound) so an untrained head cannot
    overflow to Inf."""
    a = to_cxcywh(anchors)
    cxy = a[..., :2] + deltas[..., :2] * variances[0] * a[..., 2:]
    wh = a[..., 2:] * torch.exp((deltas[..., 2:] * variances[1]).clamp(max=4.135))
    return to_xyxy(torch.cat([cxy, wh], dim=-1))


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices (int64, by descending score) of the boxes greedy non-maximum suppression keeps."""
    _check(boxes, "boxes")
    if scores.shape != (boxes.shape[0],):
        raise ValueError(f"scores must be [{boxes.shape[0]}], got shape {tuple(scores.shape)}")
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.int64)
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes[order], boxes[order]).cpu()
    n = order.numel()
    overlaps = (iou > iou_threshold).triu(diagonal=1).numpy()  # overlaps[i, j]: i (higher score) drops j
    suppressed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):  # n is small after the detector's score threshold and top-k
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    return order[torch.tensor(keep, dtype=torch.int64)]


def batched_nms(boxes: Tensor, scores: Tensor, classes: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each class (boxes of different classes never suppress each other); kept indices by
    descending score. Done in one pass by moving each class's boxes to a region of its own."""
    _check(boxes, "boxes")
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.int64)
    span = float(boxes.max() - boxes.min()) + 1.0
    offset = classes.to(boxes.dtype)[:, None] * span
    return nms(boxes + offset, scores, iou_threshold)


__all__ = [
    "VARIANCES",
    "batched_nms",
    "box_area",
    "box_iou",
    "decode",
    "encode",
    "nms",
    "to_cxcywh",
    "to_xyxy",
]
