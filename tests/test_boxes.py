"""Box operations (optimlab.models.boxes) against hand-computed cases: IoU, anchor encoding, NMS."""

from __future__ import annotations

import math

import pytest
import torch

from optimlab.models.boxes import batched_nms, box_iou, decode, encode, nms


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_iou_hand_cases():
    a = t([0, 0, 2, 2], [0, 0, 4, 4], [0, 0, 1, 1], [5, 5, 5, 5])
    b = t([1, 1, 3, 3], [1, 1, 3, 3], [1, 0, 2, 1], [0, 0, 2, 2])
    iou = box_iou(a, b)
    assert iou.shape == (4, 4)
    assert iou[0, 0] == pytest.approx(1 / 7)  # overlap 1, union 4 + 4 - 1
    assert iou[1, 1] == pytest.approx(4 / 16)  # contained
    assert iou[2, 2] == 0  # touching edges share no area
    assert iou[3, 3] == 0 and iou[3, 0] == 0  # a degenerate box
    assert iou[0, 3] == pytest.approx(1.0)  # identical boxes
    assert torch.equal(box_iou(a, b), box_iou(b, a).T)
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        box_iou(torch.zeros(3), b)


def test_encode_hand_cases_and_round_trip():
    anchor = t([0, 0, 10, 10], [0, 0, 10, 10])
    boxes = t([2, 3, 12, 13], [0, 0, 20, 5])  # centres (7, 8) and (10, 2.5); sizes 10x10 and 20x5
    got = encode(boxes, anchor)
    # t_x = (c_x - a_x) / (a_w * 0.1), t_w = log(w / a_w) / 0.2
    assert got[0].tolist() == pytest.approx([2.0, 3.0, 0.0, 0.0])
    assert got[1].tolist() == pytest.approx([5.0, -2.5, math.log(2) / 0.2, math.log(0.5) / 0.2])
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=g, dtype=torch.float64) * 50
    wh = torch.rand(200, 2, generator=g, dtype=torch.float64) * 30 + 0.5
    b = torch.cat([xy, xy + wh], 1)
    axy = torch.rand(200, 2, generator=g, dtype=torch.float64) * 50
    a = torch.cat([axy, axy + torch.rand(200, 2, generator=g, dtype=torch.float64) * 30 + 1], 1)
    assert torch.allclose(decode(encode(b, a), a), b, atol=1e-9)
    with pytest.raises(ValueError, match="positive width"):
        encode(t([0, 0, 0, 5]), t([0, 0, 1, 1]))


def test_decode_cannot_overflow():
    out = decode(torch.full((1, 4), 1e4, dtype=torch.float64), t([0, 0, 10, 10]))
    assert torch.isfinite(out).all()


def test_nms_hand_cases():
    boxes = t([0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95], dtype=torch.float64)
    # box 3 (0.95) keeps; box 0 is identical (IoU 1) -> dropped; box 1 overlaps box 3 at 81/119 -> dropped
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]
    assert nms(boxes, scores, 0.7).tolist() == [3, 1, 2]  # 81/119 = 0.68 is not above 0.7; IoU 1 is
    # IoU exactly 0.5 is kept (a box is dropped only above the threshold); equal scores: lower index first
    half = t([0, 0, 2, 1], [0, 0, 1, 1])
    assert nms(half, torch.tensor([0.5, 0.5], dtype=torch.float64), 0.5).tolist() == [0, 1]
    assert nms(half, torch.tensor([0.5, 0.5], dtype=torch.float64), 0.49).tolist() == [0]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0
    with pytest.raises(ValueError, match="scores must be"):
        nms(boxes, scores[:2], 0.5)


def test_batched_nms_only_suppresses_within_a_class():
    boxes = t([0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 11, 11])
    scores = torch.tensor([0.9, 0.8, 0.7], dtype=torch.float64)
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 2]), 0.5).tolist() == [0, 1, 2]
