"""The optimizer benchmark's smoke run (--quick on the tiny layout): every row has its figures, and
the torch reference rows are 1.0 against themselves."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_optimizers.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_optimizers", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_quick_run_prints_a_table_with_ratios_fractions_and_load(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_bench()
    threads = torch.get_num_threads()
    try:
        rows = bench.main(["--quick", "--layouts", "tiny", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "load average" in out and "bandwidth probe" in out and "smoke test" in out
    assert len(rows) == len(bench.steps_for("tiny"))
    for r in rows:
        assert len(r["ms"]) == 2 and all(t > 0 for t in r["ms"]) and all(f > 0 for f in r["frac"])
        if r["step"].startswith("torch") and "foreach" in r["step"]:
            assert r["x_foreach"] == [1.0, 1.0]
    assert "fused=True kernel: ready" in out and any("fused=True" in r["step"] for r in rows)
    assert len(bench.many_small_shapes()) == 3600 and len(bench.resnet18_cifar_shapes()) == 62
    assert len(bench.LAYOUTS["blocks324"]()) == 324
    assert sum(torch.Size(s).numel() for s in bench.resnet18_cifar_shapes()) == 11_173_962


def test_bad_arguments_are_refused_before_any_work() -> None:
    bench = load_bench()
    with pytest.raises(SystemExit):
        bench.parse_args(["--rounds", "0"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--layouts", "nope"])
