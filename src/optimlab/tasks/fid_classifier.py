"""The CPU-scale feature extractor for "FID (classifier features)": a small CNN trained on real images.

`train_feature_classifier` trains registry model "cnn" (width CLASSIFIER_WIDTH) on the real
training images of the stand-in (mnist-5k's 4,000 training digits) with Adam (lr 1e-3, batch 64,
CLASSIFIER_EPOCHS epochs) from a fixed seed, inside torch.random.fork_rng so the caller's random
streams are untouched (a resumed GAN run retrains it and continues bit-identically). The result is
cached per process. Its features are the 128-d input of the classifier's linear head.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from optimlab.models import create_model
from optimlab.tasks.fid import ClassifierFeatures

CLASSIFIER_MODEL = "cnn"
CLASSIFIER_WIDTH = 0.25  # 8/16/32 channels -> 32-d features
CLASSIFIER_EPOCHS = 3
MIN_STEPS = 150  # small sets get more epochs: at least this many Adam steps
CLASSIFIER_SEED = 0
BATCH = 64


@dataclass
class TrainedExtractor:
    features: ClassifierFeatures
    test_accuracy: float  # on the held-out real images given (a sanity check of the features)


_CACHE: dict[str, TrainedExtractor] = {}


def train_feature_classifier(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, num_classes: int
) -> TrainedExtractor:
    """Train the extractor on real images in [-1, 1] ([N, C, H, W]) with integer labels."""
    key = hashlib.sha256(
        b"".join(t.contiguous().numpy().tobytes() for t in (train_x, train_y, test_x, test_y))
    ).hexdigest()
    if key in _CACHE:
        return _CACHE[key]
    x01 = (train_x.float() + 1) / 2
    mean, std = float(x01.mean()), float(x01.std())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(CLASSIFIER_SEED)
        model = create_model(CLASSIFIER_MODEL, num_classes, tuple(train_x.shape[1:]), CLASSIFIER_WIDTH)  # type: ignore[arg-type]
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(CLASSIFIER_SEED)
        xn = (x01 - mean) / std
        model.train()
        epochs = max(CLASSIFIER_EPOCHS, math.ceil(MIN_STEPS / math.ceil(len(train_y) / BATCH)))
        for _ in range(epochs):
            order = torch.randperm(len(train_y), generator=g)
            for start in range(0, len(order), BATCH):
                idx = order[start : start + BATCH]
                loss = F.cross_entropy(model(xn[idx]), train_y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    extractor = ClassifierFeatures(model, mean, std)
    with torch.inference_mode():
        logits = model(((test_x.float() + 1) / 2 - mean) / std)
    acc = float((logits.argmax(1) == test_y).double().mean())
    _CACHE[key] = TrainedExtractor(extractor, acc)
    return _CACHE[key]
