"""optimlab.train.fit: seeding, schedules, TM-SGD switch, data splits, divergence, metrics, weight
decay modes, History JSON. Small digits/MLP runs (a few hundred steps in all)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import optimlab.tasks.base as task_base
import optimlab.train.loop as loop_module
from optimlab.data import load_dataset
from optimlab.models import create_model
from optimlab.train import History, TrainConfig, fit
from optimlab.train.checkpoint import CHECKPOINT_FILE, DONE_FILE, HISTORY_FILE, MODEL_FILE
from optimlab.train.metrics import Evaluation, classification_metrics, diverged_metrics
from optimlab.train.run_data import prepare_data
from optimlab.train.schedules import build_scheduler

TIMING = ("epoch_time_s", "step_time_s", "wall_time_s")
BASE = TrainConfig(
    dataset="digits",
    model="mlp",
    optimizer="sgdm-ema",
    hparams={"lr": 0.5, "beta": 0.9},
    epochs=2,
    batch_size=64,
    max_steps_per_epoch=6,
)


def make_image_folder(root: Path, counts=(90, 30, 15), size: int = 16) -> Path:
    """An imbalanced 3-class image folder of PNGs: class k is tinted in channel k, plus noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, n in enumerate(counts):
        (root / f"class{k}").mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 120, size=(size, size, 3), dtype=np.uint8)
            img[..., k] += 120
            Image.fromarray(img).save(root / f"class{k}" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("images"))


def run(config: TrainConfig, seed: int, run_dir: Path, **kwargs) -> tuple[History, dict[str, torch.Tensor]]:
    history = fit(config, seed, run_dir=run_dir, **kwargs)
    return history, torch.load(run_dir / MODEL_FILE, weights_only=True)


def untimed(history: History) -> dict:
    d = history.to_dict()
    for key in TIMING:
        d.pop(key)
    return d


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- determinism -----------------------------------------------------------------------------------
def test_same_seed_same_run_different_seed_different_run(tmp_path):
    h1, w1 = run(BASE, 3, tmp_path / "a")
    h2, w2 = run(BASE, 3, tmp_path / "b")
    h3, w3 = run(BASE, 4, tmp_path / "c")
    assert untimed(h1) == untimed(h2)
    assert same_weights(w1, w2)
    assert not same_weights(w1, w3)
    assert h1.train_loss != h3.train_loss
    assert all(math.isfinite(v) for v in h1.train_loss + h1.val_loss + h1.test_loss)
    assert len(h1.train_loss) == len(h1.val_acc) == len(h1.test_acc) == len(h1.lr) == len(h1.epoch_time_s) == 2
    assert h1.step_time_s > 0 and h1.wall_time_s >= sum(h1.epoch_time_s)


def test_learning_happens_on_digits():
    # EMA momentum, lr 0.5, beta 0.9 (= torch heavy ball lr 0.05, momentum 0.9), batch 64, 4 epochs.
    config = BASE.replace(epochs=4, max_steps_per_epoch=None)
    history = fit(config, seed=0)
    assert history.final["accuracy"] > 0.9
    assert history.train_loss[-1] < history.train_loss[0] / 3
    assert history.final_val["accuracy"] > 0.85
    assert history.final["accuracy"] == pytest.approx(history.test_acc[-1])  # final = last weights


# -- schedules -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes, expected",
    [
        (dict(schedule="constant"), [1, 1, 1, 1, 1]),
        (dict(schedule="step", step_every=2, step_gamma=0.5), [1, 1, 0.5, 0.5, 0.25]),
        (dict(schedule="cosine"), [(1 + math.cos(math.pi * e / 5)) / 2 for e in range(5)]),
        # warm-up over 2 epochs of 3 steps: first step of epoch 1 -> 1/6, of epoch 2 -> 4/6
        (dict(schedule="step", step_every=2, step_gamma=0.1, warmup_epochs=2), [1 / 6, 4 / 6, 0.1, 0.1, 0.01]),
    ],
)
def test_schedule_lr_per_epoch(changes, expected):
    config = BASE.replace(optimizer="sgd", hparams={"lr": 0.2}, epochs=5, max_steps_per_epoch=3, **changes)
    history = fit(config, seed=0)
    assert history.lr == pytest.approx([0.2 * f for f in expected], rel=1e-12)


