"""ExperimentConfig (TOML), the sweep (result files, skip, mismatch, crash, kill + resume) and the report."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from optimlab.experiments import ConfigError, ExperimentConfig, OptimizerSpec, load_experiment_config
from optimlab.experiments import sweep as sweep_mod
from optimlab.experiments.results import RunResult, load_results, result_path
from optimlab.experiments.sweep import ExperimentMismatchError, run_experiment
from optimlab.experiments.validate import check_experiment
from optimlab.report.markdown import write_report
from optimlab.train.config import History, TrainConfig

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TOML = REPO / "src" / "optimlab" / "configs" / "default.toml"


def _write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


GOOD = """
name = "t"
dataset = "digits"
model = "mlp"
seeds = 3
epochs = 2
batch_size = 64
switch_epoch = 2
baseline = "ema"

[[optimizers]]
name = "sgdm-ema"
label = "ema"
hparams = { lr = 0.1, beta = 0.9 }

[[optimizers]]
name = "sgdm"
hparams = { lr = 0.01, momentum = 0.9 }

[[optimizers]]
name = "tmsgd"
"""


# --------------------------------------------------------------------------- config


def test_toml_loads_and_expands_to_stable_run_ids(tmp_path):
    c = load_experiment_config(_write(tmp_path, GOOD))
    assert c.seeds == (0, 1, 2) and c.baseline_label == "ema"
    assert [o.label for o in c.optimizers] == ["ema", "sgdm", "tmsgd"]
    runs = c.runs()
    assert len(runs) == 9
    ids = [r.run_id for r in runs]
    assert ids[:3] == ["digits-mlp-ema-s0", "digits-mlp-ema-s1", "digits-mlp-ema-s2"]
    assert "digits-mlp-tmsgd-s2" in ids and len(set(ids)) == 9
    rid, tc, seed = runs[4].run_id, runs[4].config, runs[4].seed
    assert (rid, seed) == ("digits-mlp-sgdm-s1", 1)
    assert isinstance(tc, TrainConfig) and tc.optimizer == "sgdm" and tc.hparams == {"lr": 0.01, "momentum": 0.9}
    assert (tc.epochs, tc.batch_size, tc.model, tc.dataset) == (2, 64, "mlp", "digits")
    # only TM-SGD runs carry the switch
    assert tc.switch_epoch is None and runs[6].config.switch_epoch == 2
    assert c.runs() == runs  # stable
    # to_dict -> from_dict round trip (experiment.json)
    assert ExperimentConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_grid_over_models_and_explicit_seeds():
    c = ExperimentConfig(optimizers=(OptimizerSpec("adam", "adam", {}),), seeds=(3, 7), models=("mlp", "cnn"))
    assert [r.run_id for r in c.runs()] == [
        "digits-mlp-adam-s3",
        "digits-mlp-adam-s7",
        "digits-cnn-adam-s3",
        "digits-cnn-adam-s7",
    ]


@pytest.mark.parametrize(
    "patch, match",
    [
        ('epochs = "ten"', r"epochs='ten' is invalid: must be an int >= 1"),  # TrainConfig's one rule per field
        ("epochs = 0", r"epochs=0 is invalid: must be an int >= 1"),
        ("colour = 3", r"unknown key\(s\) \['colour'\]"),
        ('baseline = "nope"', r"'baseline' 'nope' is not one of the optimizer labels"),
        ("seeds = 0", r"'seeds' count must be >= 1"),
        ("seeds = [1, 1]", r"'seeds' has duplicates"),
        ('schedule = "linear"', r"schedule='linear' is invalid: must be one of"),
        ("val_fraction = 1.5", r"val_fraction=1.5 is invalid: must be in \(0, 1\)"),
        ("warmup_epochs = 5", r"warmup_epochs=5 is invalid"),
    ],
)
def test_bad_values_name_file_key_and_value(tmp_path, patch, match):
    key = patch.split(" = ")[0]
    lines = [ln for ln in GOOD.splitlines() if not ln.startswith(key + " ")]
    path = _write(tmp_path, patch + "\n" + "\n".join(lines))
    with pytest.raises(ConfigError, match=match) as e:
        load_experiment_config(path)
    assert str(path) in str(e.value)


def test_bad_optimizer_tables_and_syntax(tmp_path):
    with pytest.raises(ConfigError, match=r"appear twice"):
        load_experiment_config(_write(tmp_path, GOOD + '\n[[optimizers]]\nname = "sgdm"\n'))
    with pytest.raises(ConfigError, match=r"optimizers\[3\]: unknown key\(s\) \['lr'\]"):
        load_experiment_config(_write(tmp_path, GOOD + '\n[[optimizers]]\nname = "adam"\nlr = 0.1\n'))
    with pytest.raises(ConfigError, match=r"exp.toml: not valid TOML"):
        load_experiment_config(_write(tmp_path, "name = 'x\n"))
    with pytest.raises(ConfigError, match=r"'optimizers' is empty"):
        load_experiment_config(_write(tmp_path, 'name = "x"\n'))
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_experiment_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"label 'a/b'"):
        ExperimentConfig(optimizers=(OptimizerSpec("adam", "a/b", {}),))


def test_default_config_is_valid_against_the_registries():
    c = load_experiment_config(DEFAULT_TOML)
    assert [o.name for o in c.optimizers] == ["sgdm-ema", "rsgdm", "nag", "tmsgd", "wgd-sgdm", "adam"]
    assert len(c.seeds) == 10 and c.dataset == "digits" and c.baseline_label == "sgdm-ema"
    assert all("lr" in o.hparams for o in c.optimizers)
    check_experiment(c)  # builds data, model and every optimizer once


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(optimizers=(OptimizerSpec("rsgdn", "rsgdn", {}),)), r"optimizer 'rsgdn'.*Unknown optimizer"),
        (dict(optimizers=(OptimizerSpec("rsgdm", "rsgdm", {"lr": -1.0}),)), r"'rsgdm'.*lr"),
        (dict(optimizers=(OptimizerSpec("rsgdm", "rsgdm", {"momentum": 0.9}),)), r"'rsgdm'.*momentum"),
        (dict(model="resnet7"), r"unknown model 'resnet7'"),
        (dict(dataset="mnist"), r"unknown dataset 'mnist'"),
        (dict(dataset="cifar10"), r"'cifar10' needs a data folder"),
        (dict(dataset="cifar10", data_dir="/nonexistent/cifar"), r"cifar10.*/nonexistent/cifar"),
    ],
)
def test_check_experiment_names_the_culprit(changes, match):
    c = ExperimentConfig(optimizers=(OptimizerSpec("adam", "adam", {}),)).replace(**changes)
    with pytest.raises(ConfigError, match=match):
        check_experiment(c)


# --------------------------------------------------------------------------- sweep (stand-in fit)


class FakeFit:
    """Stands in for optimlab.train.fit: a deterministic History per (optimizer, seed)."""

    def __init__(self, fail_seed: int | None = None, diverge: str | None = None):
        self.calls: list[tuple[str, int]] = []
        self.fail_seed, self.diverge = fail_seed, diverge

    def __call__(self, config, seed, run_dir=None, progress=False, callback=None):
        self.calls.append((config.optimizer, seed))
        assert run_dir is not None and Path(run_dir).name.endswith(f"-s{seed}")
        if seed == self.fail_seed:
            raise RuntimeError(f"synthetic failure\nat seed {seed}")
        acc = 0.9 + 0.01 * seed + (0.02 if config.optimizer == "sgdm" else 0.0)
        div = config.optimizer == self.diverge
        return History(
            train_loss=[1.0, 0.5],
            test_acc=[acc - 0.05, acc],
            step_time_s=0.001,
            final={
                "accuracy": acc,
                "loss": math.nan if div else 0.3,
                "mean_recall": acc,
                "mean_precision": acc,
                "kappa": acc - 0.1,
            },
            diverged_epoch=2 if div else None,
            wall_time_s=0.01,
        )


def _config(**kw: Any) -> ExperimentConfig:
    base: dict[str, Any] = dict(
        name="t",
        model="mlp",
        epochs=2,
        seeds=(0, 1, 2),
        baseline="sgdm-ema",
        optimizers=(
            OptimizerSpec("sgdm-ema", "sgdm-ema", {"lr": 0.1}),
            OptimizerSpec("sgdm", "sgdm", {"lr": 0.01}),
            OptimizerSpec("rsgdm", "rsgdm", {"lr": 0.1}),
        ),
    )
    base.update(kw)
    return ExperimentConfig(**base)


def _final(r: RunResult) -> dict[str, float]:
    """A finished run's final test metrics (its history is there)."""
    assert r.history is not None, r.error
    return r.history.final


