"""TensorBoard event files beside each run's JSON: the scalars of every epoch, the hparams with the
final metrics, a resumed run's redone epochs purged, and nothing written with tensorboard=False."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from optimlab.experiments import ExperimentConfig, OptimizerSpec, run_experiment
from optimlab.experiments.results import result_path
from optimlab.experiments.tblog import SCALARS, RunLogger, events_dir
from optimlab.train.config import History, TrainConfig

pytest.importorskip("tensorboard", reason="TensorBoard logging needs the tensorboard package")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402


def load(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return acc


def scalars(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


CONFIG = ExperimentConfig(
    name="tb",
    model="mlp",
    epochs=3,
    batch_size=64,
    max_steps_per_epoch=4,
    seeds=(0, 1),
    optimizers=(OptimizerSpec("sgdm-ema", "ema", {"lr": 0.1, "beta": 0.9}),),
)


def test_each_run_writes_its_epochs_and_hparams_beside_its_json(tmp_path):
    results = run_experiment(CONFIG, tmp_path, workers=1, progress=False)
    assert all(r.done for r in results)
    for r in results:
        folder = events_dir(tmp_path, r.run_id)
        assert folder.parent == result_path(tmp_path, r.run_id).parent  # beside the JSON
        acc = load(folder)
        h = r.history
        assert h is not None
        for tag, name in SCALARS:  # every epoch, step = epoch, float32 of the JSON's value
            expected = [(e + 1, pytest.approx(v, rel=1e-6)) for e, v in enumerate(getattr(h, name))]
            assert scalars(acc, tag) == expected, tag
        assert [s for s, _ in scalars(acc, "time/step_ms")] == [1, 2, 3]
        assert scalars(acc, "hparam/test_accuracy") == [(3, pytest.approx(h.final["accuracy"], rel=1e-6))]
        assert scalars(acc, "hparam/val_kappa") == [(3, pytest.approx(h.final_val["kappa"], rel=1e-6))]
        content = acc.PluginTagToContent("hparams")
        start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        hp = start.session_start_info.hparams
        assert hp["optimizer"].string_value == "sgdm-ema" and hp["label"].string_value == "ema"
        assert hp["seed"].number_value == r.seed and hp["hp.lr"].number_value == pytest.approx(0.1)
        assert hp["model"].string_value == "mlp" and hp["epochs"].number_value == 3
    # the JSON is what it always was: no TensorBoard key in it
    d = json.loads(result_path(tmp_path, results[0].run_id).read_text())
    assert set(d) == {"format", "run_id", "label", "seed", "status", "config", "history", "error", "versions"} | {
        "wall_time_s"
    }


def _history(losses: Sequence[float]) -> History:
    n = len(losses)
    return History(train_loss=list(losses), lr=[0.1] * n, epoch_time_s=[1.0] * n, step_time_s=0.01)


def test_a_resumed_run_hides_the_epochs_it_redoes_and_a_restart_starts_clean(tmp_path):
    config = TrainConfig(dataset="digits", model="mlp", optimizer="sgd", hparams={"lr": 0.1})
    first = RunLogger(tmp_path, "r", "sgd", 0, config)
    for epoch, losses in enumerate(([3.0], [3.0, 2.0], [3.0, 2.0, 1.5]), start=1):
        first(epoch, _history(losses))  # epoch 3 was logged, but the checkpoint is from epoch 2
    first.close()
    resumed = RunLogger(tmp_path, "r", "sgd", 0, config)
    resumed(3, _history([3.0, 2.0, 1.0]))  # resumed from epoch 2's checkpoint: redoes epoch 3
    resumed(4, _history([3.0, 2.0, 1.0, 0.5]))
    h = _history([3.0, 2.0, 1.0, 0.5])
    h.final = {"accuracy": 0.9}
    resumed.finish(h)
    acc = load(events_dir(tmp_path, "r"))
    assert scalars(acc, "train/loss") == [(1, 3.0), (2, 2.0), (3, 1.0), (4, 0.5)]
    assert scalars(acc, "hparam/test_accuracy") == [(4, pytest.approx(0.9))]
    # the same run from epoch 1 again (its checkpoint was discarded): the old events are gone
    again = RunLogger(tmp_path, "r", "sgd", 0, config)
    again(1, _history([9.0]))
    again.close()
    acc = load(events_dir(tmp_path, "r"))
    assert scalars(acc, "train/loss") == [(1, 9.0)] and "hparam/test_accuracy" not in acc.Tags()["scalars"]


def test_tensorboard_off_writes_no_events(tmp_path):
    results = run_experiment(CONFIG.replace(seeds=(0,)), tmp_path, workers=1, progress=False, tensorboard=False)
    assert results[0].done and not events_dir(tmp_path, results[0].run_id).exists()
