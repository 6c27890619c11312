"""CIFAR VGG-11 / VGG-16 (Simonyan & Zisserman 2015) with BatchNorm after every conv.

Each number in a configuration is a 3×3 conv (padding 1, with bias) -> BN -> ReLU with that many
channels (× width); "M" is a 2×2 max-pool. Five pools take 32×32 to 1×1; a pool is left out once
the feature map is 1×1, so smaller inputs (down to 8×8) work too. Global average pooling then
one linear layer 512 -> classes (no 4096-wide head: the CIFAR variant).
"""

from __future__ import annotations

from torch import Tensor, nn

from optimlab.models.layers import conv_bn_relu, scale

CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    def __init__(
        self,
        config: list[int | str],
        num_classes: int,
        in_channels: int,
        height: int,
        width_px: int,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c, h, w = in_channels, height, width_px
        for item in config:
            if item == "M":
                if h >= 2 and w >= 2:
                    layers.append(nn.MaxPool2d(2))
                    h, w = h // 2, w // 2
            else:
                out = scale(int(item), width)
                layers.append(conv_bn_relu(c, out, bias=True))
                c = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # x: [B, C, H, W] -> logits [B, num_classes]
        return self.classifier(self.pool(self.features(x)).flatten(1))


def vgg11(num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> VGG:
    c, h, w = input_shape
    return VGG(CONFIGS["vgg11"], num_classes, c, h, w, width)


def vgg16(num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> VGG:
    c, h, w = input_shape
    return VGG(CONFIGS["vgg16"], num_classes, c, h, w, width)