def test_warmup_is_linear_per_step_and_schedule_survives_state_dict():
    config = BASE.replace(schedule="cosine", epochs=4, warmup_epochs=2)
    opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.3)
    sched = build_scheduler(opt, config, steps_per_epoch=5)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    cos = [(1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    expected = [0.3 * cos[s // 5] * (min(s + 1, 10) / 10) for s in range(20)]
    assert lrs == pytest.approx(expected, rel=1e-12)
    # A rebuilt scheduler loading the state continues where the old one was.
    opt2 = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.3)
    sched2 = build_scheduler(opt2, config, steps_per_epoch=5)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    for stepper in (opt, sched, opt2, sched2):
        stepper.step()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-15)


# -- TM-SGD switch epoch ---------------------------------------------------------------------------
def test_switch_epoch_starts_multistep_at_that_epoch(tmp_path, monkeypatch):
    calls: list[tuple[int, str]] = []
    done_epochs: list[int] = []
    real = loop_module.start_multistep

    def spy(opt):
        calls.append((len(done_epochs), type(opt).__name__))
        return real(opt)

    monkeypatch.setattr(loop_module, "start_multistep", spy)
    cfg = BASE.replace(optimizer="tmsgd", hparams={"lr": 0.05}, epochs=3, switch_epoch=3)
    _, w_switch3 = run(cfg, 0, tmp_path / "s3", callback=lambda e, h: done_epochs.append(e))
    assert calls == [(2, "TMSGD")]  # called once, after epochs 1 and 2, before epoch 3's first step
    sgd = BASE.replace(optimizer="sgd", hparams={"lr": 0.05}, epochs=3)
    _, w_sgd3 = run(sgd, 0, tmp_path / "sgd3")
    _, w_sgd2 = run(sgd.replace(epochs=2), 0, tmp_path / "sgd2")
    with pytest.warns(UserWarning, match="never starts"):  # switch_epoch 3 > epochs 2
        _, w_switch3_2 = run(cfg.replace(epochs=2), 0, tmp_path / "s3e2")
    _, w_never = run(cfg.replace(switch_epoch=None), 0, tmp_path / "never")
    assert same_weights(w_switch3_2, w_sgd2)  # before the switch epoch: plain SGD, bit for bit
    assert same_weights(w_never, w_sgd3)
    assert not same_weights(w_switch3, w_sgd3)  # epoch 3 used the multi-step rule


# -- data ------------------------------------------------------------------------------------------
def _rows(x: torch.Tensor) -> list[bytes]:
    return sorted(r.numpy().tobytes() for r in x.reshape(len(x), -1))


def test_validation_split_is_a_stratified_carve_out_of_train():
    full = load_dataset("digits")
    config = BASE.replace(val_fraction=0.2)
    data = prepare_data(config, seed=5)
    # train + val is exactly the dataset's training split (as a multiset of samples): disjoint parts.
    assert len(data.train) + len(data.val) == len(full.train)
    assert _rows(torch.cat([data.train.x, data.val.x])) == _rows(full.train.x)
    assert not set(_rows(data.val.x)) & set(_rows(full.test.x))
    assert torch.equal(data.test.x, full.test.x)
    counts = torch.bincount(full.train.y, minlength=10).double()
    val_counts = torch.bincount(data.val.y, minlength=10).double()
    assert torch.all((val_counts - 0.2 * counts).abs() <= 1)  # stratified
    same_seed_other_opt = prepare_data(config.replace(optimizer="rsgdm", hparams={}), seed=5)
    assert torch.equal(same_seed_other_opt.val.x, data.val.x)
    assert not torch.equal(prepare_data(config, seed=6).val.x, data.val.x)


def test_augment_is_skipped_with_a_warning_for_small_images():
    with pytest.warns(UserWarning, match="augment=True ignored"):
        data = prepare_data(BASE.replace(augment=True), seed=0)
    assert data.augment is None


def test_weighted_sampler_balances_classes(image_folder, monkeypatch):
    seen: list[torch.Tensor] = []
    real = task_base.iterate_batches

    def spy(*args, **kwargs):
        for x, y in real(*args, **kwargs):
            seen.append(y.clone())
            yield x, y

    monkeypatch.setattr(task_base, "iterate_batches", spy)  # the batches of the task's training epoch
    config = TrainConfig(
        dataset="imagefolder",
        data_dir=str(image_folder),
        dataset_options={"image_size": 16},
        model="mlp",
        width=0.25,
        optimizer="sgd",
        hparams={"lr": 0.01},
        epochs=10,
        batch_size=32,
        weighted_sampler=True,
        max_steps_per_epoch=None,
    )
    fit(config, seed=0)
    balanced = torch.bincount(torch.cat(seen), minlength=3).double()
    seen.clear()
    fit(config.replace(weighted_sampler=False), seed=0)
    natural = torch.bincount(torch.cat(seen), minlength=3).double()
    assert natural.sum() == balanced.sum()
    assert natural[0] / natural[2] > 3  # the folder holds 6× more class-0 images than class-2
    assert torch.all((balanced / balanced.sum() - 1 / 3).abs() < 0.06)


# -- divergence ------------------------------------------------------------------------------------
def test_divergence_is_recorded_not_raised(tmp_path):
    config = BASE.replace(optimizer="sgd", hparams={"lr": 1e8}, epochs=4, max_steps_per_epoch=None)
    history = fit(config, seed=0, run_dir=tmp_path)
    assert history.diverged and history.diverged_epoch == 1
    assert len(history.train_loss) == 1 and not math.isfinite(history.train_loss[0])
    assert math.isnan(history.final["loss"]) and math.isnan(history.final_val["loss"])
    assert set(history.final) == {"accuracy", "loss", "mean_recall", "mean_precision", "kappa"}
    acc = history.final["accuracy"]
    assert math.isnan(acc) if not history.confusion else 0 <= acc <= 1
    assert (tmp_path / DONE_FILE).exists() and not (tmp_path / CHECKPOINT_FILE).exists()
    assert fit(config, seed=0, run_dir=tmp_path).diverged_epoch == 1  # finished: read back, not rerun


# -- metrics ---------------------------------------------------------------------------------------
def _metrics_from_confusion(c: np.ndarray) -> dict[str, float]:
    total = c.sum()
    diag = np.diag(c).astype(float)
    rows, cols = c.sum(axis=1), c.sum(axis=0)
    recall = np.divide(diag, rows, out=np.zeros_like(diag), where=rows > 0)
    precision = np.divide(diag, cols, out=np.zeros_like(diag), where=cols > 0)
    p_o = diag.sum() / total
    p_e = (rows * cols).sum() / total**2
    return {
        "accuracy": p_o,
        "mean_recall": recall.mean(),
        "mean_precision": precision.mean(),
        "kappa": (p_o - p_e) / (1 - p_e),
    }


def test_final_metrics_agree_with_the_returned_confusion_matrix():
    history = fit(BASE.replace(epochs=1, max_steps_per_epoch=3), seed=1)
    c = np.asarray(history.confusion)
    assert c.shape == (10, 10) and c.sum() == 450  # digits test split
    expected = _metrics_from_confusion(c)
    for name, value in expected.items():
        assert history.final[name] == pytest.approx(value, abs=1e-12), name
    assert history.final["loss"] == pytest.approx(history.test_loss[-1])
    assert 0 < history.final["accuracy"] < 1


def test_classification_metrics_count_unpredicted_classes_as_zero_precision():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 1, 0, 1, 1]  # class 2 never predicted
    metrics, confusion = classification_metrics(torch.tensor(y_true), torch.tensor(y_pred), 4, loss=0.5)
    assert confusion == [[2, 0, 0, 0], [1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0]]
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["mean_recall"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert metrics["mean_precision"] == pytest.approx((2 / 3 + 1 / 3 + 0 + 0) / 4)
    assert metrics["kappa"] == pytest.approx(_metrics_from_confusion(np.asarray(confusion))["kappa"])
    assert metrics["loss"] == 0.5


def test_diverged_metrics_use_predictions_only_while_weights_are_finite():
    model = torch.nn.Linear(4, 3)
    evaluation = Evaluation(loss=math.inf, accuracy=0.75, predictions=torch.tensor([0, 1, 2, 1]))
    y_true = torch.tensor([0, 1, 2, 2])
    metrics, confusion = diverged_metrics(model, evaluation, y_true, 3)
    assert math.isnan(metrics["loss"]) and metrics["accuracy"] == 0.75
    assert confusion == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    with torch.no_grad():
        model.weight[0, 0] = math.nan
    metrics, confusion = diverged_metrics(model, evaluation, y_true, 3)
    assert all(math.isnan(v) for v in metrics.values()) and confusion == []


# -- weight decay modes ----------------------------------------------------------------------------
def test_decoupled_weight_decay(tmp_path):
    wd = 0.05
    sgd = BASE.replace(optimizer="sgd", hparams={"lr": 0.2, "weight_decay": wd}, epochs=1, max_steps_per_epoch=5)
    _, w_coupled = run(sgd, 0, tmp_path / "sgd-c")
    _, w_decoupled = run(sgd.replace(weight_decay_mode="decoupled"), 0, tmp_path / "sgd-d")
    _, w_none = run(sgd.replace(hparams={"lr": 0.2}), 0, tmp_path / "sgd-0")
    # Plain SGD: θ - lr(g + wd θ) = θ(1 - lr wd) - lr g; the two modes agree up to rounding.
    for k in w_coupled:
        torch.testing.assert_close(w_decoupled[k], w_coupled[k], rtol=1e-5, atol=1e-6)
    assert not same_weights(w_none, w_coupled)
    # Adam: coupled L2 is divided by sqrt(v), decoupled is not -> different weights; decoupled
    # shrinks the weights (vs no decay) by about (1 - lr wd)^steps.
    adam = sgd.replace(optimizer="adam", hparams={"lr": 0.01, "weight_decay": 0.5})
    _, a_coupled = run(adam, 0, tmp_path / "adam-c")
    _, a_decoupled = run(adam.replace(weight_decay_mode="decoupled"), 0, tmp_path / "adam-d")
    _, a_none = run(adam.replace(hparams={"lr": 0.01}), 0, tmp_path / "adam-0")
    w = "net.1.weight" if "net.1.weight" in a_none else next(k for k in a_none if a_none[k].dim() == 2)
    assert (a_decoupled[w] - a_coupled[w]).abs().max() > 1e-3
    ratio = a_decoupled[w].norm() / a_none[w].norm()
    assert 0.95 * (1 - 0.01 * 0.5) ** 5 < ratio < 1.0


def test_decoupled_weight_decay_matches_torch_adamw(tmp_path, monkeypatch):
    # One Adam step on one batch with θ ← θ(1 - lr·wd) before the step is exactly torch's AdamW.
    cfg = BASE.replace(
        optimizer="adam",
        hparams={"lr": 0.01, "weight_decay": 0.3},
        epochs=1,
        max_steps_per_epoch=1,
        weight_decay_mode="decoupled",
    )
    _, w_decoupled = run(cfg, 0, tmp_path / "d")
    frozen = cfg.replace(hparams={"lr": 0.0}, weight_decay_mode="coupled")  # same init, same batch
    batches = []
    real = task_base.iterate_batches

    def spy(*args, **kwargs):
        for x, y in real(*args, **kwargs):
            batches.append((x, y))
            yield x, y

    monkeypatch.setattr(task_base, "iterate_batches", spy)  # the batches of the task's training epoch
    _, w0 = run(frozen, 0, tmp_path / "init")
    model = create_model("mlp", 10, (1, 8, 8))
    model.load_state_dict(w0)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.3)
    x, y = batches[0]
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    for k, v in model.state_dict().items():
        torch.testing.assert_close(w_decoupled[k], v, rtol=1e-6, atol=1e-7)
    assert not same_weights(w0, w_decoupled)


# -- History, run folder, config -------------------------------------------------------------------
def test_history_json_round_trip_and_finished_runs_are_not_redone(tmp_path):
    history = fit(BASE, seed=2, run_dir=tmp_path)
    back = History.from_dict(json.loads(json.dumps(history.to_dict())))
    assert back == history
    assert History.from_dict(json.loads((tmp_path / HISTORY_FILE).read_text())) == history
    assert not (tmp_path / CHECKPOINT_FILE).exists()
    calls = []
    again = fit(BASE, seed=2, run_dir=tmp_path, callback=lambda e, h: calls.append(e))
    assert again == history and calls == []
    with pytest.raises(ValueError, match="different run"):
        fit(BASE.replace(epochs=3), seed=2, run_dir=tmp_path)
    with pytest.raises(ValueError, match="different run"):
        fit(BASE, seed=7, run_dir=tmp_path)


@pytest.mark.parametrize(
    "changes, culprit",
    [
        (dict(schedule="linear"), "schedule"),
        (dict(epochs=0), "epochs"),
        (dict(val_fraction=0.0), "val_fraction"),
        (dict(switch_epoch=0), "switch_epoch"),
        (dict(weight_decay_mode="adamw"), "weight_decay_mode"),
        (dict(warmup_epochs=3), "warmup_epochs"),
        (dict(max_steps_per_epoch=0), "max_steps_per_epoch"),
        (dict(step_gamma=float("nan")), "step_gamma"),
    ],
)
def test_bad_config_names_the_field(changes, culprit):
    with pytest.raises(ValueError, match=f"TrainConfig.{culprit}="):
        BASE.replace(**changes)
    with pytest.raises(ValueError, match=culprit):
        TrainConfig.from_dict({**BASE.to_dict(), **changes})


def test_bad_optimizer_hparams_fail_before_training():
    with pytest.raises(TypeError, match="momentum"):
        fit(BASE.replace(optimizer="sgdm-ema", hparams={"lr": 0.1, "momentum": 0.9}), seed=0)
    with pytest.raises(ValueError, match="seed"):
        fit(BASE, seed=-1)


def test_fit_restores_deterministic_flag_and_shows_progress(capsys):
    before = torch.are_deterministic_algorithms_enabled()
    history = fit(BASE.replace(epochs=1), seed=0, progress=True)
    assert torch.are_deterministic_algorithms_enabled() == before
    assert len(history.train_loss) == 1
    assert "epoch 1" in capsys.readouterr().out
