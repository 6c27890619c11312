"""Plugins by entry point (a fake installed distribution on sys.path) and by package.module:attr
reference: discovery, a broken plugin (one warning, the rest unaffected), collisions, the CLI spelling,
validation before any run, and a compare with a user's optimizer and wgd-<it>."""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path
from typing import Any, cast

import pytest
import torch

import optimlab.plugins as plugins
from optimlab.cli import main
from optimlab.cli.common import UsageError, parse_optimizer_spec
from optimlab.data import list_datasets, load_dataset
from optimlab.experiments import ConfigError, ExperimentConfig
from optimlab.experiments.validate import check_experiment
from optimlab.models import create_model, list_models
from optimlab.optim import WGD, create_optimizer, list_optimizers, optimizer_info
from optimlab.tasks import get_task, known_task

REF = "plugin_fixtures:HeavyBallSign"
CLI_REF = "tests.plugin_fixtures:HeavyBallSign"  # the CLI reads a reference by its dotted module path


@pytest.fixture(autouse=True)
def _fresh_discovery():
    plugins.clear_cache()
    yield
    plugins.clear_cache()


def _install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry_points: str, dist: str = "fake_plugin") -> None:
    """A distribution `dist` 1.2 whose entry points are `entry_points`, visible on sys.path."""
    info = tmp_path / f"{dist}-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    monkeypatch.syspath_prepend(str(tmp_path))


GOOD_AND_BROKEN = """
    [optimlab.optimizers]
    hbsign = plugin_fixtures:HeavyBallSign
    nesterov-factory = plugin_fixtures:make_sgd
    missing = no_such_module_for_optimlab:Thing
    wrongtype = plugin_fixtures:NOT_CALLABLE
    [optimlab.models]
    tiny = plugin_fixtures:tiny_mlp
    [optimlab.datasets]
    digits600 = plugin_fixtures:digits_head
    [optimlab.tasks]
    images2 = plugin_fixtures:Images2
    not-a-task = plugin_fixtures:tiny_mlp
"""


def test_entry_points_are_found_with_their_origin_and_broken_ones_warn_once(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, GOOD_AND_BROKEN)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = [i.name for i in list_optimizers()]
        list_optimizers()  # read once per process: no second warning
    messages = [str(w.message) for w in caught if issubclass(w.category, plugins.PluginWarning)]
    assert len(messages) == 2, messages
    assert "'missing'" in messages[0] and "no_such_module_for_optimlab" in messages[0]
    assert "'wrongtype'" in messages[1] and "fake-plugin 1.2" in messages[1]
    assert {"hbsign", "nesterov-factory", "sgdm", "wgd-adam"} <= set(names) and "missing" not in names
    info = optimizer_info("hbsign")
    assert info.origin == "plugin fake-plugin 1.2 (plugin_fixtures:HeavyBallSign)"
    assert info.defaults == {"lr": 0.01, "momentum": 0.5, "weight_decay": 0.0} and info.hparams == list(info.defaults)
    assert optimizer_info("nesterov-factory").defaults == {"lr": 0.05, "nesterov_momentum": 0.9}
    p = torch.nn.Parameter(torch.ones(2, 3, 3, 3))
    assert isinstance(create_optimizer("wgd-hbsign", [p], lr=0.1, wgd_mode="kernel"), WGD)
    assert create_optimizer("lookahead-nesterov-factory", [p]).__class__.__name__ == "Lookahead"
    with pytest.raises(ValueError, match="momentum=1.5"):
        create_optimizer("hbsign", [p], momentum=1.5)
    with pytest.raises(TypeError, match="Unknown hyperparameter"):
        create_optimizer("hbsign", [p], beta=0.9)
    tiny = next(m for m in list_models() if m.name == "tiny")
    assert tiny.origin.startswith("plugin fake-plugin") and tiny.summary.startswith("flatten")
    assert create_model("tiny", 10, (1, 8, 8)).__class__.__name__ == "Sequential"
    ds = next(d for d in list_datasets() if d.name == "digits600")
    assert not ds.needs_root and ds.options == {"rows": 600}
    assert len(load_dataset("digits600", rows=100).train.y) == 100
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert known_task("images2") and get_task("images2").name == "images2" and not known_task("not-a-task")
    assert [str(w.message).split(" from ")[0] for w in caught] == ["optimlab: optimlab.tasks plugin 'not-a-task'"]


