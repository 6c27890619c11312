"""optimlab.tune: same budget per optimizer, choice on validation only, diverged settings lose,
a real tiny tune on digits (page, plot, resume), sobol reproducibility, and the CLI."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optimlab.experiments import ExperimentConfig, OptimizerSpec
from optimlab.experiments.results import RunResult, experiment_path, result_path, write_json_atomic
from optimlab.train.config import History
from optimlab.tune import search as search_mod
from optimlab.tune.search import (
    Candidate,
    CandidateScore,
    TuneError,
    make_candidates,
    score_candidates,
    select_best,
    tune,
)


def _config(**kw: Any) -> ExperimentConfig:
    base: dict[str, Any] = dict(
        name="t",
        dataset="digits",
        model="mlp",
        width=0.5,
        epochs=1,
        batch_size=32,
        max_steps_per_epoch=4,
        seeds=(0, 1),
        optimizers=(
            OptimizerSpec("sgdm", "sgdm", {"lr": 0.05, "momentum": 0.9}),
            OptimizerSpec("sgdm-ema", "ema", {"beta": 0.9}),
        ),
    )
    base.update(kw)
    return ExperimentConfig(**base)


def _chosen(best: CandidateScore | None) -> Candidate:
    """The candidate an optimizer chose (it had a finite setting)."""
    assert best is not None
    return best.candidate


def _wd(c: Candidate) -> float:
    assert c.weight_decay is not None  # searched with a weight-decay range
    return c.weight_decay


def _metrics(acc: float) -> dict[str, float]:
    return {
        "accuracy": acc,
        "loss": 1.0 - acc if math.isfinite(acc) else math.nan,
        "mean_recall": acc,
        "mean_precision": acc,
        "kappa": acc,
    }


# --------------------------------------------------------------------------- candidates


def test_grid_is_log_spaced_with_both_ends() -> None:
    c = make_candidates(5, (1e-4, 1.0), "grid")
    lrs = np.array([x.lr for x in c])
    assert len(c) == 5 and all(x.weight_decay is None for x in c)
    np.testing.assert_allclose(lrs, [1e-4, 1e-3, 1e-2, 1e-1, 1.0], rtol=1e-12)
    np.testing.assert_allclose(np.diff(np.log10(lrs)), 1.0)
    wd = make_candidates(10, (1e-3, 1e-1), "grid", wd_range=(1e-5, 1e-3))  # floor(sqrt(10)) = 3 per axis
    assert len(wd) == 9 and len({x.lr for x in wd}) == 3 and len({x.weight_decay for x in wd}) == 3
    np.testing.assert_allclose(sorted({_wd(x) for x in wd}), [1e-5, 1e-4, 1e-3], rtol=1e-12)


def test_sobol_is_reproducible_in_range_and_seeded() -> None:
    a = make_candidates(6, (1e-4, 1.0), "sobol")
    b = make_candidates(6, (1e-4, 1.0), "sobol")
    assert a == b and len(a) == 6 and len({x.lr for x in a}) == 6
    assert all(1e-4 <= x.lr <= 1.0 for x in a)
    assert make_candidates(6, (1e-4, 1.0), "sobol", seed=1) != a
    # quasi-random in log space: 6 points spread over the 4 decades, not clustered in the top one
    assert sum(x.lr < 1e-2 for x in a) >= 2
    w = make_candidates(8, (1e-3, 1.0), "sobol", wd_range=(1e-6, 1e-2))
    assert w == make_candidates(8, (1e-3, 1.0), "sobol", wd_range=(1e-6, 1e-2))
    assert len(w) == 8 and all(1e-6 <= _wd(x) <= 1e-2 for x in w)


@pytest.mark.parametrize(
    "kw, culprit",
    [
        ({"budget": 0}, "budget"),
        ({"budget": 3, "lr_range": (1.0, 1e-3)}, "lr_range"),
        ({"budget": 3, "search": "random"}, "search"),
        ({"budget": 3, "lr_range": (0.0, 1.0)}, "lr_range"),
    ],
)
def test_bad_arguments_name_the_culprit(kw, culprit) -> None:
    with pytest.raises(TuneError, match=culprit):
        make_candidates(**kw)


# --------------------------------------------------------------------------- selection


def _score(lr: float, values: list[float], n_runs: int, diverged: int = 0, failed: int = 0) -> CandidateScore:
    return CandidateScore("x", f"x+lr{lr}", Candidate(lr), values, n_runs, diverged, failed)


def test_diverged_or_failed_settings_never_win() -> None:
    good = _score(0.01, [0.50, 0.52], 2)
    half_diverged = _score(1.0, [0.99], 2, diverged=1)  # better mean over its finite run, but one diverged
    failed = _score(0.1, [0.98], 2, failed=1)
    assert select_best([half_diverged, failed, good]) is good
    assert select_best([half_diverged, failed]) is None
    # ties go to the smaller lr; loss is minimized
    a, b = _score(0.1, [0.7], 1), _score(0.01, [0.7], 1)
    assert select_best([a, b]) is b
    assert _chosen(select_best([_score(0.1, [0.3], 1), _score(0.01, [0.2], 1)], metric="loss")).lr == 0.01


def test_score_reads_validation_and_flags_diverged_runs(tmp_path: Path) -> None:
    cfg = _config().runs()[0].config
    # the diverged run kept high accuracy from its (still finite) predictions: it must still lose
    div = RunResult(
        "r1", "x+lr1", 0, cfg, history=History(final=_metrics(0.9), final_val=_metrics(0.95), diverged_epoch=1)
    )
    fine = RunResult("r2", "x+lr0.1", 0, cfg, history=History(final=_metrics(0.99), final_val=_metrics(0.40)))
    labels = {"x+lr1": ("x", Candidate(1.0)), "x+lr0.1": ("x", Candidate(0.1))}
    scores = score_candidates([div, fine], labels, n_seeds=1)["x"]
    by_lr = {s.candidate.lr: s for s in scores}
    assert by_lr[1.0].n_diverged == 1 and not by_lr[1.0].ok
    assert by_lr[0.1].values == [0.40]  # validation value, not the test 0.99
    assert _chosen(select_best(scores)).lr == 0.1


# --------------------------------------------------------------------------- tune with fake runs


def _val_test(label: str, lr: float) -> tuple[float, float, bool]:
    """Validation peaks at lr = 0.01, test peaks at lr = 1; `ema` diverges above lr 0.5."""
    dist = abs(math.log10(lr) + 2)
    val = 0.9 - 0.1 * dist
    test = 0.5 + 0.1 * math.log10(lr) + 0.4  # best at the largest lr
    return val, test, label.startswith("ema") and lr > 0.5


class _FakeSweep:
    """Stands in for run_experiment: writes result files like the sweep, from a known landscape."""

    def __init__(self, landscape=_val_test) -> None:
        self.calls: list[ExperimentConfig] = []
        self.landscape = landscape

    def __call__(self, config: ExperimentConfig, out_dir, workers=1, progress=True, **_):
        self.calls.append(config)
        out = Path(out_dir)
        write_json_atomic(experiment_path(out), config.to_dict())
        results = []
        for spec in config.runs():
            val, test, div = self.landscape(spec.label, spec.config.hparams["lr"])
            h = History(
                train_loss=[1.0],
                test_acc=[test],
                final=_metrics(math.nan if div else test),
                final_val=_metrics(math.nan if div else val),
                diverged_epoch=1 if div else None,
            )
            r = RunResult(spec.run_id, spec.label, spec.seed, spec.config, history=h)
            write_json_atomic(result_path(out, spec.run_id), r.to_dict())
            results.append(r)
        return results


def test_tune_chooses_on_validation_with_the_same_budget_for_all(tmp_path: Path, monkeypatch) -> None:
    fake = _FakeSweep()
    monkeypatch.setattr(search_mod, "run_experiment", fake)
    res = tune(
        _config(),
        tmp_path,
        budget=5,
        lr_range=(1e-4, 1.0),
        tune_seeds=(1000, 1001),
        final_seeds=(0, 1, 2),
        progress=False,
    )
    search_cfg, final_cfg = fake.calls
    # same budget: every optimizer tried exactly the same 5 lrs on the same tuning seeds
    lrs_of: dict[str, list[float]] = {}
    for o in search_cfg.optimizers:
        lrs_of.setdefault(o.label.split("+")[0], []).append(o.hparams["lr"])
    assert set(lrs_of) == {"sgdm", "ema"}
    assert lrs_of["sgdm"] == lrs_of["ema"] == [c.lr for c in res.candidates] and len(res.candidates) == 5
    assert search_cfg.seeds == (1000, 1001)
    # other hyperparameters are kept, lr replaced
    assert all(o.hparams["momentum"] == 0.9 for o in search_cfg.optimizers if o.name == "sgdm")
    # validation best is lr 0.01 (the test split would have picked lr 1)
    assert _chosen(res.best["sgdm"]).lr == pytest.approx(0.01)
    assert _chosen(res.best["ema"]).lr == pytest.approx(0.01)
    assert {o.label: o.hparams["lr"] for o in final_cfg.optimizers} == pytest.approx({"sgdm": 0.01, "ema": 0.01})
    assert final_cfg.seeds == (0, 1, 2) and final_cfg.optimizers[0].hparams["momentum"] == 0.9
    assert {r.label for r in res.final_results} == {"sgdm", "ema"} and len(res.final_results) == 6
    assert res.summary is not None and res.summary.comparison("ema").n_pairs == 3
    page = res.page.read_text()
    assert "Same budget for every optimizer: 5 settings × 2 tuning seed(s)" in page
    assert "![lr sensitivity](lr_sensitivity.png)" in page and res.plot is not None and res.plot.is_file()
    assert "1 diverged" not in page and "2 diverged" in page  # ema at lr 1, both tuning seeds
    saved = json.loads((tmp_path / "tune.json").read_text())
    assert saved["best"]["ema"]["lr"] == pytest.approx(0.01) and saved["budget"] == 5
    # the winner's curse made visible: the chosen setting's validation score again, on the final seeds
    assert "validation accuracy: final seeds (fresh)" in page and "(n=3)" in page
    fresh = search_mod.fresh_validation(res.final_results, "accuracy")
    assert set(fresh) == {"sgdm", "ema"} and fresh["ema"][1] == 3


def test_tune_searches_on_three_seeds_by_default() -> None:
    import inspect

    assert inspect.signature(tune).parameters["tune_seeds"].default == (1000, 1001, 1002)
    from optimlab.cli.tune import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    assert parser.parse_args(["tune"]).tune_seeds == "1000,1001,1002"


def test_optimizer_whose_every_setting_diverges_is_left_out(tmp_path: Path, monkeypatch) -> None:
    def landscape(label: str, lr: float):
        val, test, _ = _val_test(label, lr)
        return val, test, label.startswith("ema")

    fake = _FakeSweep(landscape)
    monkeypatch.setattr(search_mod, "run_experiment", fake)
    res = tune(_config(baseline="ema"), tmp_path, budget=3, progress=False)
    assert res.best["ema"] is None and res.best["sgdm"] is not None
    assert res.final_config is not None
    assert [o.label for o in res.final_config.optimizers] == ["sgdm"] and res.final_config.baseline_label == "sgdm"
    assert "every setting diverged or failed" in res.page.read_text()


def test_tune_rejects_grids_and_bad_metric(tmp_path: Path) -> None:
    with pytest.raises(TuneError, match="one dataset and one model"):
        tune(_config(models=("mlp", "cnn")), tmp_path, progress=False)
    with pytest.raises(TuneError, match="metric"):
        tune(_config(), tmp_path, metric="f1", progress=False)
    with pytest.raises(TuneError, match="tune_seeds"):
        tune(_config(), tmp_path, tune_seeds=(), progress=False)


# --------------------------------------------------------------------------- real tiny tune


def test_real_tiny_tune_on_digits_writes_page_and_resumes(tmp_path: Path) -> None:
    cfg = _config()
    res = tune(cfg, tmp_path, budget=3, lr_range=(1e-3, 1.0), tune_seeds=(1000,), final_seeds=(0, 1), progress=False)
    search_files = sorted((tmp_path / "search" / "runs").glob("*.json"))
    final_files = sorted((tmp_path / "final" / "runs").glob("*.json"))
    assert len(search_files) == 2 * 3 and len(final_files) == 2 * 2
    assert (tmp_path / "tune.md").is_file() and (tmp_path / "final" / "report.md").is_file()
    png = tmp_path / "lr_sensitivity.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for label, best in res.best.items():
        assert best is not None and best.candidate.lr in {c.lr for c in res.candidates}
        # the chosen lr is the validation argmax over the search runs written on disk
        vals = {}
        for f in search_files:
            d = json.loads(f.read_text())
            if d["label"].split("+")[0] == label and not d["history"]["diverged_epoch"]:
                vals[d["config"]["hparams"]["lr"]] = d["history"]["final_val"]["accuracy"]
        top = max(vals.values())
        assert best.candidate.lr == min(lr for lr, v in vals.items() if v == top)
    page = res.page.read_text()
    assert "| lr | val accuracy |" in page and "**chosen**" in page and "Δ vs sgdm" in page

    mtimes = {f: f.stat().st_mtime_ns for f in search_files + final_files}
    again = tune(cfg, tmp_path, budget=3, lr_range=(1e-3, 1.0), tune_seeds=(1000,), final_seeds=(0, 1), progress=False)
    assert {f: f.stat().st_mtime_ns for f in mtimes} == mtimes  # no run was redone
    assert sorted((tmp_path / "search" / "runs").glob("*.json")) == search_files
    assert {k: _chosen(v) for k, v in again.best.items()} == {k: _chosen(v) for k, v in res.best.items()}


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    from optimlab.cli.common import Parser as _Parser
    from optimlab.cli.tune import add_parser

    p = _Parser(prog="optimlab")
    add_parser(p.add_subparsers(dest="command", required=True, parser_class=_Parser))
    return p


def test_cli_builds_config_like_compare_and_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    fake = _FakeSweep()
    monkeypatch.setattr(search_mod, "run_experiment", fake)
    args = _parser().parse_args(
        [
            "tune",
            "--dataset",
            "digits",
            "--model",
            "mlp",
            "--optimizers",
            "sgdm:momentum=0.9",
            "ema=sgdm-ema:beta=0.9",
            "--epochs",
            "1",
            "--seeds",
            "3",
            "--budget",
            "4",
            "--lr-min",
            "1e-3",
            "--lr-max",
            "1",
            "--search",
            "sobol",
            "--tune-weight-decay",
            "--tune-seeds",
            "7,8",
            "--out",
            str(tmp_path),
            "--workers",
            "1",
            "--quiet",
        ]
    )
    assert args.func(args) == 0
    search_cfg, final_cfg = fake.calls
    assert search_cfg.seeds == (7, 8) and final_cfg.seeds == (0, 1, 2) and search_cfg.epochs == 1
    assert len(search_cfg.optimizers) == 2 * 4
    assert all("weight_decay" in o.hparams and 1e-6 <= o.hparams["weight_decay"] <= 1e-2 for o in search_cfg.optimizers)
    assert "tune page:" in capsys.readouterr().out


def test_cli_prints_the_grid_edge_warning_and_percent(tmp_path: Path, monkeypatch, capsys) -> None:
    # validation accuracy rises with lr: every optimizer chooses the largest lr, the grid's edge
    monkeypatch.setattr(search_mod, "run_experiment", _FakeSweep(lambda label, lr: (0.5 + lr / 4, 0.5 + lr / 4, False)))
    argv = ["tune", "--model", "mlp", "--optimizers", "sgdm:momentum=0.9", "--epochs", "1", "--seeds", "2"]
    args = _parser().parse_args([*argv, "--budget", "3", "--tune-seeds", "7,", "--out", str(tmp_path), "--quiet"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "At the edge of the grid: sgdm (largest, 1)" in captured.err  # --quiet keeps warnings
    assert "75.00" in captured.out and "0.7500" not in captured.out  # validation accuracy in %, as tune.md


def test_cli_bad_weight_decay_range_is_one_clear_error(tmp_path: Path) -> None:
    args = _parser().parse_args(["tune", "--tune-weight-decay", "abc", "--out", str(tmp_path), "--quiet"])
    with pytest.raises(TuneError, match="--tune-weight-decay 'abc'"):
        args.func(args)


def test_widening_the_grid_reruns_only_finals_whose_choice_moved_and_flags_edges(tmp_path: Path, monkeypatch) -> None:
    def landscape(label: str, lr: float) -> tuple[float, float, bool]:
        if label.startswith("sgdm"):
            return min(0.5 + 0.1 * math.log10(lr), 0.99), 0.5, False  # best at the largest lr tried
        return 0.9 - 0.1 * abs(math.log10(lr) + 2), 0.5, False  # best at lr 0.01, inside either grid

    existing_at_final: list[set[str]] = []

    class Recording(_FakeSweep):
        def __call__(self, config: ExperimentConfig, out_dir: Any, *args: Any, **kw: Any) -> Any:
            if config.name.endswith("-final"):
                existing_at_final.append({p.stem for p in (Path(out_dir) / "runs").glob("*.json")})
            return super().__call__(config, out_dir, *args, **kw)

    monkeypatch.setattr(search_mod, "run_experiment", Recording(landscape))
    first = tune(_config(), tmp_path, budget=3, lr_range=(1e-3, 1e-1), progress=False)
    assert _chosen(first.best["sgdm"]).lr == pytest.approx(0.1) and _chosen(first.best["ema"]).lr == pytest.approx(0.01)
    page = first.page.read_text(encoding="utf-8")
    assert (
        "At the edge of the grid: sgdm (largest, 0.1)" in page and "ema (" not in page.split("edge of the grid")[1][:80]
    )
    assert (
        search_mod.grid_edge(1e-3, first.candidates) == "smallest"
        and search_mod.grid_edge(0.01, first.candidates) is None
    )
    finals = {p.stem for p in (tmp_path / "final" / "runs").glob("*.json")}
    assert len(finals) == 4  # 2 optimizers x 2 seeds
    with pytest.warns(UserWarning, match=r"2 final run\(s\).*no longer chosen"):
        wider = tune(_config(), tmp_path, budget=5, lr_range=(1e-3, 10.0), progress=False)
    assert [c.lr for c in wider.candidates][:3] == [c.lr for c in first.candidates]  # the old grid, extended
    assert _chosen(wider.best["sgdm"]).lr == pytest.approx(10.0)
    kept = existing_at_final[-1]
    assert kept == {s for s in finals if "-ema-" in s}  # sgdm's stale finals were deleted before the rerun
