"""The rough edges of the first hour (issue 24, §3): each bad input is one line naming the culprit
before anything is written, and the files a sweep leaves are what a user on a shared folder expects."""

from __future__ import annotations

import os
import socket
import stat
import time
import warnings

import pytest
import torch

from optimlab.cli import build_parser, main
from optimlab.cli.common import build_config
from optimlab.experiments import ExperimentConfig, OptimizerSpec, load_experiment_config, run_experiment
from optimlab.experiments.results import checkpoint_dir, experiment_path
from optimlab.experiments.validate import check_experiment
from optimlab.train.checkpoint import CHECKPOINT_FILE, RunDir, save_torch_atomic, write_json_atomic
from test_precheck import TINY

# ----------------------------------------------------------------------------------------------
# a relative data_dir is the TOML's folder's, and recorded absolute


def test_a_tomls_relative_data_dir_is_resolved_against_its_folder_and_recorded_absolute(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    toml = folder / "exp.toml"
    toml.write_text('dataset = "cifar10"\ndata_dir = "../data/cifar"\n[[optimizers]]\nname = "sgd"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_experiment_config(toml)
    assert config.data_dir == str(tmp_path / "data" / "cifar")  # not elsewhere/../data/cifar, and normalised
    assert all(r.config.data_dir == str(tmp_path / "data" / "cifar") for r in config.runs())  # every run JSON's
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    toml.write_text('dataset = "cifar10"\ndata_dir = "~/cifar"\n[[optimizers]]\nname = "sgd"\n')
    assert load_experiment_config(toml).data_dir == str(tmp_path / "home" / "cifar")


def test_a_relative_data_dir_flag_is_recorded_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["compare", "--dataset", "cifar10", "--data-dir", "data/cifar"])
    assert build_config(args).data_dir == str(tmp_path / "data" / "cifar")


# ----------------------------------------------------------------------------------------------
# wgd-* on a model without a weight it centres


def _wgd_on(model: str, **hparams: object) -> ExperimentConfig:
    spec = OptimizerSpec("wgd-sgdm", "wgd-sgdm", {"lr": 0.1, **hparams})
    return ExperimentConfig(dataset="digits", model=model, epochs=1, optimizers=(spec,), seeds=(0,))


def test_wgd_on_a_model_without_an_eligible_weight_warns_naming_the_model():
    with pytest.warns(UserWarning, match=r"optimizer 'wgd-sgdm': model 'mlp' has no weight WGD centres"):
        check_experiment(_wgd_on("mlp"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a model with conv weights, or linear weights switched on: no warning
        check_experiment(_wgd_on("cnn"))
        check_experiment(_wgd_on("mlp", wgd_include_linear=True))
        check_experiment(_wgd_on("mlp", wgd_mode="none"))  # the base on purpose


# ----------------------------------------------------------------------------------------------
# run files honour the umask


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_run_files_and_checkpoints_get_the_umasks_permissions(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "run.json", {"a": 1})
        save_torch_atomic(tmp_path / "checkpoint.pt", {"w": torch.zeros(2)})
    finally:
        os.umask(previous)
    for name in ("run.json", "checkpoint.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "run.json"]  # no temporary left


def test_a_sweeps_files_are_readable_by_the_group_and_others_under_umask_022(tmp_path):
    out = tmp_path / "out"
    previous = os.umask(0o022)
    try:
        assert main(["compare", "--out", str(out), "--no-tensorboard", *TINY]) == 0
    finally:
        os.umask(previous)
    files = [experiment_path(out), *sorted((out / "runs").glob("*.json")), out / "report.md"]
    assert len(files) == 3
    assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {f.name: 0o644 for f in files}


# ----------------------------------------------------------------------------------------------
# a truncated checkpoint


def test_a_truncated_checkpoint_restarts_its_run_with_one_warning_and_keeps_the_file(tmp_path):
    config = ExperimentConfig(
        dataset="digits",
        model="mlp",
        epochs=1,
        batch_size=64,
        max_steps_per_epoch=2,
        optimizers=(OptimizerSpec("sgd", "sgd", {"lr": 0.1}),),
        seeds=(0, 1),
    )
    out = tmp_path / "out"
    broken = config.runs()[1]
    ckpt = checkpoint_dir(out, broken.run_id)
    RunDir(ckpt, broken.config, broken.seed).prepare()  # the run's own run.json: a resumable folder
    save_torch_atomic(ckpt / CHECKPOINT_FILE, {"format": 1, "state": torch.zeros(1000)})
    data = (ckpt / CHECKPOINT_FILE).read_bytes()
    (ckpt / CHECKPOINT_FILE).write_bytes(data[: len(data) // 2])  # a copy cut short
    with pytest.warns(UserWarning, match=rf"run {broken.run_id}: checkpoint .* is unreadable") as caught:
        results = run_experiment(config, out, progress=False, tensorboard=False)
    assert len([w for w in caught if "unreadable" in str(w.message)]) == 1
    assert [r.done for r in results] == [True, True]
    kept = out / "ckpt" / f"{broken.run_id}-{CHECKPOINT_FILE}.corrupt"
    assert kept.read_bytes() == data[: len(data) // 2]  # set aside, not deleted
    assert "restarts from epoch 0" in str(caught[0].message) and kept.name in str(caught[0].message)


# ----------------------------------------------------------------------------------------------
# one line, exit 2, nothing written: an unreachable Ray cluster, a bad --out, a mistyped hyperparameter


def _one_line_exit_2(args: list[str], capsys, *culprits: str) -> str:
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("optimlab: error: "), err
    assert all(c in err for c in culprits), err
    return err


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_ray_address_fails_in_seconds_and_leaves_no_folder(tmp_path, capsys):
    pytest.importorskip("ray", reason="the ray executor needs ray (pip install 'optimlab[ray]')")
    from optimlab.experiments.ray_executor import RayExecutor, RayUnavailable

    address = f"127.0.0.1:{_unused_port()}"
    start = time.perf_counter()
    with pytest.raises(RayUnavailable, match=f"cannot reach the Ray cluster at '{address}'"):
        RayExecutor(address=address)
    assert time.perf_counter() - start < 5
    out = tmp_path / "out"
    _one_line_exit_2(
        ["compare", "--executor", "ray", "--ray-address", address, "--out", str(out), *TINY], capsys, address
    )
    assert not out.exists()  # no .lock, no experiment.json
    with pytest.raises(ValueError, match="'host:port'"):
        RayExecutor(address="no-port")


def test_out_naming_a_file_or_an_unwritable_path_is_one_line_before_anything(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    _one_line_exit_2(["compare", "--out", str(a_file), *TINY], capsys, str(a_file), "is a file")
    _one_line_exit_2(["compare", "--out", str(a_file / "sub"), *TINY], capsys, str(a_file / "sub"), "is a file")
    _one_line_exit_2(["tune", "--out", str(a_file), "--budget", "2", *TINY], capsys, str(a_file))
    _one_line_exit_2(["train", "--out", str(a_file), *TINY[:-5], "--quiet"], capsys, str(a_file))
    assert a_file.read_text() == "mine"


def test_out_under_a_folder_nobody_may_write_is_one_line_before_anything(tmp_path, capsys):
    if os.geteuid() == 0:  # root writes into any 0o500 folder, but not into /proc's
        if os.access("/proc/1", os.W_OK):
            pytest.skip("no folder here refuses root's writes")
        _one_line_exit_2(["compare", "--out", "/proc/1/out", *TINY], capsys, "'/proc/1/out'", "not writable")
        return
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        _one_line_exit_2(["compare", "--out", str(locked / "out"), *TINY], capsys, str(locked / "out"), "not writable")
        _one_line_exit_2(["compare", "--out", str(locked), *TINY], capsys, str(locked), "not writable")
    finally:
        locked.chmod(0o700)
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize(
    "spec, culprit",
    [
        ("adam:lr=fast", "hyperparameter lr='fast' must be a number (default 0.001), got str"),
        ("adam:betas=0.9", "hyperparameter betas=0.9 must be a list"),
        ("adam:amsgrad=maybe", "hyperparameter amsgrad='maybe' must be true or false"),
        ("wgd-sgdm:wgd_min_dim=three", "hyperparameter wgd_min_dim='three' must be a number"),
    ],
)
def test_a_hyperparameter_of_the_wrong_type_is_named_with_the_type_expected(tmp_path, capsys, spec, culprit):
    out = tmp_path / "out"
    args = ["compare", "--out", str(out), *TINY]
    args[args.index("sgd:lr=0.1")] = spec
    err = _one_line_exit_2(args, capsys, culprit)
    assert "not supported between" not in err
    assert not out.exists()


def test_a_train_function_experiments_hyperparameter_of_the_wrong_type_is_named_too():
    from optimlab.experiments.config import ConfigError

    config = ExperimentConfig.from_dict(
        {
            "train_function": "json:dumps",  # any importable callable: the check stops before it is called
            "dataset": "toy",
            "model": "vector",
            "metrics": {"error": "lower"},
            "optimizers": [{"name": "adam", "hparams": {"lr": "fast"}}],
        }
    )
    with pytest.raises(ConfigError, match=r"hyperparameter lr='fast' must be a number"):
        check_experiment(config)


def test_tune_takes_threads_and_hands_them_to_every_sweep(tmp_path, monkeypatch):
    import optimlab.tune.search as search

    seen: dict[str, object] = {}

    def record(*args: object, **kwargs: object) -> None:
        seen.update(kwargs)
        raise KeyboardInterrupt  # stop before any run: what matters is what tune() was given

    monkeypatch.setattr(search, "run_experiment", record)
    assert main(["tune", "--threads", "3", "--budget", "2", "--out", str(tmp_path / "t"), *TINY]) == 130
    assert seen["threads"] == 3
