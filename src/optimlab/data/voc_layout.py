"""The PASCAL VOC2007 folder layout shared by the detection and segmentation loaders.

    VOCdevkit/VOC2007/
        JPEGImages/<id>.jpg
        Annotations/<id>.xml                 (detection: boxes, classes, difficult flags)
        SegmentationClass/<id>.png           (segmentation: palette PNG, index = class, 255 = void)
        ImageSets/Main/{trainval,test}.txt   (detection's image lists)
        ImageSets/Segmentation/{train,val}.txt

A loader is given the folder itself, its parent, or the VOCdevkit's parent (whatever the user
extracted the archives into).
"""

from __future__ import annotations

from pathlib import Path

from optimlab.data.base import DatasetError

VOC_OBJECT_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def find_voc2007(root: Path, needs: tuple[str, ...], dataset: str, hint: str = "") -> Path:
    """The VOC2007 folder at root, root/VOC2007 or root/VOCdevkit/VOC2007 holding every folder of
    `needs` (relative paths); DatasetError naming `dataset` and the three places looked at otherwise."""
    root = Path(root)
    for folder in (root, root / "VOC2007", root / "VOCdevkit" / "VOC2007"):
        if all((folder / n).is_dir() for n in needs):
            return folder
    wanted = " and ".join(f"{n}/" for n in needs)
    raise DatasetError(
        f"{dataset}: no VOC2007 folder (with {wanted}) at {root}, {root / 'VOC2007'} or "
        f"{root / 'VOCdevkit' / 'VOC2007'}{hint}"
    )


def read_image_set(voc: Path, kind: str, name: str, dataset: str) -> list[str]:
    """The image ids listed in ImageSets/<kind>/<name>.txt (first column of each non-empty line)."""
    path = voc / "ImageSets" / kind / f"{name}.txt"
    if not path.is_file():
        raise DatasetError(f"{dataset}: image set {path} not found")
    ids = [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids:
        raise DatasetError(f"{dataset}: image set {path} lists no images")
    return ids
