"""benchmarks/gpu_check.py off the GPU: it refuses clearly without CUDA (exit 2, one line, nothing
written), checks its arguments, and its --dry-run writes the JSON and Markdown it would write on a GPU."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the script would measure, not refuse")
def test_refuses_without_cuda_with_one_line_and_exit_2(tmp_path: Path) -> None:
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a CUDA GPU" in lines[0] and "--dry-run" in lines[0]
    assert not out.exists()


def test_bad_arguments_are_refused() -> None:
    gc = load()
    with pytest.raises(SystemExit):
        gc.parse_args(["--budget-s", "0"])
    with pytest.raises(SystemExit):
        gc.parse_args(["--rounds", "-1"])
    args = gc.parse_args(["--dry-run"])
    assert (args.device, args.rounds, args.epochs) == ("cpu", 2, 1)


def test_writer_keeps_every_section_and_marks_what_was_skipped_or_failed(tmp_path: Path) -> None:
    gc = load()
    result = {
        "torch": "x",
        "device_name": "GPU-NAME",
        "note": "n",
        "steps": [
            {
                "optimizer": "rsgdm",
                "dtype": "bfloat16",
                "error": None,
                "median_ms": 1.5,
                "x_foreach": 0.8,
                "x_fused": 1.2,
            },
            {"optimizer": "tmsgd", "dtype": "bfloat16", "error": "TypeError: no bf16"},
        ],
        "epochs": [
            {"setup": "plain", "first_epoch_s": 3.0, "later_epoch_s": 2.0, "step_ms": 9.0, "test_acc": 0.5},
            {"setup": "compiled", "skipped": "time budget spent"},
        ],
        "compare": [{"optimizer": "rsgdm", "seed": 0, "val_acc": [0.2, 0.4], "test_acc": [0.3, 0.45]}],
        "errors": {"compare": "RuntimeError: boom"},
    }
    json_path, md_path = gc.write_outputs(tmp_path / "o", result)
    assert json.loads(json_path.read_text()) == result
    md = md_path.read_text()
    assert "# GPU check — GPU-NAME" in md
    assert "| rsgdm | bfloat16 | 1.50 | 0.800 | 1.200 |  |" in md
    assert "| tmsgd | bfloat16 | — | — | — | TypeError: no bf16 |" in md
    assert "| compiled | skipped: time budget spent |" in md
    assert "| rsgdm | 0 | 0.400 | 0.450 |" in md
    assert "- compare: RuntimeError: boom" in md


@pytest.mark.slow
def test_dry_run_writes_json_and_markdown_for_every_section(tmp_path: Path) -> None:
    gc = load()
    threads = torch.get_num_threads()
    try:
        result = gc.main(["--dry-run", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    assert result["errors"] == {}
    names = {r["optimizer"] for r in result["steps"]}
    assert {"rsgdm", "sgdm-ema", "tmsgd", "wgd-sgdm", "torch-sgdm-fused", "torch-adam-foreach"} <= names
    assert {r["dtype"] for r in result["steps"]} == {"float32", "bfloat16"}
    assert any(r.get("x_fused") for r in result["steps"])
    assert [r["setup"] for r in result["epochs"]] == list(gc.ACCEL)
    assert len(result["compare"]) == 4 and all(len(r["test_acc"]) == 1 for r in result["compare"])
    assert json.loads((tmp_path / "gpu_check.json").read_text())["steps"] == result["steps"]
    assert "RSGDM vs SGDM-EMA" in (tmp_path / "gpu_check.md").read_text()
