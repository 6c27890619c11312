"""Tasks and data sets are added where they live: a data set's registry line says which task owns it,
one sample's shape and where its stand-in is; a task declares its metrics (direction, range, title)
and every page, statistic and catalogue check reads them from there."""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from typing import Any

import pytest

import optimlab.data as data_module
import optimlab.tasks as tasks_module
from optimlab.data import DatasetInfo, list_datasets, load_dataset, sample_shape
from optimlab.experiments.threads import forward_macs
from optimlab.models import create_model
from optimlab.report.display import claim_label, fmt_bound, fmt_value, is_percent, metric_title
from optimlab.reproduce.catalog import list_paper_experiments, load_paper_experiment
from optimlab.reproduce.run import SHARED_STAND_INS, cpu_stand_in
from optimlab.stats.metrics import Metric
from optimlab.tasks import get_task, known_metrics, lower_is_better
from optimlab.tasks.base import Task, conv_linear_macs
from optimlab.tasks.keypoints import KeypointTask
from optimlab.train import TrainConfig

# ----------------------------------------------------------------------------- metrics


def test_each_metric_is_declared_once_with_its_direction_range_and_unit():
    known = known_metrics()
    # the directions the statistics take, as the three dicts of train/vocabulary said before
    assert lower_is_better() == {"loss", "log_loss", "mse", "fid", "fid_classifier"}
    assert {m for m in known if known[m].percent} == {
        *("accuracy", "mean_recall", "mean_precision", "map", "map_allpoint", "miou", "pixel_accuracy"),
        "train_accuracy",
    }
    assert (known["kappa"].low, known["kappa"].high) == (-1.0, 1.0) and known["mse"].high == math.inf
    assert metric_title("map") == "mAP@0.5 (VOC07 11-point) %" and metric_title("not-a-metric") == "not-a-metric"
    assert claim_label("fid_classifier") == "FID (classifier features)" and claim_label("auc") == "auc"
    assert fmt_value("accuracy", 0.9123, unit=True) == "91.23 %" and fmt_value("auc", 0.9123) == "0.9123"
    assert fmt_bound("accuracy", 1.02) == "100.00*"  # clipped at the declared range
    # every task reports loss, and each metric a task lists is one it declares
    for task in tasks_module.list_tasks():
        assert task.metric("loss") is known["loss"]
        assert all(task.metric(m) is known[m] for m in task.metrics)
    with pytest.raises(ValueError, match="task 'ctr' reports no metric 'miou'"):
        get_task("ctr").metric("miou")
    with pytest.raises(ValueError, match="unknown metric 'dice'"):
        lower_is_better(["dice"])


def test_a_metric_declaration_is_checked_where_it_is_written():
    with pytest.raises(ValueError, match="metric 'dice': better must be one of"):
        Metric("dice", "Dice", "up")
    with pytest.raises(ValueError, match="metric 'dice': low 1.0 must be below high 0.0"):
        Metric("dice", "Dice", "higher", 1.0, 0.0)
    with pytest.raises(TypeError, match=r"reports undeclared metric\(s\) \['dice'\]"):

        class Undeclared(Task):  # noqa: F841 - defining the class is the check
            name = "undeclared"
            metrics = ("dice",)
            headline = "dice"


DICE = Metric("dice", "Dice %", "higher", 0.0, 1.0, percent=True, headline_title="test Dice")


class DiceTask(KeypointTask):
    """A task added by one module and one registry line (this test module stands in for the module)."""

    name = "dice"
    title = "dice segmentation"
    metrics = ("dice", "mse")
    declared_metrics = (DICE, *KeypointTask.declared_metrics)
    headline = "dice"


