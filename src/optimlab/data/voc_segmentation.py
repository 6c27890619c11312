"""Semantic segmentation data: images with a class id per pixel, and the PASCAL VOC2007 loader.

Supported on-disk format (the official VOCtrainval_06-Nov-2007 layout, as extracted):

    root/VOCdevkit/VOC2007/JPEGImages/<id>.jpg
    root/VOCdevkit/VOC2007/SegmentationClass/<id>.png       palette ("P" mode) PNGs
    root/VOCdevkit/VOC2007/ImageSets/Segmentation/{train,val,trainval,test}.txt   one <id> a line

`root` may also be the VOCdevkit folder or the VOC2007 folder itself. A mask's palette index is
the class id: 0 background, 1-20 the VOC classes (VOC_CLASSES order), 255 "void" (object borders
and unlabelled regions), which the metrics and the loss ignore. The training split is
`train_split` (default train.txt, 209 images in VOC2007) and the test split `test_split` (default
val.txt, 213 images; test.txt's masks ship only in the separate test archive). Images are decoded
with Pillow to RGB and resized to image_size × image_size bilinearly, masks with nearest-neighbour
(aspect ratio not kept; void stays void), pixels scaled to [0, 1] and normalized by the training
split's per-channel mean/std. Errors name the missing or bad file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from optimlab.data.base import DatasetError, normalize_pair
from optimlab.data.voc_layout import VOC_OBJECT_CLASSES, find_voc2007, read_image_set

IGNORE = 255  # VOC's "void" label: not scored, no loss
VOC_CLASSES = ("background", *VOC_OBJECT_CLASSES)  # mask value i is VOC_CLASSES[i]
SPLITS = ("train", "val", "trainval", "test")


@dataclass
class SegmentationSplits:
    train_x: Tensor  # float32 [N, C, H, W], normalized
    train_y: Tensor  # int64 [N, H, W]: class ids 0..num_classes-1, or IGNORE
    test_x: Tensor
    test_y: Tensor
    input_shape: tuple[int, int, int]
    class_names: list[str]  # class_names[k] names id k (0: background)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x, y = getattr(self, f"{part}_x"), getattr(self, f"{part}_y")
            if x.dim() != 4 or y.shape != (x.shape[0], *x.shape[2:]):
                raise ValueError(f"{self.name}: {part} x {tuple(x.shape)} / y {tuple(y.shape)} do not match")
            if x.dtype != torch.float32 or y.dtype != torch.int64:
                raise ValueError(f"{self.name}: {part} x must be float32 and y int64")
            if x.shape[0] == 0:
                raise DatasetError(f"{self.name}: the {part} split is empty")
            bad = (y != IGNORE) & ((y < 0) | (y >= self.num_classes))
            if bool(bad.any()):
                raise DatasetError(f"{self.name}: {part} masks hold ids outside 0..{self.num_classes - 1} and 255")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def make_segmentation_splits(
    name: str,
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    class_names: list[str],
    scale: float = 1.0,
) -> SegmentationSplits:
    """Normalize raw pixels (scale, then the training split's per-channel mean/std) and wrap."""
    images = normalize_pair(train_x, test_x, scale)
    return SegmentationSplits(
        train_x=images.train,
        train_y=train_y.long().contiguous(),
        test_x=images.test,
        test_y=test_y.long().contiguous(),
        input_shape=images.input_shape,  # type: ignore[arg-type]
        class_names=list(class_names),
        mean=images.mean,
        std=images.std,
        name=name,
    )


def _read_mask(path: Path, size: int, num_classes: int) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise DatasetError(f"voc2007-segmentation: mask {path} not found")
    try:
        with Image.open(path) as opened:
            if opened.mode not in ("P", "L"):
                raise DatasetError(
                    f"voc2007-segmentation: mask {path} is a {opened.mode!r} image; VOC masks are palette "
                    "('P') PNGs whose indices are class ids"
                )
            mask = np.asarray(opened.resize((size, size), Image.Resampling.NEAREST), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"voc2007-segmentation: mask {path} cannot be decoded ({exc})") from None
    bad = (mask != IGNORE) & (mask >= num_classes)
    if bad.any():
        raise DatasetError(
            f"voc2007-segmentation: mask {path} holds class id {int(mask[bad][0])} "
            f"(valid: 0..{num_classes - 1} and {IGNORE})"
        )
    return mask


def _read_split(voc: Path, split: str, size: int) -> tuple[Tensor, Tensor]:
    from PIL import Image

    ids = read_image_set(voc, "Segmentation", split, "voc2007-segmentation")
    xs = np.empty((len(ids), 3, size, size), dtype=np.uint8)
    ys = np.empty((len(ids), size, size), dtype=np.uint8)
    for i, name in enumerate(ids):
        path = voc / "JPEGImages" / f"{name}.jpg"
        if not path.is_file():
            raise DatasetError(f"voc2007-segmentation: image {path} (listed in {split}.txt) not found")
        try:
            with Image.open(path) as opened:
                rgb = opened.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                xs[i] = np.asarray(rgb).transpose(2, 0, 1)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise DatasetError(f"voc2007-segmentation: image {path} cannot be decoded ({exc})") from None
        ys[i] = _read_mask(voc / "SegmentationClass" / f"{name}.png", size, len(VOC_CLASSES))
    return torch.from_numpy(xs), torch.from_numpy(ys).long()


def load_voc2007_segmentation(
    root: Path, image_size: int = 256, train_split: str = "train", test_split: str = "val"
) -> SegmentationSplits:
    """The official VOC2007 segmentation layout above; errors name the file or folder."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"voc2007-segmentation: {root} is not a folder")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 16:
        raise ValueError(f"voc2007-segmentation: image_size must be an int >= 16, got {image_size!r}")
    for key, split in (("train_split", train_split), ("test_split", test_split)):
        if split not in SPLITS:
            raise ValueError(f"voc2007-segmentation: {key} must be one of {list(SPLITS)}, got {split!r}")
    overlap = train_split == test_split or (
        "trainval" in (train_split, test_split) and "test" not in (train_split, test_split)
    )
    if overlap:
        raise ValueError(f"voc2007-segmentation: train_split {train_split!r} and test_split {test_split!r} overlap")
    voc = find_voc2007(
        root,
        ("ImageSets/Segmentation",),
        "voc2007-segmentation",
        " (expected the extracted VOCtrainval_06-Nov-2007 archive)",
    )
    train_x, train_y = _read_split(voc, train_split, image_size)
    test_x, test_y = _read_split(voc, test_split, image_size)
    return make_segmentation_splits(
        "voc2007-segmentation", train_x, train_y, test_x, test_y, list(VOC_CLASSES), scale=1 / 255
    )


__all__ = [
    "IGNORE",
    "VOC_CLASSES",
    "SegmentationSplits",
    "load_voc2007_segmentation",
    "make_segmentation_splits",
]
