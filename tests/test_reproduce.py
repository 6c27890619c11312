"""optimlab reproduce: verdict logic, the paper scale's refusals, a tiny real CPU reproduction, the CLI."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
import torch

from optimlab.cli.reproduce import add_parser
from optimlab.experiments.config import ExperimentConfig
from optimlab.experiments.results import RunResult
from optimlab.reproduce.catalog import Claim, list_paper_experiments, load_paper_experiment
from optimlab.reproduce.judging import Judged, judge_claim, judge_claims
from optimlab.reproduce.run import ReproduceError, Reproduction, find_cifar10_subset, reproduce, resolve_config
from optimlab.stats.inference import (
    CONTRADICTED,
    EQUIVALENT,
    INCONCLUSIVE,
    SMALLER,
    SURVIVES,
    SURVIVES_SMALLER,
    TOO_FEW,
    VERDICTS,
)
from optimlab.train.config import History

REPO = Path(__file__).resolve().parents[1]
CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


# ----------------------------------------------------------------------------------------------
# verdict logic on synthetic results


def _results(values: dict[str, list[float]], metric: str, diverged: dict[str, int] | None = None) -> list[RunResult]:
    config = ExperimentConfig.from_dict(
        {"optimizers": [{"name": "sgd", "label": lab} for lab in values], "seeds": len(next(iter(values.values())))}
    )
    out = []
    for spec in config.runs():
        v = values[spec.label][spec.seed]
        h = History(train_loss=[1.0], train_acc=[0.5], final={"accuracy": 0.5, metric: v})
        if diverged and diverged.get(spec.label) == spec.seed:
            h.diverged_epoch = 1
            h.final[metric] = math.nan
        out.append(RunResult(spec.run_id, spec.label, spec.seed, spec.config, history=h))
    return out


LOSS_CLAIM = Claim("new has lower loss than old", "loss", "lower", "new", "old")
REPORTED = {"new": {"loss": 1.34}, "old": {"loss": 1.38}}


OLD = [1.0, 1.2, 0.9, 1.1, 1.05, 0.95, 1.15, 1.0, 1.08, 0.98, 1.12, 1.03]  # 12 seeds of the baseline's loss


def test_loss_claim_survives_when_loss_is_lower_on_every_seed() -> None:
    r = judge_claim(
        LOSS_CLAIM, _results({"old": OLD, "new": [x - 0.1 - 0.01 * i for i, x in enumerate(OLD)]}, "loss"), REPORTED
    )
    assert r.verdict == SURVIVES
    assert r.mean_diff < 0 and r.ci_high < 0 and r.holm_p == r.t_p  # a family of one: Holm changes nothing
    assert (r.wins, r.losses, r.n_pairs) == (12, 0, 12)
    assert r.paper_optimizer == 1.34 and r.paper_baseline == 1.38
    assert r.optimizer.n == 12 and r.optimizer.low < r.optimizer.mean < r.optimizer.high


def test_loss_claim_contradicted_when_loss_is_higher_on_every_seed() -> None:
    r = judge_claim(
        LOSS_CLAIM, _results({"old": OLD, "new": [x + 0.2 + 0.01 * i for i, x in enumerate(OLD)]}, "loss"), REPORTED
    )
    assert r.verdict == CONTRADICTED
    assert r.ci_low > 0 and (r.wins, r.losses) == (0, 12)


def test_too_few_seeds_is_never_decisive() -> None:
    five = OLD[:5]
    r = judge_claim(
        LOSS_CLAIM, _results({"old": five, "new": [x - 0.3 - 0.01 * i for i, x in enumerate(five)]}, "loss"), REPORTED
    )
    assert r.verdict == TOO_FEW and r.t_p < 0.001  # a clear difference, but 5 seeds decide nothing


def test_ties_are_never_decisive() -> None:
    r = judge_claim(LOSS_CLAIM, _results({"old": OLD, "new": [x - 0.1 for x in OLD]}, "loss"), REPORTED)
    assert r.verdict == INCONCLUSIVE and math.isnan(r.t_p) and any("ties" in n for n in r.notes)


def test_inconclusive_straddles_zero_reports_mde_and_leaves_diverged_seed_out() -> None:
    new = [x - 0.01 + (0.05 if i % 2 else -0.05) for i, x in enumerate(OLD)]  # mean -0.01, CI holds 0 and -0.04
    new[5] = 0.2
    r = judge_claim(LOSS_CLAIM, _results({"old": OLD, "new": new}, "loss", diverged={"new": 5}), REPORTED)
    assert r.verdict == INCONCLUSIVE
    assert r.ci_low < 0 < r.ci_high
    # seed 5 diverged for "new": it stays in the test at the worst value either arm reached (issue 23:
    # dropping it made a 10-seed claim "too few seeds" and a diverging optimizer impossible to contradict)
    assert r.n_pairs == 12
    assert any("[5]" in n and "worst value" in n for n in r.notes)
    assert r.failures[0].k == 1 and r.failures[0].n == 12 and r.failures[1].k == 0
    assert r.mde > 0 and r.seeds_needed is not None and r.seeds_needed > 11  # the paper's 0.04 needs more seeds


def test_smaller_than_claimed_and_holm_over_the_family() -> None:
    big = Claim("new beats old by a lot", "accuracy", "higher", "new", "old")
    base = [0.80 + 0.004 * i for i in range(12)]
    new = [b + 0.004 + (0.002 if i % 2 else -0.002) for i, b in enumerate(base)]
    runs = _results({"old": base, "new": new}, "accuracy")
    reported = {"new": {"accuracy": 0.90}, "old": {"accuracy": 0.80}}  # the paper says +10 points
    r = judge_claim(big, runs, reported)
    assert r.verdict == SURVIVES_SMALLER  # a real +0.4 point gain survives, and +10 points is rejected: both shown
    noisy = [b + 0.004 + (0.03 if i % 2 else -0.03) for i, b in enumerate(base)]
    r2 = judge_claim(big, _results({"old": base, "new": noisy}, "accuracy"), reported)
    assert r2.verdict == SMALLER  # ... a noisy one is not shown, but +10 points is ruled out
    # the same clear claim in a family of many null claims: Holm multiplies its p by up to m
    nulls = [Claim(f"c{k}", "accuracy", "higher", f"n{k}", "old") for k in range(6)]
    rng = __import__("numpy").random.default_rng(0)
    values = {"old": base, "new": new, **{f"n{k}": list(base + rng.normal(0, 0.01, 12)) for k in range(6)}}
    fam = judge_claims([big, *nulls], _results(values, "accuracy"), reported)
    assert fam[0].holm_p >= fam[0].t_p and all(f.holm_p >= f.t_p for f in fam)


def test_failures_that_could_change_the_verdict_are_named() -> None:
    claim = Claim("new beats old", "accuracy", "higher", "new", "old")
    base = [0.80 + 0.01 * i for i in range(12)]
    new = [b + 0.01 + (0.002 if i % 2 else -0.002) for i, b in enumerate(base)]
    runs = _results({"old": base, "new": new}, "accuracy")
    for r in runs:  # "new" diverges on the three seeds where the baseline does best
        if r.label == "new" and r.seed in (9, 10, 11):
            assert r.history is not None
            r.history.diverged_epoch = 1
            r.history.final["accuracy"] = math.nan
    res = judge_claim(claim, runs, {}, min_seeds=5)
    # the failed seeds count at the worst value either arm reached (0.80) and lose by 9-11 points, so
    # the claim no longer survives; on the nine seeds both finished it would (issue 23: failures are judged)
    assert res.verdict != SURVIVES and res.failures[0].k == 3 and res.n_pairs == 12
    assert res.sensitivity is not None and "left out" in res.sensitivity and f"'{SURVIVES}'" in res.sensitivity
    assert res.failure_p == pytest.approx(0.25)  # exact McNemar: 3 discordant seeds, all on one side
    clean = judge_claim(claim, _results({"old": base, "new": new}, "accuracy"), {}, min_seeds=5)
    assert clean.sensitivity is None and clean.failure_p == 1.0


# ----------------------------------------------------------------------------------------------
# the paper scale refuses what cannot finish


def test_paper_scale_refuses_missing_or_wrong_data_dir(tmp_path: Path) -> None:
    exp = load_paper_experiment("rsgdm-cifar10-resnet18")
    with pytest.raises(ReproduceError, match="--data-dir"):
        resolve_config(exp, "paper", None, allow_cpu=True)
    with pytest.raises(ReproduceError, match="does not exist"):
        resolve_config(exp, "paper", tmp_path / "nope", allow_cpu=True)
    with pytest.raises(ReproduceError, match=r"missing file\(s\).*data_batch_1"):
        resolve_config(exp, "paper", tmp_path, allow_cpu=True)  # exists, but holds no CIFAR-10
    folder = tmp_path / "animals"
    folder.mkdir()
    with pytest.raises(ReproduceError, match="no class sub-folders"):
        resolve_config(load_paper_experiment("wgd-animals10-resnet18"), "paper", folder, allow_cpu=True)


def test_paper_scale_refuses_without_gpu_unless_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for f in CIFAR_FILES:  # a folder that passes the file check (nothing is read before the run)
        (tmp_path / f).touch()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    exp = load_paper_experiment("rsgdm-cifar10-resnet18")
    with pytest.raises(ReproduceError, match="no CUDA GPU.*--allow-cpu"):
        resolve_config(exp, "paper", tmp_path)
    # every problem at once: no data folder and no GPU
    with pytest.raises(ReproduceError, match="does not exist.*no CUDA GPU"):
        resolve_config(exp, "paper", tmp_path / "nope")
    config = resolve_config(exp, "paper", tmp_path, allow_cpu=True)
    assert config.device == "cpu" and config.epochs == 200 and config.data_dir == str(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_config(exp, "paper", tmp_path).device == "cuda"


def test_bad_scale_and_too_few_seeds() -> None:
    exp = load_paper_experiment("rsgdm-cifar10-resnet18")
    with pytest.raises(ReproduceError, match="scale"):
        resolve_config(exp, "huge")
    with pytest.raises(ReproduceError, match=">= 2 seeds"):
        resolve_config(exp, "cpu", seeds=1, stand_in="digits")  # the stand-in: no CIFAR-10 needed to check seeds


def test_subset_found_by_env_var_and_by_walking_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "shared" / "data" / "cifar-10-subset"
    fake.mkdir(parents=True)
    for f in CIFAR_FILES:
        (fake / f).touch()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.delenv("OPTIMLAB_CIFAR10_SUBSET", raising=False)
    assert find_cifar10_subset(deep) == fake.resolve()
    monkeypatch.setenv("OPTIMLAB_CIFAR10_SUBSET", str(fake))
    assert find_cifar10_subset(Path("/")) == fake.resolve()
    monkeypatch.setenv("OPTIMLAB_CIFAR10_SUBSET", str(tmp_path / "a"))
    with pytest.raises(ReproduceError, match="OPTIMLAB_CIFAR10_SUBSET"):
        find_cifar10_subset(deep)


# ----------------------------------------------------------------------------------------------
# a real (tiny) CPU-scale reproduction


def test_tiny_cpu_reproduce_writes_verdict_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cifar10_subset
) -> None:
    monkeypatch.delenv("OPTIMLAB_CIFAR10_SUBSET", raising=False)
    monkeypatch.chdir(REPO)  # the subset is found above the repository, as in CI
    out = tmp_path / "rep"
    tiny = {"epochs": 1, "max_steps_per_epoch": 3}
    made = reproduce("rsgdm-cifar10-resnet18", scale="cpu", seeds=2, out=out, progress=False, overrides=tiny)
    path = made.verdict
    assert path == out / "verdict.md"
    assert made.judged[2][0].verdict == TOO_FEW  # 2 seeds: judged, in memory, as the page shows it
    text = path.read_text(encoding="utf-8")
    assert "SCALE: CPU" in text
    assert "94.62 %" in text and "94.48 %" in text  # the paper's figures for rsgdm and sgdm-ema
    assert sum(f"**{v}**" in text for v in VERDICTS) >= 1
    assert "[report.md](report.md)" in text and (out / "report.md").is_file()
    assert "0.9948 is a digit typo" in text  # the paper's notes are carried over
    assert "CIFAR-10 subset (5,085 train images" in text
    assert "resnet18 width 0.125, 1 epochs" in text and "2 seeds" in text
    runs = sorted((out / "runs").glob("*.json"))
    assert len(runs) == 4  # 2 optimizers x 2 seeds
    stamp = {p: p.stat().st_mtime_ns for p in runs}
    first = json.loads((out / "reproduce.json").read_text(encoding="utf-8"))["sweep_wall_time_s"]
    reproduce("rsgdm-cifar10-resnet18", scale="cpu", seeds=2, out=out, progress=False, overrides=tiny)
    assert {p: p.stat().st_mtime_ns for p in runs} == stamp  # resumed: nothing re-run
    # the sweep's wall time adds up over calls: a no-op resume does not erase the time the runs took
    assert json.loads((out / "reproduce.json").read_text(encoding="utf-8"))["sweep_wall_time_s"] >= first > 0
    assert json.loads((out / "reproduce.json").read_text(encoding="utf-8"))["code_commit"]  # the code that ran


# ----------------------------------------------------------------------------------------------
# the command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optimlab")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_list_names_every_experiment_with_paper_and_claims(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["reproduce", "--list"])
    assert args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(list_paper_experiments()) == 17
    line = next(ln for ln in out if ln.startswith("rsgdm-cifar10-resnet18 "))
    assert "paper 000" in line and "1 claim" in line
    assert any(ln.startswith("wgd-animals10-resnet18 ") and "8 claims" in ln for ln in out)
    assert any(ln.startswith("tmsgd-keypoints-youtubefaces ") and "4 claims" in ln for ln in out)
    assert any(ln.startswith("tmsgd-gan-sneakers ") and "4 claims" in ln for ln in out)
    assert any(ln.startswith("tmsgd-detection-voc2007 ") and "3 claims" in ln for ln in out)
    assert any(ln.startswith("tmsgd-segmentation-voc2007 ") and "3 claims" in ln for ln in out)


def test_cli_errors_are_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import optimlab.cli as cli

    original = cli.build_parser

    def with_reproduce(command: str | None = None) -> argparse.ArgumentParser:
        parser = original(command)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "reproduce" not in sub.choices:
            add_parser(sub)
        return parser

    monkeypatch.setattr(cli, "build_parser", with_reproduce)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main(["reproduce", "rsgdm-cifar10-resnet18", "--scale", "paper", "--data-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "no CUDA GPU" in err
    assert cli.main(["reproduce", "no-such-paper"]) == 2
    assert "unknown paper experiment 'no-such-paper'" in capsys.readouterr().err
    assert cli.main(["reproduce"]) == 2
    assert "--list" in capsys.readouterr().err


def test_tiny_cpu_reproduce_with_tune_judges_claims_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cifar10_subset: Path
) -> None:
    monkeypatch.delenv("OPTIMLAB_CIFAR10_SUBSET", raising=False)
    monkeypatch.chdir(REPO)
    out = tmp_path / "rep"
    tiny = {"epochs": 1, "max_steps_per_epoch": 2, "width": 0.0625}
    path = reproduce("rsgdm-cifar10-resnet18", scale="cpu", seeds=2, out=out, progress=False, overrides=tiny).verdict
    text = path.read_text(encoding="utf-8")
    assert "## Claims with each optimizer tuned" in text and "Not run. Add `--tune`" in text
    path = reproduce(
        "rsgdm-cifar10-resnet18",
        scale="cpu",
        seeds=2,
        out=out,
        progress=False,
        overrides=tiny,
        tune=True,
        tune_budget=2,
    ).verdict
    text = path.read_text(encoding="utf-8")
    info = json.loads((out / "tuned" / "tune.json").read_text(encoding="utf-8"))
    assert [c["lr"] for c in info["candidates"]] == pytest.approx([0.01, 10.0])  # the catalogue's [tune] range
    assert len(list((out / "tuned" / "search" / "runs").glob("*.json"))) == 2 * 2 * 3  # 2 optimizers x 2 lrs x 3 seeds
    assert len(list((out / "tuned" / "final" / "runs").glob("*.json"))) == 2 * 2  # 2 optimizers x 2 seeds
    assert "Not run" not in text and "Chosen lr: sgdm-ema " in text and "[tuned/tune.md](tuned/tune.md)" in text
    tables = [ln for ln in text.splitlines() if ln.startswith("| rsgdm vs sgdm-ema |")]
    assert len(tables) == 2  # the claim judged at the paper's settings and tuned
    summary = next(ln for ln in text.splitlines() if ln.startswith("1. RSGDM beats SGDM"))
    # CPU-scale runs differ from the paper (epochs, width, data): never called "the paper's settings"
    assert "at CPU-scale settings; **" in summary and "** tuned" in summary
    assert "--tune --tune-budget 2" in text  # the regenerate command repeats the tuning
    # the tuning's wall time survives a later call without --tune and adds up over --tune calls
    tuned_s = json.loads((out / "reproduce.json").read_text(encoding="utf-8"))["tune"]["wall_time_s"]
    assert tuned_s > 0
    reproduce("rsgdm-cifar10-resnet18", scale="cpu", seeds=2, out=out, progress=False, overrides=tiny)
    assert json.loads((out / "reproduce.json").read_text(encoding="utf-8"))["tune"]["wall_time_s"] == tuned_s
    again = dict(scale="cpu", seeds=2, out=out, progress=False, overrides=tiny, tune=True, tune_budget=2)
    reproduce("rsgdm-cifar10-resnet18", **again)  # type: ignore[arg-type]
    assert json.loads((out / "reproduce.json").read_text(encoding="utf-8"))["tune"]["wall_time_s"] >= tuned_s

    # the results page: a row per claim with both verdicts, the verdict one click away
    from optimlab.reproduce.page import main as page_main

    page = tmp_path / "docs" / "results.md"
    unfinished = tmp_path / "reproduce-unfinished"  # runs kept for a resume, no reproduce.json yet
    (unfinished / "runs").mkdir(parents=True)
    assert page_main([str(out), str(unfinished), "--out", str(page)]) == 0  # left off the page, not an error
    assert str(unfinished) not in page.read_text(encoding="utf-8")
    with pytest.raises(SystemExit):
        page_main([str(unfinished), "--out", str(page)])  # nothing finished at all: a clear error
    assert page_main([str(out), "--out", str(page)]) == 0
    body = page.read_text(encoding="utf-8")
    row = next(ln for ln in body.splitlines() if ln.startswith("| [rsgdm-cifar10-resnet18]"))
    assert "rsgdm vs sgdm-ema, accuracy" in row and "+0.14 pts" in row  # the paper's difference, 94.62 - 94.48
    assert sum(row.count(f"**{v}**") for v in VERDICTS) == 2
    assert "](../rep/verdict.md)" in row and "Reproducing rsgdm-cifar10-resnet18: verdict" not in body
    assert "at CPU-scale settings" in row and "paper's settings" not in row


def test_tune_budget_must_be_at_least_two(tmp_path: Path) -> None:
    with pytest.raises(ReproduceError, match="tune_budget"):
        reproduce(
            "rsgdm-cifar10-resnet18", scale="cpu", seeds=2, out=tmp_path, progress=False, tune=True, tune_budget=1
        )


def test_verdict_names_the_papers_data_set_it_stands_in_for() -> None:
    from optimlab.reproduce.verdict import render

    exp = load_paper_experiment("wgd-animals10-resnet18")
    meta = {"scale": "cpu", "description": "six classes", "dataset": "cifar10", "dataset_title": "CIFAR-10 subset"}
    text = render(exp, meta, [], "optimlab reproduce wgd-animals10-resnet18")
    assert "CIFAR-10 subset stands in for Animals-10 (no Animals-10 data" in text
    assert "The paper ran Animals-10, resnet18 width 1, 50 epochs, batch 32" in text


def test_cli_tune_budget_needs_tune_and_workers_default_to_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import optimlab.cli.reproduce as rcli

    args = _parser().parse_args(["reproduce", "rsgdm-cifar10-resnet18", "--tune-budget", "3"])
    with pytest.raises(ReproduceError, match="--tune-budget needs --tune"):
        args.func(args)
    seen = {}
    monkeypatch.setattr(
        rcli, "reproduce", lambda name, **kw: seen.update(kw) or Reproduction(Path("/nonexistent/verdict.md"), ())
    )
    monkeypatch.setattr(rcli, "headline", lambda judged: "")
    args = _parser().parse_args(["reproduce", "rsgdm-cifar10-resnet18", "--tune", "--tune-budget", "3"])
    assert args.func(args) == 0
    from optimlab.experiments.sweep import available_cores

    assert seen["tune"] is True and seen["tune_budget"] == 3 and seen["workers"] == min(available_cores(), 8)


def test_wgd_nadam_claims_say_the_published_code_applies_no_whitening_and_are_judged_on_its_arm() -> None:
    from optimlab.reproduce.judging import code_claims, judge_all, judge_code_claims

    exp = load_paper_experiment("wgd-cifar100-resnet18")
    labels = [o["label"] for o in exp.experiment["optimizers"]]
    rng = __import__("numpy").random.default_rng(0)
    runs = _results({lab: list(0.3 + rng.normal(0, 0.01, 12)) for lab in labels}, "accuracy")
    nadam = next(r for r in judge_all(exp, runs) if r.claim.optimizer == "wgd-nadam")
    assert "no whitening" in nadam.notes[0] and any("not tested" in n for n in nadam.notes)
    assert nadam.verdict != SMALLER  # the paper's figure came from other code: not a yardstick for this rule
    arms = {c.optimizer: r for c, r in zip(code_claims(exp), judge_code_claims(exp, runs))}
    nadam_code = arms["wgd-nadam-code"]
    assert set(arms) == {"wgd-nadam-code", "wgd-radam-code"} and nadam_code is not None
    assert nadam_code.paper_optimizer == 0.4527
    older = [r for r in runs if not r.label.endswith("-code")]  # a folder made before the arms existed
    assert all(r is None for r in judge_code_claims(exp, older))


def test_the_data_line_names_a_class_count_only_where_the_task_has_classes(mnist5k, womens_reviews):
    """Key-point regression has no classes: its data line must not say "0 classes"; the text task's does say 6."""
    from optimlab.reproduce.run import describe_data

    kp = describe_data(resolve_config(load_paper_experiment("tmsgd-keypoints-youtubefaces"), "cpu", data_dir=mnist5k))
    assert kp["num_classes"] == 0
    assert "classes" not in kp["description"] and "key points per" in kp["description"]
    text = describe_data(resolve_config(load_paper_experiment("tmsgd-text-r8"), "cpu", data_dir=womens_reviews))
    assert ", 6 classes;" in text["description"]


