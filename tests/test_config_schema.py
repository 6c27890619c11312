"""Every TrainConfig option is reachable from a TOML file and from `--set` on every command."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from optimlab.cli import build_parser
from optimlab.cli.common import UsageError, apply_sets, build_config, settable_keys
from optimlab.experiments.config import PER_OPTIMIZER_FIELDS, ExperimentConfig
from optimlab.train.config import FUNCTION_FIELDS, NULL, NULLABLE_FIELDS, TrainConfig

# A valid value different from the default, for every shared TrainConfig field, as TOML text. A field
# added to TrainConfig without a line here fails test_every_field_has_a_test_value (add one).
NON_DEFAULT = {
    "dataset": '"cifar10"',
    "task": '"text"',
    "data_dir": '"/data/cifar10"',
    "dataset_options": "{ image_size = 16 }",
    "model": '"mlp"',
    "width": "0.5",
    "epochs": "3",
    "batch_size": "64",
    "schedule": '"cosine"',
    "step_every": "7",
    "step_gamma": "0.25",
    "warmup_epochs": "1",
    "weight_decay_mode": '"decoupled"',
    "no_decay": "true",
    "switch_epoch": "2",
    "augment": "true",
    "weighted_sampler": "true",
    "val_fraction": "0.2",
    "max_steps_per_epoch": "5",
    "device": '"cpu:0"',
    "amp": '"bf16"',
    "channels_last": "true",
    "compile": "true",
    "data_on_device": "false",
    "deterministic": "false",
    "eval_batch_size": "256",
    "diverge_factor": "50.0",
    "train_function": '"pkg.other:fn"',
    "train_options": "{ steps = 3 }",
    "metrics": '{ b = "lower" }',
}
# the train_function fields only make sense together (optimlab.tasks.function): each is set on top of these
FUNCTION_BASE = {"train_function": '"pkg.mod:fn"', "dataset": '"d"', "model": '"m"', "metrics": '{ a = "higher" }'}


def _value(text: str):
    import tomllib

    return tomllib.loads(f"v = {text}")["v"]


def test_every_field_has_a_test_value():
    shared = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in PER_OPTIMIZER_FIELDS]
    assert shared == settable_keys()
    assert set(NON_DEFAULT) == set(shared)
    defaults = TrainConfig()
    for key, text in NON_DEFAULT.items():
        assert _value(text) != getattr(defaults, key), key


@pytest.mark.parametrize("key", sorted(NON_DEFAULT))
def test_each_option_from_toml_and_from_set_reaches_the_runs(key, tmp_path):
    text = NON_DEFAULT[key]
    want = _value(text)
    base = "".join(f"{k} = {v}\n" for k, v in FUNCTION_BASE.items() if k != key) if key in FUNCTION_FIELDS else ""
    toml = tmp_path / "c.toml"
    toml.write_text(f'{base}{key} = {text}\nseeds = 2\n[[optimizers]]\nname = "tmsgd"\n')  # switch_epoch: TM-SGD only
    from_toml = ExperimentConfig.from_dict(__import__("tomllib").loads(toml.read_text()))
    assert getattr(from_toml.runs()[0].config, key) == want
    full = "".join(f"{k} = {v}\n" for k, v in FUNCTION_BASE.items())  # a valid --config to --set on
    (tmp_path / "base.toml").write_text(f'{full}[[optimizers]]\nname = "sgd"\n')
    for command in ("compare", "train", "tune"):
        args = build_parser().parse_args(
            [command, "--optimizer" if command == "train" else "--optimizers", "tmsgd", "--set", f"{key}={text}"]
            + (["--config", str(tmp_path / "base.toml")] if base else [])
        )
        config = build_config(args, single=command == "train")
        assert getattr(config.runs()[0].config, key) == want, (command, key)


def test_set_is_on_every_command_that_runs_training():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("compare", "train", "tune", "reproduce"):
        assert any("--set" in a.option_strings for a in sub.choices[command]._actions), command


def test_bad_set_names_the_option():
    with pytest.raises(UsageError, match="unknown option 'colour'.*settable: dataset"):
        apply_sets({}, ["colour=red"])
    with pytest.raises(UsageError, match="KEY=VALUE"):
        apply_sets({}, ["amp"])
    assert apply_sets({}, ["val-fraction=0.3"]) == {"val_fraction": 0.3}  # dashes read as underscores


def test_none_unsets_an_optional_number_from_toml_set_and_flags(tmp_path):
    # TOML has no null: the string "none" is None in the optional number fields, in a file, --set and flags
    assert NULLABLE_FIELDS == ("switch_epoch", "max_steps_per_epoch", "diverge_factor")
    toml = tmp_path / "c.toml"
    toml.write_text(
        'switch_epoch = 2\nmax_steps_per_epoch = 5\ndiverge_factor = 50.0\n[[optimizers]]\nname = "tmsgd"\n'
    )
    set_ = {
        key: getattr(build_config(build_parser().parse_args(["compare", "--config", str(toml)])), key)
        for key in NULLABLE_FIELDS
    }
    assert set_ == {"switch_epoch": 2, "max_steps_per_epoch": 5, "diverge_factor": 50.0}
    for key in NULLABLE_FIELDS:
        unset = tmp_path / f"{key}.toml"
        unset.write_text(toml.read_text().replace(f"{key} = {set_[key]}", f'{key} = "{NULL}"'))
        from_toml = ExperimentConfig.from_dict(__import__("tomllib").loads(unset.read_text()))
        assert getattr(from_toml.runs()[0].config, key) is None, key
        flags = [["--set", f"{key}={NULL}"]]
        if key != "diverge_factor":  # switch_epoch and max_steps_per_epoch have flags of their own
            flags.append([f"--{key.replace('_', '-')}", NULL])
        for flag in flags:
            args = build_parser().parse_args(["compare", "--config", str(toml), *flag])
            assert getattr(build_config(args).runs()[0].config, key) is None, flag
    assert TrainConfig.from_dict({"diverge_factor": NULL}).diverge_factor is None  # experiment.json, run files
    assert TrainConfig.from_dict({"dataset": NULL}).dataset == NULL  # only the optional numbers read "none"
    with pytest.raises(ValueError, match=f"switch_epoch='None' is invalid: must be None \\(\"{NULL}\" in TOML"):
        ExperimentConfig.from_dict({"switch_epoch": "None", "optimizers": ["tmsgd"]})
