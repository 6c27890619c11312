"""Intra-op threads are chosen deliberately (workers x threads <= cores, 1 for small models), can be
overridden, and are recorded with the step time they measured."""

from __future__ import annotations

import os

import pytest

from optimlab.cli import main
from optimlab.experiments import ExperimentConfig, OptimizerSpec, run_experiment
from optimlab.experiments.threads import SMALL_STEP_MACS, THREADS_ENV, choose_threads, forward_macs
from optimlab.train import TrainConfig

SMALL = TrainConfig(dataset="digits", model="cnn", width=0.5, batch_size=32)
LARGE = TrainConfig(dataset="cifar10", data_dir="/nowhere", model="resnet18", width=1.0, batch_size=128)


def test_small_models_get_one_thread_large_ones_their_share_of_the_cores(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # an idle machine
    assert forward_macs(SMALL) * SMALL.batch_size < SMALL_STEP_MACS < forward_macs(LARGE) * LARGE.batch_size
    assert choose_threads(SMALL, workers=1, cores=8) == 1
    assert choose_threads(LARGE, workers=1, cores=8) == 8
    for workers in (1, 2, 3, 8, 16):
        assert workers * choose_threads(LARGE, workers=workers, cores=8) <= max(8, workers)


def test_cores_busy_with_other_work_are_not_counted(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (6.5, 6.0, 5.0))  # the shared 2-core machine of the README
    assert choose_threads(LARGE, workers=1, cores=2) == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (3.2, 3.0, 3.0))
    assert choose_threads(LARGE, workers=1, cores=8) == 4 and choose_threads(LARGE, workers=2, cores=8) == 2


def test_the_user_overrides_by_flag_or_environment(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "3")
    assert choose_threads(SMALL, workers=1, cores=2) == 3
    assert choose_threads(SMALL, workers=1, override=2, cores=2) == 2  # the flag wins
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(ValueError, match=THREADS_ENV):
        choose_threads(SMALL)


def test_runs_record_their_threads_and_the_cli_says_how_step_ms_was_measured(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    config = ExperimentConfig(
        name="t",
        model="mlp",
        epochs=1,
        max_steps_per_epoch=2,
        seeds=(0,),
        optimizers=(OptimizerSpec("sgd", "sgd", {"lr": 0.1}),),
    )
    [r] = run_experiment(config, tmp_path / "a", workers=1, progress=False, threads=2)
    assert r.history.threads == 2
    code = main(
        [
            "compare",
            "--model",
            "mlp",
            "--epochs",
            "1",
            "--max-steps-per-epoch",
            "2",
            "--seeds",
            "1",
            "--optimizers",
            "sgd:lr=0.1",
            "--workers",
            "1",
            "--quiet",
            "--out",
            str(tmp_path / "b"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "step ms: mean wall time of one training step" in out and "with 1 intra-op thread" in out
    assert main(["train", "--threads", "0"]) == 2 and "--threads" in capsys.readouterr().err