# ----------------------------------------------------------------------------------------------
# issue 23: sizes only on the paper's scale, both verdicts shown, equivalence, margins per claim


def _paper_scale_runs(name: str, shift: dict[str, float], sd: float = 0.004) -> list[RunResult]:
    """Runs of the paper-scale config of `name` (never trained): accuracy 0.5 + shift[label] + noise."""
    exp = load_paper_experiment(name)
    config = ExperimentConfig.from_dict({**exp.experiment_dict("paper"), "seeds": 12})
    rng = __import__("numpy").random.default_rng(3)
    noise = rng.normal(0, sd, 12)
    out = []
    for spec in config.runs():
        v = 0.5 + shift.get(spec.label, 0.0) + noise[spec.seed] + rng.normal(0, sd / 4)
        h = History(train_loss=[1.0], train_acc=[0.5], final={"accuracy": v, "loss": 1.0 - v})
        out.append(RunResult(spec.run_id, spec.label, spec.seed, spec.config, history=h))
    return out


def test_sizes_are_compared_with_the_papers_only_on_its_scale() -> None:
    from optimlab.reproduce.claim_runs import scale_mismatch
    from optimlab.reproduce.judging import judge_all
    from optimlab.reproduce.verdict import null_result_text, verdict_text

    exp = load_paper_experiment("wgd-cifar100-resnet50")
    paper = _paper_scale_runs(exp.name, {"wgd-adam": 0.0231, "radam": 0.0001})
    assert scale_mismatch(exp, paper) is None
    judged = {r.claim.optimizer: r for r in judge_all(exp, paper)}
    adam = judged["wgd-adam"]  # +2.31 against the paper's +4.39: survives, and the paper's size is rejected
    assert adam.verdict == SURVIVES_SMALLER and adam.small_holm_p < 0.05
    assert "**survives**, but **smaller than claimed** (the paper's +4.39 pts is rejected, p Holm" in verdict_text(adam)
    radam = judged["radam"]  # 0.01 pts against the paper's 0.14 with sd 0.1 pts: a size test is planned
    assert radam.seeds_needed is None or radam.seeds_needed >= 10
    # the same runs' design at CPU scale: different data set and epochs, so no size is compared
    cpu = _results({lab: [0.2 + 0.001 * i for i in range(12)] for lab in exp.labels}, "accuracy")
    why = scale_mismatch(exp, cpu)
    assert why is not None and "data set digits (paper: cifar100)" in why and "epochs" in why
    for r in judge_all(exp, cpu):
        assert r.magnitude_absent == why and math.isnan(r.small_holm_p) and r.seeds_needed is None
        assert "needs" not in null_result_text(r) and r.verdict not in (SMALLER, SURVIVES_SMALLER)


