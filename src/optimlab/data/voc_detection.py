"""Object-detection data: images with a variable number of labelled boxes, and the PASCAL VOC2007 loader.

Targets of every detection set are one float32 tensor per split, y [N, M, 6], a row per object:

    (class, difficult, x1, y1, x2, y2)

class in 0..C-1 (padding rows: class -1, so batches stay tensors; M = the most objects of any image
in either split), difficult 0/1, the box in continuous pixel coordinates of the resized image (see
optimlab.models.boxes: the image spans [0, S] × [0, S], pixel j covers [j, j + 1)).

VOC2007 on disk (the official VOCtrainval_06-Nov-2007 + VOCtest_06-Nov-2007 archives, extracted):

    root/VOCdevkit/VOC2007/  (root may also be VOCdevkit or VOC2007 itself)
        Annotations/<id>.xml        one <object> per box: <name>, <difficult>, <bndbox> xmin ymin xmax ymax
        JPEGImages/<id>.jpg
        ImageSets/Main/trainval.txt  ImageSets/Main/test.txt     one image id per line

VOC's box corners are 1-based inclusive pixel indices (xmin = 1 is the first column): they become
x1 = xmin − 1, y1 = ymin − 1, x2 = xmax, y2 = ymax (so the box's width, xmax − xmin + 1 in the VOC
devkit, is x2 − x1), then are scaled with the image to image_size × image_size (aspect ratio not
kept, as SSD/RFBNet's 300×300 input). Images are decoded with Pillow to RGB, resized bilinearly,
scaled to [0, 1] and normalized by the training split's per-channel mean/std. Objects marked
difficult are kept with their flag: the VOC metric ignores them (optimlab.tasks.detection_map) and
the detection task does not train on them (as py-faster-rcnn and ssd.pytorch by default). A missing
<difficult> counts as 0, as in the devkit. Memory: float32 images, 3·S² · 4 bytes each (5,011
trainval images at S = 300: 5.4 GB).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from optimlab.data.base import DatasetError, normalize_pair
from optimlab.data.voc_layout import VOC_OBJECT_CLASSES, find_voc2007, read_image_set

VOC_CLASSES = VOC_OBJECT_CLASSES  # class id i is VOC_CLASSES[i] (no background class)
TARGET_COLUMNS = ("class", "difficult", "x1", "y1", "x2", "y2")


@dataclass
class DetectionSplits:
    train_x: Tensor  # float32 [N, C, S, S], normalized
    train_y: Tensor  # float32 [N, M, 6] (class, difficult, x1, y1, x2, y2); padding rows class -1
    test_x: Tensor
    test_y: Tensor
    class_names: list[str]
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x, y = getattr(self, f"{part}_x"), getattr(self, f"{part}_y")
            if x.dim() != 4 or y.dim() != 3 or y.shape[0] != x.shape[0] or y.shape[2] != 6:
                raise ValueError(
                    f"{self.name}: {part} x {tuple(x.shape)} / y {tuple(y.shape)} are not [N,C,H,W]/[N,M,6]"
                )
            if x.shape[0] == 0:
                raise DatasetError(f"{self.name}: the {part} split is empty")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def pad_targets(objects: list[list[tuple[float, ...]]], width: int) -> Tensor:
    """Per-image lists of (class, difficult, x1, y1, x2, y2) -> float32 [N, width, 6], class -1 padding."""
    out = torch.zeros(len(objects), width, 6, dtype=torch.float32)
    out[:, :, 0] = -1
    for i, rows in enumerate(objects):
        if rows:
            out[i, : len(rows)] = torch.tensor(rows, dtype=torch.float32)
    return out


def make_detection_splits(
    name: str,
    train: tuple[Tensor, list[list[tuple[float, ...]]]],
    test: tuple[Tensor, list[list[tuple[float, ...]]]],
    class_names: list[str],
    scale: float = 1.0,
) -> DetectionSplits:
    """Normalize raw pixels (scale, then the training split's per-channel mean/std), pad both splits'
    objects to the same width (the most objects of any image, at least 1) and wrap."""
    (train_x, train_objects), (test_x, test_objects) = train, test
    width = max(1, *(len(r) for r in train_objects), *(len(r) for r in test_objects))
    images = normalize_pair(train_x, test_x, scale)
    return DetectionSplits(
        train_x=images.train,
        train_y=pad_targets(train_objects, width),
        test_x=images.test,
        test_y=pad_targets(test_objects, width),
        class_names=list(class_names),
        input_shape=images.input_shape,  # type: ignore[arg-type]
        mean=images.mean,
        std=images.std,
        name=name,
    )


def _number(obj: ET.Element, tag: str, path: Path) -> float:
    text = obj.findtext(f"bndbox/{tag}")
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DatasetError(f"voc2007: {path}: an object's bndbox/{tag} is missing or not a number ({text!r})") from None


def parse_annotation(path: Path) -> list[tuple[int, int, float, float, float, float]]:
    """The objects of one VOC XML file: (class index, difficult, x1, y1, x2, y2) in continuous pixel
    coordinates of the original image (VOC's 1-based inclusive corners converted, see the module)."""
    if not path.is_file():
        raise DatasetError(f"voc2007: annotation {path} not found")
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise DatasetError(f"voc2007: {path} is not valid XML ({exc})") from None
    rows = []
    for obj in tree.getroot().iter("object"):
        name = (obj.findtext("name") or "").strip().lower()
        if name not in VOC_CLASSES:
            raise DatasetError(f"voc2007: {path}: object class {name!r} is not one of the 20 VOC classes")
        difficult_text = (obj.findtext("difficult") or "0").strip()
        if difficult_text not in ("0", "1"):
            raise DatasetError(f"voc2007: {path}: <difficult> must be 0 or 1, got {difficult_text!r}")
        xmin, ymin, xmax, ymax = (_number(obj, t, path) for t in ("xmin", "ymin", "xmax", "ymax"))
        if xmax < xmin or ymax < ymin:
            raise DatasetError(f"voc2007: {path}: box ({xmin}, {ymin}, {xmax}, {ymax}) has xmax < xmin or ymax < ymin")
        rows.append((VOC_CLASSES.index(name), int(difficult_text), xmin - 1, ymin - 1, xmax, ymax))
    return rows


def _read_split(voc: Path, image_set: str, size: int) -> tuple[Tensor, list[list[tuple[float, ...]]]]:
    from PIL import Image

    ids = read_image_set(voc, "Main", image_set, "voc2007")
    xs = np.empty((len(ids), 3, size, size), dtype=np.uint8)
    objects: list[list[tuple[float, ...]]] = []
    for i, image_id in enumerate(ids):
        rows = parse_annotation(voc / "Annotations" / f"{image_id}.xml")
        path = voc / "JPEGImages" / f"{image_id}.jpg"
        if not path.is_file():
            raise DatasetError(f"voc2007: image {path} (listed in ImageSets/Main/{image_set}.txt) not found")
        try:
            with Image.open(path) as opened:
                w, h = opened.size
                resized = opened.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                xs[i] = np.asarray(resized).transpose(2, 0, 1)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise DatasetError(f"voc2007: image {path} cannot be decoded ({exc})") from None
        sx, sy = size / w, size / h
        objects.append([(c, d, x1 * sx, y1 * sy, x2 * sx, y2 * sy) for c, d, x1, y1, x2, y2 in rows])
    return torch.from_numpy(xs), objects


def load_voc2007(
    root: Path, image_size: int = 300, train_set: str = "trainval", test_set: str = "test"
) -> DetectionSplits:
    """VOC2007 detection (layout above): train_set (trainval) for training, test_set (test) for testing."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 16:
        raise ValueError(f"voc2007: image_size must be an int >= 16, got {image_size!r}")
    voc = find_voc2007(Path(root), ("Annotations", "ImageSets/Main"), "voc2007")
    train = _read_split(voc, train_set, image_size)
    test = _read_split(voc, test_set, image_size)
    return make_detection_splits("voc2007", train, test, list(VOC_CLASSES), scale=1 / 255)


__all__ = [
    "TARGET_COLUMNS",
    "VOC_CLASSES",
    "DetectionSplits",
    "load_voc2007",
    "make_detection_splits",
    "pad_targets",
    "parse_annotation",
]
