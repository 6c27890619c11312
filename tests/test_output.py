"""What a person reads: the headline table fitted to the terminal, the rerun and kernel-build lines."""

from __future__ import annotations

import io

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