@pytest.fixture
def dice_task(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The registry with DiceTask added (and its caches cleared before and after)."""
    monkeypatch.setitem(tasks_module._REGISTRY, "dice", f"{__name__}:DiceTask")
    for cached in (tasks_module.get_task, tasks_module.known_metrics):
        cached.cache_clear()
    yield get_task("dice")
    for cached in (tasks_module.get_task, tasks_module.known_metrics):
        cached.cache_clear()


def test_a_new_task_brings_its_metrics_to_the_pages_and_the_statistics(dice_task):
    assert sys.modules[__name__].DiceTask is type(dice_task)
    assert known_metrics()["dice"] is DICE and "dice" not in lower_is_better()
    assert is_percent("dice") and fmt_value("dice", 0.5, unit=True) == "50.00 %"
    from optimlab.report.markdown import headline_title

    assert headline_title("dice") == "test Dice"


def test_two_tasks_that_declare_one_metric_differently_are_refused(monkeypatch, dice_task):
    monkeypatch.setattr(DiceTask, "declared_metrics", (DICE, replace(KeypointTask.declared_metrics[0], high=1.0)))
    tasks_module.known_metrics.cache_clear()
    with pytest.raises(ValueError, match="metric 'mse' is declared as .* by keypoints but as .* by task 'dice'"):
        known_metrics()


# ----------------------------------------------------------------------------- data sets


def test_a_data_set_belongs_to_the_task_its_registry_line_names(monkeypatch):
    line = DatasetInfo(
        "faces-small",
        "a new key-point set: one registry line",
        needs_root=True,
        loader="nowhere:load",
        task="keypoints",
        input_shape=(1, 48, 48),
        outputs=30,
    )
    monkeypatch.setitem(data_module._REGISTRY, "faces-small", line)
    task = get_task("keypoints")
    assert task.datasets == ("mnist-keypoints", "keypoints-folder", "faces-small")
    config = TrainConfig(
        task="keypoints", dataset="faces-small", data_dir="/nowhere", model="preactresnet10", width=0.25
    )
    task.check(config)  # no edit of the task: the registry line is the statement
    with torch_meta():
        model = create_model("preactresnet10", 30, (1, 48, 48), width=0.25)
    assert forward_macs(config) == conv_linear_macs(model, (1, 48, 48))
    # the GAN trains on image classification's sets it names; other tasks refuse a set that is not theirs
    assert get_task("gan").datasets == ("mnist5k", "imagefolder")
    with pytest.raises(ValueError, match="dataset 'faces-small' belongs to task 'keypoints', not image classification"):
        get_task("classification").check(config.replace(task="classification", model="mlp"))


def torch_meta() -> Any:
    import torch

    return torch.device("meta")


@pytest.mark.parametrize("name", [d.name for d in list_datasets() if d.input_shape is not None])
def test_a_declared_input_shape_is_what_the_loader_returns(name, request):
    info = {d.name: d for d in list_datasets()}[name]
    assert info.input_shape is not None
    if "image_size" in info.options:  # the default option and the declared side agree
        assert info.options["image_size"] == info.input_shape[1] == info.input_shape[2]
    if name in SHARED_STAND_INS:
        root = request.getfixturevalue("mnist5k").parent / SHARED_STAND_INS[name].folder
    elif name == "cifar10":
        root = request.getfixturevalue("cifar10_subset")
    elif info.needs_root:
        pytest.skip(f"{name}: no local copy to compare with (its shape is checked by its own loader's tests)")
    else:
        root = None
    splits = load_dataset(name, root)
    outputs = getattr(splits, "num_outputs", None) or splits.num_classes
    assert sample_shape(name) == (tuple(splits.input_shape), outputs)


def test_sample_shape_follows_the_options_that_change_it():
    assert sample_shape("imagefolder", {"image_size": 64}) == ((3, 64, 64), None)
    assert sample_shape("cifar100", {"classes": ["apple", "bee"]}) == ((3, 32, 32), 2)
    assert sample_shape("voc2007", {"image_size": 150}) == ((3, 150, 150), 20)
    assert sample_shape("r8") is None  # token sequences: no image shape


def test_thread_choice_reads_no_data_for_any_catalogue_experiment(monkeypatch):
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"forward_macs read data: load_dataset{args}")

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("optimlab") and hasattr(module, "load_dataset"):
            monkeypatch.setattr(module, "load_dataset", refuse)
    from optimlab.experiments.config import ExperimentConfig

    for name in list_paper_experiments():
        exp = load_paper_experiment(name)
        for scale in ("cpu", "paper"):
            d = exp.experiment_dict(scale)
            d.setdefault("data_dir", "/nowhere")
            run = ExperimentConfig.from_dict(d, source=name).runs()[0].config
            assert forward_macs(run) > 0, (name, scale)


def test_the_macs_of_an_image_classifier_are_those_of_the_network_on_the_real_shape():
    config = TrainConfig(dataset="digits", model="cnn", width=0.5)
    shape = tuple(load_dataset("digits").input_shape)
    assert forward_macs(config) == conv_linear_macs(create_model("cnn", 10, shape, width=0.5), shape)


def test_a_cpu_scale_on_a_stand_in_is_what_its_data_sets_registry_line_says():
    for name in list_paper_experiments():
        exp = load_paper_experiment(name)
        on_stand_in = cpu_stand_in(exp)
        # the catalogue's image classification runs on a CIFAR-10 subset, every other task on a stand-in
        assert (on_stand_in is None) == (exp.experiment.get("task", "classification") == "classification"), name
        if on_stand_in is not None:
            assert data_module.dataset_info(on_stand_in).stand_in == SHARED_STAND_INS[on_stand_in]
