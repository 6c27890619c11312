"""The accelerator options of fit, checked on the CPU: bf16 autocast, channels_last, data_on_device,
torch.compile (stubbed: nothing slow is compiled), and the error for an unavailable CUDA device."""

from __future__ import annotations

import json

import pytest
import torch

from optimlab.models import create_model
from optimlab.train import TrainConfig, fit
from optimlab.train.accel import autocast, to_input
from optimlab.train.checkpoint import CHECKPOINT_FILE, MODEL_FILE, RUN_FILE
from optimlab.train.run_data import prepare_data

BASE = TrainConfig(
    dataset="digits",
    model="mlp",
    optimizer="sgdm-ema",
    hparams={"lr": 0.5, "beta": 0.9},
    epochs=2,
    batch_size=64,
    max_steps_per_epoch=8,
)
CNN = BASE.replace(model="cnn", width=0.25, max_steps_per_epoch=4)


def _weights(run_dir):
    return torch.load(run_dir / MODEL_FILE, weights_only=True)


def test_bf16_autocast_runs_on_cpu_in_bf16_and_stays_close_to_fp32(tmp_path):
    model = create_model("mlp", 10, (1, 8, 8))
    x = torch.randn(4, 1, 8, 8)
    with autocast(torch.device("cpu"), "bf16"):
        assert model(x).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "none"):
        assert model(x).dtype == torch.float32
    fp32 = fit(BASE, 0, run_dir=tmp_path / "fp32")
    bf16 = fit(BASE.replace(amp="bf16"), 0, run_dir=tmp_path / "bf16")
    assert all(torch.isfinite(torch.tensor(bf16.train_loss + bf16.test_loss)))
    assert bf16.train_loss != fp32.train_loss  # bf16 really ran
    assert bf16.train_loss == pytest.approx(fp32.train_loss, abs=0.05)
    assert bf16.final["loss"] == pytest.approx(fp32.final["loss"], abs=0.05)
    for _name, w in _weights(tmp_path / "bf16").items():
        assert w.dtype == torch.float32  # parameters stay fp32 under autocast


def test_bf16_run_resumes_bit_identical(tmp_path):
    config = BASE.replace(amp="bf16", epochs=3, max_steps_per_epoch=4)

    def stop(epoch, history):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, 4, run_dir=tmp_path / "cut", callback=stop)
    assert (tmp_path / "cut" / CHECKPOINT_FILE).exists()
    resumed = fit(config, 4, run_dir=tmp_path / "cut")
    whole = fit(config, 4, run_dir=tmp_path / "whole")
    assert resumed.train_loss == whole.train_loss and resumed.final == whole.final
    for name, w in _weights(tmp_path / "whole").items():
        assert torch.equal(_weights(tmp_path / "cut")[name], w)


def test_channels_last_stores_images_and_batches_channels_last_and_trains_the_same(tmp_path):
    data = prepare_data(CNN.replace(channels_last=True), 0)
    assert data.train.x.is_contiguous(memory_format=torch.channels_last)
    assert data.train.x[torch.tensor([3, 1])].is_contiguous(memory_format=torch.channels_last)
    assert to_input(torch.randn(2, 3, 4, 4), True).is_contiguous(memory_format=torch.channels_last)
    assert to_input(torch.randn(2, 3), True).shape == (2, 3)
    plain = fit(CNN, 2, run_dir=tmp_path / "plain")
    last = fit(CNN.replace(channels_last=True), 2, run_dir=tmp_path / "last")
    assert last.train_loss == pytest.approx(plain.train_loss, abs=1e-5)
    for name, w in _weights(tmp_path / "plain").items():
        torch.testing.assert_close(_weights(tmp_path / "last")[name], w, atol=1e-5, rtol=1e-5)


def test_data_on_device_decides_where_the_splits_live():
    # "meta" stands in for an accelerator: the splits move there only with data_on_device=True
    on = prepare_data(BASE, 0, torch.device("meta"))
    off = prepare_data(BASE.replace(data_on_device=False), 0, torch.device("meta"))
    assert all(s.x.device.type == "meta" and s.y.device.type == "meta" for s in (on.train, on.val, on.test))
    assert all(s.x.device.type == "cpu" for s in (off.train, off.val, off.test))
    a = fit(BASE, 1)
    b = fit(BASE.replace(data_on_device=False), 1)
    assert a.train_loss == b.train_loss and a.final == b.final


def test_compile_wraps_the_training_forward_and_checkpoints_keep_plain_names(tmp_path, monkeypatch):
    compiled = []

    def fake_compile(module, *args, **kwargs):  # stands in for torch.compile: nothing slow compiles
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    with_compile = fit(BASE.replace(compile=True), 5, run_dir=tmp_path / "c")
    plain = fit(BASE, 5, run_dir=tmp_path / "p")
    assert len(compiled) == 1 and isinstance(compiled[0], torch.nn.Module)
    assert with_compile.train_loss == plain.train_loss
    assert not any(k.startswith("_orig_mod") for k in _weights(tmp_path / "c"))


def test_a_failing_compile_names_the_option(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", lambda module, *a, **k: broken)
    with pytest.raises(RuntimeError, match="TrainConfig.compile=True.*no C\\+\\+ compiler"):
        fit(BASE.replace(compile=True), 0)


def test_unavailable_cuda_is_a_clear_error_naming_device(tmp_path):
    if torch.cuda.is_available():  # a GPU machine: an index that does not exist takes the same path
        config = BASE.replace(device=f"cuda:{torch.cuda.device_count()}")
        match = "TrainConfig.device=.*does not exist"
    else:
        config = BASE.replace(device="cuda")
        match = "TrainConfig.device='cuda'.*CUDA is not available"
    with pytest.raises(ValueError, match=match):
        fit(config, 0, run_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("amp", "fp8"),
        ("amp", "bfloat16"),
        ("channels_last", 1),
        ("compile", "yes"),
        ("data_on_device", None),
        ("device", "gpu0"),
    ],
)
def test_bad_accelerator_options_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}="):
        BASE.replace(**{field: value})


def test_runs_recorded_before_these_fields_existed_still_resume(tmp_path):
    fit(BASE, 0, run_dir=tmp_path)
    record = json.loads((tmp_path / RUN_FILE).read_text())
    for name in ("amp", "channels_last", "compile", "data_on_device"):
        del record["config"][name]
    (tmp_path / RUN_FILE).write_text(json.dumps(record))
    assert fit(BASE, 0, run_dir=tmp_path).epochs_run == 2
    with pytest.raises(ValueError, match="different run"):
        fit(BASE.replace(amp="bf16"), 0, run_dir=tmp_path)
