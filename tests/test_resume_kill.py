"""A run killed at any point and resumed ends bit-identical to an uninterrupted run (CPU).

The kill tests start fit in a subprocess, SIGKILL it once its first checkpoint exists (mid-epoch,
mid-evaluation or mid-write, wherever it happens to be), resume in this process and compare every
tensor of the final state_dict with torch.equal, and the History (timings aside) with ==.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import optimlab.train.checkpoint as checkpoint_module
from optimlab.train import TrainConfig, fit
from optimlab.train.checkpoint import CHECKPOINT_FILE, DONE_FILE, MODEL_FILE
from test_train import make_image_folder

CHILD = """
import json, sys, time
import torch
torch.set_num_threads(1)
from optimlab.train import TrainConfig, fit
config = TrainConfig.from_dict(json.loads(sys.argv[1]))
fit(config, int(sys.argv[2]), run_dir=sys.argv[3], callback=lambda epoch, history: time.sleep(0.03))
"""

DIGITS = TrainConfig(dataset="digits", model="mlp", width=0.5, epochs=6, batch_size=32)


def _untimed(history) -> dict:
    d = history.to_dict()
    for key in ("epoch_time_s", "step_time_s", "wall_time_s"):
        d.pop(key)
    return d


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / MODEL_FILE, weights_only=True)


def _assert_same_run(dir_a: Path, hist_a, dir_b: Path, hist_b) -> None:
    wa, wb = _weights(dir_a), _weights(dir_b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert _untimed(hist_a) == _untimed(hist_b)


def _kill_after_first_checkpoint(config: TrainConfig, seed: int, run_dir: Path, delay: float) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(config.to_dict()), str(seed), str(run_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None  # stdout=PIPE
        while not (run_dir / CHECKPOINT_FILE).exists():
            assert proc.poll() is None, f"child exited early: {proc.stdout.read().decode()}"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.002)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the child finished before it could be killed"
    assert not (run_dir / DONE_FILE).exists()


CASES = {
    "sgdm-ema": (DIGITS.replace(optimizer="sgdm-ema", hparams={"lr": 0.3, "beta": 0.9}), 0.0),
    "rsgdm": (
        DIGITS.replace(
            optimizer="rsgdm",
            hparams={"lr": 0.3, "beta": 0.9, "weight_decay": 1e-3},
            schedule="step",
            step_every=2,
            warmup_epochs=1,
        ),
        0.02,
    ),
    "tmsgd-switch3": (DIGITS.replace(optimizer="tmsgd", hparams={"lr": 0.05}, switch_epoch=3), 0.05),
}


@pytest.mark.parametrize("name", list(CASES))
def test_killed_run_resumes_bit_identical(name, tmp_path):
    config, delay = CASES[name]
    _kill_after_first_checkpoint(config, 11, tmp_path / "killed", delay)
    resumed_epochs: list[int] = []
    resumed = fit(config, 11, run_dir=tmp_path / "killed", callback=lambda e, h: resumed_epochs.append(e))
    assert resumed_epochs and resumed_epochs[0] >= 2  # it resumed, it did not start over
    assert resumed_epochs[-1] == config.epochs
    whole = fit(config, 11, run_dir=tmp_path / "whole")
    _assert_same_run(tmp_path / "killed", resumed, tmp_path / "whole", whole)
    assert not (tmp_path / "killed" / CHECKPOINT_FILE).exists()


def test_killed_run_with_augment_and_weighted_sampler_resumes_bit_identical(tmp_path):
    folder = make_image_folder(tmp_path / "images", counts=(120, 40, 20))
    config = TrainConfig(
        dataset="imagefolder",
        data_dir=str(folder),
        dataset_options={"image_size": 16},
        model="cnn",
        width=0.25,
        optimizer="sgdm-ema",
        hparams={"lr": 0.1, "beta": 0.9},
        epochs=5,
        batch_size=16,
        augment=True,
        weighted_sampler=True,
        weight_decay_mode="decoupled",
        schedule="cosine",
    )
    _kill_after_first_checkpoint(config, 5, tmp_path / "killed", 0.01)
    resumed = fit(config, 5, run_dir=tmp_path / "killed")
    whole = fit(config, 5, run_dir=tmp_path / "whole")
    _assert_same_run(tmp_path / "killed", resumed, tmp_path / "whole", whole)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("stop_after", [1, 2, 3, 4])
def test_interrupted_at_each_epoch_boundary_resumes_bit_identical(stop_after, tmp_path):
    # TM-SGD-M switching at epoch 3: stopping after epoch 2 makes the resumed session switch;
    # stopping after 3 or 4 makes it carry the switched state over in the checkpoint.
    config = DIGITS.replace(
        optimizer="tmsgdm", hparams={"lr": 0.02, "momentum": 0.9}, epochs=5, switch_epoch=3, max_steps_per_epoch=8
    )

    def stop(epoch, history):
        if epoch == stop_after:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(config, 2, run_dir=tmp_path / "cut", callback=stop)
    assert (tmp_path / "cut" / CHECKPOINT_FILE).exists()
    resumed = fit(config, 2, run_dir=tmp_path / "cut")
    whole = fit(config, 2, run_dir=tmp_path / "whole")
    _assert_same_run(tmp_path / "cut", resumed, tmp_path / "whole", whole)
    assert len(resumed.train_loss) == 5


def test_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    config = DIGITS.replace(optimizer="rsgdm", hparams={"lr": 0.3, "beta": 0.9}, epochs=4, max_steps_per_epoch=6)
    real_save = torch.save
    saves = []

    def torn_save(obj, f, *args, **kwargs):
        saves.append(1)
        if len(saves) == 2:  # the second epoch's checkpoint dies half-written
            f.write(b"partial garbage")
            raise OSError("disk full")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        fit(config, 0, run_dir=tmp_path / "cut")
    monkeypatch.setattr(checkpoint_module.torch, "save", real_save)
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == ["checkpoint.pt", "run.json"]
    assert torch.load(tmp_path / "cut" / CHECKPOINT_FILE, weights_only=True)["epoch"] == 1
    resumed = fit(config, 0, run_dir=tmp_path / "cut")
    whole = fit(config, 0, run_dir=tmp_path / "whole")
    _assert_same_run(tmp_path / "cut", resumed, tmp_path / "whole", whole)


def test_unreadable_checkpoint_is_named(tmp_path):
    config = DIGITS.replace(epochs=2, max_steps_per_epoch=2)
    with pytest.raises(Interrupt):
        fit(config, 0, run_dir=tmp_path, callback=lambda e, h: (_ for _ in ()).throw(Interrupt()))
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint.pt"):
        fit(config, 0, run_dir=tmp_path)
