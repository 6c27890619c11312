"""The segmentation stand-in: real mnist-5k digits composited on procedural textured backgrounds.

No segmentation set is available offline, so this set segments real handwritten digits. It is
deterministic (fixed seeds are part of its definition) and built from shared/data/mnist-5k:

1. each 28×28 digit (ink α = pixel / 255) is centred on a CANVAS × CANVAS canvas and moved by one
   random affine map drawn with PLACE_SEED (rotation U(−20°, 20°), scale U(0.9, 1.15), shift
   U(−3, 3) pixels per axis; bilinear resampling, optimlab.data.keypoints_mnist.place);
2. each image gets its own texture drawn with TEXTURE_SEED: two colours c0, c1 ~ U(0.1, 0.7)³
   blended by a sinusoidal grating (frequency U(0.08, 0.3) cycles per pixel, random angle and
   phase), a second finer grating (U(0.3, 0.5) cycles per pixel, amplitude U(0, 0.12)) and pixel
   noise N(0, 0.04), clipped to [0, 1];
3. the digit is painted over it in a colour that contrasts with the texture's mean colour
   (per channel 0.92 ± 0.05 where that mean is below 0.4, else 0.08 ± 0.05):
   image = texture · (1 − α) + colour · α, stored as uint8 RGB;
4. the mask labels each pixel: 1 + the digit's class where α ≥ OBJECT_ALPHA (0.5), 255 ("void",
   ignored by loss and metrics like VOC's object borders) where VOID_ALPHA (0.15) ≤ α < 0.5 -
   the digit's anti-aliased rim - and 0 (background) elsewhere.

11 classes (background and the digits 0-9); the train/test split is mnist-5k's fixed stratified
4,000/1,000 split. Unlike VOC: one object per image, 32×32 pixels, synthetic backgrounds, an
object class that shape alone decides - a far easier problem than natural scenes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from optimlab.data.keypoints_mnist import affine_params, place
from optimlab.data.mnist5k import read_mnist5k, split_indices
from optimlab.data.voc_segmentation import IGNORE, SegmentationSplits, make_segmentation_splits

CANVAS = 32
PLACE_SEED = 1
TEXTURE_SEED = 2
MAX_ROTATION_DEG = 20.0
SCALE_RANGE = (0.9, 1.15)
MAX_SHIFT = 3.0
OBJECT_ALPHA = 0.5
VOID_ALPHA = 0.15
CLASS_NAMES = ["background", *(str(k) for k in range(10))]


def placement(n: int, seed: int = PLACE_SEED) -> np.ndarray:
    """[n, 4] float64 rows (θ radians, s, tx, ty pixels) of the digits' affine maps."""
    return affine_params(n, seed, MAX_ROTATION_DEG, SCALE_RANGE, MAX_SHIFT)


def textures(n: int, size: int = CANVAS, seed: int = TEXTURE_SEED) -> np.ndarray:
    """float32 [n, 3, size, size] in [0, 1]: the backgrounds of step 2."""
    rng = np.random.RandomState(seed)
    c0 = rng.uniform(0.1, 0.7, (n, 3, 1, 1))
    c1 = rng.uniform(0.1, 0.7, (n, 3, 1, 1))
    yy, xx = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")

    def grating(lo: float, hi: float) -> np.ndarray:
        f = rng.uniform(lo, hi, (n, 1, 1))
        angle = rng.uniform(0.0, np.pi, (n, 1, 1))
        phase = rng.uniform(0.0, 2 * np.pi, (n, 1, 1))
        return np.sin(2 * np.pi * f * (xx * np.cos(angle) + yy * np.sin(angle)) + phase)[:, None]

    coarse = 0.5 + 0.5 * grating(0.08, 0.3)
    fine = rng.uniform(0.0, 0.12, (n, 1, 1, 1)) * grating(0.3, 0.5)
    noise = rng.normal(0.0, 0.04, (n, 3, size, size))
    return np.clip(c0 + (c1 - c0) * coarse + fine + noise, 0.0, 1.0).astype(np.float32)


def digit_colours(texture: np.ndarray, seed: int = TEXTURE_SEED + 1) -> np.ndarray:
    """float32 [n, 3, 1, 1]: per channel 0.92 ± 0.05 on a dark texture channel (mean < 0.4), else 0.08 ± 0.05."""
    rng = np.random.RandomState(seed)
    mean = texture.mean(axis=(2, 3), keepdims=True)
    jitter = rng.uniform(-0.05, 0.05, mean.shape)
    return (np.where(mean < 0.4, 0.92, 0.08) + jitter).astype(np.float32)


def composite(digits: np.ndarray, labels: np.ndarray) -> tuple[Tensor, Tensor]:
    """(uint8 images [N, 3, CANVAS, CANVAS], int64 masks [N, CANVAS, CANVAS]) of steps 1-4."""
    alpha = place(torch.from_numpy(digits).float() / 255, placement(len(digits))).numpy()[:, None]
    texture = textures(len(digits))
    image = texture * (1 - alpha) + digit_colours(texture) * alpha
    pixels = np.rint(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    a = alpha[:, 0]
    mask = np.zeros(a.shape, dtype=np.int64)
    mask[a >= VOID_ALPHA] = IGNORE
    object_pixels = a >= OBJECT_ALPHA
    mask[object_pixels] = (1 + labels[:, None, None] + np.zeros_like(mask))[object_pixels]
    return torch.from_numpy(pixels), torch.from_numpy(mask)


def load_mnist_segmentation(root: Path) -> SegmentationSplits:
    """The stand-in set from root = shared/data/mnist-5k: 4,000 train / 1,000 test, 3×32×32, 11 classes."""
    digits, labels = read_mnist5k(Path(root))
    images, masks = composite(digits, labels)
    tr, te = split_indices(labels)
    return make_segmentation_splits(
        "mnist-segmentation", images[tr], masks[tr], images[te], masks[te], CLASS_NAMES, scale=1 / 255
    )


__all__ = ["CANVAS", "CLASS_NAMES", "composite", "load_mnist_segmentation", "placement", "textures"]
