"""A tiny CNN with optimlab's model-factory signature (num_classes, input_shape, width) -> nn.Module."""

from __future__ import annotations

from torch import nn


def tiny_cnn(num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """Two 3×3 conv-ReLU layers (8·width, 16·width channels), global average pooling, linear head."""
    c1, c2 = max(1, round(8 * width)), max(1, round(16 * width))
    return nn.Sequential(
        nn.Conv2d(input_shape[0], c1, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c2, num_classes),
    )
