"""The key-point and GAN tasks end to end at toy size, on fixture files written here: a few steps,
the metrics, resume after an interruption bit-identical (both GAN optimizers in the checkpoint), and
bad data files named before training starts."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
import torch
from PIL import Image

from optimlab.data import DatasetError
from optimlab.data.keypoints import load_keypoints_folder
from optimlab.tasks import get_task
from optimlab.train import TrainConfig, fit
from optimlab.train.checkpoint import CHECKPOINT_FILE, MODEL_FILE


def write_keypoint_folder(root, n_train=48, n_test=16, size=16):
    """YouTube Faces layout: a bright 3x3 blob per image, its centre the one key point (x, y)."""
    rng = np.random.RandomState(0)
    for csv_name, folder, n in (
        ("training_frames_keypoints.csv", "training", n_train),
        ("test_frames_keypoints.csv", "test", n_test),
    ):
        (root / folder).mkdir(parents=True)
        lines = [",0,1"]
        for i in range(n):
            x, y = rng.randint(2, size - 2, 2)
            img = np.zeros((size, size, 3), np.uint8)
            img[y - 1 : y + 2, x - 1 : x + 2] = 255
            Image.fromarray(img).save(root / folder / f"f{i}.png")
            lines.append(f"f{i}.png,{x + 0.5},{y + 0.5}")
        (root / csv_name).write_text("\n".join(lines) + "\n")
    return root


def write_mnist5k(root, per_class=16):
    """A mnist_5k.csv.gz of per_class x 10 28x28 'digits' (class k: a bar at row 2k + 4), sorted by label."""
    rng = np.random.RandomState(1)
    rows = []
    for k in range(10):
        for _ in range(per_class):
            img = (rng.rand(28, 28) * 40).astype(int)
            img[2 * k + 4 : 2 * k + 7, 4:24] = 255
            rows.append(",".join(map(str, [*img.reshape(-1), k])))
    root.mkdir(parents=True, exist_ok=True)
    with gzip.open(root / "mnist_5k.csv.gz", "wt") as fh:
        fh.write("\n".join(rows) + "\n")
    return root


def keypoint_config(folder, **kw):
    base = dict(
        task="keypoints",
        dataset="keypoints-folder",
        data_dir=str(folder),
        dataset_options={"image_size": 16},
        model="preactresnet10",
        width=0.125,
        optimizer="tmsgd",
        hparams={"lr": 0.05},
        epochs=3,
        switch_epoch=2,
        batch_size=8,
        val_fraction=0.25,
    )
    return TrainConfig(**{**base, **kw})


def gan_config(folder, **kw):
    base = dict(
        task="gan",
        dataset="mnist5k",
        data_dir=str(folder),
        model="dcgan",
        width=0.0625,
        optimizer="tmsgd",
        hparams={"lr": 0.01},
        epochs=3,
        switch_epoch=2,
        batch_size=16,
        max_steps_per_epoch=4,
    )
    return TrainConfig(**{**base, **kw})


class Interrupt(Exception):
    pass


def interrupted_then_resumed(config, seed, tmp_path, stop_after):
    def stop(epoch, history):
        if epoch == stop_after:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(config, seed, run_dir=tmp_path / "cut", callback=stop)
    state = torch.load(tmp_path / "cut" / CHECKPOINT_FILE, weights_only=True)
    resumed = fit(config, seed, run_dir=tmp_path / "cut")
    whole = fit(config, seed, run_dir=tmp_path / "whole")
    wa = torch.load(tmp_path / "cut" / MODEL_FILE, weights_only=True)
    wb = torch.load(tmp_path / "whole" / MODEL_FILE, weights_only=True)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    da, db = resumed.to_dict(), whole.to_dict()
    for d in (da, db):
        for key in ("epoch_time_s", "step_time_s", "wall_time_s"):
            d.pop(key)
    assert da == db
    return state, whole


def test_keypoint_task_end_to_end_and_resume(tmp_path):
    folder = write_keypoint_folder(tmp_path / "kp")
    config = keypoint_config(folder)
    state, history = interrupted_then_resumed(config, 3, tmp_path, stop_after=1)
    assert set(history.final) == {"mse", "loss"} and history.final["mse"] == history.final["loss"]
    assert math.isfinite(history.final["mse"]) and history.final["mse"] > 0
    assert len(history.test_acc) == 3 and history.test_acc[-1] == pytest.approx(history.final["mse"])
    assert history.train_acc == pytest.approx(history.train_loss, rel=1e-5)  # the curve is the training MSE
    assert state["epoch"] == 1 and "param_groups" in state["optimizer"]  # one role: the plain state dict


def test_keypoint_task_learns_the_blob_position(tmp_path):
    folder = write_keypoint_folder(tmp_path / "kp", n_train=96)
    config = keypoint_config(folder, optimizer="adam", hparams={"lr": 0.01}, epochs=6, switch_epoch=None)
    history = fit(config, 0)
    data = load_keypoints_folder(folder, image_size=16)
    guess = float(((data.test_y - data.train_y.mean(0)) ** 2).mean())  # always the mean training point
    assert history.final["mse"] < 0.5 * guess


def test_keypoint_task_rejects_other_models_and_names_bad_files(tmp_path):
    folder = write_keypoint_folder(tmp_path / "kp")
    with pytest.raises(ValueError, match="model 'cnn' is not a keypoints model"):
        get_task("keypoints").check(keypoint_config(folder, model="cnn"))
    (folder / "test_frames_keypoints.csv").write_text(",0,1\nf0.png,1.0\n")
    with pytest.raises(DatasetError, match=r"test_frames_keypoints\.csv line 2: 1 coordinates"):
        fit(keypoint_config(folder), 0, run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / CHECKPOINT_FILE).exists()


def test_gan_task_two_optimizers_end_to_end_and_resume(tmp_path):
    folder = write_mnist5k(tmp_path / "mnist")
    config = gan_config(folder)
    state, history = interrupted_then_resumed(config, 4, tmp_path, stop_after=2)
    # both roles' optimizers (and schedules) are in the checkpoint, both switched at epoch 2
    assert set(state["optimizer"]) == {"generator", "discriminator"}
    assert set(state["scheduler"]) == {"generator", "discriminator"}
    for role in ("generator", "discriminator"):
        assert all(g["multistep"] for g in state["optimizer"][role]["param_groups"])
    assert set(history.final) == {"fid_classifier", "loss"}
    assert history.final["fid_classifier"] > 0 and math.isfinite(history.final["fid_classifier"])
    assert history.test_acc[-1] == pytest.approx(history.final["fid_classifier"])
    assert all(0 <= a <= 1 for a in history.train_acc)  # D's accuracy on real + fake


def test_gan_roles_hold_disjoint_parameters_and_step_separately(tmp_path):
    folder = write_mnist5k(tmp_path / "mnist")
    task = get_task("gan")
    config = gan_config(folder)
    data = task.prepare(config, 0, torch.device("cpu"))
    model = task.build_model(config, data)
    roles = task.roles(model)
    g_ids = {id(p) for p in roles["generator"].parameters()}
    d_ids = {id(p) for p in roles["discriminator"].parameters()}
    assert g_ids and d_ids and not g_ids & d_ids and g_ids | d_ids == {id(p) for p in model.parameters()}
    # the real images are in [-1, 1] like the generator's output
    assert float(data.train.x.min()) >= -1 and float(data.train.x.max()) <= 1
    assert data.info["feature_classifier_accuracy"] > 0.9  # the fixture's bars are easy to tell apart


def test_gan_fid_is_zero_for_a_perfect_generator_and_grows_with_noise(tmp_path):
    from optimlab.tasks.fid import fid

    folder = write_mnist5k(tmp_path / "mnist")
    data = get_task("gan").prepare(gan_config(folder), 0, torch.device("cpu"))
    features = data.info["features"]
    assert features.metric_name == "FID (classifier features)"
    real = data.test.x
    assert fid(features, real, real) == pytest.approx(0.0, abs=1e-8)
    noisy = (real + 0.5 * torch.randn(real.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    assert fid(features, real, noisy) > 1.0


def test_gan_task_names_bad_data_and_missing_inception_weights(tmp_path):
    folder = write_mnist5k(tmp_path / "mnist")
    with pytest.raises(ValueError, match=r"inception_weights: .*nowhere\.pt not found"):
        fit(gan_config(folder, dataset_options={"inception_weights": str(tmp_path / "nowhere.pt")}), 0)
    with gzip.open(folder / "mnist_5k.csv.gz", "wt") as fh:
        fh.write("1,2,3\n")
    with pytest.raises(DatasetError, match=r"mnist_5k\.csv\.gz line 1: 3 values"):
        fit(gan_config(folder), 0, run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / CHECKPOINT_FILE).exists()


def test_thread_estimates_need_no_data_and_gan_divergence_is_non_finite_only():
    kp = keypoint_config("/nonexistent", dataset="mnist-keypoints", dataset_options={})
    macs = get_task("keypoints").forward_macs(kp)
    # stem conv 3x3 1->8 on 32x32 alone is 32·32·8·9 MACs; the whole net is more, the linear head 64·10
    assert macs > 32 * 32 * 8 * 9 + 64 * 10
    gan = get_task("gan")
    g = gan_config("/nonexistent", width=0.25)
    assert gan.forward_macs(g) > 0
    assert gan.divergence(50.0, 1.0, 10.0) is None  # a discriminator winning is not divergence
    reason = gan.divergence(float("nan"), 1.0, 10.0)
    assert reason is not None and "non-finite" in reason
    assert get_task("keypoints").divergence(50.0, 1.0, 10.0) is not None  # the default rule


def test_gan_on_an_image_folder_needs_two_classes_for_classifier_features(tmp_path):
    from test_train import make_image_folder

    task = get_task("gan")
    one = make_image_folder(tmp_path / "one", counts=(12,))
    config = gan_config(one, dataset="imagefolder", dataset_options={"image_size": 16, "test_fraction": 0.25})
    with pytest.raises(ValueError, match=r"needs at least 2 classes \(image sub-folders\)"):
        task.prepare(config, 0, torch.device("cpu"))
    two = make_image_folder(tmp_path / "two", counts=(24, 24))
    data = task.prepare(config.replace(data_dir=str(two)), 0, torch.device("cpu"))
    assert data.info["input_shape"] == (3, 16, 16) and float(data.train.x.min()) >= -1