def test_equivalent_shows_its_margin_and_a_claim_may_set_its_own() -> None:
    from optimlab.reproduce.verdict import verdict_text

    claim = Claim("new matches old", "accuracy", "higher", "new", "old")
    base = [0.80 + 0.004 * i for i in range(12)]
    same = [b + (0.0005 if i % 2 else -0.0005) for i, b in enumerate(base)]
    r = judge_claim(claim, _results({"old": base, "new": same}, "accuracy"), {})
    assert r.verdict == EQUIVALENT and r.margin == 0.005  # the accuracy default: half a point
    assert verdict_text(r).startswith("**equivalent (within ±0.50 pts)** (two one-sided tests, p Holm ")
    assert r.equiv_holm_p < 0.05
    tight = Claim("new matches old", "accuracy", "higher", "new", "old", margin=0.0001)
    assert judge_claim(tight, _results({"old": base, "new": same}, "accuracy"), {}).verdict == INCONCLUSIVE


def test_catalogue_claim_margin_is_read_and_checked() -> None:
    import tomllib

    from optimlab.reproduce.catalog import CatalogError, _config_dir, _parse

    data = tomllib.loads(_config_dir().joinpath("tmsgd-ctr-avazu.toml").read_text(encoding="utf-8"))
    data["paper"]["claims"][0]["margin"] = 0.002
    assert _parse("tmsgd-ctr-avazu", data, "x.toml").paper.claims[0].margin == 0.002
    data["paper"]["claims"][0]["margin"] = -1
    with pytest.raises(CatalogError, match=r"x.toml: \[\[paper.claims\]\] #0: margin: .* > 0, got -1"):
        _parse("tmsgd-ctr-avazu", data, "x.toml")


