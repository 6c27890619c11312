"""Mean average precision at IoU 0.5, the PASCAL VOC protocol (VOC2007's 11-point AP and VOC2010+'s
all-point AP), as the VOC devkit (VOCevaldet.m) and py-faster-rcnn's voc_eval.py compute it.

Per class c:
1. every detection of class c over all images, sorted by descending score (ties: image order, then
   the order of the image's detections);
2. each detection, in that order, is compared with the ground-truth boxes of class c in its image:
   the one of largest IoU (difficult ones included; of equal IoUs the first box in the image's
   annotation order, difficult or not, as the devkit's strict `ov > ovmax` scan keeps the first) is
   its match if that IoU is >= 0.5 (VOCevaldet.m of the 2007 and later devkits, `ovmax >=
   VOCopts.minoverlap`, as pycocotools; py-faster-rcnn's voc_eval.py uses a strict `> 0.5`, which
   differs only for an IoU of exactly 0.5). A match to a difficult box counts as neither true nor false positive
   (the detection is ignored); a match to a box not yet claimed is a true positive and claims it; a
   match to a claimed box (a duplicate) or no match is a false positive;
3. recall = cumulative TP / npos (npos = the non-difficult boxes of class c), precision = cumulative
   TP / cumulative (TP + FP);
4. AP, 11-point (VOC2007): the mean over t in {0, 0.1, ..., 1} of the largest precision at recall
   >= t (0 where no recall reaches t; t = k / 10 as a double, so a recall of 3/10 reaches t = 0.3, which
   py-faster-rcnn's np.arange(0, 1.1, 0.1) = 0.30000000000000004 misses); all-point (VOC2010 onwards): the area under the monotone
   precision envelope, sum over recall steps of (r_i − r_{i−1}) · max_{j >= i} p_j.
A class with no detections has AP 0. mAP = the mean AP over the classes with at least one
non-difficult ground-truth box (NaN when there is none); classes without one are left out, as VOC's
own per-class tables have no such class.

Boxes follow optimlab.models.boxes (continuous coordinates, width = x2 − x1), which is the devkit's
"+1" inclusive-pixel arithmetic after the loader's conversion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from optimlab.models.boxes import box_iou

IOU_THRESHOLD = 0.5


def average_precision(recall: np.ndarray, precision: np.ndarray, method: Literal["11point", "allpoint"]) -> float:
    """AP from a precision/recall curve (arrays in detection order) by VOC2007's 11 points or all points."""
    recall, precision = np.asarray(recall, dtype=np.float64), np.asarray(precision, dtype=np.float64)
    if method == "11point":
        ap = 0.0
        for k in range(11):  # t = k / 10, the double nearest k/10, so a recall of exactly 3/10 reaches t = 0.3
            above = precision[recall >= k / 10]
            ap += (float(above.max()) if above.size else 0.0) / 11.0
        return ap
    if method != "allpoint":
        raise ValueError(f"method must be '11point' or 'allpoint', got {method!r}")
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the monotone envelope
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


@dataclass
class ClassResult:
    npos: int  # non-difficult ground-truth boxes
    tp: np.ndarray  # [K] 1/0 per counted detection, in score order (ignored ones removed)
    fp: np.ndarray
    scores: np.ndarray

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        tp, fp = np.cumsum(self.tp), np.cumsum(self.fp)
        recall = tp / max(self.npos, 1)
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        return recall, precision


def match_detections(
    detections: list[Tensor], targets: Tensor, num_classes: int, iou_threshold: float = IOU_THRESHOLD
) -> list[ClassResult]:
    """Per class, the TP/FP flags of the VOC protocol above.

    detections: per image [D, 6] (x1, y1, x2, y2, score, class); targets: [N, M, 6] (class, difficult,
    x1, y1, x2, y2; class -1 = padding), as optimlab.data.voc_detection."""
    if len(detections) != targets.shape[0]:
        raise ValueError(f"{len(detections)} images of detections for {targets.shape[0]} images of targets")
    scores: list[list[float]] = [[] for _ in range(num_classes)]
    flags: list[list[int]] = [[] for _ in range(num_classes)]  # 1 TP, 0 FP, -1 ignored
    npos = [0] * num_classes
    for det, gt in zip(detections, targets, strict=True):
        gt = gt[gt[:, 0] >= 0].double()
        gt_cls = gt[:, 0].long().numpy()
        difficult = gt[:, 1].numpy() > 0
        for c in gt_cls[~difficult]:
            npos[int(c)] += 1
        if det.shape[0] == 0:
            continue
        det = det.double()
        order = torch.sort(det[:, 4], descending=True, stable=True).indices
        det = det[order]
        iou = box_iou(det[:, :4], gt[:, 2:]).numpy() if gt.shape[0] else np.zeros((det.shape[0], 0))
        det_cls = det[:, 5].long().numpy()
        det_scores = det[:, 4].numpy()
        claimed = np.zeros(gt.shape[0], dtype=bool)
        for d in range(det.shape[0]):
            c = int(det_cls[d])
            if not 0 <= c < num_classes:
                raise ValueError(f"detection class {c} outside 0..{num_classes - 1}")
            same = np.nonzero(gt_cls == c)[0]
            flag = 0
            if same.size:
                j = same[int(np.argmax(iou[d, same]))]  # ties: the first box (argmax), as the devkit
                if iou[d, j] >= iou_threshold:  # the devkit's ovmax >= minoverlap
                    if difficult[j]:
                        flag = -1
                    elif not claimed[j]:
                        flag, claimed[j] = 1, True
            scores[c].append(float(det_scores[d]))
            flags[c].append(flag)
    results = []
    for c in range(num_classes):
        s, f = np.asarray(scores[c], dtype=np.float64), np.asarray(flags[c], dtype=np.int64)
        by_score = np.argsort(-s, kind="stable")
        s, f = s[by_score], f[by_score]
        counted = f >= 0
        results.append(
            ClassResult(npos[c], (f[counted] == 1).astype(np.float64), (f[counted] == 0).astype(np.float64), s[counted])
        )
    return results


def voc_map(
    detections: list[Tensor], targets: Tensor, num_classes: int, iou_threshold: float = IOU_THRESHOLD
) -> dict[str, float | list[float]]:
    """{"map": VOC2007 11-point mAP, "map_allpoint": all-point mAP, "ap": [per-class 11-point AP, NaN
    for classes without non-difficult ground truth], "ap_allpoint": [likewise]} (fractions, not %)."""
    ap11: list[float] = []
    apall: list[float] = []
    for r in match_detections(detections, targets, num_classes, iou_threshold):
        if r.npos == 0:
            ap11.append(math.nan)
            apall.append(math.nan)
            continue
        recall, precision = r.curve()
        ap11.append(average_precision(recall, precision, "11point"))
        apall.append(average_precision(recall, precision, "allpoint"))
    valid = [a for a in ap11 if not math.isnan(a)]
    valid_all = [a for a in apall if not math.isnan(a)]
    return {
        "map": float(np.mean(valid)) if valid else math.nan,
        "map_allpoint": float(np.mean(valid_all)) if valid_all else math.nan,
        "ap": ap11,
        "ap_allpoint": apall,
    }


__all__ = ["IOU_THRESHOLD", "ClassResult", "average_precision", "match_detections", "voc_map"]
