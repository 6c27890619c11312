"""Model registry: one table of every network optimlab trains, built by `create_model`.

    model = create_model("resnet18", num_classes=10, input_shape=(3, 32, 32), width=1.0)
    model = create_model("cnn", num_classes=10, input_shape=(1, 8, 8), width=0.5)

The CIFAR-style networks (3×3 stem with stride 1, no max-pool, global average pooling) follow the
layouts used by the papers' experiments; at width 1 with 3×32×32 inputs and 10 classes their
parameter counts equal the standard CIFAR ones (ResNet18 11,173,962). `width` scales every
channel count (each at least 1); any input of at least 8×8 pixels and any channel count works.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from optimlab.plugins import discover, is_reference, resolve_reference


@dataclass(frozen=True)
class ModelInfo:
    name: str  # registry name, as used in configs
    summary: str
    family: str  # "mlp" | "cnn" | "resnet" | "densenet" | "vgg" | "preact_resnet" | "dcgan" | "lraspp" (one file each)
    factory: str = field(default="", repr=False, compare=False)  # "module:function" building it
    origin: str = "optimlab"  # or "plugin <dist> <version> (<module:attr>)", "reference" (optimlab.plugins)


def _info(name: str, summary: str, family: str, func: str) -> ModelInfo:
    return ModelInfo(name, summary, family, f"optimlab.models.{family}:{func}")


_REGISTRY: dict[str, ModelInfo] = {
    info.name: info
    for info in [
        _info("mlp", "flatten -> 2 hidden ReLU layers (256, 128) -> linear", "mlp", "mlp"),
        _info("cnn", "small conv net: 3 stages of 2 conv-BN-ReLU (32/64/128), max-pool, GAP", "cnn", "cnn"),
        _info("resnet18", "CIFAR ResNet-18: BasicBlock [2,2,2,2], 3×3 stem, no max-pool", "resnet", "resnet18"),
        _info("resnet50", "CIFAR ResNet-50: Bottleneck [3,4,6,3], 3×3 stem, no max-pool", "resnet", "resnet50"),
        _info(
            "densenet121",
            "CIFAR DenseNet-121: growth 32, blocks [6,12,24,16], reduction 0.5",
            "densenet",
            "densenet121",
        ),
        _info("vgg11", "CIFAR VGG-11 with BatchNorm, linear 512 -> classes", "vgg", "vgg11"),
        _info("vgg16", "CIFAR VGG-16 with BatchNorm, linear 512 -> classes", "vgg", "vgg16"),
        _info(
            "preactresnet34",
            "pre-activation ResNet-34 [3,4,6,3], linear head (regression: num_classes = outputs)",
            "preact_resnet",
            "preactresnet34",
        ),
        _info("preactresnet18", "pre-activation ResNet-18 [2,2,2,2], linear head", "preact_resnet", "preactresnet18"),
        _info(
            "preactresnet10",
            "pre-activation ResNet-10 [1,1,1,1] (CPU-sized), linear head",
            "preact_resnet",
            "preactresnet10",
        ),
        _info(
            "dcgan", "DCGAN generator + discriminator pair (num_classes = 1; sides multiples of 4)", "dcgan", "dcgan"
        ),
        _info(
            "lraspp",
            "LR-ASPP on MobileNetV3-Large, output stride 16 (segmentation: logits [B, classes, H, W])",
            "lraspp",
            "lraspp",
        ),
        _info(
            "lraspp-resnet18",
            "LR-ASPP head on the CIFAR ResNet-18 (low level stride 1, high level 8; segmentation of small images)",
            "lraspp",
            "lraspp_resnet18",
        ),
    ]
}

MIN_SIDE = 8  # smallest input height/width supported by the conv nets
PLUGIN_FAMILY = "plugin"  # a user's model (entry point optimlab.models or a reference): its own input rules


def _plugin_model(name: str, obj: Any, origin: str) -> ModelInfo:
    """A user's factory (num_classes, input_shape, width) -> nn.Module as a registry entry."""
    if not callable(obj):
        raise TypeError(f"a model plugin is a factory (num_classes, input_shape, width), got a {type(obj).__name__}")
    summary = (inspect.getdoc(obj) or "").strip().split("\n")[0] or f"user model {name}"
    return ModelInfo(name, summary, PLUGIN_FAMILY, f"{obj.__module__}:{obj.__qualname__}", origin)


def _plugins() -> dict[str, ModelInfo]:
    return discover("optimlab.models", _REGISTRY, _plugin_model)


def _model_info(name: str) -> ModelInfo | None:
    """Built-in, installed plugin, or a package.module:factory reference (ValueError if it does not resolve)."""
    info = _REGISTRY.get(name) or _plugins().get(name)
    if info is None and is_reference(name):
        info = _plugin_model(name, resolve_reference(name, "model"), "reference")
    return info


def list_models() -> list[ModelInfo]:
    """Every registered model, in registry order, then the installed plugins (optimlab.plugins)."""
    return [*_REGISTRY.values(), *_plugins().values()]


def create_model(
    name: str,
    num_classes: int,
    input_shape: tuple[int, int, int] = (3, 32, 32),
    width: float = 1.0,
) -> nn.Module:
    """Build model `name` for inputs [B, *input_shape] and `num_classes` outputs (logits)."""
    info = _model_info(name)
    if info is None:
        raise ValueError(
            f"unknown model {name!r}; valid: {sorted(m.name for m in list_models())} or package.module:factory"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d >= 1 for d in shape):
        raise ValueError(f"input_shape must be (C, H, W) with positive ints, got {input_shape!r}")
    if info.family not in ("mlp", PLUGIN_FAMILY) and shape[1:] == (1, 1):  # the npz set's N×D rows, as [N, D, 1, 1]
        raise ValueError(
            f"model {name!r} takes images, but the inputs are feature vectors ({shape[0]} features, "
            f"input_shape={shape}): use model 'mlp'"
        )
    if info.family not in ("mlp", PLUGIN_FAMILY) and min(shape[1:]) < MIN_SIDE:
        raise ValueError(f"model {name!r} needs inputs of at least {MIN_SIDE}×{MIN_SIDE}, got input_shape={shape}")
    if not isinstance(width, (int, float)) or isinstance(width, bool) or not math.isfinite(width) or width <= 0:
        raise ValueError(f"width must be a finite number > 0, got {width!r}")
    factory = resolve_reference(info.factory, "model")
    return factory(num_classes, shape, float(width))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["ModelInfo", "count_parameters", "create_model", "list_models"]
