"""Multi-layer perceptron: flatten -> (Linear -> ReLU) × len(hidden) -> Linear."""

from __future__ import annotations

import math

from torch import Tensor, nn

from optimlab.models.layers import scale

HIDDEN = (256, 128)  # hidden sizes at width 1; small enough for CPU runs on digits


class MLP(nn.Module):
    def __init__(self, in_features: int, num_classes: int, hidden: tuple[int, ...] = HIDDEN) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        prev = in_features
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.ReLU(inplace=True)]
            prev = h
        layers.append(nn.Linear(prev, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:  # x: [B, C, H, W] -> logits [B, num_classes]
        return self.net(x)


def mlp(num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> MLP:
    return MLP(math.prod(input_shape), num_classes, tuple(scale(h, width) for h in HIDDEN))


__all__ = ["MLP", "mlp"]
