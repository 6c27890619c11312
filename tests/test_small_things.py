"""Small things a new user trips on (issue 12, §5)."""

from __future__ import annotations

import warnings

import pytest

import optimlab
from optimlab.cli import main
from optimlab.experiments import ExperimentConfig, OptimizerSpec, run_experiment
from test_train import make_image_folder

TINY = ["--model", "mlp", "--epochs", "2", "--max-steps-per-epoch", "2", "--quiet"]


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"optimlab {optimlab.__version__}"


def test_a_custom_compare_is_not_titled_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "--optimizers", "sgd:lr=0.1", "--seeds", "1", "--workers", "1", *TINY]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "runs" / "compare-custom").is_dir() and "custom: digits / mlp" in out
    assert "default" not in out


def test_report_names_what_it_expected(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "experiment.json" in err and len(err.strip().splitlines()) == 1
    assert main(["train", "--optimizer", "sgd:lr=0.1", "--out", str(tmp_path / "one"), *TINY]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "one")]) == 2
    err = capsys.readouterr().err
    assert "run folder of `optimlab train`" in err and "experiment.json" in err


def test_a_resumed_train_says_from_which_epoch(tmp_path, capsys):
    from optimlab.train import TrainConfig, fit
    from optimlab.train.checkpoint import CHECKPOINT_FILE

    # an interrupted run: a checkpoint after epoch 1 of 2 (what a kill leaves)
    args = [
        "train",
        "--optimizer",
        "sgd:lr=0.1",
        "--out",
        str(tmp_path / "one"),
        "--model",
        "mlp",
        "--epochs",
        "2",
        "--max-steps-per-epoch",
        "2",
    ]
    from optimlab.cli import build_parser
    from optimlab.cli.common import build_config

    config = build_config(build_parser().parse_args(args), single=True).runs()[0].config

    class Stop(Exception):
        pass

    def stop_after_epoch_1(epoch, history):
        raise Stop

    with pytest.raises(Stop):
        fit(config, 0, run_dir=tmp_path / "one", callback=stop_after_epoch_1)
    assert (tmp_path / "one" / CHECKPOINT_FILE).is_file() and isinstance(config, TrainConfig)
    assert main(args) == 0
    assert "resuming after epoch 1" in capsys.readouterr().err


def test_the_unreadable_image_warning_is_given_once_per_command(tmp_path):
    folder = make_image_folder(tmp_path / "img", counts=(12, 12), size=8)
    (folder / "class0" / "broken.png").write_bytes(b"not a png")
    config = ExperimentConfig(
        dataset="imagefolder",
        data_dir=str(folder),
        model="mlp",
        epochs=1,
        max_steps_per_epoch=1,
        batch_size=8,
        seeds=(0, 1, 2),
        val_fraction=0.2,
        optimizers=(OptimizerSpec("sgd", "sgd", {"lr": 0.1}),),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # Python's own once-per-location filter must not be what saves us
        run_experiment(config, tmp_path / "out", workers=1, progress=False)
    skips = [w for w in caught if "unreadable image" in str(w.message)]
    assert len(skips) == 1 and "broken.png" in str(skips[0].message)


def test_study_pages_do_not_claim_where_they_were_written():
    from optimlab.studies._report import GENERATED_NOTE

    note = GENERATED_NOTE.format(name="ema")
    assert "`optimlab study ema --out docs/studies`" not in note and "--out DIR" in note


def test_tune_always_has_a_validation_split_to_choose_on(tmp_path, capsys, monkeypatch):
    # what tune's old `val_fraction <= 0` check (never true) meant to guard: TrainConfig refuses a
    # fraction outside (0, 1) before any run, and the split always holds out a sample
    import torch

    from optimlab.data.batches import stratified_split
    from optimlab.tasks.base import Split, random_split

    monkeypatch.chdir(tmp_path)
    for fraction in ("0", "1", "-0.1"):
        assert main(["tune", "--set", f"val_fraction={fraction}", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"val_fraction={fraction}" in err and "must be in (0, 1)" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    tiny = Split(torch.zeros(10, 1), torch.arange(10) % 2)
    assert len(random_split(tiny, 0.01, seed=0)[1]) == 1
    with pytest.raises(ValueError, match="leaves no validation samples"):
        stratified_split(Split(torch.zeros(2, 1), torch.arange(2)), 0.01)
