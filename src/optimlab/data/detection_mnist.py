"""The detection stand-in: deterministic scenes of real mnist-5k digit crops with their boxes.

No detection set (VOC2007 included) is available offline, so the CPU scale detects real handwritten
digits placed in synthetic scenes. A scene is a CANVAS × CANVAS black grey-scale image holding 1 to
MAX_DIGITS digits (uniform count), each:

    1. a digit drawn uniformly from the split's own mnist-5k digits (mnist-5k's fixed stratified
       4,000/1,000 split: test scenes only use test digits);
    2. cropped to its ink (the pixels > 0 of the 28×28 original), resized bilinearly (antialiased)
       to a height h ~ U(MIN_HEIGHT, MAX_HEIGHT) pixels, the crop's aspect ratio kept (width at most
       the canvas side minus 2);
    3. placed at a uniform position inside the canvas whose tight box overlaps no earlier digit's box
       (IoU 0; up to 50 tries, after which the digit is left out - the count is what was placed);
    4. pasted by pixel-wise maximum.

The label of a digit is its class (0-9); its box is the tight box of the resized crop's pixels
> INK · 255 (continuous coordinates: pixel j covers [j, j + 1)). Scenes are drawn with numpy's
RandomState(SCENE_SEED) for the training split and RandomState(SCENE_SEED + 1) for the test split
(part of the set's definition). No object is difficult. Against VOC2007: grey 64×64 scenes of 1-4
non-overlapping digits on black, 10 classes, no clutter, occlusion or scale range beyond 2× - a far
easier problem than VOC's 20 classes of photographed objects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from optimlab.data.mnist5k import read_mnist5k, split_indices
from optimlab.data.voc_detection import DetectionSplits, make_detection_splits

CANVAS = 64
MAX_DIGITS = 4
MIN_HEIGHT, MAX_HEIGHT = 14, 28
INK = 0.25  # a resized pixel belongs to the digit's box above this fraction of full intensity
SCENE_SEED = 0
N_TRAIN, N_TEST = 3000, 500
CLASS_NAMES = [str(d) for d in range(10)]


def _crop(digit: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(digit)
    return digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _resize(crop: np.ndarray, height: int, canvas: int) -> np.ndarray:
    h, w = crop.shape
    width = int(min(max(1, round(w * height / h)), canvas - 2))
    t = torch.from_numpy(crop.astype(np.float32))[None, None]
    out = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return out[0, 0].clamp(0, 255).round().numpy().astype(np.uint8)


def _overlaps(box: tuple[int, int, int, int], boxes: list[tuple[int, int, int, int]]) -> bool:
    x1, y1, x2, y2 = box
    return any(min(x2, b[2]) > max(x1, b[0]) and min(y2, b[3]) > max(y1, b[1]) for b in boxes)


def make_scenes(
    digits: np.ndarray, labels: np.ndarray, n: int, seed: int, canvas: int = CANVAS
) -> tuple[torch.Tensor, list[list[tuple[float, ...]]]]:
    """n scenes (uint8 [n, 1, canvas, canvas]) and their objects (class, 0, x1, y1, x2, y2) as above."""
    if len(digits) == 0:
        raise ValueError("make_scenes: no digits to place")
    rng = np.random.RandomState(seed)
    images = np.zeros((n, 1, canvas, canvas), dtype=np.uint8)
    objects: list[list[tuple[float, ...]]] = []
    crops: dict[int, np.ndarray] = {}
    for i in range(n):
        count = rng.randint(1, MAX_DIGITS + 1)
        placed: list[tuple[int, int, int, int]] = []
        rows: list[tuple[float, ...]] = []
        for _ in range(count):
            k = int(rng.randint(len(digits)))
            if k not in crops:
                crops[k] = _crop(digits[k])
            patch = _resize(crops[k], int(rng.randint(MIN_HEIGHT, MAX_HEIGHT + 1)), canvas)
            ink_rows, ink_cols = np.nonzero(patch > INK * 255)
            if ink_rows.size == 0:  # a faint digit: its box is its crop
                ink_rows, ink_cols = np.array([0, patch.shape[0] - 1]), np.array([0, patch.shape[1] - 1])
            ph, pw = patch.shape
            for _try in range(50):
                top, left = int(rng.randint(0, canvas - ph + 1)), int(rng.randint(0, canvas - pw + 1))
                box = (
                    left + int(ink_cols.min()),
                    top + int(ink_rows.min()),
                    left + int(ink_cols.max()) + 1,
                    top + int(ink_rows.max()) + 1,
                )
                if not _overlaps(box, placed):
                    break
            else:
                continue
            region = images[i, 0, top : top + ph, left : left + pw]
            np.maximum(region, patch, out=region)
            placed.append(box)
            rows.append((float(labels[k]), 0.0, *(float(v) for v in box)))
        objects.append(rows)
    return torch.from_numpy(images), objects


def load_mnist_detection(root: Path) -> DetectionSplits:
    """The stand-in from root = shared/data/mnist-5k: 3,000 train / 500 test 1×64×64 scenes, 10 classes."""
    digits, labels = read_mnist5k(Path(root))
    tr, te = (i.numpy() for i in split_indices(labels))
    train = make_scenes(digits[tr], labels[tr], N_TRAIN, SCENE_SEED)
    test = make_scenes(digits[te], labels[te], N_TEST, SCENE_SEED + 1)
    return make_detection_splits("mnist-detection", train, test, CLASS_NAMES, scale=1 / 255)


__all__ = ["CANVAS", "CLASS_NAMES", "MAX_DIGITS", "load_mnist_detection", "make_scenes"]
