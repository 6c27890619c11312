"""Parameter groups users expect: biases and normalization weights (by module type) without weight
decay, as a helper (optimlab.optim.no_decay_groups) and as a harness option (TrainConfig.no_decay)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import optimlab.train.loop as loop_module
from optimlab.models import create_model
from optimlab.optim import create_optimizer, no_decay_groups


def test_resnet18_groups_counted() -> None:
    model = create_model("resnet18", 10, (3, 32, 32), width=1.0)
    groups = no_decay_groups(model, 5e-4)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    n_conv = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    biases = [m.bias for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None]
    assert (n_bn, n_conv, len(biases)) == (20, 20, 1)  # CIFAR ResNet18: bias-free convs, one fc bias
    assert [len(g["params"]) for g in groups] == [n_conv + 1, 2 * n_bn + len(biases)] == [21, 41]
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert all(p.dim() >= 2 for p in groups[0]["params"]) and all(p.dim() == 1 for p in groups[1]["params"])
    opt = create_optimizer("wgd-sgdm", groups, lr=0.1)
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["weight_decay"] == 0.0


class Odd(nn.Module):
    """Norms recognised by type, not name: a LayerNorm called 'proj' is a norm, a weight called
    'norm_weight' on a plain module is not."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.LayerNorm(6)
        self.gn = nn.GroupNorm(2, 4)
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm_weight = nn.Parameter(torch.ones(6, 6))
        self.frozen = nn.Linear(6, 6)
        self.frozen.requires_grad_(False)


def test_norms_by_module_type_and_biases_by_role() -> None:
    m = Odd()
    decay, no_decay = no_decay_groups(m, 0.1, lr=0.5)
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(decay["params"]) == {id(m.conv.weight), id(m.norm_weight)}
    assert ids(no_decay["params"]) == ids([m.proj.weight, m.proj.bias, m.gn.weight, m.gn.bias, m.conv.bias])
    assert decay["lr"] == no_decay["lr"] == 0.5  # group options on both; frozen parameters left out
    only_norm = no_decay_groups(nn.BatchNorm1d(3), None)
    assert len(only_norm) == 1 and only_norm[0]["weight_decay"] == 0.0
    assert "weight_decay" not in no_decay_groups(nn.Linear(2, 2), None)[0]  # None: the optimizer's own
    with pytest.raises(TypeError, match="nn.Module"):
        no_decay_groups([torch.zeros(2)], 0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["coupled", "decoupled"])
def test_harness_option_builds_the_groups(tmp_path: Path, monkeypatch, mode: str) -> None:
    from optimlab.train import TrainConfig, fit

    seen: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []
    real = loop_module.create_optimizer

    def recording(name: str, params: Any, **hp: Any) -> torch.optim.Optimizer:
        seen.append(([dict(g) for g in params], dict(hp)))
        return real(name, params, **hp)

    monkeypatch.setattr(loop_module, "create_optimizer", recording)
    cfg = TrainConfig(
        dataset="digits",
        model="cnn",
        width=0.25,
        optimizer="sgdm",
        epochs=1,
        batch_size=64,
        max_steps_per_epoch=2,
        hparams={"lr": 0.05, "weight_decay": 0.01},
        no_decay=True,
        weight_decay_mode=mode,
    )
    fit(cfg, 0, tmp_path / mode)
    groups, hp = seen[0]
    assert len(groups) == 2 and groups[1]["weight_decay"] == 0.0
    if mode == "coupled":
        assert groups[0]["weight_decay"] == 0.01
    else:  # the harness decays θ itself and must skip the zero-decay group
        assert "weight_decay" not in groups[0] and "weight_decay" not in hp
    assert all(p.dim() == 1 for p in groups[1]["params"])


def test_toml_key_reaches_the_runs(tmp_path: Path) -> None:
    from optimlab.experiments import load_experiment_config

    p = tmp_path / "e.toml"
    p.write_text('name = "x"\nmodel = "mlp"\nepochs = 1\nseeds = 1\nno_decay = true\n[[optimizers]]\nname = "adamw"\n')
    cfg = load_experiment_config(p)
    assert cfg.no_decay and all(spec.config.no_decay for spec in cfg.runs())
    p.write_text('name = "x"\nno_decay = "yes"\n[[optimizers]]\nname = "adamw"\n')
    with pytest.raises(Exception, match="no_decay"):
        load_experiment_config(p)
