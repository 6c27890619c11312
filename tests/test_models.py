"""Model registry: exact CIFAR parameter counts, shapes on 8×8 and 32×32 inputs, width scaling,
argument checks, and that a small model actually learns on digits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optimlab.data import iterate_batches, load_dataset
from optimlab.models import count_parameters, create_model, list_models
from optimlab.models.dcgan import DCGAN
from optimlab.models.preact_resnet import PreActBlock

NAMES = ["mlp", "cnn", "resnet18", "resnet50", "densenet121", "vgg11", "vgg16"]
NAMES += ["preactresnet34", "preactresnet18", "preactresnet10"]  # regressors for the key-point task
OTHER = ["dcgan", "lraspp", "lraspp-resnet18"]  # not [B, num_classes] networks: tested on their own

# Standard CIFAR-10 (3×32×32, 10 classes) counts of the kuangliu/pytorch-cifar layouts, which
# published tables repeat: ResNet18 11,173,962; ResNet50 23,520,842; DenseNet121 (k=32)
# 6,956,298; VGG11-BN 9,231,114; VGG16-BN 14,728,266 (conv bias kept, one 512->10 linear).
CIFAR10_COUNTS = {
    "resnet18": 11_173_962,
    "resnet50": 23_520_842,
    "densenet121": 6_956_298,
    "vgg11": 9_231_114,
    "vgg16": 14_728_266,
}
FEATURES = {"resnet18": 512, "resnet50": 2048, "densenet121": 1024, "vgg11": 512, "vgg16": 512}
STEM_OUT = {"resnet18": 64, "resnet50": 64, "densenet121": 64, "vgg11": 64, "vgg16": 64}


def meta_count(name: str, num_classes: int = 10, input_shape=(3, 32, 32), width: float = 1.0) -> int:
    with torch.device("meta"):  # no memory, no init: counting only
        return count_parameters(create_model(name, num_classes, input_shape, width))


def test_registry_lists_every_model_with_its_family():
    infos = list_models()
    assert [i.name for i in infos] == NAMES + OTHER
    assert {i.name: i.family for i in infos}["resnet50"] == "resnet"
    assert {i.family for i in infos} == {"mlp", "cnn", "resnet", "densenet", "vgg", "preact_resnet", "dcgan", "lraspp"}


@pytest.mark.parametrize("name", list(CIFAR10_COUNTS))
def test_cifar_parameter_counts_are_the_standard_ones(name):
    assert meta_count(name) == CIFAR10_COUNTS[name]
    # CIFAR-100 adds 90 output rows (features + bias each) and nothing else
    assert meta_count(name, 100) - meta_count(name) == 90 * (FEATURES[name] + 1)
    # one input channel instead of three removes 2 · 3·3 · stem weights and nothing else
    assert meta_count(name) - meta_count(name, 10, (1, 32, 32)) == 2 * 9 * STEM_OUT[name]
    # the count does not depend on the image size (global average pooling)
    assert meta_count(name, 10, (3, 8, 8)) == meta_count(name)


def test_mlp_and_cnn_counts_follow_their_layout():
    assert meta_count("mlp", 10, (1, 8, 8)) == (64 * 256 + 256) + (256 * 128 + 128) + (128 * 10 + 10)

    def conv(i, o):
        return 9 * i * o + 2 * o  # bias-free 3×3 conv + BN

    assert meta_count("cnn", 10, (1, 8, 8)) == (
        conv(1, 32) + conv(32, 32) + conv(32, 64) + conv(64, 64) + conv(64, 128) + conv(128, 128) + 128 * 10 + 10
    )


def test_cifar_stem_has_no_stride_and_no_maxpool():
    model = create_model("resnet18", 10, width=0.125)
    stem = model.conv1
    assert isinstance(stem, nn.Conv2d) and stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    vgg = create_model("vgg16", 10)
    head = vgg.classifier
    assert (
        isinstance(head, nn.Linear)
        and head.in_features == 512
        and sum(isinstance(m, nn.MaxPool2d) for m in vgg.modules()) == 5
    )
    assert sum(isinstance(m, nn.BatchNorm2d) for m in vgg.modules()) == 13


@pytest.mark.parametrize("name", NAMES)
def test_width_shrinks_every_model(name):
    full, half, tiny = (meta_count(name, 10, (3, 32, 32), w) for w in (1.0, 0.5, 0.01))
    assert tiny < half < full
    if name not in ("mlp",):  # conv weights dominate: halving channels quarters them
        assert 0.2 < half / full < 0.3
    assert meta_count(name, 10, (3, 32, 32), 2.0) > full


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (3, 9, 13)])
def test_forward_and_backward_on_small_and_cifar_inputs(name, shape):
    torch.manual_seed(0)
    model = create_model(name, 7, shape, width=0.125)
    x = torch.randn(3, *shape)
    out = model(x)
    assert out.shape == (3, 7) and torch.isfinite(out).all()
    out.square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters unused by forward: {missing[:5]}"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="alexnet", num_classes=10), r"unknown model 'alexnet'.*cnn.*resnet18.*vgg16"),
        (dict(name="cnn", num_classes=0), r"num_classes"),
        (dict(name="cnn", num_classes=10, width=0.0), r"width"),
        (dict(name="cnn", num_classes=10, width=float("nan")), r"width"),
        (dict(name="cnn", num_classes=10, input_shape=(3, 32)), r"input_shape"),
        (dict(name="resnet18", num_classes=10, input_shape=(3, 7, 32)), r"at least 8×8"),
    ],
)
def test_create_model_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_model(**kwargs)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_small_model_learns_digits(name):
    torch.manual_seed(0)
    data = load_dataset("digits")
    model = create_model(name, data.num_classes, data.input_shape, width=0.25)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()

    def test_loss() -> float:
        model.eval()
        with torch.no_grad():
            return loss_fn(model(data.test.x), data.test.y).item()

    before = test_loss()
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        for x, y in iterate_batches(data.train, 64, generator=g):
            model.train()
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    after = test_loss()
    assert before > 2.0 and after < 0.5 * before


def test_preact_resnet_counts_follow_the_kuangliu_layout():
    # kuangliu/pytorch-cifar PreActResNet18 on CIFAR-10: 11,171,146 (1×1 projection shortcuts without BN,
    # no final BN-ReLU); 34 adds blocks of the same shapes
    assert meta_count("preactresnet18") == 11_171_146
    assert meta_count("preactresnet34") == 21_279_306
    # ten regression outputs instead of ten classes: the same network
    assert meta_count("preactresnet34", 10, (1, 96, 96)) == 21_279_306 - 2 * 9 * 64
    layer2 = create_model("preactresnet10", 4, (1, 16, 16), width=0.125).layer2
    assert isinstance(layer2, nn.Sequential) and isinstance(layer2[0], PreActBlock)
    shortcut = layer2[0].shortcut
    assert isinstance(shortcut, nn.Conv2d) and shortcut.stride == (2, 2)


def test_dcgan_shapes_ranges_and_count():
    torch.manual_seed(0)
    gan = create_model("dcgan", 1, (1, 28, 28), width=0.25)
    assert isinstance(gan, DCGAN)
    z = gan.sample_noise(5)
    images = gan(z)
    assert z.shape == (5, 100) and images.shape == (5, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1
    assert gan.discriminator(images).shape == (5,)

    # generator: linear 100 -> 256·7·7 (no bias) + BN1d, convT 256->128 4×4 (no bias) + BN, convT 128->1 (+bias)
    g = 100 * 12544 + 2 * 12544 + 256 * 128 * 16 + 2 * 128 + 128 * 16 + 1
    # discriminator: conv 1->64 4×4 (+bias), conv 64->128 (no bias) + BN, linear 128·7·7 -> 1
    d = 16 * 64 + 64 + 64 * 128 * 16 + 2 * 128 + 128 * 49 + 1
    assert meta_count("dcgan", 1, (1, 28, 28)) == g + d
    assert count_parameters(gan.generator) + count_parameters(gan.discriminator) == count_parameters(gan)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_classes=10, input_shape=(1, 28, 28)), r"num_classes must be 1"),
        (dict(num_classes=1, input_shape=(1, 30, 30)), r"multiples of 4"),
    ],
)
def test_dcgan_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_model("dcgan", **kwargs)