def test_compare_decides_equivalent_only_with_a_margin() -> None:
    from optimlab.stats.summary import summarize

    base = [0.80 + 0.004 * i for i in range(12)]
    runs = _results({"old": base, "new": [b + (0.0005 if i % 2 else -0.0005) for i, b in enumerate(base)]}, "accuracy")
    plain = summarize(runs, "old", metrics=("accuracy",))
    assert plain.comparison("new").decision == "no difference shown"
    assert summarize(runs, "old", metrics=("accuracy",), margins={"accuracy": 0.005}).comparison("new").decision == (
        "equivalent"
    )


def test_the_sign_flip_companion_is_named_where_it_disagrees() -> None:
    """A sample where the t-test says 'survives' and the distribution-free sign-flip test, in the same
    budget, would not: the page names the disagreement."""
    d = [-0.0012, 0.0094, 0.0132, -0.015, 0.0178, 0.0198, -0.014, 0.019, -0.0005, 0.0211, 0.0134, 0.0163]
    claim = Claim("new beats old", "accuracy", "higher", "new", "old", margin=None)
    base = [0.5 + 0.01 * i for i in range(12)]
    r = judge_claim(claim, _results({"old": base, "new": [b + x for b, x in zip(base, d)]}, "accuracy"), {})
    assert r.verdict == SURVIVES and r.sign_flip_p > r.t_p
    assert r.companion is not None and "sign-flip" in r.companion and "'inconclusive'" in r.companion


