"""A data set from arrays you already have: one NumPy .npz file (data_dir) holding four arrays.

    np.savez("mine.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    splits = load_dataset("npz", root="mine.npz")        # or data_dir = "mine.npz" in a TOML

x_*: images N×C×H×W, grey images N×H×W (a channel axis is added), or feature vectors N×D, any
real dtype (uint8 pixels are scaled by 1/255 first, so the reported mean/std are in [0, 1] units).
y_*: class indices 0..K-1, one per row (integers; floats only when every value is whole). An
optional `class_names` array of K strings names the classes. Every rule is checked before training
starts, each failure a DatasetError naming the file and the array (and the bad value or row).

Both splits are normalized like every image set (optimlab.data.base.normalize_pair): per channel by
the training split's mean and std, so the test split never leaks into preprocessing. Feature vectors
are stored as [N, D, 1, 1], so each feature is a channel and is standardized on its own; only the
`mlp` model takes them (the image networks refuse a 1×1 input, naming `mlp`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from optimlab.data.base import DatasetError, DatasetSplits, make_splits

ARRAYS = ("x_train", "y_train", "x_test", "y_test")  # the four arrays the file must hold
CLASS_NAMES = "class_names"  # optional: K strings, class_names[k] names label k
IMAGE_RANKS = {2: "feature vectors N×D", 3: "grey images N×H×W", 4: "images N×C×H×W"}


def load_npz(path: Path) -> DatasetSplits:
    """The splits of the .npz file at `path` (see the module docstring for the layout and rules)."""
    arrays = _read(Path(path))
    for split in ("train", "test"):
        _check_lengths(path, arrays, split)
    x_train, x_test = (_as_images(path, arrays, key) for key in ("x_train", "x_test"))
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(
            f"npz data set {path}: x_train rows have shape {x_train.shape[1:]} but x_test rows "
            f"{x_test.shape[1:]} (after adding the channel axis of grey images); they must match"
        )
    y_train, y_test = (_labels(path, arrays[key], key) for key in ("y_train", "y_test"))
    unseen = sorted(set(np.unique(y_test).tolist()) - set(np.unique(y_train).tolist()))
    if unseen:
        raise DatasetError(
            f"npz data set {path}: y_test holds class {unseen[0]}, which y_train never has; "
            f"a model cannot learn a class it is never shown"
        )
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    names = _class_names(path, arrays, num_classes)
    scale = 1 / 255 if arrays["x_train"].dtype == np.uint8 else 1.0
    return make_splits(
        "npz",
        torch.from_numpy(x_train),
        torch.from_numpy(y_train),
        torch.from_numpy(x_test),
        torch.from_numpy(y_test),
        names,
        scale=scale,
    )


def _read(path: Path) -> dict[str, np.ndarray]:
    """Every array of the file, read whole (no pickles: a .npz of object arrays is refused)."""
    if not path.exists():
        raise DatasetError(f"npz data set {path} does not exist (data_dir names the .npz file itself)")
    if not path.is_file():
        raise DatasetError(f"npz data set {path} is not a file: data_dir names the .npz file itself")
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"npz data set {path} is not a NumPy .npz file (not a zip archive; write it with np.savez)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ARRAYS if k not in npz.files]
            if missing:
                raise DatasetError(
                    f"npz data set {path} has no array {missing[0]!r} (it holds {sorted(npz.files)}; "
                    f"needed: {list(ARRAYS)})"
                )
            keys = [*ARRAYS, *([CLASS_NAMES] if CLASS_NAMES in npz.files else [])]
            return {k: _array(path, npz, k) for k in keys}
    except (OSError, zipfile.BadZipFile) as e:
        raise DatasetError(f"npz data set {path} cannot be read: {e}") from None


def _array(path: Path, npz: Any, key: str) -> np.ndarray:
    try:
        return np.asarray(npz[key])
    except ValueError as e:  # object arrays need pickle, which optimlab never loads
        raise DatasetError(f"npz data set {path}: array {key!r} cannot be read without pickle ({e})") from None


def _check_lengths(path: Path, arrays: dict[str, np.ndarray], split: str) -> None:
    x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
        raise DatasetError(
            f"npz data set {path}: x_{split} has {x.shape[0] if x.ndim else 'no'} rows (shape {x.shape}) but "
            f"y_{split} has {y.shape[0] if y.ndim else 'no'} (shape {y.shape}); they must have one label per row"
        )
    if x.shape[0] == 0:
        raise DatasetError(f"npz data set {path}: x_{split} is empty")


def _as_images(path: Path, arrays: dict[str, np.ndarray], key: str) -> np.ndarray:
    """x as [N, C, H, W] (grey images get C = 1, feature vectors become [N, D, 1, 1]), finite, numeric."""
    x = arrays[key]
    if x.ndim not in IMAGE_RANKS:
        raise DatasetError(
            f"npz data set {path}: {key} has shape {x.shape}; expected one of "
            + ", ".join(f"{rank}-D {what}" for rank, what in IMAGE_RANKS.items())
        )
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DatasetError(f"npz data set {path}: {key} has dtype {x.dtype}; expected integers or floats")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise DatasetError(
                f"npz data set {path}: {key} holds {int(bad.sum())} NaN/inf value(s), the first in row {row}"
            )
    if np.issubdtype(x.dtype, np.integer) and x.dtype != np.uint8:
        x = x.astype(np.float32)  # torch lacks most unsigned types; uint8 pixels stay compact
    if x.ndim == 2:
        x = x[:, :, None, None]
    elif x.ndim == 3:
        x = x[:, None]
    return np.ascontiguousarray(x)


def _labels(path: Path, y: np.ndarray, key: str) -> np.ndarray:
    """y as int64 class indices >= 0, or a DatasetError naming the first bad value and its row."""
    if y.ndim != 1:
        raise DatasetError(f"npz data set {path}: {key} has shape {y.shape}; expected one class index per row (N,)")
    if np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            row = int(np.argmax(bad))
            raise DatasetError(
                f"npz data set {path}: {key}[{row}] = {y[row]!r} is not a class index (labels are integers 0..K-1)"
            )
    elif y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"npz data set {path}: {key} has dtype {y.dtype}; labels are integers 0..K-1")
    labels = y.astype(np.int64)
    if (labels < 0).any():
        row = int(np.argmax(labels < 0))
        raise DatasetError(f"npz data set {path}: {key}[{row}] = {labels[row]} is negative (labels are 0..K-1)")
    return labels


def _class_names(path: Path, arrays: dict[str, np.ndarray], num_classes: int) -> list[str]:
    if CLASS_NAMES not in arrays:
        return [str(k) for k in range(num_classes)]
    names = arrays[CLASS_NAMES]
    if names.ndim != 1 or len(names) != num_classes:
        raise DatasetError(
            f"npz data set {path}: {CLASS_NAMES} has shape {names.shape}; the labels need {num_classes} names"
        )
    return [str(n) for n in names.tolist()]


__all__ = ["ARRAYS", "load_npz"]
