"""Bad input is caught in the parent before any run starts (exit 2, one line, no folder), and a
folder whose runs all failed can be reused with a corrected recipe."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

from optimlab.cli import main
from optimlab.experiments import ExperimentConfig, OptimizerSpec, load_experiment_config, run_experiment
from optimlab.experiments.config import PER_OPTIMIZER_FIELDS
from optimlab.train.config import TrainConfig

TINY = [
    "--model",
    "mlp",
    "--epochs",
    "1",
    "--batch-size",
    "64",
    "--max-steps-per-epoch",
    "2",
    "--seeds",
    "1",
    "--optimizers",
    "sgd:lr=0.1",
    "--quiet",
]


def _one_line_exit_2(args: list[str], capsys, culprit: str) -> str:
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert culprit in err, err
    return err


def test_bundled_dataset_with_a_data_dir_fails_before_the_sweep(tmp_path, capsys):
    out = tmp_path / "out"
    _one_line_exit_2(
        ["compare", "--dataset", "digits", "--data-dir", str(tmp_path), "--out", str(out), *TINY],
        capsys,
        "takes no data folder",
    )
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal of CUDA on a machine without it")
def test_cuda_without_cuda_fails_before_the_sweep(tmp_path, capsys):
    toml = tmp_path / "gpu.toml"
    toml.write_text('device = "cuda"\nmodel = "mlp"\n[[optimizers]]\nname = "sgd"\n')
    out = tmp_path / "out"
    _one_line_exit_2(["compare", "--config", str(toml), "--out", str(out), *TINY], capsys, "CUDA is not available")
    assert not out.exists()


def test_a_folder_of_failed_runs_takes_a_corrected_recipe(tmp_path):
    bad = ExperimentConfig(
        name="e",
        model="mlp",
        epochs=1,
        batch_size=64,
        max_steps_per_epoch=2,
        seeds=(0, 1),
        data_dir=str(tmp_path),
        optimizers=(OptimizerSpec("sgd", "sgd", {"lr": 0.1}),),
    )
    failed = run_experiment(bad, tmp_path / "out", workers=1, progress=False, check=False)  # as a worker sees it
    assert [r.status for r in failed] == ["error", "error"]
    good = bad.replace(data_dir=None)
    results = run_experiment(good, tmp_path / "out", workers=1, progress=False)
    assert [r.status for r in results] == ["done", "done"]
    assert not list((tmp_path / "out" / "runs").glob("*.error.json"))  # stale error files cleared


def test_toml_sets_every_training_option_and_shares_the_cli_default_model(tmp_path):
    train_fields = {f for f in TrainConfig.__dataclass_fields__} - set(PER_OPTIMIZER_FIELDS)
    assert train_fields <= set(ExperimentConfig.__dataclass_fields__)
    toml = tmp_path / "e.toml"
    toml.write_text(
        textwrap.dedent("""
        amp = "bf16"
        channels_last = true
        eval_batch_size = 256
        [[optimizers]]
        name = "sgd"
    """)
    )
    c = load_experiment_config(toml)
    run = c.runs()[0].config
    assert (run.amp, run.channels_last, run.eval_batch_size) == ("bf16", True, 256)
    assert c.model == TrainConfig().model == "cnn"  # the embedded default.toml's model too
    from optimlab.cli.common import default_config_text

    assert 'model = "cnn"' in default_config_text()
    assert ExperimentConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    toml.write_text('amp = "fp8"\n[[optimizers]]\nname = "sgd"\n')
    with pytest.raises(ValueError, match=r"e.toml: amp='fp8' is invalid"):
        load_experiment_config(toml)


def test_tune_refuses_a_budget_that_cannot_search(tmp_path, capsys):
    _one_line_exit_2(["tune", "--budget", "1", "--out", str(tmp_path / "t"), *TINY], capsys, "--budget")
    assert not (tmp_path / "t").exists()


def test_reproduce_refuses_the_digits_stand_in_unless_asked_by_name(tmp_path, monkeypatch, capsys):
    import optimlab.reproduce.run as run_mod
    from optimlab.reproduce import reproduce
    from optimlab.reproduce.catalog import load_paper_experiment
    from optimlab.reproduce.run import ReproduceError, resolve_config

    monkeypatch.setattr(run_mod, "find_cifar10_subset", lambda start=None: None)  # a plain pip install
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ReproduceError) as e:
        reproduce("rsgdm-cifar10-resnet18", out=tmp_path / "r", progress=False)
    message = str(e.value)
    for part in ("no CIFAR-10 data found", str(tmp_path), "--data-dir", "download=True", "--stand-in digits"):
        assert part in message
    assert not (tmp_path / "r").exists()
    exp = load_paper_experiment("rsgdm-cifar10-resnet18")
    assert resolve_config(exp, "cpu", stand_in="digits").dataset == "digits"
    with pytest.raises(ReproduceError, match="stand_in must be one of"):
        resolve_config(exp, "cpu", stand_in="mnist")
    # asked for by name: it runs, and says which data before the runs start
    reproduce(
        "rsgdm-cifar10-resnet18",
        out=tmp_path / "r",
        seeds=2,
        stand_in="digits",
        progress=True,
        overrides={"epochs": 1, "max_steps_per_epoch": 2},
    )
    assert "data: scikit-learn digits" in capsys.readouterr().err


def test_reproduce_help_has_no_doubled_percent(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    out = capsys.readouterr().out
    assert "95% CI" in out and "%%" not in out
