"""CIFAR-10 and CIFAR-100 from a local folder in the official "python version" format.

    cifar-10-batches-py/  data_batch_1..5, test_batch, batches.meta   (labels: b'labels')
    cifar-100-python/     train, test, meta                           (labels: b'fine_labels')

Each file is a pickle of a dict with b'data' (uint8 N×3072, channel-major 32×32 RGB rows) and the
labels (N ints). `root` may be the folder itself or its parent. Every file is checked (keys,
dtype, shape, label range, matching lengths) and any problem raises DatasetError naming the file.
Contents are verified too: against the folder's SHA256SUMS file when it has one (`sha256sum`
format), else, when the batches hold the official image counts (the full data set), against the
official files' MD5s (the per-file checksums torchvision publishes for the official archives,
torchvision/datasets/cifar.py). A mismatch names the file, the expected and the actual checksum.
The pickles are read with an unpickler that only admits numpy arrays and plain containers, so a
tampered file cannot run code.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from optimlab.data.base import DatasetError, DatasetSplits, make_splits
from optimlab.data.download import download_and_extract

PIXELS = 3 * 32 * 32  # values per image row in b'data'


@dataclass(frozen=True)
class CifarLayout:
    name: str  # registry name
    folder: str  # folder inside the official archive
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: bytes  # key of the labels in each batch dict
    names_key: bytes  # key of the class names in the meta dict
    num_classes: int
    url: str  # official archive
    sha256: str  # SHA-256 of the official archive
    archive: str  # archive file name

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, *self.test_files, self.meta_file)


CIFAR10 = CifarLayout(
    "cifar10",
    "cifar-10-batches-py",
    tuple(f"data_batch_{i}" for i in range(1, 6)),
    ("test_batch",),
    "batches.meta",
    b"labels",
    b"label_names",
    10,
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    "cifar-10-python.tar.gz",
)
CIFAR100 = CifarLayout(
    "cifar100",
    "cifar-100-python",
    ("train",),
    ("test",),
    "meta",
    b"fine_labels",
    b"fine_label_names",
    100,
    "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    "cifar-100-python.tar.gz",
)

SUMS_FILE = "SHA256SUMS"
# MD5 of every file of the official python-version archives (as published by torchvision) and the
# image count of each batch file there; used when a folder has no SHA256SUMS of its own.
OFFICIAL_MD5 = {
    "cifar10": {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
    },
    "cifar100": {
        "train": "16019d7e3df5f24257cddd939b257f8d",
        "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
        "meta": "7973b15100ade9c7d40fb424638fde48",
    },
}
OFFICIAL_COUNTS = {
    "cifar10": {**{f"data_batch_{i}": 10_000 for i in range(1, 6)}, "test_batch": 10_000},
    "cifar100": {"train": 50_000, "test": 10_000},
}


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_sums(path: Path) -> dict[str, str]:
    """name -> lower-case hex digest from a `sha256sum`-style file ("<hex>  <name>" or "<hex> *<name>")."""
    sums = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DatasetError(f"{path}: line {i} is not '<sha256>  <file>': {line!r}")
        sums[parts[1].strip().lstrip("*")] = parts[0].lower()
    return sums


def verify_files(folder: Path, layout: CifarLayout, counts: dict[str, int]) -> None:
    """Check the files' contents (see the module docstring); DatasetError naming file and checksums.

    counts: images per batch file as read, to recognise the official (full) data set."""
    sums_file = folder / SUMS_FILE
    if sums_file.is_file():
        expected, algorithm, source = read_sums(sums_file), "sha256", str(sums_file)
    elif counts == OFFICIAL_COUNTS[layout.name]:
        expected, algorithm, source = OFFICIAL_MD5[layout.name], "md5", f"the official {layout.name} files"
    else:
        return  # a subset without SHA256SUMS: nothing to compare with
    for name in layout.files:
        if name not in expected:
            continue
        actual = _digest(folder / name, algorithm)
        if actual != expected[name]:
            raise DatasetError(
                f"CIFAR file {folder / name} is corrupt: its {algorithm} is {actual}, {source} says {expected[name]}"
            )


_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("builtins", "bytearray"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def read_pickle(path: Path) -> dict:
    """The dict stored in one CIFAR file (bytes keys), or DatasetError naming the file."""
    if not path.is_file():
        raise DatasetError(f"missing CIFAR file {path}")
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
        OSError,
    ) as exc:
        raise DatasetError(f"CIFAR file {path} is corrupt or truncated (cannot unpickle: {exc})") from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"CIFAR file {path} holds a {type(obj).__name__}, expected a dict")
    return obj


def read_batch(path: Path, label_key: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(data uint8 [N, 3072], labels int64 [N]) from one batch file, validated."""
    batch = read_pickle(path)
    for key in (b"data", label_key):
        if key not in batch:
            raise DatasetError(f"CIFAR file {path} lacks key {key!r}; it has {sorted(batch)}")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise DatasetError(f"CIFAR file {path}: b'data' must be uint8 N×{PIXELS}, got {dtype} of shape {shape}")
    try:
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"CIFAR file {path}: {label_key!r} is not a list of integers ({exc})") from exc
    if labels.ndim != 1 or len(labels) != len(data):
        raise DatasetError(f"CIFAR file {path}: {len(data)} images but {labels.size} labels in {label_key!r}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(
            f"CIFAR file {path}: labels must be in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}"
        )
    return data, labels


