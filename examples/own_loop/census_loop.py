"""A training loop of one's own, judged by optimlab: a small MLP on the UCI Adult census data.

optimlab calls `train(make_optimizer, seed, options)` once per (optimizer, seed) of
examples/own_loop/experiment.toml; everything else here is ordinary PyTorch. The data is the real
UCI Adult file of ../shared/data/uci-adult (its README: rows 0-16,280 are UCI's official test
file, the rest its training file), read with the standard library and encoded with scikit-learn:
the 6 numeric columns standardized by the training rows, the 8 categorical ones one-hot ("?" is a
category of its own). The label is income >50K.
"""

from __future__ import annotations

import csv
import functools
import gzip
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

NUMERIC = ("age", "fnlwgt", "educational-num", "capital-gain", "capital-loss", "hours-per-week")
CATEGORICAL = (
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "native-country",
)
TEST_ROWS = 16_281  # the file's first rows are UCI's adult.test (see the data's README)


@functools.cache
def load_census(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) as float32 features and 0/1 labels; read once per process."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    columns = (*NUMERIC, *CATEGORICAL)
    table = np.array([[row[c] for c in columns] for row in rows], dtype=object)
    table[:, : len(NUMERIC)] = table[:, : len(NUMERIC)].astype(np.float64)
    labels = np.array([row["income"] == ">50K" for row in rows], dtype=np.float32)
    encode = ColumnTransformer(
        [
            ("numeric", StandardScaler(), list(range(len(NUMERIC)))),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(range(len(NUMERIC), len(columns))),
            ),
        ]
    )
    train, test = table[TEST_ROWS:], table[:TEST_ROWS]
    x_train = encode.fit_transform(train).astype(np.float32)  # statistics of the training rows only
    x_test = encode.transform(test).astype(np.float32)
    return x_train, labels[TEST_ROWS:], x_test, labels[:TEST_ROWS]


def train(make_optimizer: Any, seed: int, options: dict[str, Any]) -> dict[str, float]:
    """Train an MLP for options["epochs"] epochs; return the test set's accuracy, AUC and loss."""
    from sklearn.metrics import roc_auc_score

    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in load_census(str(Path(options["data"]))))
    if "max_train_rows" in options:  # quick runs (the example's test)
        x_train, y_train = x_train[: options["max_train_rows"]], y_train[: options["max_train_rows"]]
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(x_train.shape[1], options["hidden"]), nn.ReLU(), nn.Linear(options["hidden"], 1))
    optimizer = make_optimizer(model.parameters())  # the run's optimizer, as the experiment specifies it
    loss_fn = nn.BCEWithLogitsLoss()
    order = torch.Generator().manual_seed(seed)
    for _ in range(options["epochs"]):
        for batch in torch.randperm(len(y_train), generator=order).split(options["batch_size"]):
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[batch]).squeeze(1), y_train[batch])
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        logits = model(x_test).squeeze(1)
        test_loss = float(loss_fn(logits, y_test))
    accuracy = float(((logits > 0).float() == y_test).float().mean())
    return {"accuracy": accuracy, "auc": float(roc_auc_score(y_test.numpy(), logits.numpy())), "loss": test_loss}
