"""mnist-5k: 5,000 real 28×28 MNIST digits (500 per class) in one gzip CSV (shared/data/mnist-5k).

Format (the folder's README): `mnist_5k.csv.gz`, no header, 785 integers a row: 784 pixels
(0..255, row-major 28×28) and the label 0..9. Rows are sorted by label, so the train/test split
is stratified and drawn with a fixed seed (SPLIT_SEED): every run, optimizer and seed sees the
same 1,000 test digits, and batches are shuffled by the training loop.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from optimlab.data.base import DatasetError, DatasetSplits, make_splits
from optimlab.data.batches import stratified_indices

FILE = "mnist_5k.csv.gz"
SIDE = 28
TEST_FRACTION = 0.2  # 100 test digits per class
SPLIT_SEED = 0  # the split is part of the benchmark's definition


_CACHE: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]] = {}  # (path, mtime_ns, size) -> arrays


def read_mnist5k(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels int64 [N]) from root/mnist_5k.csv.gz, checked row by row.

    Parsed once per process and file version (a sweep's runs share it); callers get fresh copies."""
    path = Path(root) / FILE
    if not path.is_file():
        raise DatasetError(f"mnist5k: {path} not found (expected the folder shared/data/mnist-5k)")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = _parse(path)
    images, labels = _CACHE[key]
    return images.copy(), labels.copy()


def _parse(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows: list[np.ndarray] = []
    try:
        with gzip.open(path, "rt") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = np.array(line.split(","), dtype=np.int64)
                except ValueError:
                    raise DatasetError(f"mnist5k: {path} line {lineno}: not 785 comma-separated integers") from None
                if row.shape != (SIDE * SIDE + 1,):
                    raise DatasetError(f"mnist5k: {path} line {lineno}: {row.size} values, expected {SIDE * SIDE + 1}")
                if row[:-1].min() < 0 or row[:-1].max() > 255 or not 0 <= row[-1] <= 9:
                    raise DatasetError(f"mnist5k: {path} line {lineno}: pixel outside 0..255 or label outside 0..9")
                rows.append(row)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"mnist5k: {path} is not a readable gzip file ({exc})") from None
    if not rows:
        raise DatasetError(f"mnist5k: {path} holds no rows")
    data = np.stack(rows)
    return data[:, :-1].astype(np.uint8).reshape(-1, SIDE, SIDE), data[:, -1].astype(np.int64)


def split_indices(labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed stratified (train, test) index split of mnist-5k's rows."""
    return stratified_indices(torch.from_numpy(labels), TEST_FRACTION, SPLIT_SEED)


def load_mnist5k(root: Path) -> DatasetSplits:
    """mnist-5k as a 10-class classification set: 4,000 train / 1,000 test, normalized by train stats."""
    images, labels = read_mnist5k(root)
    tr, te = split_indices(labels)
    x = torch.from_numpy(images).unsqueeze(1)
    y = torch.from_numpy(labels)
    return make_splits("mnist5k", x[tr], y[tr], x[te], y[te], [str(k) for k in range(10)], scale=1 / 255)
