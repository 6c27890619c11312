"""The key-point stand-in: points that are a fixed, documented function of real mnist-5k digits.

No real key-point set is available offline, so this set regresses points computed from real
images. Each of the 5,000 digits is centred on a CANVAS × CANVAS black canvas and moved by one
random affine map drawn once with a fixed seed (AFFINE_SEED, part of the set's definition):
rotation θ ~ U(−25°, 25°), isotropic scale s ~ U(0.75, 1.05), translation t ~ U(−3, 3) pixels per
axis, bilinear resampling (torch.nn.functional.grid_sample, zero padding). On the placed image
(ink = pixel value in [0, 1]) the K = 5 targets are

    0  the ink centroid: intensity-weighted mean (x, y) of all pixels;
    1  the leftmost ink point: smallest column with a pixel > INK, y = mean row of those pixels;
    2  the rightmost ink point (largest such column), likewise;
    3  the topmost ink point: smallest row with a pixel > INK, x = mean column of those pixels;
    4  the bottommost ink point (largest such row), likewise;

in pixel-centre coordinates (pixel j spans [j, j+1), centre j + 0.5) mapped to [-1, 1] by
u = 2·x / CANVAS − 1, v = 2·y / CANVAS − 1, like the folder loader. The train/test split is
mnist-5k's fixed stratified 4,000/1,000 split. A real face key-point set differs: 68 semantic
points on colour photographs; these are geometric points of handwritten digits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from optimlab.data.keypoints import KeypointSplits, make_keypoint_splits
from optimlab.data.mnist5k import read_mnist5k, split_indices

CANVAS = 32
AFFINE_SEED = 0
MAX_ROTATION_DEG = 25.0
SCALE_RANGE = (0.75, 1.05)
MAX_SHIFT = 3.0  # pixels per axis
INK = 0.5  # a pixel counts as ink for the extreme points above this value
NUM_POINTS = 5
POINT_NAMES = ("centroid", "left", "right", "top", "bottom")


def affine_params(
    n: int,
    seed: int = AFFINE_SEED,
    max_rotation_deg: float = MAX_ROTATION_DEG,
    scale_range: tuple[float, float] = SCALE_RANGE,
    max_shift: float = MAX_SHIFT,
) -> np.ndarray:
    """[n, 4] float64 rows (θ radians, s, tx, ty pixels), drawn with numpy's RandomState(seed); the
    ranges default to this data set's (mnist-segmentation passes its own)."""
    rng = np.random.RandomState(seed)
    theta = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, n))
    s = rng.uniform(*scale_range, n)
    t = rng.uniform(-max_shift, max_shift, (n, 2))
    return np.column_stack([theta, s, t])


def place(images: Tensor, params: np.ndarray, canvas: int = CANVAS) -> Tensor:
    """images float [N, H, W] in [0, 1] -> float32 [N, canvas, canvas], each moved by its affine map.

    Output point p (pixels, relative to the canvas centre) shows input point R(θ)ᵀ (p − t) / s.
    """
    n, h, w = images.shape
    top, left = (canvas - h) // 2, (canvas - w) // 2
    padded = torch.zeros(n, 1, canvas, canvas, dtype=torch.float32)
    padded[:, 0, top : top + h, left : left + w] = images.float()
    p = torch.from_numpy(params)
    cos, sin, s = torch.cos(p[:, 0]), torch.sin(p[:, 0]), p[:, 1]
    a = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1) / s.view(-1, 1, 1)  # Rᵀ/s
    shift = -(a @ (2 * p[:, 2:] / canvas).unsqueeze(2))  # translation in normalized units
    theta = torch.cat([a, shift], dim=2).float()
    grid = F.affine_grid(theta, [n, 1, canvas, canvas], align_corners=False)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]


def keypoints_of(images: Tensor) -> Tensor:
    """The 5 points defined above for float images [N, H, W] (H = W): float64 [N, 10] in [-1, 1]."""
    x = images.double()
    n, h, w = x.shape
    cols = torch.arange(w, dtype=torch.float64) + 0.5
    rows = torch.arange(h, dtype=torch.float64) + 0.5
    out = torch.empty(n, 2 * NUM_POINTS, dtype=torch.float64)
    mass = x.sum(dim=(1, 2)).clamp_min(1e-12)
    out[:, 0] = (x.sum(dim=1) * cols).sum(1) / mass
    out[:, 1] = (x.sum(dim=2) * rows).sum(1) / mass
    ink = x > INK
    for i in range(n):
        m = ink[i] if bool(ink[i].any()) else x[i] >= x[i].max()  # an inkless image uses its brightest pixels
        cs = torch.nonzero(m.any(dim=0)).flatten()
        rs = torch.nonzero(m.any(dim=1)).flatten()
        c0, c1, r0, r1 = int(cs[0]), int(cs[-1]), int(rs[0]), int(rs[-1])
        out[i, 2:4] = torch.tensor([cols[c0], rows[m[:, c0]].mean()])
        out[i, 4:6] = torch.tensor([cols[c1], rows[m[:, c1]].mean()])
        out[i, 6:8] = torch.tensor([cols[m[r0]].mean(), rows[r0]])
        out[i, 8:10] = torch.tensor([cols[m[r1]].mean(), rows[r1]])
    out[:, 0::2] = 2 * out[:, 0::2] / w - 1
    out[:, 1::2] = 2 * out[:, 1::2] / h - 1
    return out


def load_mnist_keypoints(root: Path) -> KeypointSplits:
    """The stand-in set from root = shared/data/mnist-5k: 4,000 train / 1,000 test, 1×32×32, K = 5."""
    digits, labels = read_mnist5k(Path(root))
    placed = place(torch.from_numpy(digits).float() / 255, affine_params(len(digits)))
    points = keypoints_of(placed)
    tr, te = split_indices(labels)
    x = placed.unsqueeze(1)
    return make_keypoint_splits("mnist-keypoints", x[tr], points[tr].float(), x[te], points[te].float())


__all__ = ["CANVAS", "POINT_NAMES", "affine_params", "keypoints_of", "load_mnist_keypoints", "place"]
