"""train_function: a user's own training code as an experiment's task, judged by the same sweep,
statistics and report (optimlab.tasks.function)."""

from __future__ import annotations

import json
import logging
import math
import textwrap
import threading
from typing import Any, cast

import pytest

from optimlab.experiments.config import ConfigError, ExperimentConfig
from optimlab.experiments.results import error_path, result_path
from optimlab.experiments.sweep import ExperimentMismatchError, run_experiment
from optimlab.experiments.validate import check_experiment
from optimlab.train import TrainConfig, fit, interrupt
from optimlab.train.config import History
from optimlab.train.interrupt import RunInterrupted


def _history(r: Any) -> History:
    """A finished run's History (a run that raised has none: the test then fails here, saying so)."""
    assert r.history is not None, f"{r.run_id} has no history: {r.error}"
    return cast(History, r.history)


USER_CODE = '''
import json, math, os
import torch

def train(make_optimizer, seed, options):
    """A tiny least-squares fit; writes what it was given so the test can look."""
    torch.manual_seed(seed)
    w = torch.nn.Parameter(torch.zeros(3))
    opt = make_optimizer([w])
    target = torch.tensor([1.0, -2.0, 0.5]) + 0.01 * torch.randn(3)
    for _ in range(options["steps"]):
        opt.zero_grad()
        loss = ((w - target) ** 2).sum()
        loss.backward()
        opt.step()
    if "record" in options:
        with open(os.path.join(options["record"], f"{type(opt).__name__}-{seed}.json"), "w") as f:
            json.dump({"lr": opt.param_groups[0]["lr"], "defaults": sorted(opt.defaults), "options": options}, f)
    options["steps"] = -1  # a run that edits its options must not change the next run's
    error = float(((w.detach() - target) ** 2).sum())
    return {"error": error, "score": 1.0 - error}

def crashes_on_seed_1(make_optimizer, seed, options):
    if seed == 1:
        return 1 / 0
    return {"error": 0.5, "score": 0.5}

def extra_key(make_optimizer, seed, options):
    return {"error": 0.1, "score": 0.9, "oops": 1.0}

def missing_key(make_optimizer, seed, options):
    return {"error": 0.1}

def not_a_dict(make_optimizer, seed, options):
    return 0.3

def nan_on_seed_0(make_optimizer, seed, options):
    return {"error": float("nan") if seed == 0 else 0.2, "score": 0.8}

def steps_after_stop(make_optimizer, seed, options):
    from optimlab.train.interrupt import request_stop
    w = torch.nn.Parameter(torch.ones(2))
    opt = make_optimizer([w])
    w.sum().backward()
    request_stop()
    opt.step()
    return {"error": 0.0, "score": 1.0}

NOT_CALLABLE = 3
'''


@pytest.fixture(scope="module")
def user_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user_code")
    (folder / "byo_user_train.py").write_text(textwrap.dedent(USER_CODE))
    (folder / "byo_broken_import.py").write_text("raise RuntimeError('no GPU here')\n")
    import sys

    sys.path.insert(0, str(folder))
    yield "byo_user_train"
    sys.path.remove(str(folder))


def _toml(fn: str, **extra) -> dict:
    d = {
        "name": "own",
        "train_function": fn,
        "dataset": "toy",
        "model": "vector",
        "metrics": {"error": "lower", "score": "higher"},
        "train_options": {"steps": 20},
        "optimizers": [
            {"name": "sgd", "hparams": {"lr": 0.01}},
            {"name": "sgd", "label": "sgd-fast", "hparams": {"lr": 0.2}},
        ],
        "seeds": 5,
    }
    d.update(extra)
    return d


# ---------------------------------------------------------------------------------- configuration


