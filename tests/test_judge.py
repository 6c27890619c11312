"""optimlab judge: runs made elsewhere judged by compare's statistics (optimlab.judging, cli/judge.py)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import optimlab
from optimlab.cli import main
from optimlab.judging import VERDICT_KEYS, JudgeError, judge
from optimlab.stats.permutation import sign_flip_p

SEEDS = range(12)
# three optimizers x 12 seeds: "fast" is clearly better than "base", "same" is not different; seed 5 of
# "same" failed (an empty cell)
EFFECTS = {"base": 0.0, "fast": 0.01, "same": 0.0005}


def _values() -> dict[str, list[float]]:
    rng = np.random.default_rng(7)
    seed_effect = rng.normal(0.0, 0.01, len(SEEDS))
    return {
        name: [float(0.9 + seed_effect[s] + effect + rng.normal(0, 0.003)) for s in SEEDS]
        for name, effect in EFFECTS.items()
    }


FAILED = ("same", 5)


def _write_csv(path: Path, values: dict[str, list[float]], metric: str = "accuracy") -> Path:
    lines = [f"optimizer,seed,{metric}"]
    for name, vs in values.items():
        lines += [f"{name},{s},{'' if (name, s) == FAILED else repr(v)}" for s, v in zip(SEEDS, vs)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _hand_holm(p: list[float]) -> list[float]:
    """Holm by hand for a family of two: the smaller p times 2, the larger at least that."""
    assert len(p) == 2
    lo, hi = sorted(range(2), key=lambda i: p[i])
    out = [0.0, 0.0]
    out[lo] = min(1.0, 2 * p[lo])
    out[hi] = min(1.0, max(out[lo], p[hi]))
    return out


def test_numbers_are_scipys_paired_t_and_a_hand_computed_holm(tmp_path):
    values = _values()
    j = judge(_write_csv(tmp_path / "runs.csv", values), baseline="base")
    got = {v["optimizer"]: v for v in j.verdicts()}
    assert list(got) == ["fast", "same"]
    raw = {}
    for name in ("fast", "same"):
        # issue 23 (was: seed 5 of "same" left out, n == 11): the failed run counts at the worst value
        # either arm reached, and the comparison's direction p is the sign-flip test's
        worst = min(min(values[name][s] for s in SEEDS if (name, s) != FAILED), min(values["base"]))
        a = np.array([worst if (name, s) == FAILED else values[name][s] for s in SEEDS])
        b = np.array([values["base"][s] for s in SEEDS])
        t = stats.ttest_rel(a, b)
        ci = t.confidence_interval(0.95)
        v = got[name]
        assert v["n"] == len(SEEDS)
        assert v["diff"] == pytest.approx(float(np.mean(a - b)), rel=1e-12)
        assert (v["ci_low"], v["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
        assert v["p"] == pytest.approx(t.pvalue, rel=1e-9)
        raw[name] = float(sign_flip_p(a - b)) if name == FAILED[0] else t.pvalue
    holm = _hand_holm([raw["fast"], raw["same"]])
    assert got["fast"]["p_holm"] == pytest.approx(holm[0], rel=1e-9)
    assert got["same"]["p_holm"] == pytest.approx(holm[1], rel=1e-9)
    assert (got["fast"]["decision"], got["same"]["decision"]) == ("better", "no difference shown")
    failed = j.summary.group("same").failures
    assert (failed.k, failed.n) == (1, 12)


def test_direction_known_metric_unknown_metric_and_the_flag(tmp_path):
    values = _values()
    # an unknown metric is higher-is-better unless asked: "fast" has the higher values
    assert judge(_write_csv(tmp_path / "a.csv", values, "score"), "base").verdicts()[0]["decision"] == "better"
    flipped = judge(tmp_path / "a.csv", "base", lower_is_better=True)
    assert flipped.verdicts()[0]["decision"] == "worse" and flipped.lower_is_better
    assert flipped.verdicts()[0]["diff"] > 0  # diff stays optimizer − baseline in the metric's unit
    # a known lower-is-better metric needs no flag; the contradicting flag is an error
    assert judge(_write_csv(tmp_path / "b.csv", values, "loss"), "base").verdicts()[0]["decision"] == "worse"
    with pytest.raises(JudgeError, match="lower-is-better in optimlab"):
        judge(tmp_path / "b.csv", "base", lower_is_better=False)
    with pytest.raises(JudgeError, match="higher-is-better in optimlab"):
        judge(_write_csv(tmp_path / "c.csv", values), "base", lower_is_better=True)


def _bad(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    return path


GOOD_HEAD = "optimizer,seed,accuracy\nbase,0,0.9\nbase,1,0.91\nfast,0,0.92\n"


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        (GOOD_HEAD + "fast,0,0.93\n", [], "bad.csv row 5: optimizer 'fast' has seed 0 twice (also row 4)"),
        (GOOD_HEAD + "fast,1,0.9x\n", [], "bad.csv row 5: accuracy '0.9x' is not a number"),
        (GOOD_HEAD + "fast,one,0.93\n", [], "bad.csv row 5: seed 'one' is not an integer"),
        (GOOD_HEAD + "fast,1,91.3\n", [], "bad.csv row 5: accuracy 91.3 is outside optimlab's range"),
        (GOOD_HEAD + ",1,0.93\n", [], "bad.csv row 5: no optimizer name"),
        (GOOD_HEAD + "fast,1\n", [], "bad.csv row 5: 2 cells, but the header has 3 columns"),
        (GOOD_HEAD, ["--baseline", "sgd"], "unknown baseline 'sgd'; optimizers: base, fast"),
        ("name,seed,accuracy\nbase,0,0.9\n", [], "no 'optimizer' column (columns: name, seed, accuracy)"),
        ("optimizer,run,accuracy\nbase,0,0.9\n", [], "no 'seed' column"),
        ("optimizer,seed,accuracy,loss\nbase,0,0.9,1\n", [], "several metric columns (accuracy, loss); choose one"),
        (GOOD_HEAD, ["--metric", "loss"], "no column 'loss'; metric columns: accuracy"),
        (GOOD_HEAD, ["--lower-is-better"], "'accuracy' is higher-is-better in optimlab"),
        ("optimizer,seed,accuracy\n", [], "no runs (only a header)"),
    ],
)
def test_bad_files_exit_2_with_one_line_naming_the_row(tmp_path, capsys, text, args, expected):
    path = _bad(tmp_path, text)
    argv = ["judge", str(path), *(args if "--baseline" in args else ["--baseline", "base", *args])]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("optimlab: error: ") and expected in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_a_binary_file_is_named(tmp_path, capsys):
    path = tmp_path / "runs.xlsx"
    path.write_bytes(b"PK\x03\x04\xff\xfe" + bytes(range(128, 256)))
    assert main(["judge", str(path), "--baseline", "base", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "runs.xlsx: not a CSV text file (UnicodeDecodeError" in err and len(err.strip().splitlines()) == 1


def _run_result(label: str, seed: int, accuracy: float | None):
    from optimlab.experiments.results import RunResult
    from optimlab.train.config import History, TrainConfig

    config = TrainConfig(dataset="digits", model="mlp", optimizer=label, epochs=3)
    if accuracy is None:  # a diverged run: what a missing cell stands for
        history = History(final={"accuracy": 0.1, "loss": math.nan}, diverged_epoch=2, step_time_s=0.001)
    else:
        history = History(final={"accuracy": accuracy, "loss": 1 - accuracy}, step_time_s=0.001)
    return RunResult(f"digits-mlp-{label}-s{seed}", label, seed, config, history=history)


def test_a_folder_of_run_jsons_is_judged_like_the_csv_of_the_same_numbers(tmp_path):
    values = _values()
    runs = tmp_path / "exp" / "runs"
    runs.mkdir(parents=True)
    for name, vs in values.items():
        for s, v in zip(SEEDS, vs):
            r = _run_result(name, s, None if (name, s) == FAILED else v)
            (runs / f"{r.run_id}.json").write_text(json.dumps(r.to_dict()), encoding="utf-8")
    from_folder = judge(tmp_path / "exp", "base")  # metric: the classification task's headline, accuracy
    from_csv = judge(_write_csv(tmp_path / "runs.csv", values), "base")
    assert from_folder.metric == "accuracy" and from_folder.verdicts() == from_csv.verdicts()
    assert judge(runs, "base").verdicts() == from_csv.verdicts()  # the runs/ folder itself
    assert [row[:-1] for row in from_folder.table()[1]] == [row for row in from_csv.table()[1]]  # + step ms
    assert judge(runs, "base", "loss").verdicts()[0]["decision"] == "better"  # lower loss wins
    # an error file beside a finished run is an old attempt (ignored); one alone is a failed run
    crashed = _run_result("fast", 0, 0.5).to_dict() | {"status": "error", "history": None, "error": "boom"}
    (runs / "digits-mlp-fast-s0.error.json").write_text(json.dumps(crashed), encoding="utf-8")
    assert judge(runs, "base").verdicts() == from_csv.verdicts()
    crashed |= {"run_id": "digits-mlp-fast-s12", "seed": 12}
    (runs / "digits-mlp-fast-s12.error.json").write_text(json.dumps(crashed), encoding="utf-8")
    failures = judge(runs, "base").summary.group("fast").failures
    assert (failures.k, failures.n) == (1, 13)
    (tmp_path / "exp" / "experiment.json").write_text("{}", encoding="utf-8")  # read from runs/, so ignored
    with pytest.raises(JudgeError, match="is an experiment folder"):
        judge(tmp_path / "exp", "base", out=tmp_path / "exp")  # would overwrite compare's report.md
    assert not (tmp_path / "exp" / "report.md").exists()
    (runs / "notes.json").write_text("{}", encoding="utf-8")
    with pytest.raises(JudgeError, match=r"notes.json: not an optimlab run file"):
        judge(runs, "base")


class FakeFrame:
    """What judge reads of a data frame: .to_dict("records") (as pandas gives it: NaN for missing)."""

    def __init__(self, rows):
        self.rows = rows

    def to_dict(self, orient: str):
        assert orient == "records"
        return self.rows


def test_rows_and_a_data_frame_like_object(tmp_path):
    values = _values()
    rows = [
        {"optimizer": name, "seed": np.int64(s), "accuracy": np.float64(math.nan if (name, s) == FAILED else v)}
        for name, vs in values.items()
        for s, v in zip(SEEDS, vs)
    ]
    expected = judge(_write_csv(tmp_path / "runs.csv", values), "base").verdicts()
    assert judge(FakeFrame(rows), "base").verdicts() == expected
    assert optimlab.judge(rows, "base").verdicts() == expected  # the lazy root export is the function
    rows[3] = {**rows[3], "accuracy": "high"}
    with pytest.raises(JudgeError, match=r"records record 3: accuracy 'high' is not a number"):
        judge(rows, "base")


def test_cli_end_to_end_writes_report_and_exact_json_keys(tmp_path):
    path = _write_csv(tmp_path / "theirs.csv", _values())
    out = tmp_path / "judged"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "optimlab.cli", "judge", str(path), "--baseline", "base", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    fast = next(line for line in r.stdout.splitlines() if "│ fast " in line)
    assert "better" in fast and "12/12" in fast
    assert "MDE (80% power)" in r.stdout and "same: 1 of 12 runs failed (seeds [5])" in r.stdout
    verdicts = json.loads((out / "judgement.json").read_text())
    assert [set(v) for v in verdicts] == [set(VERDICT_KEYS)] * 2
    report = (out / "report.md").read_text()
    assert "| fast | 12 | 0/12" in report and "| better |" in report and "Baseline: **base**" in report


def test_import_optimlab_stays_torch_free():
    code = "import sys, optimlab; assert callable(optimlab.__getattr__); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_example_is_reproducible_and_its_readme_shows_the_output(tmp_path, capsys, monkeypatch):
    import runpy

    example = Path(__file__).resolve().parents[1] / "examples" / "judge"
    make_runs = runpy.run_path(str(example / "make_runs.py"))["main"]
    assert make_runs(tmp_path / "again.csv").read_bytes() == (example / "their_runs.csv").read_bytes()
    monkeypatch.chdir(example.parents[1])
    argv = ["judge", "examples/judge/their_runs.csv", "--baseline", "sgdm", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    readme = (example / "README.md").read_text(encoding="utf-8")
    rows = [line.rstrip() for line in capsys.readouterr().out.splitlines() if line.startswith("│")]
    assert len(rows) == 3 and all(row in readme for row in rows)
