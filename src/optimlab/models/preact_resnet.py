"""Pre-activation ResNets (He et al. 2016, "Identity Mappings in Deep Residual Networks").

Layout of kuangliu/pytorch-cifar's `models/preact_resnet.py` (the usual CIFAR PreActResNet): a
3×3 stride-1 stem conv with no BN/ReLU after it, PreActBlock × [3, 4, 6, 3] (PreActResNet34),
× [2, 2, 2, 2] (18) or × [1, 1, 1, 1] (10, our CPU-sized depth), stages of 64, 128, 256, 512
planes (× width), stride 2 at the start of stages 2-4, a 1×1 projection shortcut (no BN) taken
from the pre-activated input wherever the shape changes, no final BN-ReLU, global average
pooling and one linear layer.

Used as a regressor for the key-point task: `num_classes` is the number of outputs (2 per
key point, (x, y) pairs), the linear output is the prediction itself (no activation).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from optimlab.models.layers import scale

PLANES = (64, 128, 256, 512)  # planes per stage at width 1


class PreActBlock(nn.Module):
    """BN-ReLU-conv3×3 twice; the shortcut branches off after the first BN-ReLU when it projects."""

    def __init__(self, c_in: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or c_in != planes:
            self.shortcut = nn.Conv2d(c_in, planes, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    def __init__(self, num_blocks: list[int], num_outputs: int, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        planes = [scale(p, width) for p in PLANES]
        self.conv1 = nn.Conv2d(in_channels, planes[0], 3, stride=1, padding=1, bias=False)
        c = planes[0]
        stages = []
        for i, (p, n) in enumerate(zip(planes, num_blocks)):
            blocks = []
            for j in range(n):
                blocks.append(PreActBlock(c, p, 2 if i > 0 and j == 0 else 1))
                c = p
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(c, num_outputs)

    def forward(self, x: Tensor) -> Tensor:  # x: [B, C, H, W] -> [B, num_outputs]
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        return self.linear(self.pool(out).flatten(1))


def preactresnet10(num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> PreActResNet:
    return PreActResNet([1, 1, 1, 1], num_classes, input_shape[0], width)


def preactresnet18(num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> PreActResNet:
    return PreActResNet([2, 2, 2, 2], num_classes, input_shape[0], width)


def preactresnet34(num_classes: int, input_shape: tuple[int, int, int], width: float = 1.0) -> PreActResNet:
    return PreActResNet([3, 4, 6, 3], num_classes, input_shape[0], width)