def test_a_train_function_experiment_is_task_function_and_keeps_its_metric_directions(user_module):
    config = ExperimentConfig.from_dict(_toml(f"{user_module}:train"))
    assert config.task == "function"
    run = config.runs()[0]
    assert run.run_id == "toy-vector-sgd-s0" and run.config.train_options == {"steps": 20}
    assert run.config.metrics == {"error": "lower", "score": "higher"}
    again = ExperimentConfig.from_dict(json.loads(json.dumps(config.to_dict())))  # experiment.json round trip
    assert again == config
    plain = TrainConfig().to_dict()  # every other run's files stay as they were
    assert not {"train_function", "train_options", "metrics", "task"} & set(plain)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metrics": {"error": "smaller"}}, r"metric 'error': direction must be 'higher' or 'lower', got 'smaller'"),
        ({"metrics": {}}, r"metrics=\{\} is invalid: must name what the function returns"),
        ({"train_function": "no_colon"}, r"train_function='no_colon' is invalid: must be 'package.module:function'"),
        ({"epochs": 3}, r"epochs=3 is invalid: has no effect on a train_function run"),
        ({"schedule": "cosine"}, r"schedule='cosine' is invalid: has no effect"),
        ({"task": "ctr"}, r"task='ctr' is invalid: a train_function run is task 'function'"),
        ({"dataset": "my data"}, r"dataset='my data' is invalid: names run files"),
        ({"train_options": {"when": __import__("datetime").date(2026, 1, 1)}}, r"train_options=.* must be JSON-able"),
    ],
)
def test_a_bad_train_function_table_is_refused_naming_the_key(user_module, change, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.from_dict(_toml(f"{user_module}:train", **change), source="own.toml")


def test_the_toml_must_name_its_data_and_model():
    d = _toml("pkg.mod:fn")
    del d["model"]
    with pytest.raises(ConfigError, match=r"own\.toml: a train_function experiment names its model"):
        ExperimentConfig.from_dict(d, source="own.toml")


def test_metrics_and_options_without_a_function_are_refused():
    with pytest.raises(ValueError, match=r"metrics=\{'a': 'higher'\} is invalid: needs train_function"):
        TrainConfig(metrics={"a": "higher"})


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (
            "byo_no_such_module:train",
            r"train_function 'byo_no_such_module:train': module 'byo_no_such_module' not found",
        ),
        ("{m}:no_such_fn", r"train_function '{m}:no_such_fn': module '{m}' has no attribute 'no_such_fn'"),
        ("{m}:NOT_CALLABLE", r"train_function '{m}:NOT_CALLABLE': 'NOT_CALLABLE' is a int, not callable"),
        (
            "byo_broken_import:train",
            r"train_function 'byo_broken_import:train': importing 'byo_broken_import' raised RuntimeError: no GPU here",
        ),
    ],
)
def test_the_reference_is_resolved_before_any_run(user_module, tmp_path, reference, message):
    config = ExperimentConfig.from_dict(_toml(reference.format(m=user_module)))
    with pytest.raises(ConfigError, match=message.format(m=user_module)):
        run_experiment(config, tmp_path / "out", progress=False, tensorboard=False)
    assert not (tmp_path / "out").exists()  # nothing ran, no folder left


def test_optimizer_hparams_are_checked_before_any_run(user_module):
    d = _toml(f"{user_module}:train")
    d["optimizers"][1]["hparams"] = {"lr": 0.1, "betta": 0.9}
    with pytest.raises(ConfigError, match=r"optimizer 'sgd-fast' \(sgd\) hparams .*betta"):
        check_experiment(ExperimentConfig.from_dict(d))


# ---------------------------------------------------------------------------------- runs


def test_make_optimizer_builds_exactly_the_runs_optimizer(user_module, tmp_path):
    record = tmp_path / "record"
    record.mkdir()
    d = _toml(f"{user_module}:train", seeds=[3], train_options={"steps": 2, "record": str(record)})
    d["optimizers"] = [
        {"name": "rsgdm", "hparams": {"lr": 0.05, "beta": 0.8}},
        {"name": "wgd-sgdm", "hparams": {"lr": 0.07, "momentum": 0.5}},
    ]
    results = run_experiment(ExperimentConfig.from_dict(d), tmp_path / "out", progress=False, tensorboard=False)
    assert [r.status for r in results] == ["done", "done"]
    assert sorted(p.name for p in record.glob("*.json")) == ["RSGDM-3.json", "WGD-3.json"]
    rsgdm, wgd = (json.loads((record / name).read_text()) for name in ("RSGDM-3.json", "WGD-3.json"))
    assert rsgdm["lr"] == 0.05 and "beta" in rsgdm["defaults"]
    assert wgd["lr"] == 0.07 and "momentum" in wgd["defaults"]  # WGD around heavy-ball SGD
    assert rsgdm["options"]["steps"] == 2  # the function got [train_options] (a copy)
    assert _history(results[0]).final.keys() == {"error", "score"} and not _history(results[0]).train_loss


def test_a_sweep_judges_the_functions_metrics_with_the_tomls_directions(user_module, tmp_path):
    """sgd-fast ends with a smaller `error` on every seed: with error = "lower" that is *better*."""
    from optimlab.report.markdown import write_report

    out = tmp_path / "out"
    config = ExperimentConfig.from_dict(_toml(f"{user_module}:train", seeds=10))  # 10: a decision is made
    results = run_experiment(config, out, progress=False, tensorboard=False)
    assert len(results) == 20 and all(r.done and not r.diverged for r in results)
    text = write_report(out).read_text()
    error_row = next(line for line in text.splitlines() if line.startswith("| sgd-fast [sgd] |"))
    assert "| better |" in error_row  # headline = the first metric listed, error, where lower wins
    assert "error [95% CI]" in text and "| score |" in text  # names as given
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    again = run_experiment(config, out, progress=False, tensorboard=False)  # finished runs are skipped
    assert [_history(r).final for r in again] == [_history(r).final for r in results]
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")} == mtimes
    changed = config.replace(train_options={"steps": 21})  # another recipe: refused in this folder
    with pytest.raises(ExperimentMismatchError, match=r"train_options: \{'steps': 20\} -> \{'steps': 21\}"):
        run_experiment(changed, out, progress=False, tensorboard=False)


