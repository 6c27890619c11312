"""Batch augmentation on tensors: random crop with zero padding and random horizontal flip.

Works on a whole batch at once (no per-sample Python loop): every sample gets its own crop
offset (dy, dx) in 0..2p and its own flip coin, all drawn from the caller's torch.Generator, so
an epoch's augmentation is reproducible from the seed. The crop is one advanced-indexing copy out
of an unfold view of the padded batch (~1.3 ms for 128×3×32×32 on one CPU thread, vs ~5.7 ms for
a per-sample loop). Padding is with zeros *after* normalization, i.e. with the training mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Augment:
    crop_padding: int = 4  # pixels of zero padding on each side before the random crop; 0 = no crop
    flip: bool = True  # mirror each sample left-right with probability 1/2

    def __post_init__(self) -> None:
        if not isinstance(self.crop_padding, int) or isinstance(self.crop_padding, bool) or self.crop_padding < 0:
            raise ValueError(f"Augment crop_padding must be an int >= 0, got {self.crop_padding!r}")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x: [B, C, H, W] -> augmented copy of the same shape (x is not modified)."""
        if x.dim() != 4:
            raise ValueError(f"Augment expects a batch [B, C, H, W], got shape {tuple(x.shape)}")
        if self.crop_padding > 0:
            x = random_crop(x, self.crop_padding, generator)
        if self.flip:
            x = random_flip(x, generator)
        return x


def random_crop(x: Tensor, padding: int, generator: torch.Generator | None = None) -> Tensor:
    """Pad x [B, C, H, W] with `padding` zeros per side, then crop H×W at a random offset per sample."""
    b, _, h, w = x.shape
    p = padding
    padded = F.pad(x, (p, p, p, p))  # [B, C, H+2p, W+2p]
    dy = torch.randint(0, 2 * p + 1, (b,), generator=generator, device="cpu").to(x.device)
    dx = torch.randint(0, 2 * p + 1, (b,), generator=generator, device="cpu").to(x.device)
    # Every H×W window as a view [B, C, 2p+1, 2p+1, H, W] (no copy); pick window (dy_i, dx_i) of sample i.
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)
    return windows[torch.arange(b, device=x.device), :, dy, dx]  # [B, C, H, W], one copy


def random_flip(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Mirror each sample of x [B, C, H, W] along W with probability 1/2."""
    coin = torch.rand(x.shape[0], generator=generator, device="cpu").to(x.device) < 0.5
    return torch.where(coin[:, None, None, None], x.flip(3), x)
