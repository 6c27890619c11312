"""CIFAR DenseNet-121 (Huang et al. 2017): DenseNet-BC with growth rate k = 32.

Stem: one 3×3 conv to 2k channels (stride 1, no max-pool). Four dense blocks of [6, 12, 24, 16]
bottleneck layers, each BN-ReLU-1×1 conv (4k) -> BN-ReLU-3×3 conv (k), its k new channels
concatenated to its input. Between blocks a transition BN-ReLU-1×1 conv halves the channels
(reduction 0.5, floor) and a 2×2 average pool halves H and W (while they are at least 2). Then
BN-ReLU, global average pooling and a linear classifier. Width scales k.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from optimlab.models.layers import scale

GROWTH = 32  # k at width 1
BLOCKS = (6, 12, 24, 16)  # bottleneck layers per dense block (DenseNet-121)
REDUCTION = 0.5  # channel compression at each transition


class DenseLayer(nn.Module):
    def __init__(self, c_in: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:  # [B, c_in, H, W] -> [B, c_in + growth, H, W]
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], dim=1)


class Transition(nn.Module):
    def __init__(self, c_in: int, c_out: int, pool: bool) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c_in)
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.pool = nn.AvgPool2d(2) if pool else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.conv(F.relu(self.bn(x))))


class DenseNet(nn.Module):
    def __init__(
        self, blocks: tuple[int, ...], growth: int, num_classes: int, in_channels: int, height: int, width_px: int
    ) -> None:
        super().__init__()
        c = 2 * growth
        self.conv1 = nn.Conv2d(in_channels, c, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        h, w = height, width_px
        for i, n in enumerate(blocks):
            layers = []
            for _ in range(n):
                layers.append(DenseLayer(c, growth))
                c += growth
            stages.append(nn.Sequential(*layers))
            if i < len(blocks) - 1:
                c_out = int(math.floor(c * REDUCTION))
                pool = h >= 2 and w >= 2
                stages.append(Transition(c, c_out, pool))
                if pool:
                    h, w = h // 2, w // 2
                c = c_out
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(c)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(c, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # x: [B, C, H, W] -> logits [B, num_classes]
        out = F.relu(self.bn(self.features(self.conv1(x))))
        return self.linear(self.pool(out).flatten(1))


def densenet121(num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> DenseNet:
    c, h, w = input_shape
    return DenseNet(BLOCKS, scale(GROWTH, width), num_classes, c, h, w)
