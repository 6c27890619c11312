"""Key-point regression data: images with K (x, y) points each, and the CSV + image-folder loader.

Supported on-disk format (the YouTube Faces key-point layout of Udacity's P1_Facial_Keypoints,
frames of the YouTube Faces data set with 68 annotated points each):

    root/training_frames_keypoints.csv    root/training/<image files>
    root/test_frames_keypoints.csv        root/test/<image files>

Each CSV has a header row (its first cell may be empty) and one row per image: the image's file
name (relative to the split's folder), then 2·K numbers x0, y0, x1, y1, ... in pixels of the
original image (x to the right, y down, origin at the top-left corner). Any K >= 1 works; all
rows must carry the same number. Images are decoded once with Pillow, converted to grey ("L"),
resized to image_size × image_size (aspect ratio not kept) and scaled to [0, 1], then normalized
by the training split's mean/std. Points are mapped to [-1, 1] per axis: u = 2·x / W − 1,
v = 2·y / H − 1 with the original width W and height H, so resizing does not move them and the
test MSE is in these units (mean over all 2·K coordinates and all images).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from optimlab.data.base import DatasetError, normalize_pair

SPLIT_FILES = {"train": ("training_frames_keypoints.csv", "training"), "test": ("test_frames_keypoints.csv", "test")}


@dataclass
class KeypointSplits:
    train_x: Tensor  # float32 [N, C, H, W], normalized
    train_y: Tensor  # float32 [N, 2K]: (u, v) pairs in [-1, 1] (may leave it for points off the image)
    test_x: Tensor
    test_y: Tensor
    input_shape: tuple[int, int, int]
    num_points: int  # K
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x, y = getattr(self, f"{part}_x"), getattr(self, f"{part}_y")
            if x.dim() != 4 or y.shape != (x.shape[0], 2 * self.num_points):
                raise ValueError(
                    f"{self.name}: {part} x {tuple(x.shape)} / y {tuple(y.shape)} do not match K={self.num_points}"
                )
            if x.dtype != torch.float32 or y.dtype != torch.float32:
                raise ValueError(f"{self.name}: {part} tensors must be float32")
            if x.shape[0] == 0:
                raise DatasetError(f"{self.name}: the {part} split is empty")

    @property
    def num_outputs(self) -> int:
        return 2 * self.num_points


def make_keypoint_splits(
    name: str, train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, scale: float = 1.0
) -> KeypointSplits:
    """Normalize raw pixels (scale, then the training split's per-channel mean/std) and wrap."""
    images = normalize_pair(train_x, test_x, scale)
    return KeypointSplits(
        train_x=images.train,
        train_y=train_y.float().contiguous(),
        test_x=images.test,
        test_y=test_y.float().contiguous(),
        input_shape=images.input_shape,  # type: ignore[arg-type]
        num_points=int(train_y.shape[1]) // 2,
        mean=images.mean,
        std=images.std,
        name=name,
    )


def _read_csv(path: Path) -> list[tuple[str, list[float]]]:
    if not path.is_file():
        raise DatasetError(f"keypoints: {path} not found")
    rows: list[tuple[str, list[float]]] = []
    width = None
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        try:
            next(reader)  # header
            for lineno, cells in enumerate(reader, 2):
                if not cells or all(not c.strip() for c in cells):
                    continue
                values = cells[1:]
                if width is None:
                    width = len(values)
                    if width == 0 or width % 2:
                        raise DatasetError(
                            f"keypoints: {path} line {lineno}: {width} coordinates, need an even number > 0"
                        )
                if len(values) != width:
                    raise DatasetError(f"keypoints: {path} line {lineno}: {len(values)} coordinates, expected {width}")
                try:
                    numbers = [float(v) for v in values]
                except ValueError:
                    raise DatasetError(f"keypoints: {path} line {lineno}: a coordinate is not a number") from None
                if not all(math.isfinite(v) for v in numbers):
                    raise DatasetError(f"keypoints: {path} line {lineno}: a coordinate is NaN or infinite")
                rows.append((cells[0].strip(), numbers))
        except StopIteration:
            raise DatasetError(f"keypoints: {path} is empty (no header row)") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DatasetError(f"keypoints: {path} is not a readable CSV ({exc})") from None
    if not rows:
        raise DatasetError(f"keypoints: {path} has a header but no rows")
    return rows


def _read_split(root: Path, split: str, size: int) -> tuple[Tensor, Tensor]:
    from PIL import Image

    csv_name, folder = SPLIT_FILES[split]
    rows = _read_csv(root / csv_name)
    xs = np.empty((len(rows), 1, size, size), dtype=np.uint8)
    ys = np.empty((len(rows), len(rows[0][1])), dtype=np.float64)
    for i, (name, coords) in enumerate(rows):
        path = root / folder / name
        if not path.is_file():
            raise DatasetError(f"keypoints: image {path} (listed in {root / csv_name}) not found")
        try:
            with Image.open(path) as opened:
                w, h = opened.size
                xs[i, 0] = np.asarray(opened.convert("L").resize((size, size), Image.Resampling.BILINEAR))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise DatasetError(f"keypoints: image {path} cannot be decoded ({exc})") from None
        pts = np.asarray(coords).reshape(-1, 2)
        ys[i] = np.stack([2 * pts[:, 0] / w - 1, 2 * pts[:, 1] / h - 1], axis=1).reshape(-1)
    return torch.from_numpy(xs), torch.from_numpy(ys).float()


def load_keypoints_folder(root: Path, image_size: int = 96) -> KeypointSplits:
    """The CSV + image-folder format above (e.g. YouTube Faces key points); errors name the file."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"keypoints: {root} is not a folder")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"keypoints: image_size must be an int >= 8, got {image_size!r}")
    train_x, train_y = _read_split(root, "train", image_size)
    test_x, test_y = _read_split(root, "test", image_size)
    if train_y.shape[1] != test_y.shape[1]:
        raise DatasetError(
            f"keypoints: {root / SPLIT_FILES['train'][0]} has {train_y.shape[1] // 2} points a row but "
            f"{root / SPLIT_FILES['test'][0]} has {test_y.shape[1] // 2}"
        )
    return make_keypoint_splits("keypoints-folder", train_x, train_y, test_x, test_y, scale=1 / 255)
