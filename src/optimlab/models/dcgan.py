"""A DCGAN-style generator/discriminator pair (Radford, Metz & Chintala 2016) for small grey images.

The layout is the usual one for 28×28 digits (TensorFlow's DCGAN tutorial, PyTorch's examples):

    generator:      z [B, 100] -> linear 256·(H/4)·(W/4) -> BN -> ReLU
                    -> convT 4×4 s2 (256 -> 128) -> BN -> ReLU -> convT 4×4 s2 (128 -> C) -> tanh
    discriminator:  x [B, C, H, W] -> conv 4×4 s2 (C -> 64) -> LeakyReLU(0.2)
                    -> conv 4×4 s2 (64 -> 128) -> BN -> LeakyReLU(0.2) -> linear -> 1 logit

Channel counts (256/128/64/128) scale with `width`; H and W must be multiples of 4 (28×28 for
mnist-5k). Images live in [-1, 1] (tanh output). Weights start from N(0, 0.02) and BN scales from
N(1, 0.02), as in the DCGAN paper. `DCGAN` holds both networks so the registry can build them in
one call; each network gets its own optimizer (see optimlab's gan task).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from optimlab.models.layers import scale

LATENT_DIM = 100  # length of the generator's noise vector z ~ N(0, I)


def _init_dcgan(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, out_shape: tuple[int, int, int], width: float = 1.0, latent_dim: int = LATENT_DIM) -> None:
        super().__init__()
        c, h, w = out_shape
        c1, c2 = scale(256, width), scale(128, width)
        self.latent_dim = latent_dim
        self.seed_shape = (c1, h // 4, w // 4)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, c1 * (h // 4) * (w // 4), bias=False),
            nn.BatchNorm1d(c1 * (h // 4) * (w // 4)),
            nn.ReLU(inplace=True),
        )
        self.body = nn.Sequential(
            nn.ConvTranspose2d(c1, c2, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(c2, c, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:  # z: [B, latent_dim] -> images [B, C, H, W] in [-1, 1]
        return self.body(self.project(z).view(z.shape[0], *self.seed_shape))


class Discriminator(nn.Module):
    def __init__(self, in_shape: tuple[int, int, int], width: float = 1.0) -> None:
        super().__init__()
        c, h, w = in_shape
        c1, c2 = scale(64, width), scale(128, width)
        self.body = nn.Sequential(
            nn.Conv2d(c, c1, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.linear = nn.Linear(c2 * (h // 4) * (w // 4), 1)

    def forward(self, x: Tensor) -> Tensor:  # x: [B, C, H, W] -> real/fake logits [B]
        return self.linear(self.body(x).flatten(1)).squeeze(1)


class DCGAN(nn.Module):
    """Both networks; `forward(z)` generates. Train them with two optimizers (one per network)."""

    def __init__(self, image_shape: tuple[int, int, int], width: float = 1.0, latent_dim: int = LATENT_DIM) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.latent_dim = latent_dim
        self.generator = Generator(image_shape, width, latent_dim)
        self.discriminator = Discriminator(image_shape, width)
        _init_dcgan(self)
        # FID feature extractors a task attaches (name -> callable); not modules, not in the state dict
        self.fid_extractors: dict[str, Any] = {}

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n noise vectors z ~ N(0, I) on the model's device."""
        device = next(self.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator).to(device)


def dcgan(num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> DCGAN:
    if num_classes != 1:
        raise ValueError(
            f"dcgan's discriminator has one output (a real/fake logit): num_classes must be 1, got {num_classes}"
        )
    c, h, w = input_shape
    if h % 4 or w % 4:
        raise ValueError(f"dcgan needs image sides that are multiples of 4 (e.g. 28×28), got input_shape={input_shape}")
    return DCGAN((c, h, w), width)
