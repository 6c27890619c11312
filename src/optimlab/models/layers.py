"""Small pieces shared by the model families: channel scaling and conv-BN-ReLU blocks."""

from __future__ import annotations

from torch import nn


def scale(channels: int, width: float) -> int:
    """Channel count `channels` under width multiplier `width` (never below 1)."""
    return max(1, int(round(channels * width)))


def conv_bn_relu(c_in: int, c_out: int, bias: bool = False) -> nn.Sequential:
    """3×3 convolution (padding 1, keeps H×W) -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=bias),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )
