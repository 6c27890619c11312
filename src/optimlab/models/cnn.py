"""A small VGG-style conv net for quick runs: three stages of two 3×3 conv-BN-ReLU layers.

Stages have 32, 64, 128 channels (× width); a 2×2 max-pool follows each stage while the feature
map is still at least 2×2, so the same net runs on 8×8 digits (8 -> 4 -> 2 -> 1) and 32×32 CIFAR
(32 -> 16 -> 8 -> 4). Global average pooling then feeds one linear classifier.
"""

from __future__ import annotations

from torch import Tensor, nn

from optimlab.models.layers import conv_bn_relu, scale

STAGES = (32, 64, 128)  # channels per stage at width 1


class SmallCNN(nn.Module):
    def __init__(
        self, in_channels: int, num_classes: int, height: int, width_px: int, stages: tuple[int, ...] = STAGES
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev, h, w = in_channels, height, width_px
        for c in stages:
            layers += [conv_bn_relu(prev, c), conv_bn_relu(c, c)]
            if h >= 2 and w >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            prev = c
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(prev, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # x: [B, C, H, W] -> logits [B, num_classes]
        return self.classifier(self.pool(self.features(x)).flatten(1))


def cnn(num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> SmallCNN:
    c, h, w = input_shape
    return SmallCNN(c, num_classes, h, w, tuple(scale(s, width) for s in STAGES))
