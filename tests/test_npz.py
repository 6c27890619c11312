"""The npz data set: a user's own arrays in one .npz file, validated before training, normalized like
every image set, trained on by the classification models (feature vectors: mlp only)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch

from optimlab.data import DatasetError, load_dataset
from optimlab.experiments.config import ConfigError, ExperimentConfig, OptimizerSpec
from optimlab.experiments.validate import check_experiment
from optimlab.models import create_model


def _arrays(n_train: int = 40, n_test: int = 12, shape: tuple[int, ...] = (6, 6), classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, size=(n_train, *shape), dtype=np.uint8),
        "y_train": np.arange(n_train) % classes,
        "x_test": rng.integers(0, 256, size=(n_test, *shape), dtype=np.uint8),
        "y_test": np.arange(n_test) % classes,
    }


def _write(tmp_path: Path, name: str = "mine.npz", **arrays: np.ndarray) -> Path:
    path = tmp_path / name
    np.savez(path, **cast(dict[str, Any], arrays))  # numpy's stub types **kwds as the allow_pickle flag
    return path


def test_grey_images_get_a_channel_and_are_normalized_by_the_training_split(tmp_path):
    arrays = _arrays(shape=(9, 9))
    splits = load_dataset("npz", root=_write(tmp_path, **arrays))
    assert splits.name == "npz" and splits.input_shape == (1, 9, 9)
    assert splits.num_classes == 3 and splits.class_names == ["0", "1", "2"]
    raw = arrays["x_train"].astype(np.float64) / 255
    mean, std = raw.mean(), raw.std()
    assert splits.mean == pytest.approx((mean,)) and splits.std == pytest.approx((std,))
    expected_test = (arrays["x_test"].astype(np.float64) / 255 - mean) / std  # train statistics on the test split
    np.testing.assert_allclose(splits.test.x[:, 0].numpy(), expected_test, rtol=1e-5, atol=1e-5)
    assert splits.train.y.dtype == torch.int64 and splits.train.y.tolist() == arrays["y_train"].tolist()


def test_colour_images_keep_their_layout_and_class_names_are_read(tmp_path):
    arrays = _arrays(shape=(3, 8, 8))
    arrays = {k: (v.astype(np.float32) if k.startswith("x") else v) for k, v in arrays.items()}
    path = _write(tmp_path, **arrays, class_names=np.array(["cat", "dog", "eel"]))
    splits = load_dataset("npz", root=path)
    assert splits.input_shape == (3, 8, 8) and splits.class_names == ["cat", "dog", "eel"]
    per_channel = splits.train.x.double().mean(dim=(0, 2, 3))
    assert torch.allclose(per_channel, torch.zeros(3, dtype=torch.float64), atol=1e-5)


def test_feature_vectors_are_standardized_per_feature_and_only_mlp_takes_them(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(loc=[0.0, 50.0, -3.0, 7.0, 0.0], scale=[1.0, 10.0, 0.1, 2.0, 5.0], size=(60, 5))
    path = _write(tmp_path, x_train=x, y_train=np.arange(60) % 2, x_test=x[:10], y_test=np.arange(10) % 2)
    splits = load_dataset("npz", root=path)
    assert splits.input_shape == (5, 1, 1) and splits.train.x.shape == (60, 5, 1, 1)
    z = splits.train.x[:, :, 0, 0].double()
    assert torch.allclose(z.mean(0), torch.zeros(5, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(5, dtype=torch.float64), atol=1e-4)
    logits = create_model("mlp", splits.num_classes, splits.input_shape)(splits.test.x)
    assert logits.shape == (10, 2)
    with pytest.raises(ValueError, match=r"model 'cnn' takes images.*5 features.*use model 'mlp'"):
        create_model("cnn", 2, splits.input_shape)


def test_an_image_model_on_feature_vectors_fails_the_experiment_check_naming_mlp(tmp_path):
    x = np.random.default_rng(2).normal(size=(30, 4))
    path = _write(tmp_path, x_train=x, y_train=np.arange(30) % 2, x_test=x[:6], y_test=np.arange(6) % 2)
    config = ExperimentConfig(
        dataset="npz", data_dir=str(path), model="resnet18", optimizers=(OptimizerSpec("sgd", "sgd"),), seeds=(0,)
    )
    with pytest.raises(ConfigError, match=r"model 'resnet18' on 'npz'.*use model 'mlp'"):
        check_experiment(config)
    check_experiment(config.replace(model="mlp"))  # the flat-feature model passes


def test_fit_trains_on_an_npz_data_set(tmp_path):
    from optimlab.train import TrainConfig, fit

    path = _write(tmp_path, **_arrays(n_train=60, shape=(8, 8)))
    config = TrainConfig(dataset="npz", data_dir=str(path), model="cnn", width=0.25, optimizer="sgd", epochs=1)
    history = fit(config, seed=0)
    assert set(history.final) >= {"accuracy", "loss"} and 0.0 <= history.final["accuracy"] <= 1.0


def _replace(**changes):
    return lambda tmp_path: _write(tmp_path, **{**_arrays(), **changes})


def _drop(key):
    return lambda tmp_path: _write(tmp_path, **{k: v for k, v in _arrays().items() if k != key})


def _nan_in_test(tmp_path):
    x = _arrays()["x_test"].astype(np.float32)
    x[5, 2, 3] = np.nan
    return _write(tmp_path, **{**_arrays(), "x_test": x})


def _inf_in_train(tmp_path):
    x = _arrays()["x_train"].astype(np.float64)
    x[7, 0, 0] = -np.inf
    return _write(tmp_path, **{**_arrays(), "x_train": x})


def _text_file(tmp_path):
    path = tmp_path / "mine.npz"
    path.write_text("x,y\n1,2\n")
    return path


def _object_labels(tmp_path):
    y = np.empty(40, dtype=object)
    y[:] = [k % 3 for k in range(40)]
    return _write(tmp_path, **{**_arrays(), "y_train": y})


BAD_INPUTS = {
    "missing file": (lambda tmp_path: tmp_path / "absent.npz", r"absent\.npz does not exist"),
    "folder": (lambda tmp_path: tmp_path, r"is not a file: data_dir names the \.npz file"),
    "not a zip": (_text_file, r"mine\.npz is not a NumPy \.npz file"),
    "missing y_test": (_drop("y_test"), r"mine\.npz has no array 'y_test'"),
    "missing x_train": (_drop("x_train"), r"has no array 'x_train'"),
    "short y_train": (_replace(y_train=np.arange(39) % 3), r"x_train has 40 rows .* y_train has 39"),
    "negative label": (_replace(y_test=np.array([0, 1, 2, -1] * 3)), r"y_test\[3\] = -1 is negative"),
    "fractional label": (
        _replace(y_train=np.array([0.0, 1.5, 2.0, 1.0] * 10)),
        r"y_train\[1\] = .*1\.5.* is not a class index",
    ),
    "nan label": (_replace(y_train=np.array([0.0, 1.0, np.nan, 1.0] * 10)), r"y_train\[2\] = .*nan"),
    "string labels": (_replace(y_train=np.array(["a", "b"] * 20)), r"y_train has dtype <U1; labels are integers"),
    "object labels": (_object_labels, r"array 'y_train' cannot be read without pickle"),
    "2-D labels": (_replace(y_train=np.zeros((40, 3), dtype=np.int64)), r"y_train has shape \(40, 3\)"),
    "class only in test": (_replace(y_test=np.arange(12) % 4), r"y_test holds class 3, which y_train never has"),
    "nan pixel": (_nan_in_test, r"x_test holds 1 NaN/inf value\(s\), the first in row 5"),
    "inf pixel": (_inf_in_train, r"x_train holds 1 NaN/inf value\(s\), the first in row 7"),
    "1-D x": (_replace(x_train=np.zeros(40)), r"x_train has shape \(40,\); expected one of 2-D feature vectors"),
    "5-D x": (_replace(x_test=np.zeros((12, 1, 1, 6, 6))), r"x_test has shape \(12, 1, 1, 6, 6\)"),
    "row shapes differ": (_replace(x_test=np.zeros((12, 7, 7))), r"x_train rows have shape \(1, 6, 6\) but x_test"),
    "string x": (_replace(x_train=np.full((40, 6, 6), "a")), r"x_train has dtype <U1; expected integers or floats"),
    "empty test": (
        _replace(x_test=np.zeros((0, 6, 6)), y_test=np.zeros(0, dtype=np.int64)),
        r"x_test is empty",
    ),
    "class_names length": (
        _replace(class_names=np.array(["a", "b"])),
        r"class_names has shape \(2,\); the labels need 3 names",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_a_bad_npz_file_is_refused_naming_the_file_and_the_culprit(tmp_path, case):
    make, message = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset("npz", root=path)
    assert str(path) in str(info.value)


def test_a_bad_npz_file_fails_the_experiment_before_any_run(tmp_path):
    path = _write(tmp_path, **{**_arrays(), "y_test": np.array([0, 1, 2, -4] * 3)})
    config = ExperimentConfig(
        dataset="npz", data_dir=str(path), model="mlp", optimizers=(OptimizerSpec("sgd", "sgd"),), seeds=(0,)
    )
    with pytest.raises(ConfigError, match=re.escape(f"dataset 'npz': npz data set {path}: y_test[3] = -4")):
        check_experiment(config)