def read_class_names(path: Path, names_key: bytes, num_classes: int) -> list[str]:
    meta = read_pickle(path)
    names = meta.get(names_key)
    if not isinstance(names, (list, tuple)) or len(names) != num_classes:
        raise DatasetError(f"CIFAR meta file {path}: {names_key!r} must list {num_classes} class names")
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


def find_folder(root: Path, layout: CifarLayout) -> Path:
    """The folder holding the files: root itself or root/<official folder>; DatasetError otherwise."""
    candidates = [root, root / layout.folder]
    for folder in candidates:
        if all((folder / f).is_file() for f in layout.files):
            return folder
    # Report against the candidate that looks most like a CIFAR folder.
    best = max(candidates, key=lambda d: sum((d / f).is_file() for f in layout.files))
    missing = [f for f in layout.files if not (best / f).is_file()]
    raise DatasetError(
        f"{layout.name}: missing file(s) {missing} in {best} (looked in {root} and {root / layout.folder}); "
        f"point root at the '{layout.folder}' folder or its parent, or pass download=True"
    )


def select_classes(names: list[str], classes: Any) -> list[int]:
    """Indices of `classes` (names or indices, in the order given) among `names`; DatasetError
    naming the culprit for an unknown, repeated or empty selection."""
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
        raise DatasetError(f"classes must be a list of class names or indices, got {classes!r}")
    picked: list[int] = []
    for c in classes:
        if isinstance(c, bool) or not isinstance(c, (int, str)):
            raise DatasetError(f"classes: {c!r} is neither a class name nor an index")
        if isinstance(c, int):
            if not 0 <= c < len(names):
                raise DatasetError(f"classes: index {c} is outside 0..{len(names) - 1}")
            i = c
        elif c in names:
            i = names.index(c)
        else:
            raise DatasetError(f"classes: unknown class {c!r}; valid: {', '.join(names)}")
        if i in picked:
            raise DatasetError(f"classes: {names[i]!r} is selected twice")
        picked.append(i)
    if len(picked) < 2:
        raise DatasetError(f"classes: select at least 2 classes, got {list(classes)!r}")
    return picked


def load_cifar(
    layout: CifarLayout,
    root: Path,
    download: bool = False,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = False,
    classes: Any = None,
) -> DatasetSplits:
    """Both splits of a CIFAR folder; `classes` keeps only those classes (names or indices, in that
    order), relabelled 0..k-1, with the normalization statistics of the kept training images."""
    root = Path(root)
    try:
        folder = find_folder(root, layout)
    except DatasetError:
        if not download:
            raise
        parent = root.parent if root.name == layout.folder else root
        download_and_extract(
            url or layout.url, sha256 or layout.sha256, parent, layout.archive, layout.folder, progress
        )
        folder = find_folder(parent, layout)
    parts = {}
    counts = {}
    for split, files in (("train", layout.train_files), ("test", layout.test_files)):
        batches = [read_batch(folder / f, layout.label_key, layout.num_classes) for f in files]
        counts.update({f: len(b[1]) for f, b in zip(files, batches)})
        data = np.concatenate([b[0] for b in batches]).reshape(-1, 3, 32, 32)
        labels = np.concatenate([b[1] for b in batches])
        parts[split] = (torch.from_numpy(data), torch.from_numpy(labels))
    verify_files(folder, layout, counts)
    names = read_class_names(folder / layout.meta_file, layout.names_key, layout.num_classes)
    if classes is not None:
        keep = select_classes(names, classes)
        relabel = torch.full((layout.num_classes,), -1, dtype=torch.long)
        relabel[keep] = torch.arange(len(keep))
        for split, (x, y) in parts.items():
            new = relabel[y.long()]
            mask = new >= 0
            parts[split] = (x[mask], new[mask])
        names = [names[i] for i in keep]
    return make_splits(layout.name, *parts["train"], *parts["test"], names, scale=1 / 255)


def load_cifar10(
    root: Path,
    download: bool = False,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = False,
    classes: Any = None,
) -> DatasetSplits:
    return load_cifar(CIFAR10, root, download, url, sha256, progress, classes)


def load_cifar100(
    root: Path,
    download: bool = False,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = False,
    classes: Any = None,
) -> DatasetSplits:
    return load_cifar(CIFAR100, root, download, url, sha256, progress, classes)
