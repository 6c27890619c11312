"""An exploding loss is divergence (counted and shown), not a finished run."""

from __future__ import annotations

import math

import pytest

from optimlab.cli import main
from optimlab.train import TrainConfig, fit

# Adam at lr 5 on the digits MLP: the first epoch's mean training loss reaches ~6e4 (first batch
# ~2.3) yet stays finite, and the network ends at chance accuracy.
EXPLODING = TrainConfig(
    dataset="digits", model="mlp", width=0.5, epochs=3, batch_size=32, optimizer="adam", hparams={"lr": 5.0}
)


def test_an_exploding_loss_is_divergence_with_a_stated_reason():
    h = fit(EXPLODING, 0)
    assert h.diverged and h.diverged_epoch == 1
    assert h.initial_loss == pytest.approx(math.log(10), rel=0.2)
    assert h.diverged_reason is not None and "> 100 x the first batch's" in h.diverged_reason
    assert math.isnan(h.final["loss"])  # left out of means like a NaN run


def test_the_factor_is_configurable_and_none_keeps_nan_only():
    h = fit(EXPLODING.replace(diverge_factor=None), 0)
    assert not h.diverged and all(math.isfinite(v) for v in h.train_loss)
    with pytest.raises(ValueError, match="diverge_factor"):
        EXPLODING.replace(diverge_factor=0.5)


def test_compare_counts_and_names_the_exploded_runs(tmp_path, capsys):
    code = main(
        [
            "compare",
            "--model",
            "mlp",
            "--width",
            "0.5",
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--seeds",
            "2",
            "--optimizers",
            "sgd:lr=0.1",
            "adam:lr=5",
            "--workers",
            "1",
            "--quiet",
            "--out",
            str(tmp_path / "c"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    row = next(line for line in out.splitlines() if "│ adam" in line)
    assert row.split("│")[3].strip().startswith("2/2 [")  # the failed column: 2 of 2, with its exact interval
    assert out.count("diverged: digits-mlp-adam-s") == 2 and "x the first batch's" in out
