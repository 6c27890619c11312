"""Dataset registry: every data set optimlab trains on, loaded whole into float32 tensors.

    splits = load_dataset("digits")                                 # bundled with scikit-learn
    splits = load_dataset("cifar10", root="~/data")                 # official python-format folder
    splits = load_dataset("cifar10", root="~/data", download=True)  # fetch + verify + extract first
    splits = load_dataset("imagefolder", root="~/animals10", image_size=32)
    for x, y in iterate_batches(splits.train, 128, generator=g, augment=Augment()):
        ...

One table (`_REGISTRY`) names each data set, says whether it needs a folder, which options it
accepts, which task owns it, one sample's shape and where its stand-in lives; `load_dataset` checks a
call against it before any file is touched. Adding a data set is its loader module plus its line here.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from optimlab.data.base import DatasetError, DatasetSplits, Split, TensorSplit
from optimlab.data.batches import class_balancing_weights, iterate_batches, stratified_split
from optimlab.data.transforms import Augment
from optimlab.plugins import discover, is_reference, resolve_reference


class StandIn(NamedTuple):
    """Where a stand-in data set's files live: shared/data/<folder>, recognised by the file <probe>."""

    folder: str
    probe: str


class SampleShape(NamedTuple):
    input_shape: tuple[int, int, int]  # (C, H, W) of one sample
    outputs: int | None  # what a model's head predicts: classes, or 2·K coordinates of K key points


@dataclass(frozen=True)
class DatasetInfo:
    name: str  # registry name, as used in configs
    summary: str
    needs_root: bool  # True: load_dataset needs `root` (a folder on disk)
    options: dict[str, Any] = field(default_factory=dict)  # accepted keyword options -> default
    loader: str = field(default="", repr=False, compare=False)  # "module:function" that loads it
    # the one statement of which optimlab.tasks task owns the set (whose container the loader returns);
    # each task's `datasets` is read from here
    task: str = "classification"
    # one sample's (C, H, W) at the default options and the model's outputs (None: unknown until read),
    # so thread choice and MAC counts need no data; None for data that is not images
    input_shape: tuple[int, int, int] | None = None
    outputs: int | None = None
    stand_in: StandIn | None = None  # a CPU-scale stand-in kept in shared/data (reproduce finds it there)
    cached: bool = False  # parsed text / hashed ids / generated scenes: loaded once per process, then reused
    origin: str = "optimlab"  # or "plugin <dist> <version> (<module:attr>)", "reference" (optimlab.plugins)


_MNIST_5K = StandIn("mnist-5k", "mnist_5k.csv.gz")


_DOWNLOAD_OPTIONS = {"download": False, "url": None, "sha256": None, "progress": False}
_CIFAR_OPTIONS = {**_DOWNLOAD_OPTIONS, "classes": None}  # classes: keep these (names or indices), relabelled