def test_compare_margins_parse_with_one_clear_error() -> None:
    from optimlab.stats.margins import DEFAULT_MARGINS, parse_margins

    assert parse_margins(["defaults", "loss=0.01", "accuracy=0.002"]) == {
        **DEFAULT_MARGINS,
        "loss": 0.01,
        "accuracy": 0.002,
    }
    for bad, match in (("accuracy", "METRIC=M"), ("auc=x", "not a number"), ("auc=-0.1", "> 0")):
        with pytest.raises(ValueError, match=match):
            parse_margins([bad])


# ----------------------------------------------------------------------------------------------
# the results page: what ran, the page-wide family


def _cpu_run(name: str) -> tuple:
    """The catalogue's CPU-scale config and the reproduce.json lines the page reads (no data needed)."""
    from optimlab.report.display import DATASET_TITLES

    exp = load_paper_experiment(name)
    d = exp.experiment_dict("cpu")
    config = ExperimentConfig.from_dict({**d, "data_dir": "/nonexistent"})
    title = DATASET_TITLES.get(d["dataset"], d["dataset"])
    title += " subset" if d["dataset"] == "cifar10" else ""
    meta = {"dataset": d["dataset"], "dataset_title": title, "n_train": 1000, "description": title}
    return exp, config, {"scale": "cpu", **meta}