def test_optimlab_list_shows_a_plugin_with_its_origin_and_defaults(tmp_path, monkeypatch, capsys):
    _install(tmp_path, monkeypatch, "[optimlab.optimizers]\nhbsign = plugin_fixtures:HeavyBallSign\n")
    assert main(["list", "optimizers"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "hbsign" in line)  # cells wrap
    assert "plugin fake-plugin 1.2" in row and "lr=0.01, momentum=0.5" in row and "user-defined" in row
    assert "plugin_fixtures:HeavyBallSign" in row and "heavy-ball momentum" in row


@pytest.mark.parametrize(
    ("group", "name", "builtin"),
    [
        ("optimlab.optimizers", "adam", "'adam'"),
        ("optimlab.optimizers", "wgd-mine", "prefix 'wgd-'"),
        ("optimlab.models", "cnn", "'cnn'"),
        ("optimlab.datasets", "digits", "'digits'"),
        ("optimlab.tasks", "classification", "'classification'"),
    ],
)
def test_a_plugin_taking_a_builtin_name_is_refused_naming_both(tmp_path, monkeypatch, group, name, builtin):
    _install(tmp_path, monkeypatch, f"[{group}]\n{name} = plugin_fixtures:tiny_mlp\n", dist="clash_plugin")
    lookup = {
        "optimlab.optimizers": lambda: optimizer_info("sgd"),
        "optimlab.models": list_models,
        "optimlab.datasets": list_datasets,
        "optimlab.tasks": lambda: known_task("mine"),
    }[group]
    with pytest.raises(plugins.PluginError, match=rf"{name!r} from plugin clash-plugin 1.2 .*built-in {builtin}"):
        lookup()


def test_two_plugins_with_one_name_are_refused(tmp_path, monkeypatch):
    for folder, dist in (("a", "one"), ("b", "two")):
        (tmp_path / folder).mkdir()
        _install(tmp_path / folder, monkeypatch, "[optimlab.models]\ntiny = plugin_fixtures:tiny_mlp\n", dist)
    with pytest.raises(plugins.PluginError, match="'tiny' from plugin .* collides with the plugin 'tiny'"):
        list_models()


def test_references_work_where_names_do_and_bad_ones_name_the_culprit():
    p = torch.nn.Parameter(torch.ones(4, 2, 3, 3))
    opt = create_optimizer(REF, [p], lr=0.1)
    assert opt.__class__.__name__ == "HeavyBallSign" and optimizer_info(REF).origin == "reference"
    assert isinstance(create_optimizer(f"wgd-{REF}", [p]), WGD)
    assert create_optimizer(f"lookahead-wgd-{REF}", [p]).__class__.__name__ == "Lookahead"
    with pytest.raises(ValueError, match="cannot import module 'no_such_pkg.opt'"):
        create_optimizer("no_such_pkg.opt:Thing", [p])
    with pytest.raises(ValueError, match="lookahead-.*no attribute 'Missing'|has no attribute 'Missing'"):
        create_optimizer("lookahead-plugin_fixtures:Missing", [p])
    with pytest.raises(ValueError, match="'plugin_fixtures:tiny_mlp': its first argument must be `params`"):
        optimizer_info("lookahead-plugin_fixtures:tiny_mlp")
    with pytest.raises(TypeError, match="returned a list, not a torch Optimizer"):
        create_optimizer("plugin_fixtures:not_an_optimizer", [p])
    assert cast(Any, create_model("plugin_fixtures:tiny_mlp", 3, (1, 4, 4), width=0.5))[1].out_features == 8
    assert len(load_dataset("plugin_fixtures:digits_head", rows=50).train.y) == 50
    assert known_task("plugin_fixtures:Anything") and not known_task("no-such-task")
    with pytest.raises(ValueError, match="not an optimlab.tasks.Task subclass"):
        get_task("plugin_fixtures:HeavyBallSign")


def test_cli_spelling_of_a_reference_with_label_and_hparams():
    assert parse_optimizer_spec(CLI_REF) == {"name": CLI_REF, "hparams": {}}
    assert parse_optimizer_spec(f"wgd-{CLI_REF}:lr=0.1,momentum=0.2") == {
        "name": f"wgd-{CLI_REF}",
        "hparams": {"lr": 0.1, "momentum": 0.2},
    }
    assert parse_optimizer_spec(f"mine={CLI_REF}:lr=0.1") == {"name": CLI_REF, "label": "mine", "hparams": {"lr": 0.1}}
    assert parse_optimizer_spec("my.pkg.opt:lr=0.1") == {"name": "my.pkg.opt", "hparams": {"lr": 0.1}}
    assert parse_optimizer_spec("sgdm:lr=0.1") == {"name": "sgdm", "hparams": {"lr": 0.1}}  # as before
    with pytest.raises(UsageError, match="'lr' is not key=value"):
        parse_optimizer_spec("rsgdm:lr")  # a registry name holds no '.': not a reference


def _config(**kw) -> ExperimentConfig:
    base = {"dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 64, "seeds": 1, "max_steps_per_epoch": 2}
    return ExperimentConfig.from_dict({**base, **kw})


def test_validation_refuses_a_bad_reference_or_hyperparameter_before_any_run():
    with pytest.raises(ConfigError, match="cannot import module 'nope.mod'"):
        check_experiment(_config(optimizers=[{"name": "nope.mod:Opt"}]))
    with pytest.raises(ConfigError, match="momentum=2"):
        check_experiment(_config(optimizers=[{"name": f"wgd-{REF}", "hparams": {"momentum": 2}}]))
    with pytest.raises(ConfigError, match="no attribute 'nothing'"):
        check_experiment(_config(model="plugin_fixtures:nothing", optimizers=["sgd"]))
    with pytest.raises(ConfigError, match="dataset reference 'plugin_fixtures:nowhere'"):
        check_experiment(_config(dataset="plugin_fixtures:nowhere", optimizers=["sgd"]))
    check_experiment(_config(model="plugin_fixtures:tiny_mlp", optimizers=[REF, f"wgd-{REF}"]))
    check_experiment(_config(dataset="plugin_fixtures:digits_head", model="plugin_fixtures:tiny_mlp", optimizers=[REF]))


def test_compare_with_a_users_optimizer_and_wgd_over_it_then_resume(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--model", "cnn", "--epochs", "1", "--batch-size", "64", "--max-steps-per-epoch", "3"]
    args += ["--optimizers", "sgdm:lr=0.05", f"{CLI_REF}:lr=0.01", f"wgd-{CLI_REF}:lr=0.01", "--seeds", "2", "--quiet"]
    assert main([*args, "--workers", "1", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "tests.plugin_fixtures.HeavyBallSign" in table and "wgd-tests.plugin_fixtures.HeavyBallSign" in table
    runs = sorted(p.name for p in (out / "runs").glob("*.json"))
    assert len(runs) == 6 and "digits-cnn-wgd-tests.plugin_fixtures.HeavyBallSign-s1.json" in runs
    assert list((out / "runs" / "digits-cnn-wgd-tests.plugin_fixtures.HeavyBallSign-s1").glob("events.out.tfevents*"))
    exp = json.loads((out / "experiment.json").read_text())
    assert [o["name"] for o in exp["optimizers"]] == ["sgdm", CLI_REF, f"wgd-{CLI_REF}"]
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    assert main([*args, "--workers", "1", "--out", str(out)]) == 0  # resume: nothing left to run
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")} == mtimes
