"""One seed dialect and one declaration of --seeds, --workers and --threads (issue 21, §5).

compare, tune (--seeds and --tune-seeds), reproduce, a TOML file and tune() all read seeds through
optimlab.experiments.config.parse_seeds; the flags live in optimlab.cli.flags only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest

import optimlab.cli
from optimlab.cli import build_parser, main
from optimlab.experiments.config import ConfigError, ExperimentConfig, OptimizerSpec, parse_seeds
from optimlab.tune.search import TuneError, tune

CLI_DIR = Path(optimlab.cli.__file__).parent


@pytest.mark.parametrize(
    "text, seeds",
    [("3", (0, 1, 2)), ("0,1,7", (0, 1, 7)), ("7,", (7,)), ("1000-1002", (1000, 1001, 1002)), (" 2 ", (0, 1))],
)
def test_one_seed_dialect_in_toml_and_on_every_command(text: str, seeds: tuple[int, ...]) -> None:
    assert parse_seeds(text) == seeds
    toml_value = ExperimentConfig.from_dict({"seeds": text, "optimizers": ["sgd"]}).seeds
    assert toml_value == seeds
    for argv in (["compare"], ["tune"], ["reproduce", "rsgdm-cifar10-resnet18"]):
        assert build_parser().parse_args([*argv, "--seeds", text]).seeds == seeds, argv


@pytest.mark.parametrize(
    "text, message",
    [
        ("two", "a count (5), a comma list (0,1,7) or a range (1000-1002), got 'two'"),
        ("0", "count must be >= 1"),
        ("1,1", "has duplicates"),
        ("5-3", "runs backwards"),
        ("1-", "got '1-'"),
    ],
)
def test_bad_seeds_name_the_flag_in_one_line(text: str, message: str, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (["compare", "--quiet"], ["tune", "--quiet"], ["reproduce", "rsgdm-cifar10-resnet18"]):
        assert main([*argv, "--seeds", text]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "'--seeds'" in err and message in err, (argv, err)
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_seeds(text)
    assert list(tmp_path.iterdir()) == []  # refused before any work


def test_tune_reads_its_seeds_in_the_same_dialect(tmp_path: Path, monkeypatch) -> None:
    import optimlab.tune.search as search_mod

    seen: dict[str, Any] = {}

    class Seen(Exception):
        pass

    def fake_tune(config: ExperimentConfig, out: Path, **kw: Any) -> None:
        seen.update(kw, final=config.seeds)
        raise Seen

    monkeypatch.setattr(search_mod, "tune", fake_tune)
    args = build_parser().parse_args(["tune", "--tune-seeds", "1000-1002", "--seeds", "4", "--quiet"])
    with pytest.raises(Seen):
        args.func(args)
    assert seen["tune_seeds"] == (1000, 1001, 1002) and seen["final"] == (0, 1, 2, 3)
    assert main(["tune", "--tune-seeds", "9-7", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    config = ExperimentConfig(optimizers=(OptimizerSpec("sgd", "sgd", {}),))
    with pytest.raises(TuneError, match="'tune_seeds' has duplicates"):
        tune(config, tmp_path / "t", tune_seeds=(3, 3), progress=False)
    with pytest.raises(TuneError, match="'final_seeds' count must be >= 1"):
        tune(config, tmp_path / "t", final_seeds=cast(Any, 0), progress=False)  # not a Sequence: the check under test
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    "command, flag",
    [
        (["compare"], "--workers"),
        (["tune"], "--workers"),
        (["reproduce", "rsgdm-cifar10-resnet18"], "--workers"),
        (["compare"], "--threads"),
        (["train"], "--threads"),
        (["tune"], "--threads"),
    ],
)
def test_workers_and_threads_zero_are_refused_alike(command: list[str], flag: str, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*command, flag, "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"optimlab: error: {flag} '0': give an int >= 1"
    assert list(tmp_path.iterdir()) == []


def test_workers_and_threads_are_where_they_are_needed():
    def has(command: str, flag: str) -> bool:
        return any(flag in a.option_strings for a in _subparser(command)._actions)

    assert all(has(c, "--workers") and has(c, "--seeds") for c in ("compare", "tune", "reproduce"))
    assert has("compare", "--threads") and has("train", "--threads") and not has("train", "--workers")
    assert has("tune", "--threads")


def test_seeds_workers_and_threads_are_declared_once_in_cli_flags():
    declared = re.compile(r"""add_argument\(\s*["'](--seeds|--workers|--threads)["']""")
    where = {
        path.name: declared.findall(path.read_text(encoding="utf-8"))
        for path in sorted(CLI_DIR.glob("*.py"))
        if declared.search(path.read_text(encoding="utf-8"))
    }
    assert where == {"flags.py": ["--seeds", "--threads", "--workers"]}


def _subparser(command: str):
    import argparse

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def test_compare_margins_reach_the_experiment_file_and_bad_ones_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    """--margin states the equivalence margins up front: they are the experiment's (experiment.json
    keeps them for every later report), and a bad one stops compare in one line before any run."""
    from optimlab.cli.common import build_config

    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["compare", "--margin", "accuracy=0.01", "--margin", "loss=0.2"])
    config = build_config(args)
    assert config.margins == {"accuracy": 0.01, "loss": 0.2}
    again = ExperimentConfig.from_dict(config.to_dict())
    assert again.margins == config.margins
    assert "margins" not in build_config(build_parser().parse_args(["compare"])).to_dict()  # files as before
    with pytest.raises(ConfigError, match="margins.accuracy"):
        ExperimentConfig.from_dict({**config.to_dict(), "margins": {"accuracy": -1}})
    assert main(["compare", "--margin", "accuracy=-0.5", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--margin 'accuracy=-0.5'" in err[0]
    assert not (tmp_path / "out").exists()
