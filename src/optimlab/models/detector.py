"""A small single-stage detector (SSD-style anchors on two feature maps), written here: no torchvision.

    model = Detector(num_classes=10, input_shape=(1, 64, 64), width=0.25)
    logits, deltas = model(x)                      # [B, A, C + 1] (class 0 = background), [B, A, 4]
    detections = postprocess(logits, deltas, model.anchors)   # per image [D, 6]: x1 y1 x2 y2 score class

Backbone: four stages of two 3×3 conv-BN-ReLU layers, the first of each with stride 2, channels
(64, 128, 256, 256) × width (each at least 4). The heads read stage 3 (stride 8) and stage 4
(stride 16): one 3×3 conv each for class logits (A_l · (C + 1) channels) and box offsets (A_l · 4).
Anchors: at every cell centre ((j + 0.5) · W / w_l, (i + 0.5) · H / h_l) of level l, two sizes s
(fractions of min(H, W): stride 8 -> 0.15, 0.25; stride 16 -> 0.4, 0.65) × three shapes h / w = r in
(1, 2, 1/2), w = s / √r, h = s · √r: 6 per cell. Anchor order = the heads' output order (level, row,
column, anchor). Box offsets are decoded with optimlab.models.boxes.decode (SSD's variances).

Postprocess (SSD's evaluation settings): softmax over C + 1 classes; per image, every (anchor, class)
pair with score > score_threshold (0.01), the pre_nms best (200) of those, per-class NMS at IoU 0.45,
then the max_detections (100) best, boxes clipped to the image.

Against the paper's Fast R-CNN (VGG16, selective-search proposals) and RFBNet (VGG16 + receptive-field
blocks, SSD head), this is a few hundred thousand parameters at width 1, trained from scratch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optimlab.models.boxes import batched_nms, decode

BASE_CHANNELS = (64, 128, 256, 256)
ANCHOR_SIZES = ((0.15, 0.25), (0.4, 0.65))  # per head level, fractions of min(H, W)
ANCHOR_RATIOS = (1.0, 2.0, 0.5)  # h / w
SCORE_THRESHOLD = 0.01
PRE_NMS = 200
NMS_IOU = 0.45
MAX_DETECTIONS = 100


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def make_anchors(input_shape: tuple[int, int, int], sizes: tuple[tuple[int, int], ...]) -> Tensor:
    """[A, 4] anchors (xyxy, input pixels) for head feature maps of `sizes` ((h, w) per level)."""
    _, height, width = input_shape
    side = min(height, width)
    out = []
    for (fh, fw), level_sizes in zip(sizes, ANCHOR_SIZES, strict=True):
        ys = (torch.arange(fh, dtype=torch.float32) + 0.5) * (height / fh)
        xs = (torch.arange(fw, dtype=torch.float32) + 0.5) * (width / fw)
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")
        shapes = torch.tensor(
            [[s * side / math.sqrt(r), s * side * math.sqrt(r)] for s in level_sizes for r in ANCHOR_RATIOS]
        )  # [k, 2] (w, h)
        centres = torch.stack([cx, cy], dim=-1).reshape(-1, 1, 2)  # [fh·fw, 1, 2]
        half = shapes.reshape(1, -1, 2) / 2
        out.append(torch.cat([centres - half, centres + half], dim=-1).reshape(-1, 4))
    return torch.cat(out)


def _down(n: int, times: int) -> int:
    for _ in range(times):
        n = (n - 1) // 2 + 1  # a 3×3 conv with stride 2 and padding 1
    return n


class Detector(nn.Module):
    """SSD-style single-stage detector on strides 8 and 16; see the module docstring."""

    anchors: Tensor  # [A, 4] buffer (registered in __init__; declared so its type is known)

    def __init__(self, num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"Detector: num_classes must be >= 1, got {num_classes}")
        c, h, w = input_shape
        if min(h, w) < 16:
            raise ValueError(f"Detector: input must be at least 16×16 pixels, got {h}×{w}")
        if not width > 0:
            raise ValueError(f"Detector: width must be > 0, got {width}")
        ch = [max(4, int(round(b * width))) for b in BASE_CHANNELS]
        cins = [c, *ch[:-1]]
        self.stages = nn.ModuleList(nn.Sequential(_conv(i, o, 2), _conv(o, o, 1)) for i, o in zip(cins, ch))
        k = len(ANCHOR_RATIOS) * 2
        self.num_classes = num_classes
        self.cls_heads = nn.ModuleList(nn.Conv2d(ch[i], k * (num_classes + 1), 3, padding=1) for i in (2, 3))
        self.box_heads = nn.ModuleList(nn.Conv2d(ch[i], k * 4, 3, padding=1) for i in (2, 3))
        self.input_shape: tuple[int, int, int] = (c, h, w)
        sizes = tuple((_down(h, s), _down(w, s)) for s in (3, 4))
        self.register_buffer("anchors", make_anchors(self.input_shape, sizes), persistent=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= 2:
                feats.append(x)
        b = x.shape[0]
        logits = [
            head(f).permute(0, 2, 3, 1).reshape(b, -1, self.num_classes + 1)
            for head, f in zip(self.cls_heads, feats, strict=True)
        ]
        deltas = [head(f).permute(0, 2, 3, 1).reshape(b, -1, 4) for head, f in zip(self.box_heads, feats, strict=True)]
        return torch.cat(logits, 1), torch.cat(deltas, 1)


@torch.no_grad()
def postprocess(
    logits: Tensor,
    deltas: Tensor,
    anchors: Tensor,
    image_size: tuple[int, int],
    score_threshold: float = SCORE_THRESHOLD,
    pre_nms: int = PRE_NMS,
    nms_iou: float = NMS_IOU,
    max_detections: int = MAX_DETECTIONS,
) -> list[Tensor]:
    """Per image, [D, 6] float32 detections (x1, y1, x2, y2, score, class 0..C-1) by descending score."""
    height, width = image_size
    probs = F.softmax(logits.float(), dim=-1)[..., 1:]  # [B, A, C] without the background
    boxes = decode(deltas.float(), anchors.float())  # [B, A, 4]
    boxes = torch.stack(
        [boxes[..., 0].clamp(0, width), boxes[..., 1].clamp(0, height), boxes[..., 2].clamp(0, width),
         boxes[..., 3].clamp(0, height)],
        dim=-1,
    )  # fmt: skip
    num_classes = probs.shape[-1]
    out = []
    for p, bx in zip(probs, boxes, strict=True):
        flat = p.reshape(-1)
        idx = torch.nonzero(flat > score_threshold).flatten()
        if idx.numel() > pre_nms:
            idx = idx[torch.topk(flat[idx], pre_nms, sorted=False).indices]
        scores, anchor, cls = flat[idx], idx // num_classes, idx % num_classes
        cand = bx[anchor]
        ok = (cand[:, 2] > cand[:, 0]) & (cand[:, 3] > cand[:, 1]) & torch.isfinite(scores)
        cand, scores, cls = cand[ok], scores[ok], cls[ok]
        keep = batched_nms(cand, scores, cls, nms_iou)[:max_detections]
        out.append(torch.cat([cand[keep], scores[keep, None], cls[keep, None].float()], dim=1))
    return out


__all__ = ["ANCHOR_RATIOS", "ANCHOR_SIZES", "Detector", "make_anchors", "postprocess"]