def test_deviations_name_every_changed_setting_and_the_judge_is_never_the_papers() -> None:
    from optimlab.reproduce.provenance import CPU_SETTINGS, PAPER_SETTINGS, deviations, judge_name
    from optimlab.reproduce.verdict import render

    exp, config, meta = _cpu_run("tmsgd-text-r8")
    devs = "; ".join(deviations(exp, config, meta))
    for setting in (
        "stands in for R8",  # data
        "width 0.25 (paper 1)",
        "epochs 6 (paper 120)",
        "at most 200 steps of 16 per epoch (paper: full epochs, batch 5)",
        "TM-SGD switch at epoch 6 of 6 (paper 100 of 120)",
        "lr sgd 1 (paper 0.01), tmsgd 1 (paper 0.01), sgdm 0.1 (paper 0.01)",
    ):
        assert setting in devs
    assert "adam" not in devs.split("lr ")[-1]  # Adam runs at the paper's lr: not listed as changed
    meta["deviations"] = deviations(exp, config, meta)
    assert judge_name(meta) == CPU_SETTINGS
    text = render(exp, meta, [], "optimlab reproduce tmsgd-text-r8")
    assert "## Claims at CPU-scale settings" in text and PAPER_SETTINGS not in text
    assert "TM-SGD switch at epoch 6 of 6" in text  # the banner names every deviation too
    paper = ExperimentConfig.from_dict(exp.experiment_dict("paper"))
    same = {"scale": "paper", "dataset": "r8"}
    assert deviations(exp, paper, same) == [] and judge_name(same) == PAPER_SETTINGS


