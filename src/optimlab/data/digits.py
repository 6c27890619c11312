"""sklearn's bundled handwritten digits: 1,797 real 8×8 grey images, 10 classes, no download.

Pixels are integers 0..16; we scale by 1/16 and then normalize by the training mean/std. The
train/test split is fixed (stratified, 25 % test, random_state=0) so every run, optimizer and seed
is judged on the same 450 test images.
"""

from __future__ import annotations

import numpy as np
import torch

from optimlab.data.base import DatasetSplits, make_splits

TEST_SIZE = 0.25  # fraction of the 1,797 images held out as the test split
SPLIT_SEED = 0  # the split never changes between runs: it is part of the benchmark's definition


def load_digits() -> DatasetSplits:
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)  # [1797, 8, 8], integers 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    index = np.arange(len(labels))
    train_idx, test_idx = train_test_split(index, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=labels)
    x = torch.from_numpy(images).unsqueeze(1)  # [N, 1, 8, 8]
    y = torch.from_numpy(labels)
    tr, te = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    return make_splits("digits", x[tr], y[tr], x[te], y[te], [str(k) for k in range(10)], scale=1 / 16)