_REGISTRY: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo(
            "digits",
            "scikit-learn's bundled 8×8 handwritten digits (1,797 real images, 10 classes, 1 channel)",
            needs_root=False,
            loader="optimlab.data.digits:load_digits",
            input_shape=(1, 8, 8),
            outputs=10,
        ),
        DatasetInfo(
            "cifar10",
            "CIFAR-10, official python format (cifar-10-batches-py), 32×32 RGB, 10 classes",
            needs_root=True,
            options=dict(_CIFAR_OPTIONS),
            loader="optimlab.data.cifar:load_cifar10",
            input_shape=(3, 32, 32),
            outputs=10,
        ),
        DatasetInfo(
            "cifar100",
            "CIFAR-100, official python format (cifar-100-python), 32×32 RGB, 100 fine classes",
            needs_root=True,
            options=dict(_CIFAR_OPTIONS),
            loader="optimlab.data.cifar:load_cifar100",
            input_shape=(3, 32, 32),
            outputs=100,
        ),
        DatasetInfo(
            "imagefolder",
            "one sub-folder per class (e.g. Animals-10), decoded with Pillow to RGB image_size²",
            needs_root=True,
            options={"image_size": 32, "test_fraction": 0.2, "seed": 0},
            loader="optimlab.data.imagefolder:load_imagefolder",
            input_shape=(3, 32, 32),
        ),
        DatasetInfo(
            "r8",
            "R8 (Reuters-21578, 8 topics), Cardoso-Cachopo's r8-{train,test}-all-terms.txt: label<TAB>text",
            needs_root=True,
            options={"max_len": 100, "min_freq": 2, "max_vocab": 20_000},
            loader="optimlab.data.text:load_r8",
            task="text",
            cached=True,
        ),
        DatasetInfo(
            "womens-reviews",
            "Women's E-Commerce Clothing Reviews (reviews.csv.gz): Review Text -> Department (6) or Rating (5)",
            needs_root=True,
            options={
                "label": "department",
                "test_fraction": 0.2,
                "seed": 0,
                "max_len": 100,
                "min_freq": 2,
                "max_vocab": 20_000,
            },
            loader="optimlab.data.text:load_womens_reviews",
            task="text",
            stand_in=StandIn("womens-ecommerce-reviews", "reviews.csv.gz"),
            cached=True,
        ),
        DatasetInfo(
            "avazu",
            "Avazu click logs (Kaggle train.gz / train.csv, 24 columns), streamed and hashed; last day = test",
            needs_root=True,
            options={"buckets": 2**20, "crosses": None, "test_days": 1, "max_rows": None, "chunk_rows": 200_000},
            loader="optimlab.data.ctr:load_avazu",
            task="ctr",
            cached=True,
        ),
        DatasetInfo(
            "adult",
            "UCI Adult census income (adult.csv.gz): 8 categorical + 6 binned numeric fields, income >50K",
            needs_root=True,
            options={"buckets": 2**14, "crosses": None, "numeric_bins": 10},
            loader="optimlab.data.ctr:load_adult",
            task="ctr",
            stand_in=StandIn("uci-adult", "adult.csv.gz"),
            cached=True,
        ),
        DatasetInfo(
            "mnist5k",
            "mnist-5k (shared/data/mnist-5k): 5,000 real 28×28 MNIST digits, fixed stratified 4,000/1,000 split",
            needs_root=True,
            loader="optimlab.data.mnist5k:load_mnist5k",
            input_shape=(1, 28, 28),
            outputs=10,
            stand_in=_MNIST_5K,
        ),
        DatasetInfo(
            "mnist-keypoints",
            "key-point stand-in: 5 points (ink centroid, extreme ink points) of mnist-5k digits placed on 32×32",
            needs_root=True,
            loader="optimlab.data.keypoints_mnist:load_mnist_keypoints",
            task="keypoints",
            input_shape=(1, 32, 32),
            outputs=10,
            stand_in=_MNIST_5K,
            cached=True,
        ),
        DatasetInfo(
            "keypoints-folder",
            "key points in the YouTube Faces layout: {training,test}_frames_keypoints.csv + image folders",
            needs_root=True,
            options={"image_size": 96},
            loader="optimlab.data.keypoints:load_keypoints_folder",
            task="keypoints",
            input_shape=(1, 96, 96),
            outputs=136,
            cached=True,
        ),
        DatasetInfo(
            "mnist-detection",
            "detection stand-in: 64×64 scenes of 1-4 real mnist-5k digit crops, their tight boxes, class = digit",
            needs_root=True,
            loader="optimlab.data.detection_mnist:load_mnist_detection",
            task="detection",
            input_shape=(1, 64, 64),
            outputs=10,
            stand_in=_MNIST_5K,
            cached=True,
        ),
        DatasetInfo(
            "voc2007",
            "PASCAL VOC2007 detection (VOCdevkit/VOC2007: Annotations XML, JPEGImages, ImageSets/Main), 20 classes",
            needs_root=True,
            options={"image_size": 300, "train_set": "trainval", "test_set": "test"},
            loader="optimlab.data.voc_detection:load_voc2007",
            task="detection",
            input_shape=(3, 300, 300),
            outputs=20,
            cached=True,
        ),
        DatasetInfo(
            "mnist-segmentation",
            "segmentation stand-in: mnist-5k digits on textured 32×32 RGB backgrounds, mask = digit pixels (11 ids)",
            needs_root=True,
            loader="optimlab.data.segmentation_mnist:load_mnist_segmentation",
            task="segmentation",
            input_shape=(3, 32, 32),
            outputs=11,
            stand_in=_MNIST_5K,
            cached=True,
        ),
        DatasetInfo(
            "voc2007-segmentation",
            "PASCAL VOC2007 segmentation: VOCdevkit/VOC2007 JPEGImages + SegmentationClass PNGs + ImageSets",
            needs_root=True,
            options={"image_size": 256, "train_split": "train", "test_split": "val"},
            loader="optimlab.data.voc_segmentation:load_voc2007_segmentation",
            task="segmentation",
            input_shape=(3, 256, 256),
            outputs=21,
            cached=True,
        ),
        DatasetInfo(
            "npz",
            "your own arrays: a .npz file (data_dir) of x_train, y_train, x_test, y_test",
            needs_root=True,
            loader="optimlab.data.npz:load_npz",
        ),
    ]
}


