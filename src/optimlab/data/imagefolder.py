"""Image-folder data sets (e.g. Animals-10): one sub-folder per class, any Pillow-readable images.

    root/<class>/<image>                   split train/test by a stratified test_fraction (seed)
    root/train/<class>/..., root/test/<class>/...   used as given

Every image is decoded once at load time (Pillow, converted to RGB, resized to image_size ×
image_size without keeping the aspect ratio) into memory; nothing is cached on disk. Unreadable
files are skipped and reported in one warning (how many, and the first few names), so a bad file
never stops training mid-epoch; the warning is given once per command (once per process and
folder, and sweep workers leave it to the parent's check). Class names are the sorted folder names.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from optimlab.data.base import DatasetError, DatasetSplits, make_splits
from optimlab.data.batches import stratified_indices

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
SHOW_SKIPPED = 5  # file names quoted in the skip warning
WORKERS = 4  # decoding threads (Pillow releases the GIL while decoding)
SKIP_WARNING = "imagefolder: skipped"  # start of the warning; sweep workers filter it (the parent's check showed it)
_WARNED: set[tuple[str, int]] = set()  # (folder, skipped count) already warned about in this process


def _class_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        raise DatasetError(f"imagefolder: {root} is not a folder")
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def _decode(path: Path, size: int) -> np.ndarray | None:
    from PIL import Image

    try:
        with Image.open(path) as opened:
            img = opened.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()  # [3, size, size]
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _read_tree(root: Path, class_names: list[str], size: int, skipped: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode root/<class>/* for the given classes: (x uint8 [N, 3, size, size], y int64 [N])."""
    paths: list[Path] = []
    labels: list[int] = []
    for k, name in enumerate(class_names):
        folder = root / name
        files = _image_files(folder) if folder.is_dir() else []
        paths += files
        labels += [k] * len(files)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        images = list(pool.map(lambda p: _decode(p, size), paths))
    keep = [i for i, img in enumerate(images) if img is not None]
    skipped += [paths[i] for i, img in enumerate(images) if img is None]
    if not keep:
        raise DatasetError(f"imagefolder: no readable images under {root} (classes {class_names})")
    x = torch.from_numpy(np.stack([img for img in images if img is not None]))
    y = torch.tensor([labels[i] for i in keep], dtype=torch.int64)
    return x, y


def _check_classes(root: Path, y: torch.Tensor, class_names: list[str]) -> None:
    counts = torch.bincount(y, minlength=len(class_names))
    empty = [class_names[k] for k in range(len(class_names)) if counts[k] == 0]
    if empty:
        raise DatasetError(f"imagefolder: class folder(s) {empty} under {root} have no readable images")


def load_imagefolder(root: Path, image_size: int = 32, test_fraction: float = 0.2, seed: int = 0) -> DatasetSplits:
    root = Path(root)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"imagefolder option image_size must be an int >= 1, got {image_size!r}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"imagefolder option test_fraction must be in (0, 1), got {test_fraction!r}")
    skipped: list[Path] = []
    if (root / "train").is_dir() and (root / "test").is_dir():
        class_names = [d.name for d in _class_folders(root / "train")]
        if not class_names:
            raise DatasetError(f"imagefolder: {root / 'train'} has no class sub-folders")
        extra = sorted({d.name for d in _class_folders(root / "test")} - set(class_names))
        if extra:
            raise DatasetError(f"imagefolder: {root / 'test'} has classes {extra} that {root / 'train'} lacks")
        train_x, train_y = _read_tree(root / "train", class_names, image_size, skipped)
        test_x, test_y = _read_tree(root / "test", class_names, image_size, skipped)
        _check_classes(root / "train", train_y, class_names)
    else:
        class_names = [d.name for d in _class_folders(root)]
        if not class_names:
            raise DatasetError(f"imagefolder: {root} has no class sub-folders (expected root/<class>/<image>)")
        x, y = _read_tree(root, class_names, image_size, skipped)
        _check_classes(root, y, class_names)
        train_idx, test_idx = stratified_indices(y, test_fraction, seed)
        train_x, train_y, test_x, test_y = x[train_idx], y[train_idx], x[test_idx], y[test_idx]
    if skipped and (str(root.resolve()), len(skipped)) not in _WARNED:  # once per process and folder
        _WARNED.add((str(root.resolve()), len(skipped)))
        names = ", ".join(str(p.relative_to(root)) for p in skipped[:SHOW_SKIPPED])
        more = f" (and {len(skipped) - SHOW_SKIPPED} more)" if len(skipped) > SHOW_SKIPPED else ""
        warnings.warn(
            f"imagefolder: skipped {len(skipped)} unreadable image(s) under {root}: {names}{more}",
            UserWarning,
            stacklevel=3,
        )
    return make_splits("imagefolder", train_x, train_y, test_x, test_y, class_names, scale=1 / 255)
