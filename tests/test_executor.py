"""The executor interface: choosing one (errors before any work), a custom executor, and a result
that comes back from a node that does not share the output folder."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from optimlab.experiments import ExperimentConfig, OptimizerSpec, run_experiment
from optimlab.experiments.executor import Executor, LocalExecutor, OnCrash, RunTask, TaskFn, make_executor
from optimlab.experiments.results import result_path
from optimlab.train.config import TrainConfig

CONFIG = ExperimentConfig(
    name="ex",
    model="mlp",
    epochs=1,
    batch_size=64,
    max_steps_per_epoch=3,
    seeds=(0,),
    optimizers=(OptimizerSpec("sgd", "sgd", {"lr": 0.1}),),
)


def test_make_executor_names_the_culprit():
    assert isinstance(make_executor("local", workers=2), LocalExecutor)
    with pytest.raises(ValueError, match="executor must be one of .*'local', 'ray'.*'slurm'"):
        make_executor("slurm")
    with pytest.raises(ValueError, match="ray_address is an option of the ray executor"):
        make_executor("local", ray_address="127.0.0.1:6379")
    with pytest.raises(ValueError, match="workers must be an int >= 1"):
        make_executor("local", workers=0)
    pytest.importorskip("ray")
    with pytest.raises(ValueError, match="max_retries must be an int >= 0"):
        make_executor("ray", max_retries=-1)
    ex = make_executor("ray", workers=3)  # no connection until a sweep runs
    assert "local Ray instance (3 CPUs)" in ex.describe() and ex.threads_for(CONFIG.runs()[0].config, None) == 1


def test_cli_ray_flags_without_the_ray_executor_are_refused(tmp_path, capsys):
    from optimlab.cli import main

    for command in (["compare"], ["tune"], ["reproduce", "rsgdm-cifar10-resnet18"]):
        assert main([*command, "--ray-address", "127.0.0.1:1", "--out", str(tmp_path / "x")]) == 2
        assert "--ray-address and --ray-retries need --executor ray" in capsys.readouterr().err
    assert main(["compare", "--executor", "ray", "--ray-retries", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "--ray-retries must be >= 0, got -1" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


class ElsewhereExecutor(Executor):
    """Runs each task in this process but into another folder, as a node that does not share --out."""

    name = "elsewhere"

    def __init__(self, node_dir: Path) -> None:
        self.node_dir = node_dir
        self.local = LocalExecutor(1)

    def threads_for(self, config: TrainConfig, override: int | None) -> int:
        return self.local.threads_for(config, override)

    def execute(self, fn: TaskFn, tasks: Sequence[RunTask], on_crash: OnCrash) -> Iterator[dict[str, Any]]:
        for task in tasks:
            args = list(task.args)
            args[4] = str(self.node_dir)
            yield fn(*args)


def test_a_result_from_a_node_that_does_not_share_the_folder_is_written_by_the_driver(tmp_path):
    config = CONFIG
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (r,) = run_experiment(config, tmp_path / "out", executor=ElsewhereExecutor(tmp_path / "node"), progress=False)
    assert r.done and math.isfinite(r.history.final["accuracy"])
    assert result_path(tmp_path / "out", r.run_id).is_file() and result_path(tmp_path / "node", r.run_id).is_file()
    assert any("not shared" in str(w.message) for w in caught)
    with pytest.raises(TypeError, match="Executor"):
        run_experiment(config, tmp_path / "x", executor="ray", progress=False)
