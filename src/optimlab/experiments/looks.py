"""Run planned looks: add seeds until every comparison is decided (--until-decided), and keep the files.

    record = run_until_decided(config, out, looks=plan_looks(10, 30, 5), run=..., decide=...)

The statistics of a look (plan_looks, obf_spending, the decisions) are optimlab.stats; this module
runs the sweeps and writes out/sequential.json and out/looks.json.

Looking at a comparison, adding seeds because it was not significant, and looking again is a
second test: with fixed-n p-values at every look the chance of a false "survives" grows with each
look (tests/test_inference_calibration.py measures 0.025 -> above 0.05 over five looks). Here the
looks are planned up front (min_seeds, min_seeds + step, ..., max_seeds) and look k tests at its
share alpha_k of the family-wise alpha (inference.obf_spending, O'Brien-Fleming-type spending:
little at the early looks, most at the last). The shares add up to alpha, so by the union bound the
chance of any false decision over all the looks is at most alpha. A decision made at a look is
final; the run stops once every comparison is decided or max_seeds is reached.

The record (looks, shares, decisions with the look that made them) is written to
out/sequential.json after every look, so an interrupted run resumes where it was: the sweep skips
finished runs and the decisions already made are kept.

Plain fixed-n reruns are tracked too: every report written for a folder appends its seed count to
out/looks.json, and a report over more seeds than an earlier one says that earlier looks happened.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optimlab.experiments.config import ExperimentConfig
from optimlab.experiments.results import write_json_atomic
from optimlab.stats.inference import DECISIVE, obf_spending

SEQUENTIAL_FILE = "sequential.json"
LOOKS_FILE = "looks.json"
DEFAULT_LOOK_STEP = 5  # seeds added between looks

__all__ = [
    "SEQUENTIAL_FILE",
    "LOOKS_FILE",
    "DEFAULT_LOOK_STEP",
    "extend_seeds",
    "run_until_decided",
    "read_sequential",
    "record_look",
    "earlier_looks",
]


def extend_seeds(seeds: tuple[int, ...], total: int) -> tuple[int, ...]:
    """The first `total` seeds: the configured ones, then consecutive seeds after the largest."""
    out = list(seeds[:total])
    nxt = max(seeds) + 1 if seeds else 0
    while len(out) < total:
        out.append(nxt)
        nxt += 1
    return tuple(out)


def run_until_decided(
    config: ExperimentConfig,
    out_dir: str | Path,
    looks: list[int],
    run: Callable[[ExperimentConfig], Any],
    decide: Callable[[ExperimentConfig, float], dict[str, str]],
) -> dict[str, Any]:
    """Run the planned looks: at each, `run(config with n seeds)` then `decide(that config, alpha_k)`
    -> {comparison key: verdict}; a verdict in inference.DECISIVE is kept as final. Returns (and
    writes to out/sequential.json) the record."""
    out = Path(out_dir)
    shares = obf_spending(looks)
    old = read_sequential(out)
    if old is not None and old.get("looks") != looks:
        raise ValueError(
            f"{out} was run with --until-decided looks {old.get('looks')}; this run plans {looks}. "
            "Keep the same --min-seeds/--max-seeds/--look-step (or use another --out): changing the "
            "plan after looking invalidates the error rate"
        )
    decisions: dict[str, dict[str, Any]] = dict(old.get("decisions", {})) if old else {}
    record: dict[str, Any] = {}
    for n, alpha in zip(looks, shares):
        cfg = config.replace(seeds=extend_seeds(tuple(config.seeds), n))
        run(cfg)
        verdicts = decide(cfg, alpha)
        for key, verdict in verdicts.items():
            if key not in decisions and verdict in DECISIVE:
                decisions[key] = {"verdict": verdict, "look": n, "alpha": alpha}
        done = all(k in decisions for k in verdicts)
        record = {
            "looks": looks,
            "alphas": shares,
            "decisions": decisions,
            "looked": [m for m in looks if m <= n],
            "stopped_at": n,
            "seeds": list(cfg.seeds),
            "reason": "every comparison decided"
            if done
            else ("the seed budget (--max-seeds) is spent" if n == looks[-1] else "in progress"),
        }
        write_json_atomic(out / SEQUENTIAL_FILE, record)
        if done:
            break
    return record


def read_sequential(out_dir: str | Path) -> dict[str, Any] | None:
    path = Path(out_dir) / SEQUENTIAL_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def record_look(out_dir: str | Path, n_seeds: int) -> None:
    """Append a fixed-n look at n_seeds to out/looks.json (a repeat of the last look is not a new look)."""
    path = Path(out_dir) / LOOKS_FILE
    seen = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    if not seen or seen[-1] != n_seeds:
        write_json_atomic(path, [*seen, n_seeds])


def earlier_looks(out_dir: str | Path, n_seeds: int) -> list[int]:
    """Seed counts below n_seeds at which statistics of this folder were already reported, outside a
    planned sequential run (whose looks are accounted for)."""
    path = Path(out_dir) / LOOKS_FILE
    seen = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    planned = set((read_sequential(out_dir) or {}).get("looks", []))
    return sorted({n for n in seen if n < n_seeds and n not in planned})
