"""LR-ASPP segmentation networks (Howard et al. 2019, "Searching for MobileNetV3", Sec. 6.4 and
Figure 10) on a MobileNetV3-Large backbone (the paper scale) and a CIFAR ResNet-18 (the CPU scale).

Layout of torchvision's `models/segmentation/lraspp.py` + `models/mobilenetv3.py` (read, not
copied): a MobileNetV3 feature extractor whose last stage is dilated instead of strided, and the
Lite Reduced Atrous Spatial Pyramid Pooling head:

    high = backbone features at output stride OS (the last 1×1 conv, 6 × the last block's channels)
    low  = the output of the first block at stride OS/2
    x    = ReLU(BN(conv1×1(high))) · sigmoid(conv1×1(global-avg-pool(high)))      (inter channels)
    out  = conv1×1(low) + conv1×1(bilinear-upsample(x, size of low))              (num_classes maps)
    out  = bilinear-upsample(out, input H×W)                                       (align_corners=False)

    lraspp        MobileNetV3-Large, OS 16 (torchvision's lraspp_mobilenet_v3_large: at width 1,
                  3-channel input and 21 classes 3,221,538 parameters, as torchvision's)
    lraspp-resnet18  the same head on the CIFAR ResNet-18 (optimlab.models.resnet: 3×3 stride-1
                  stem, stages at strides 1, 2, 4, 8): low-level features = stage 1 (stride 1),
                  high-level = stage 4 (stride 8). Our CPU-sized variant for 32×32 images: measured on
                  optimlab.data.segmentation_mnist, 300 Adam steps at lr 1e-2 from scratch, a
                  MobileNetV3-Small LR-ASPP at output stride 8 (width 1/4 or 1) stayed near the
                  all-background predictor (test mIoU 0.12 / 0.11, all-background 0.09); this one at
                  width 1/8 reached 0.36

Conventions: `width` multiplies every channel count (MobileNetV3: rounded to a multiple of 8 as
torchvision's `_make_divisible` does; ResNet-18: as optimlab.models.resnet; inter channels
divisible(128 × width) for both); BatchNorm uses torch's defaults
(momentum 0.1, eps 1e-5), not MobileNetV3's (0.01, 1e-3), so short runs' running statistics
settle; no pretrained weights; MobileNetV3: He (fan-out) initialisation of convs as torchvision's;
ResNet-18: torch's default initialisation, as optimlab.models.resnet.
Returns logits [B, num_classes, H, W].
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn


class Block(NamedTuple):
    c_in: int
    kernel: int
    expanded: int
    c_out: int
    se: bool
    act: str  # "RE" (ReLU) | "HS" (hard-swish)
    stride: int


# torchvision's _mobilenet_v3_conf tables (Howard et al. 2019, Tables 1 and 2)
LARGE = (
    Block(16, 3, 16, 16, False, "RE", 1),
    Block(16, 3, 64, 24, False, "RE", 2),
    Block(24, 3, 72, 24, False, "RE", 1),
    Block(24, 5, 72, 40, True, "RE", 2),
    Block(40, 5, 120, 40, True, "RE", 1),
    Block(40, 5, 120, 40, True, "RE", 1),
    Block(40, 3, 240, 80, False, "HS", 2),
    Block(80, 3, 200, 80, False, "HS", 1),
    Block(80, 3, 184, 80, False, "HS", 1),
    Block(80, 3, 184, 80, False, "HS", 1),
    Block(80, 3, 480, 112, True, "HS", 1),
    Block(112, 3, 672, 112, True, "HS", 1),
    Block(112, 5, 672, 160, True, "HS", 2),
    Block(160, 5, 960, 160, True, "HS", 1),
    Block(160, 5, 960, 160, True, "HS", 1),
)
INTER = 128  # LR-ASPP's inter channels at width 1


def divisible(v: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible: the nearest multiple of `divisor` (>= divisor), never 10 % below v."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def _act(kind: str) -> nn.Module:
    return nn.ReLU(inplace=True) if kind == "RE" else nn.Hardswish(inplace=True)


def _cba(c_in: int, c_out: int, k: int, stride: int = 1, dilation: int = 1, groups: int = 1, act: str = "") -> list:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2 * dilation, dilation, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    return layers + [_act(act)] if act else layers


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        squeeze = divisible(channels // 4)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


class InvertedResidual(nn.Module):
    """1×1 expand (when expanded != c_in) -> k×k depthwise (strided or dilated) -> SE -> 1×1 project."""

    def __init__(self, b: Block, width: float, stride: int, dilation: int) -> None:
        super().__init__()
        c_in, exp, c_out = (divisible(c * width) for c in (b.c_in, b.expanded, b.c_out))
        self.residual = stride == 1 and c_in == c_out
        layers: list[nn.Module] = []
        if exp != c_in:
            layers += _cba(c_in, exp, 1, act=b.act)
        layers += _cba(exp, exp, b.kernel, stride, dilation, groups=exp, act=b.act)
        if b.se:
            layers.append(SqueezeExcite(exp))
        layers += _cba(exp, c_out, 1)
        self.block = nn.Sequential(*layers)
        self.out_channels = c_out

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class Head(nn.Module):
    """LR-ASPP: a 1×1 conv branch gated by a global-pool sigmoid branch on the high-level features,
    upsampled to the low-level ones, each classified by a 1×1 conv, summed, upsampled to `size`."""

    def __init__(self, low_channels: int, high_channels: int, inter: int, num_classes: int) -> None:
        super().__init__()
        self.cbr = nn.Sequential(
            nn.Conv2d(high_channels, inter, 1, bias=False), nn.BatchNorm2d(inter), nn.ReLU(inplace=True)
        )
        self.scale = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(high_channels, inter, 1, bias=False), nn.Sigmoid()
        )
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1)
        self.high_classifier = nn.Conv2d(inter, num_classes, 1)

    def forward(self, low: Tensor, high: Tensor, size: tuple[int, ...]) -> Tensor:
        x = self.cbr(high) * self.scale(high)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        out = self.low_classifier(low) + self.high_classifier(x)
        return F.interpolate(out, size=size, mode="bilinear", align_corners=False)


def _init(model: nn.Module) -> None:
    """torchvision's MobileNetV3 initialisation: He (fan-out) convs, zero biases, BN at identity."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class LRASPP(nn.Module):
    """MobileNetV3 features (dilated to `output_stride`) + the LR-ASPP head; logits at input size."""

    def __init__(
        self,
        layout: tuple[Block, ...],
        num_classes: int,
        in_channels: int,
        width: float,
        output_stride: int,
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {output_stride!r}")
        c = divisible(16 * width)
        layers: list[nn.Module] = [nn.Sequential(*_cba(in_channels, c, 3, 2, act="HS"))]
        stride, dilation, low_index, low_channels = 2, 1, -1, 0
        for b in layout:
            step = b.stride
            if step > 1 and stride >= output_stride:  # keep the resolution, dilate (widen the receptive field)
                dilation *= step
                step = 1
            elif step > 1:
                stride *= step
                if stride == output_stride // 2 and low_index < 0:
                    low_index = len(layers)
            block = InvertedResidual(b, width, step, dilation)
            if low_index == len(layers):
                low_channels = block.out_channels
            layers.append(block)
        last = 6 * divisible(layout[-1].c_out * width)
        layers.append(nn.Sequential(*_cba(divisible(layout[-1].c_out * width), last, 1, act="HS")))
        self.features = nn.ModuleList(layers)
        self.low_index = low_index
        self.head = Head(low_channels, last, divisible(INTER * width), num_classes)
        _init(self)

    def forward(self, x: Tensor) -> Tensor:
        size = tuple(x.shape[-2:])
        low = x
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == self.low_index:
                low = x
        return self.head(low, x, size)


class ResNetLRASPP(nn.Module):
    """The LR-ASPP head on the CIFAR ResNet-18 (optimlab.models.resnet: 3×3 stride-1 stem, stages at
    strides 1, 2, 4, 8): low-level features = stage 1 (stride 1), high-level = stage 4 (stride 8)."""

    def __init__(self, num_classes: int, in_channels: int, width: float) -> None:
        super().__init__()
        from optimlab.models.layers import scale
        from optimlab.models.resnet import PLANES, BasicBlock, ResNet

        net = ResNet(BasicBlock, [2, 2, 2, 2], 1, in_channels, width)
        self.stem = nn.Sequential(net.conv1, net.bn1, nn.ReLU(inplace=True))
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        low, high = scale(PLANES[0], width), scale(PLANES[-1], width)  # BasicBlock: expansion 1
        self.head = Head(low, high, divisible(INTER * width), num_classes)

    def forward(self, x: Tensor) -> Tensor:
        size = tuple(x.shape[-2:])
        low = self.layer1(self.stem(x))
        return self.head(low, self.layer4(self.layer3(self.layer2(low))), size)


def lraspp_resnet18(num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """LR-ASPP on the CIFAR ResNet-18 (low-level features at stride 1, high-level at 8): small images."""
    return ResNetLRASPP(num_classes, input_shape[0], width)


def lraspp(num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """LR-ASPP on MobileNetV3-Large at output stride 16 (torchvision's lraspp_mobilenet_v3_large)."""
    return LRASPP(LARGE, num_classes, input_shape[0], width, output_stride=16)


__all__ = ["LARGE", "LRASPP", "Head", "ResNetLRASPP", "divisible", "lraspp", "lraspp_resnet18"]