def test_sweep_writes_results_skips_finished_and_rejects_mismatch(tmp_path, monkeypatch):
    fake = FakeFit(diverge="rsgdm")
    monkeypatch.setattr(sweep_mod, "fit", fake)
    config = _config()
    results = run_experiment(config, tmp_path, workers=1, progress=False)
    assert len(fake.calls) == 9 and all(r.done for r in results)
    assert sum(r.diverged for r in results) == 3  # divergence is a result, not an error
    d = json.loads(result_path(tmp_path, "digits-mlp-sgdm-s2").read_text())
    assert d["seed"] == 2 and d["config"]["optimizer"] == "sgdm" and d["config"]["hparams"] == {"lr": 0.01}
    assert d["history"]["final"]["accuracy"] == pytest.approx(0.94)
    assert set(d["versions"]) == {"optimlab", "torch", "numpy", "python"} and d["wall_time_s"] >= 0
    assert json.loads((tmp_path / "experiment.json").read_text())["optimizers"][0]["label"] == "sgdm-ema"
    assert not list((tmp_path / "runs").glob("*.tmp"))
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").iterdir()}
    # again: nothing to do
    again = run_experiment(config, tmp_path, workers=1, progress=False)
    assert len(fake.calls) == 9 and [r.run_id for r in again] == [r.run_id for r in results]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").iterdir()} == mtimes
    # more seeds in the same folder: only the new ones run
    run_experiment(config.replace(seeds=(0, 1, 2, 3)), tmp_path, workers=1, progress=False)
    assert fake.calls[9:] == [("sgdm-ema", 3), ("sgdm", 3), ("rsgdm", 3)]
    # a different recipe in the same folder is refused, naming the file and the change
    with pytest.raises(
        ExperimentMismatchError, match=r"digits-mlp-sgdm-ema-s0.json.*epochs: 2 -> 3.*another output folder"
    ):
        run_experiment(config.replace(epochs=3), tmp_path, workers=1, progress=False)


