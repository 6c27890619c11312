"""--until-decided: planned looks, final decisions, resume, and the warning after unplanned looks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import optimlab.experiments.sweep as sweep_mod
from optimlab.cli import main
from optimlab.experiments import looks as sequential
from optimlab.experiments.config import ExperimentConfig, OptimizerSpec
from optimlab.stats.inference import INCONCLUSIVE, SURVIVES, obf_spending
from optimlab.train.config import History


class NoisyFit:
    """Stands in for fit: 'good' beats the baseline by 2 points, 'same' does not; seed noise 0.5 points."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, config, seed, run_dir=None, progress=False, callback=None):
        self.calls.append((config.optimizer, seed))
        tag = {"sgdm-ema": 0, "sgdm": 1, "rsgdm": 2}[config.optimizer]
        noise = np.random.default_rng(1000 * tag + seed).normal(0, 0.005)
        acc = 0.90 + 0.002 * seed + noise + (0.02 if config.optimizer == "sgdm" else 0.0)
        return History(
            train_loss=[1.0, 0.5],
            test_acc=[acc - 0.05, acc],
            step_time_s=0.001,
            final={"accuracy": acc, "loss": 0.3, "mean_recall": acc, "mean_precision": acc, "kappa": acc - 0.1},
            wall_time_s=0.01,
        )


def _config(seeds=(0,)) -> ExperimentConfig:
    return ExperimentConfig(
        name="seq",
        model="mlp",
        epochs=2,
        seeds=seeds,
        baseline="sgdm-ema",
        optimizers=(
            OptimizerSpec("sgdm-ema", "sgdm-ema", {"lr": 0.1}),
            OptimizerSpec("sgdm", "good", {"lr": 0.01}),
            OptimizerSpec("rsgdm", "same", {"lr": 0.1}),
        ),
    )


def test_extend_seeds_keeps_the_configured_ones_first():
    assert sequential.extend_seeds((10, 11, 12), 5) == (10, 11, 12, 13, 14)
    assert sequential.extend_seeds((0, 1, 2, 3), 2) == (0, 1)


def test_decisions_are_final_and_the_run_stops_when_all_are_decided(tmp_path: Path):
    script = {
        10: {"a": SURVIVES, "b": INCONCLUSIVE},
        15: {"a": INCONCLUSIVE, "b": INCONCLUSIVE},
        20: {"a": INCONCLUSIVE, "b": SURVIVES},
        25: {"a": SURVIVES, "b": SURVIVES},
    }
    ran, alphas = [], []

    def decide(cfg, alpha):
        alphas.append(alpha)
        return script[len(cfg.seeds)]

    rec = sequential.run_until_decided(
        _config(), tmp_path, [10, 15, 20, 25], lambda c: ran.append(len(c.seeds)), decide
    )
    assert ran == [10, 15, 20]  # stopped once both were decided
    assert rec["decisions"]["a"]["look"] == 10 and rec["decisions"]["a"]["verdict"] == SURVIVES  # kept at 15
    assert rec["decisions"]["b"]["look"] == 20 and rec["reason"] == "every comparison decided"
    assert alphas == pytest.approx(obf_spending([10, 15, 20, 25])[:3])
    assert json.loads((tmp_path / sequential.SEQUENTIAL_FILE).read_text())["stopped_at"] == 20
    with pytest.raises(ValueError, match="invalidates the error rate"):  # changing the plan after looking
        sequential.run_until_decided(_config(), tmp_path, [10, 20, 30], lambda c: None, decide)


def test_looks_log_and_earlier_looks(tmp_path: Path):
    for n in (5, 5, 10):
        sequential.record_look(tmp_path, n)
    assert json.loads((tmp_path / sequential.LOOKS_FILE).read_text()) == [5, 10]
    assert sequential.earlier_looks(tmp_path, 10) == [5] and sequential.earlier_looks(tmp_path, 5) == []


def test_compare_until_decided_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    fake = NoisyFit()
    monkeypatch.setattr(sweep_mod, "fit", fake)
    out = tmp_path / "out"
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'name = "seq"\nmodel = "mlp"\nepochs = 2\nbaseline = "sgdm-ema"\nseeds = 1\n'
        '[[optimizers]]\nname = "sgdm-ema"\nhparams = { lr = 0.1 }\n'
        '[[optimizers]]\nname = "sgdm"\nlabel = "good"\nhparams = { lr = 0.01 }\n'
        '[[optimizers]]\nname = "rsgdm"\nlabel = "same"\nhparams = { lr = 0.1 }\n'
    )
    args = [
        "compare",
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--workers",
        "1",
        "--quiet",
        "--until-decided",
        "--min-seeds",
        "10",
        "--max-seeds",
        "20",
        "--look-step",
        "5",
    ]
    assert main(args) == 0
    rec = json.loads((out / sequential.SEQUENTIAL_FILE).read_text())
    assert rec["looks"] == [10, 15, 20] and rec["stopped_at"] == 20  # 'same' never decides: the budget is spent
    assert rec["decisions"]["good|digits|mlp"]["verdict"] == SURVIVES
    assert "same|digits|mlp" not in rec["decisions"]
    assert len({s for _, s in fake.calls}) == 20
    report = (out / "report.md").read_text()
    assert "planned looks at [10, 15, 20]" in report and "better (at 10 seeds)" in report
    assert "Earlier looks" not in report  # planned looks are not unplanned ones
    assert "decision: Holm" in capsys.readouterr().out
    # a plain rerun with more seeds on the same folder after looking: fixed-n statistics, with a warning
    for f in (out / sequential.SEQUENTIAL_FILE,):
        f.unlink()
    assert main(["compare", "--config", str(cfg), "--out", str(out), "--workers", "1", "--quiet", "--seeds", "25"]) == 0
    assert "Earlier looks" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--max-seeds", "20"], "--max-seeds needs --until-decided"),
        (["--until-decided"], "--until-decided needs --max-seeds"),
        (["--until-decided", "--max-seeds", "20", "--seeds", "5"], "instead of --seeds"),
        (["--until-decided", "--max-seeds", "5", "--min-seeds", "10"], "max_seeds"),
    ],
)
def test_bad_sequential_flags_exit_2_with_one_line(flags, message, tmp_path: Path, capsys):
    assert main(["compare", "--out", str(tmp_path / "o"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and not (tmp_path / "o").exists()
