"""The task abstraction: the registry, what every task declares, image classification's files and
pages unchanged, a two-optimizer task (one optimizer per role, checkpointed per role, resumed
bit-identical), and a non-image task through experiments, reports and reproduce."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import optimlab.tasks as tasks_module
from optimlab.data import list_datasets
from optimlab.experiments.config import ConfigError, ExperimentConfig
from optimlab.experiments.validate import check_experiment
from optimlab.tasks import StepContext, get_task, known_metrics, list_tasks
from optimlab.tasks.classification import ClassificationTask
from optimlab.train import TrainConfig, fit
from optimlab.train.checkpoint import CHECKPOINT_FILE
from task_fixtures import write_adult
from test_resume_kill import Interrupt, _assert_same_run

REPO = Path(__file__).resolve().parents[1]


def test_every_task_declares_known_metrics_data_sets_and_models():
    assert [t.name for t in list_tasks()][:3] == ["classification", "text", "ctr"]
    datasets = {d.name: d for d in list_datasets()}
    for task in list_tasks():
        if task.name == "function":  # the user's code: its metrics are each experiment's TOML `metrics` table
            continue
        assert task.metrics and task.headline in task.metrics, task.name
        for m in task.metrics:
            assert m in known_metrics() and known_metrics()[m].title, (task.name, m)
        for ds in task.datasets:
            # the GAN generates the image sets' images: their loaders are the classification ones
            owner = "classification" if task.name == "gan" else task.name
            assert datasets[ds].task == owner, (task.name, ds)
    assert get_task("ctr").headline == "auc" and known_metrics()["log_loss"].better == "lower"
    with pytest.raises(ValueError, match=r"TrainConfig.task='gan2' is invalid: must be one of \('classification'"):
        TrainConfig(task="gan2")
    with pytest.raises(ValueError, match="unknown task 'gan2'"):
        get_task("gan2")


def test_classification_files_do_not_mention_the_task_but_other_tasks_do():
    assert "task" not in TrainConfig().to_dict()
    text = TrainConfig(task="text", dataset="r8", model="lstm")
    assert text.to_dict()["task"] == "text" and TrainConfig.from_dict(text.to_dict()) == text
    assert TrainConfig.from_dict(TrainConfig().to_dict()).task == "classification"
    d = ExperimentConfig.from_dict({"optimizers": ["sgd"], "task": "ctr", "dataset": "adult", "model": "wide-deep"})
    assert d.to_dict()["task"] == "ctr" and d.runs()[0].config.task == "ctr"
    assert "task" not in ExperimentConfig.from_dict({"optimizers": ["sgd"]}).to_dict()


@pytest.mark.slow
def test_a_committed_image_classification_report_regenerates_byte_identical(tmp_path):
    """The task abstraction changes no page: report.md of a committed CPU reproduction, rebuilt from
    its run files, equals the committed one byte for byte."""
    from optimlab.report.markdown import write_report

    src = REPO / "results" / "reproduce-tmsgd-cifar10-resnet18-cpu"
    if not (src / "report.md").exists():
        pytest.skip(f"needs the committed results folder {src}")
    out = tmp_path / "copy"
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("*.png", "report.md"))
    write_report(out)
    assert (out / "report.md").read_bytes() == (src / "report.md").read_bytes()


# -- a two-optimizer task ---------------------------------------------------------------------------
class TwoPart(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU())
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class TwoRoleTask(ClassificationTask):
    """Digits with the body and the head trained by separate optimizers, the head stepped first on
    a detached body output, then the body through the updated head (a GAN-like alternation)."""

    name = "two-role"

    def check(self, config: Any) -> None:
        pass

    def build_model(self, config: Any, data: Any) -> nn.Module:
        return TwoPart()

    def roles(self, model: nn.Module) -> dict[str, nn.Module]:
        return {"head": model.head, "body": model.body}  # type: ignore[dict-item]

    def train_step(self, ctx: StepContext, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        model = ctx.model  # the plain module: its submodules
        assert isinstance(model, TwoPart)
        with ctx.runtime.autocast():
            features = model.body(x)
            head_loss = self.loss(model.head(features.detach()), y)
        ctx.step("head", head_loss)
        with ctx.runtime.autocast():
            logits = model(x)
            loss = self.loss(logits, y)
        ctx.step("body", loss)
        return loss.detach(), self.correct(logits.detach(), y)


@pytest.fixture
def two_role(monkeypatch):
    monkeypatch.setitem(tasks_module._REGISTRY, "two-role", "test_tasks:TwoRoleTask")
    monkeypatch.setattr(tasks_module, "TASK_NAMES", (*tasks_module.TASK_NAMES, "two-role"))
    get_task.cache_clear()
    yield
    get_task.cache_clear()


def test_a_two_optimizer_task_checkpoints_each_role_and_resumes_bit_identical(two_role, tmp_path):
    config = TrainConfig(
        task="two-role",
        model="two-part",
        optimizer="tmsgdm",
        hparams={"lr": 0.05, "momentum": 0.9},
        epochs=3,
        switch_epoch=2,
        batch_size=32,
        max_steps_per_epoch=5,
        schedule="cosine",
    )
    seen: dict[str, Any] = {}

    def stop(epoch, history):
        state = torch.load(tmp_path / "cut" / CHECKPOINT_FILE, weights_only=True)
        seen["optimizer"], seen["scheduler"] = state["optimizer"], state["scheduler"]
        raise Interrupt

    with pytest.raises(Interrupt):
        fit(config, 3, run_dir=tmp_path / "cut", callback=stop)
    assert set(seen["optimizer"]) == {"head", "body"} and set(seen["scheduler"]) == {"head", "body"}
    assert len(seen["optimizer"]["head"]["param_groups"][0]["params"]) == 2  # head weight and bias
    resumed = fit(config, 3, run_dir=tmp_path / "cut")
    whole = fit(config, 3, run_dir=tmp_path / "whole")
    _assert_same_run(tmp_path / "cut", resumed, tmp_path / "whole", whole)
    assert whole.final["accuracy"] > 0.5  # both roles learned


# -- a non-image task through experiments and reproduce --------------------------------------------
def test_check_experiment_names_a_model_of_the_wrong_task(tmp_path):
    root = write_adult(tmp_path / "adult", n_train=200)
    exp = ExperimentConfig.from_dict(
        {"task": "ctr", "dataset": "adult", "data_dir": str(root), "model": "resnet18", "optimizers": ["sgd"]}
    )
    with pytest.raises(ConfigError, match="task 'ctr': model 'resnet18' is not a ctr model; valid: \\['wide-deep'\\]"):
        check_experiment(exp)
    bad = exp.replace(model="wide-deep", dataset="r8")
    with pytest.raises(ConfigError, match="dataset 'r8' is not a ctr data set"):
        check_experiment(bad)
    with pytest.raises(ConfigError, match="dataset 'adult' belongs to task 'ctr', not image classification: set task"):
        check_experiment(exp.replace(task="classification", model="mlp"))


def test_tiny_ctr_reproduction_judges_auc_and_reports_the_task_metrics(tmp_path):
    from optimlab.reproduce.run import reproduce

    root = write_adult(tmp_path / "adult", n_train=300)
    done = reproduce(
        "tmsgd-ctr-avazu",
        data_dir=root,
        seeds=2,
        out=tmp_path / "out",
        progress=False,
        overrides={"epochs": 2, "switch_epoch": 2, "max_steps_per_epoch": 2, "eval_batch_size": 4096},
    )
    report = (tmp_path / "out" / "report.md").read_text()
    assert "### Headline: test AUC" in report and "| optimizer | AUC | log loss | accuracy % |" in report
    verdict = done.verdict.read_text()
    assert "| tmsgd vs sgd | auc (higher is better) |" in verdict
    run = json.loads(next((tmp_path / "out" / "runs").glob("adult-wide-deep-tmsgd-s0.json")).read_text())
    assert run["config"]["task"] == "ctr" and set(run["history"]["final"]) == {"auc", "log_loss", "accuracy", "loss"}


def test_tune_chooses_a_ctr_run_by_validation_auc_by_default(tmp_path):
    from optimlab.tune.search import tune

    root = write_adult(tmp_path / "adult", n_train=300)
    config = ExperimentConfig.from_dict(
        {
            "task": "ctr",
            "dataset": "adult",
            "data_dir": str(root),
            "model": "wide-deep",
            "width": 0.25,
            "epochs": 1,
            "max_steps_per_epoch": 2,
            "eval_batch_size": 4096,
            "optimizers": ["sgd", "tmsgd"],
            "seeds": 2,
        }
    )
    result = tune(config, tmp_path / "tune", budget=2, lr_range=(1e-2, 1e-1), tune_seeds=(7,), progress=False)
    assert result.metric == "auc"
    page = result.page.read_text()
    assert "## Search (validation auc" in page and "| optimizer | runs | failed [exact 95% CI] | AUC [95% CI]" in page