def test_cifar100_experiments_at_cpu_scale_are_named_stand_ins_and_repeats_are_found() -> None:
    from optimlab.reproduce.page import repeated_designs
    from optimlab.reproduce.provenance import arm_kinds, stand_in_title

    exp, config, meta = _cpu_run("wgd-cifar100-resnet18")
    assert stand_in_title(exp, meta) == "CIFAR-100 experiment, run at CPU scale on the CIFAR-10 subset stand-in"
    kinds = arm_kinds(config)
    assert kinds["wgd-sgdm"] == "the authors' per-filter mean (wgd_mode='filter')"
    assert kinds["wgd-nadam-code"] == "the authors' published code" and "sgdm" not in kinds
    own = _cpu_run("tmsgd-cifar10-resnet18")
    assert stand_in_title(own[0], own[2]) is None
    design = {"design": "same"}
    judged: list[Judged] = [
        (load_paper_experiment("tmsgd-cifar100-resnet18"), {**design, "stand_in": "x"}, [], None),
        (own[0], dict(design), [], None),
        (exp, {"design": "other"}, [], None),
    ]
    assert repeated_designs(judged) == {"tmsgd-cifar100-resnet18": "tmsgd-cifar10-resnet18"}


def test_page_wide_holm_counts_every_claim_through_inference() -> None:
    from optimlab.reproduce.pagewide import judge_page
    from optimlab.stats import inference

    exp = load_paper_experiment("rsgdm-cifar10-resnet18")
    claim = exp.paper.claims[0]
    modest = [0.01, 0.05, -0.01, 0.04, 0.03, 0.0, 0.06, -0.02, 0.02, 0.04]  # paired t p 0.028 alone
    strong = [0.05 + 0.001 * i for i in range(10)]
    judged: list[Judged] = []
    for diffs in [modest] * 11 + [strong]:
        runs = _results({"rsgdm": [0.3 + x for x in diffs], "sgdm-ema": [0.3] * 10}, "accuracy")
        judged.append((exp, {"code_claims": []}, judge_claims([claim], runs, {}), None))
    assert all(j[2][0].verdict == SURVIVES for j in judged)  # each survives in its own family of one
    page = judge_page(judged)
    assert len(page.claims) == 12 and len(page.survivors) == 1  # the page-wide family keeps only the strong one
    assert page.counts()[SURVIVES] == 1
    # the page's adjusted p is never below the experiment's: the family only grew
    assert all(c.page_p >= j[2][0].holm_p for c, j in zip(page.claims, judged))
    assert page.claims[0].page_verdict == inference.INCONCLUSIVE and page.claims[-1].page_verdict == SURVIVES