def test_an_exception_in_the_function_is_that_runs_failure_with_its_traceback(user_module, tmp_path):
    out = tmp_path / "out"
    config = ExperimentConfig.from_dict(_toml(f"{user_module}:crashes_on_seed_1", seeds=3))
    results = run_experiment(config, out, progress=False, tensorboard=False)
    failed = [r.run_id for r in results if not r.done]
    assert failed == ["toy-vector-sgd-s1", "toy-vector-sgd-fast-s1"]
    stored = json.loads(error_path(out, "toy-vector-sgd-s1").read_text())
    assert stored["error"] == "ZeroDivisionError: division by zero"
    assert "crashes_on_seed_1" in stored["traceback"] and "return 1 / 0" in stored["traceback"]
    assert result_path(out, "toy-vector-sgd-s0").is_file()


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        ("extra_key", r"returned keys \['error', 'oops', 'score'\].*not listed \['oops'\]"),
        ("missing_key", r"returned keys \['error'\].*missing \['score'\]"),
        ("not_a_dict", r"returned a float; it must return a dict of \['error', 'score'\]"),
    ],
)
def test_returned_keys_must_match_the_metrics_table(user_module, tmp_path, fn, message):
    config = ExperimentConfig.from_dict(_toml(f"{user_module}:{fn}", seeds=[0]))
    results = run_experiment(config, tmp_path / "out", progress=False, tensorboard=False)
    assert all(not r.done for r in results)
    import re

    assert re.search(message, results[0].error or "")


def test_a_non_finite_returned_value_is_a_divergence_naming_the_metric(user_module, tmp_path):
    config = ExperimentConfig.from_dict(_toml(f"{user_module}:nan_on_seed_0", seeds=2))
    results = run_experiment(config, tmp_path / "out", progress=False, tensorboard=False)
    by_id = {r.run_id: r for r in results}
    bad = by_id["toy-vector-sgd-s0"]
    assert bad.done and bad.diverged and math.isnan(_history(bad).final["error"])
    assert _history(bad).diverged_reason == "train_function returned non-finite error=nan"
    assert by_id["toy-vector-sgd-s1"].done and not by_id["toy-vector-sgd-s1"].diverged


def test_a_stop_request_ends_the_run_at_its_next_optimizer_step(user_module, monkeypatch):
    monkeypatch.setattr(interrupt, "_STOP", threading.Event())  # this test's own flag, dropped after it
    config = ExperimentConfig.from_dict(_toml(f"{user_module}:steps_after_stop")).runs()[0].config
    with pytest.raises(RunInterrupted):
        fit(config, 0)


def test_the_reference_is_found_from_the_current_directory(tmp_path, monkeypatch):
    """The `optimlab` script's sys.path lacks the current directory; `python -m` has it: both find the module."""
    import sys

    from optimlab.tasks.function import resolve_train_function

    (tmp_path / "byo_cwd_module.py").write_text("def train(make_optimizer, seed, options):\n    return {}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "byo_cwd_module", raising=False)
    assert resolve_train_function("byo_cwd_module:train").__name__ == "train"
    assert str(tmp_path) in sys.path  # kept, so the sweep's worker processes find it too
    monkeypatch.delitem(sys.modules, "byo_cwd_module")


def test_worker_processes_run_the_function(user_module, tmp_path):
    config = ExperimentConfig.from_dict(_toml(f"{user_module}:train", seeds=2))
    results = run_experiment(config, tmp_path / "out", workers=2, progress=False, tensorboard=False)
    assert [r.status for r in results] == ["done"] * 4
    serial = run_experiment(config, tmp_path / "serial", progress=False, tensorboard=False)
    assert [_history(r).final for r in results] == [_history(r).final for r in serial]  # seeded alike


@pytest.mark.slow
def test_ray_runs_the_function_on_a_cluster(user_module, tmp_path, monkeypatch):
    """The same sweep through Ray tasks: the module on the nodes' PYTHONPATH, results as locally."""
    import os
    import sys

    pytest.importorskip("ray")
    import ray

    from optimlab.experiments.sweep import make_executor
    from ray_cluster import RayCluster

    folder = next(p for p in sys.path if os.path.isfile(os.path.join(p, f"{user_module}.py")))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [folder, os.environ.get("PYTHONPATH")])))
    config = ExperimentConfig.from_dict(_toml(f"{user_module}:train", seeds=2))
    local = run_experiment(config, tmp_path / "local", progress=False, tensorboard=False)
    with RayCluster(cpus=(2,)) as cluster:
        ray.init(address=cluster.address, logging_level=logging.WARNING, log_to_driver=False)
        try:
            executor = make_executor("ray", ray_address=cluster.address)
            remote = run_experiment(config, tmp_path / "ray", executor=executor, progress=False, tensorboard=False)
        finally:
            ray.shutdown()
    assert [r.status for r in remote] == ["done"] * 4
    assert [_history(r).final for r in remote] == [_history(r).final for r in local]
