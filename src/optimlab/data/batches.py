"""Mini-batches by index permutation on in-memory tensors, the class-balancing sampler, and a
stratified carve-out of a validation split.

`iterate_batches` is the training hot path: one randperm (or one multinomial draw) per epoch,
then slicing. With `sampler_weights` it follows torch's WeightedRandomSampler: N indices drawn
with replacement with probability proportional to the weights (paper 003 uses
1 / count(class of the sample), see `class_balancing_weights`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

from optimlab.data.base import Split

S = TypeVar("S", bound=Split)


def iterate_batches(
    split: Split,
    batch_size: int,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    augment: Callable[[Tensor, torch.Generator | None], Tensor] | None = None,
    sampler_weights: Tensor | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield (x [B, ...], y [B, ...]) covering one epoch of `split` (images: x [B, C, H, W]).

    shuffle: random order (ignored when sampler_weights is given: the draw is already random).
    augment: called as augment(x, generator) on each batch (e.g. `Augment()`).
    sampler_weights: [N] non-negative weights; N indices are drawn with replacement.
    drop_last: skip a final batch smaller than batch_size.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    n = len(split)
    if sampler_weights is not None:
        weights = check_sampler_weights(sampler_weights, n)
        order = torch.multinomial(weights, n, replacement=True, generator=generator)
    elif shuffle:
        order = torch.randperm(n, generator=generator)
    else:
        order = torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        index = order[start : start + batch_size]
        x = split.x[index]
        if augment is not None:
            x = augment(x, generator)
        yield x, split.y[index]


def check_sampler_weights(weights: Tensor, n: int) -> Tensor:
    w = torch.as_tensor(weights, dtype=torch.float64)
    if w.shape != (n,):
        raise ValueError(f"sampler_weights must have shape ({n},) (one per sample), got {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError("sampler_weights must be finite and >= 0")
    if float(w.sum()) <= 0:
        raise ValueError("sampler_weights must not all be zero")
    return w


def class_balancing_weights(y: Tensor, num_classes: int | None = None) -> Tensor:
    """Per-sample weight 1 / (number of samples of its class): every class is drawn equally often."""
    y = torch.as_tensor(y)
    if y.dim() != 1 or y.numel() == 0:
        raise ValueError(f"labels must be a non-empty 1-D tensor, got shape {tuple(y.shape)}")
    if bool((y < 0).any()):
        raise ValueError("labels must be >= 0")
    counts = torch.bincount(y.long(), minlength=num_classes or 0).double()
    return (1.0 / counts[y.long()]).float()


def stratified_indices(y: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Split sample indices so every class sends round(fraction · its count) samples to the second part.

    A class with at least 2 samples keeps at least one on each side (when 0 < fraction < 1); a class
    with one sample stays on the first side. Both index tensors are sorted ascending.
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    labels = np.asarray(torch.as_tensor(y).cpu(), dtype=np.int64)
    rng = np.random.RandomState(seed)
    first: list[np.ndarray] = []
    second: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        members = members[rng.permutation(len(members))]
        k = int(round(fraction * len(members)))
        if len(members) >= 2:
            k = min(max(k, 1), len(members) - 1)
        else:
            k = 0
        second.append(members[:k])
        first.append(members[k:])
    a = np.sort(np.concatenate(first)) if first else np.zeros(0, np.int64)
    b = np.sort(np.concatenate(second)) if second else np.zeros(0, np.int64)
    return torch.from_numpy(a.astype(np.int64)), torch.from_numpy(b.astype(np.int64))


def stratified_split(split: S, fraction: float, seed: int = 0) -> tuple[S, S]:
    """Carve a validation split (≈ fraction of each class) out of `split`: returns (train, val)."""
    keep, held = stratified_indices(split.y, fraction, seed)
    if len(held) == 0:
        raise ValueError(
            f"fraction={fraction} leaves no validation samples from {len(split)} samples "
            "(every class has fewer than 2 samples)"
        )
    return split.subset(keep), split.subset(held)