@pytest.mark.skipif(not (REPO / "results").is_dir(), reason="the committed results/ folders are absent")
def test_the_results_page_from_the_committed_runs(tmp_path: Path) -> None:
    from optimlab.reproduce.page import write_results_page

    folders = sorted((REPO / "results").glob("reproduce-*-cpu"))
    page = write_results_page(folders, tmp_path / "results.md", write_verdicts=False)
    text = page.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) < 500 and text.count("## How the verdicts are decided") == 1
    assert "45-95" not in text and "30.08 % (003 Table 8)" in text
    rows = [ln for ln in lines if ln.startswith("| [")]
    assert rows and not any("paper's settings" in ln for ln in rows)
    gan = [ln for ln in rows if ln.startswith("| [tmsgd-gan-sneakers]")]
    assert len(gan) == 4 and "0.081 vs 0.0925" in gan[0] and "no figures" not in text
    text_r8 = next(ln for ln in rows if ln.startswith("| [tmsgd-text-r8]") and "vs adam" in ln)
    assert "lr sgd 1 (paper 0.01), tmsgd 1 (paper 0.01), sgdm 0.1 (paper 0.01)" in text_r8
    assert "TM-SGD switch at epoch 6 of 6" in text_r8 and "**contradicted** at CPU-scale settings" in text_r8
    c100 = [ln for ln in rows if "cifar100" in ln.split("|")[1]]
    assert c100 and all("CIFAR-100 experiment, run at CPU scale on the CIFAR-10 subset stand-in" in ln for ln in c100)
    assert "tmsgd-cifar100-resnet18 at CPU scale repeats tmsgd-cifar10-resnet18 on other seeds" in text
    assert "standing in for CIFAR-100 (rsgdm-cifar100-resnet50" in text
    assert "Eq. 11" in text and 'wgd_mode = "kernel"' in text and "was **not run**" in text
    m = __import__("re").search(r"This page judges \*\*(\d+) claims\*\*.*?\*\*(\d+) of \1 survive\*\*", text)
    tuned = [ln for ln in rows if "**" in ln.split("|")[-2]]  # a tuned verdict of its own (not the same runs)
    assert m is not None and int(m.group(1)) == len(rows) + len(tuned) and int(m.group(2)) < int(m.group(1))
    assert "runs committed in" in text or "runs made by the code of" in text