def _plugin_dataset(name: str, obj: Any, origin: str) -> DatasetInfo:
    """A DatasetInfo (its loader a "module:function"), or a loader function: needs_root when its
    first parameter is `root`, options = its keyword parameters with their defaults."""
    if isinstance(obj, DatasetInfo):
        return dataclasses.replace(obj, name=name, origin=origin)
    if not callable(obj):
        raise TypeError(f"a dataset plugin is a DatasetInfo or a loader function, got a {type(obj).__name__}")
    params = list(inspect.signature(obj).parameters.values())
    needs_root = bool(params) and params[0].name == "root"
    options = {p.name: p.default for p in params[needs_root:] if p.default is not p.empty}
    summary = (inspect.getdoc(obj) or "").strip().split("\n")[0] or f"user data set {name}"
    loader = f"{obj.__module__}:{obj.__qualname__}"
    task = getattr(obj, "task", "classification")
    return DatasetInfo(name, summary, needs_root, options, loader, task=task, origin=origin)


def _plugins() -> dict[str, DatasetInfo]:
    return discover("optimlab.datasets", _REGISTRY, _plugin_dataset)


def dataset_info(name: str) -> DatasetInfo:
    """The entry of a registered data set, an installed plugin or a package.module:attr reference."""
    info = _REGISTRY.get(name) or _plugins().get(name)
    if info is None and is_reference(name):
        info = _plugin_dataset(name, resolve_reference(name, "dataset"), "reference")
    if info is None:
        valid = sorted(d.name for d in list_datasets())
        raise ValueError(f"unknown dataset {name!r}; valid: {valid} or package.module:loader")
    return info


def list_datasets() -> list[DatasetInfo]:
    """Every registered data set, in registry order, then the installed plugins (optimlab.plugins)."""
    return [*_REGISTRY.values(), *_plugins().values()]


def sample_shape(name: str, options: dict[str, Any] | None = None) -> SampleShape | None:
    """One sample's input shape and the model's outputs for data set `name` under `options`, from its
    registry line (no data read): an `image_size` option sets H and W, a `classes` option (a subset of
    CIFAR's classes) the outputs. None when the line declares no input shape."""
    info = dataset_info(name)
    if info.input_shape is None:
        return None
    chosen = {**info.options, **(options or {})}
    c, h, w = info.input_shape
    if chosen.get("image_size") is not None:
        h = w = int(chosen["image_size"])
    outputs = len(chosen["classes"]) if chosen.get("classes") else info.outputs
    return SampleShape((c, h, w), outputs)


def load_dataset(name: str, root: str | Path | None = None, **options: Any) -> Any:
    """Load data set `name` into memory: image sets as DatasetSplits (train/test splits, normalized by
    training statistics); the other tasks' sets as their own container (text:
    optimlab.data.text.TextSplits; ctr: optimlab.data.ctr.TabularSplits; ...).

    Raises ValueError for an unknown name, an unknown option or a missing `root`, and
    DatasetError (a ValueError) for missing or corrupt files, naming the file.
    """
    info = dataset_info(name)
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        valid = sorted(info.options) or "none"
        raise ValueError(f"dataset {name!r} does not accept option(s) {unknown}; valid: {valid}")
    if info.cached and root is not None:
        return _load_cached(
            name, str(Path(root).expanduser().resolve()), _stamp(Path(root)), repr(sorted(options.items()))
        )
    module_name, func_name = info.loader.split(":")
    loader = getattr(importlib.import_module(module_name), func_name)
    if not info.needs_root:
        if root is not None:
            raise ValueError(f"dataset {name!r} is bundled and takes no root (got root={str(root)!r})")
        return loader(**options)
    if root is None:
        raise ValueError(f"dataset {name!r} needs root=<folder> (data_dir in configs)")
    return loader(Path(root).expanduser(), **{**info.options, **options})


def _stamp(root: Path) -> tuple[tuple[str, int, int], ...]:
    """(name, size, mtime) of the files in root: a changed file is a different cache entry."""
    root = root.expanduser()
    files = [root] if root.is_file() else sorted(p for p in root.glob("*") if p.is_file()) if root.is_dir() else []
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)


@functools.lru_cache(maxsize=2)
def _load_cached(name: str, root: str, stamp: tuple[tuple[str, int, int], ...], options: str) -> Any:
    """One process (a sweep worker) parses/hashes a text or tabular data set once for all its runs; the
    splits are shared read-only (tasks copy what they carve out)."""
    info = dataset_info(name)
    module_name, func_name = info.loader.split(":")
    loader = getattr(importlib.import_module(module_name), func_name)
    return loader(Path(root), **{**info.options, **dict(ast.literal_eval(options))})


__all__ = [
    "Augment",
    "DatasetError",
    "DatasetInfo",
    "DatasetSplits",
    "SampleShape",
    "Split",
    "StandIn",
    "TensorSplit",
    "class_balancing_weights",
    "dataset_info",
    "iterate_batches",
    "list_datasets",
    "load_dataset",
    "sample_shape",
    "stratified_split",
]
