"""What a person reads: the headline table fitted to the terminal, the rerun and kernel-build lines."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from optimlab.cli.tables import SECONDARY, print_fitted

HEADERS = [
    "optimizer",
    "runs",
    "failed [exact 95% CI]",
    "accuracy % [95% CI]",
    "Δ vs sgdm-ema pp [paired-t 95% CI]",
    "p (paired t)",
    "p Holm",
    "decision",
    "wins/seeds",
    "step ms",
]
ROWS = [
    ["sgdm-ema", "10", "0/10 [0–31 %]", "97.40 [96.12, 98.68]", "baseline", "", "", "", "", "20.75"],
    [
        "rsgdm",
        "10",
        "0/10 [0–31 %]",
        "99.11 [97.88, 100.00*]",
        "+1.71 [+0.80, +2.62]",
        "0.002",
        "0.004",
        "better",
        "9/10",
        "17.55",
    ],
    [
        "adam",
        "10",
        "1/10 [0–45 %]",
        "96.02 [94.90, 97.14]",
        "-1.38 [-3.02, +0.26]",
        "0.090",
        "0.180",
        "no difference",
        "3/10",
        "19.02",
    ],
    [
        "tmsgd",
        "3",
        "0/3 [0–71 %]",
        "97.00 [90.10, 100.00*]",
        "-0.40 [-9.80, +9.00]",
        "0.800",
        "0.800",
        "too few seeds",
        "1/3",
        "18.10",
    ],
]


def _render(width: int, wide: bool = False) -> str:
    con = Console(width=width, record=True, file=io.StringIO(), soft_wrap=False, highlight=False)
    print_fitted(con, "custom: digits / mlp — final test accuracy", HEADERS, ROWS, wide)
    return con.export_text()


@pytest.mark.parametrize("width", [80, 100, 200])
def test_the_table_fits_the_terminal_and_cuts_no_cell(width):
    text = _render(width)
    assert "…" not in text and "..." not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    words = " ".join(text.split())  # a cell folded onto two lines still reads whole
    for word in ("better", "no difference", "too few seeds", "baseline", "100.00*]", "+1.71", "Holm"):
        assert word in words, (width, word)
    assert words.count("*") >= 2  # the clip mark of both clipped intervals


def test_a_narrow_terminal_drops_secondary_columns_and_says_which():
    narrow, full = _render(100), _render(200)
    assert "wins/seeds" in full and "p (paired t)" in full and "9/10" in full and "not shown" not in full
    assert "9/10" not in narrow and "not shown: p (paired t), wins/seeds" in " ".join(narrow.split())
    assert "--wide" in narrow
    # only secondary columns go
    assert all(header in {h for h, _ in SECONDARY} for header in ("p (paired t)", "wins/seeds"))


def test_wide_keeps_every_column_on_one_line_per_row():
    text = _render(80, wide=True)
    assert "not shown" not in text and "…" not in text
    for row in ROWS:
        line = next(ln for ln in text.splitlines() if ln.startswith(f"│ {row[0]} "))
        assert all(cell in line for cell in row if cell), line


def test_a_rerun_says_how_many_runs_were_finished(capsys):
    from optimlab.experiments.sweep import _Progress

    with _Progress(6, 4, enabled=True):
        pass
    assert "4 of 6 runs already finished; running the other 2" in capsys.readouterr().err
    with _Progress(6, 0, enabled=True):
        pass
    assert "already finished" not in capsys.readouterr().err


def test_the_kernel_build_says_so_only_when_it_compiles(tmp_path, monkeypatch, capsys):
    import torch.utils.cpp_extension as cpp

    from optimlab.optim import compiled

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.delenv("OPTIMLAB_NO_FUSED", raising=False)
    monkeypatch.setattr(cpp, "load", lambda **kw: "module")  # no compiler run: only the message is tested
    assert compiled._build() == "module"
    err = capsys.readouterr().err
    assert "building the compiled kernel" in err and "compiled kernel built in" in err
    name = compiled._extension_name()
    (tmp_path / name).mkdir()
    (tmp_path / name / f"{name}.so").write_bytes(b"")
    assert compiled._build() == "module"
    assert capsys.readouterr().err == ""  # a cached build loads silently


TINY = ["--model", "mlp", "--epochs", "1", "--batch-size", "64", "--max-steps-per-epoch", "3"]


def test_adding_seeds_says_what_was_finished_and_warns_of_the_earlier_look(tmp_path, capsys):
    from optimlab.cli import main

    argv = [
        "compare",
        *TINY,
        "--optimizers",
        "sgdm:lr=0.1",
        "adam:lr=1e-3",
        "--workers",
        "1",
        "--no-tensorboard",
        "--out",
        str(tmp_path),
    ]
    assert main([*argv, "--seeds", "2", "--quiet"]) == 0
    assert "earlier looks" not in capsys.readouterr().err
    assert main([*argv, "--seeds", "3"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "4 of 6 runs already finished; running the other 2" in err
    assert "optimlab: warning: earlier looks: this folder's statistics were already reported at [2] seeds" in err


def test_train_prints_accuracy_in_percent(tmp_path, capsys):
    from optimlab.cli import main

    assert main(["train", *TINY, "--optimizer", "sgdm:lr=0.1", "--quiet", "--out", str(tmp_path / "r")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "│ accuracy %" in line)
    cells = [c.strip() for c in row.split("│")[2:4]]
    assert all(len(c.split(".")[1]) == 2 and 1 <= float(c) <= 100 for c in cells), row  # 97.55, not 0.9755


def test_learning_curves_stay_in_range_with_whole_epochs_and_plain_log_labels(tmp_path, monkeypatch):
    from optimlab.experiments.config import ExperimentConfig
    from optimlab.experiments.results import RunResult
    from optimlab.report import plots
    from optimlab.train.config import History

    drawn: dict[str, Any] = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.setdefault("fig", fig) and path)
    config = ExperimentConfig.from_dict(
        {"name": "t", "model": "mlp", "optimizers": [{"name": "sgdm"}], "seeds": [0, 1]}
    )
    spec = config.runs()[0]
    runs = [  # accuracy near 1 with a wide spread: mean + std lies past 100 %
        RunResult(f"r{s}", "sgdm", s, spec.config, history=History(train_loss=loss, test_acc=acc))
        for s, (acc, loss) in enumerate(
            [([0.9, 0.99, 1.0, 1.0], [2.3, 2.1, 1.9, 1.8]), ([0.7, 0.9, 0.95, 0.96], [2.2, 2.0, 1.95, 1.7])]
        )
    ]
    assert plots.learning_curves(runs, config, tmp_path / "c.png") is not None
    fig = drawn["fig"]
    fig.canvas.draw()
    ax_acc, ax_loss = fig.axes
    band = ax_acc.collections[0].get_paths()[0].vertices[:, 1]
    assert band.max() <= 100.0 and band.min() >= 0.0
    for ax in (ax_acc, ax_loss):
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert labels and all(float(x.replace("−", "-")).is_integer() for x in labels), labels
    log_labels = [t.get_text() for t in ax_loss.get_yticklabels(which="both") if t.get_text()]
    assert log_labels and not any("times" in x or "^" in x or "×" in x for x in log_labels), log_labels


def test_the_progress_bar_shows_accuracy_in_percent():
    from optimlab.train.loop import curve_text

    assert curve_text("accuracy", 0.9755) == "val accuracy 97.55 %"
    assert curve_text("mse", 0.01234) == "val mse 0.01234"  # not a percent metric: as it is
