"""The in-memory containers every dataset loader returns, and the normalization they share.

A loader decodes everything at load time into float32 tensors, so training batches are plain index
look-ups (no DataLoader, no decoding mid-epoch). Normalization uses per-channel statistics of the
*training* split only, applied to both splits, so the test set never leaks into preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Self

import torch
from torch import Tensor


class DatasetError(ValueError):
    """A dataset on disk is missing, corrupt or inconsistent; the message names the file."""


@dataclass
class Split:
    """Samples of one split, whatever the task: x [N, ...] (any dtype: images, token ids, hashed
    feature ids) and y [N, ...] (class indices, binary labels, targets). Batches index both rows."""

    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if self.x.dim() < 1 or self.y.dim() < 1 or self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"{type(self).__name__}: x and y need the same number of rows, got shapes "
                f"{tuple(self.x.shape)} and {tuple(self.y.shape)}"
            )

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: Tensor) -> Self:
        """The samples at `index` (a 1-D int64 tensor), as a new split (same type) sharing nothing."""
        return type(self)(self.x[index].clone(), self.y[index].clone())

    def to(self, device: torch.device | str) -> Self:
        return type(self)(self.x.to(device), self.y.to(device))


@dataclass
class TensorSplit(Split):
    x: Tensor  # float32 [N, C, H, W], normalized
    y: Tensor  # int64 [N], class indices in 0..num_classes-1

    def __post_init__(self) -> None:
        if self.x.dim() != 4:
            raise ValueError(f"TensorSplit.x must be [N, C, H, W], got shape {tuple(self.x.shape)}")
        if self.y.dim() != 1 or self.y.shape[0] != self.x.shape[0]:
            raise ValueError(f"TensorSplit.y must be [N] with N = {self.x.shape[0]}, got shape {tuple(self.y.shape)}")
        if self.x.dtype != torch.float32:
            raise ValueError(f"TensorSplit.x must be float32, got {self.x.dtype}")
        if self.y.dtype != torch.int64:
            raise ValueError(f"TensorSplit.y must be int64, got {self.y.dtype}")


@dataclass
class DatasetSplits:
    train: TensorSplit
    test: TensorSplit
    num_classes: int
    class_names: list[str]  # class_names[k] names label k
    input_shape: tuple[int, int, int]  # (C, H, W) of one sample
    mean: tuple[float, ...]  # per-channel mean of the raw training pixels (subtracted)
    std: tuple[float, ...]  # per-channel std of the raw training pixels (divided by)
    name: str  # registry name, e.g. "cifar10"

    def __repr__(self) -> str:
        return (
            f"DatasetSplits(name={self.name!r}, train={len(self.train)}, test={len(self.test)}, "
            f"num_classes={self.num_classes}, input_shape={self.input_shape})"
        )


CHUNK = 4096  # samples converted at a time, so full CIFAR never needs a float64 copy in memory


def channel_stats(x: Tensor, scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """Per-channel mean and population std (float64 [C]) of scale · x, x: [N, C, H, W] of any dtype."""
    c = x.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for start in range(0, x.shape[0], CHUNK):
        chunk = x[start : start + CHUNK].double() * scale
        total += chunk.sum(dim=(0, 2, 3))
        total_sq += chunk.square().sum(dim=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(0.0).sqrt()
    # A constant channel would divide by zero; leave it unscaled instead.
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    return mean, std


def normalize(x: Tensor, mean: Tensor, std: Tensor, scale: float = 1.0) -> Tensor:
    """(scale · x − mean) / std per channel, as a new contiguous float32 tensor (chunked)."""
    out = torch.empty(x.shape, dtype=torch.float32)
    m = mean.float().view(1, -1, 1, 1)
    s = std.float().view(1, -1, 1, 1)
    for start in range(0, x.shape[0], CHUNK):
        out[start : start + CHUNK] = (x[start : start + CHUNK].float() * scale - m) / s
    return out


class NormalizedImages(NamedTuple):
    train: Tensor  # float32 [N, C, H, W]
    test: Tensor
    input_shape: tuple[int, ...]  # (C, H, W)
    mean: tuple[float, ...]  # per channel, in the scaled units
    std: tuple[float, ...]


def normalize_pair(train_x: Tensor, test_x: Tensor, scale: float = 1.0) -> NormalizedImages:
    """Scale both splits' raw pixels (e.g. uint8 by 1/255) and normalize them by the TRAINING split's
    per-channel mean/std: the one normalization of every image data set (classification, key points,
    detection, segmentation)."""
    mean, std = channel_stats(train_x, scale)
    return NormalizedImages(
        train=normalize(train_x, mean, std, scale),
        test=normalize(test_x, mean, std, scale),
        input_shape=tuple(int(d) for d in train_x.shape[1:]),
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
    )


def make_splits(
    name: str,
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    class_names: list[str],
    scale: float = 1.0,
) -> DatasetSplits:
    """Scale raw pixels (e.g. uint8 by 1/255), normalize both splits by the training split's
    per-channel mean/std, and wrap them. mean/std are reported in the scaled units."""
    if train_x.shape[0] == 0 or test_x.shape[0] == 0:
        raise DatasetError(f"dataset {name!r} has an empty split (train {train_x.shape[0]}, test {test_x.shape[0]})")
    images = normalize_pair(train_x, test_x, scale)
    return DatasetSplits(
        train=TensorSplit(images.train, train_y.long().contiguous()),
        test=TensorSplit(images.test, test_y.long().contiguous()),
        num_classes=len(class_names),
        class_names=list(class_names),
        input_shape=images.input_shape,  # type: ignore[arg-type]
        mean=images.mean,
        std=images.std,
        name=name,
    )