def test_a_crashing_run_is_recorded_and_retried(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_mod, "fit", FakeFit(fail_seed=1))
    results = run_experiment(_config(), tmp_path, workers=1, progress=False)
    failed = [r for r in results if not r.done]
    assert len(results) == 9 and len(failed) == 3 and {r.seed for r in failed} == {1}
    assert failed[0].error == "RuntimeError: synthetic failure at seed 1"  # one line
    err = json.loads((tmp_path / "runs" / "digits-mlp-sgdm-s1.error.json").read_text())
    assert "Traceback" in err["traceback"] and err["status"] == "error"
    fake = FakeFit()
    monkeypatch.setattr(sweep_mod, "fit", fake)
    results = run_experiment(_config(), tmp_path, workers=1, progress=False)
    assert sorted(fake.calls) == [("rsgdm", 1), ("sgdm", 1), ("sgdm-ema", 1)]
    assert all(r.done for r in results) and not list((tmp_path / "runs").glob("*.error.json"))


def test_report_from_result_files(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_mod, "fit", FakeFit(diverge="rsgdm"))
    run_experiment(_config(), tmp_path, workers=1, progress=False)
    path = write_report(tmp_path)
    text = path.read_text()
    assert "| sgdm-ema |" in text and "| sgdm |" in text  # distinct rows, registry names
    assert "Δ vs sgdm-ema" in text and "p (paired t)" in text and "p Holm" in text and "Wilcoxon" not in text
    assert "too few seeds" in text  # 3 seeds decide nothing
    assert "3 of 3 runs diverged" in text  # rsgdm: counted and noted
    assert "torch" in text and '"baseline": "sgdm-ema"' in text  # versions and config
    row = [ln for ln in text.splitlines() if ln.startswith("| sgdm |")][1]  # [0] is the set-up table
    assert "93.00 [90.52, 95.48]" in row  # 0.92..0.94: 93 ± t(0.975, 2)·1/√3 = ±2.48
    assert "+2.00 —" in row and "3/3" in row  # every seed +2.00 exactly: ties, no interval, no test
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["curves_digits_mlp.png", "final_accuracy_digits_mlp.png", "step_time_digits_mlp.png"]
    for p in pngs:
        assert (tmp_path / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({p})" in text
    with pytest.raises(FileNotFoundError, match="experiment.json"):
        write_report(tmp_path / "runs")


# --------------------------------------------------------------------------- sweep (real fit)


def test_worker_processes_give_the_same_results_as_in_process(tmp_path):
    config = ExperimentConfig(
        name="w",
        model="mlp",
        epochs=1,
        batch_size=64,
        max_steps_per_epoch=3,
        seeds=(0, 1),
        optimizers=(OptimizerSpec("rsgdm", "rsgdm", {"lr": 0.1}),),
    )
    par = run_experiment(config, tmp_path / "par", workers=2, progress=False)
    seq = run_experiment(config, tmp_path / "seq", workers=1, progress=False)
    assert [r.status for r in par] == ["done", "done"]
    assert [_final(r) for r in par] == [_final(r) for r in seq]
    assert not (tmp_path / "par" / "ckpt").exists() or not any((tmp_path / "par" / "ckpt").iterdir())


KILL_SCRIPT = """
import sys
from optimlab.experiments import ExperimentConfig, OptimizerSpec, run_experiment
c = ExperimentConfig(name="k", model="mlp", epochs=3, batch_size=16, seeds=(0, 1, 2),
                     optimizers=(OptimizerSpec("sgdm-ema", "sgdm-ema", {"lr": 0.1}),
                                 OptimizerSpec("adam", "adam", {"lr": 0.001})))
run_experiment(c, sys.argv[1], workers=1, progress=False)
"""


def test_killed_sweep_resumes_without_touching_finished_runs(tmp_path):
    out = tmp_path / "out"
    script = tmp_path / "sweep.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(out)], env=env)
    deadline = time.monotonic() + 120
    runs = out / "runs"
    while time.monotonic() < deadline and proc.poll() is None:
        if runs.is_dir() and any(p.suffix == ".json" for p in runs.iterdir()):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in runs.glob("*.json")}
    assert 1 <= len(before) < 6
    rerun = subprocess.run([sys.executable, str(script), str(out)], env=env, timeout=300)
    assert rerun.returncode == 0
    for name, (mtime, content) in before.items():
        assert (runs / name).stat().st_mtime_ns == mtime and (runs / name).read_bytes() == content
    results = load_results(out)
    assert len(results) == 6 and all(r.done and _final(r)["accuracy"] > 0.5 for r in results)
    assert not list(runs.glob("*.tmp")) and not list(runs.glob(".*"))
