"""Runs optimlab did not make, read into records the statistics accept (optimlab.stats.summary.RunRecord).

Where runs come from:

- a CSV file in long form: a header row with `optimizer`, `seed`, then one column per metric, and
  one row per run (`optimizer,seed,accuracy` / `adam,0,0.913`);
- the same rows from Python: a list of mappings, or a data frame (anything with
  `.to_dict("records")`, so pandas and polars work without optimlab depending on either);
- a folder of optimlab run JSONs (an experiment folder, its `runs/`, or any folder of run files),
  or RunRecord objects themselves (e.g. the RunResults of `optimlab.experiments.load_results`).

A missing value (an empty cell, nan, NA, N/A, null, None) or an infinite one is a failed run: it
counts in the failure rate, is left out of the optimizer's mean and interval, counts at the worst
value either arm reached in the paired comparison (optimlab.stats.summary), and loses its seed to a
finished run in wins/seeds (a diverged run of optimlab's own is treated the same way). A value of a metric
optimlab knows (optimlab.stats.metrics) must lie in its range, so a percent written as
91.3 where optimlab's accuracy is the fraction 0.913 is refused, not shown as 9130 %.

Every problem is a JudgeError (a ValueError, so the command prints it as one line and exits 2) that
names the file and the row: rows are the file's line numbers (the header is row 1); for rows given
from Python, "record i" is the 0-based position in the list (a default data frame index).
"""

from __future__ import annotations

import csv
import json
import math
import numbers
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "JudgeError",
    "ExternalRun",
    "Table",
    "read_csv",
    "rows_table",
    "runs_from_table",
    "read_run_folder",
    "check_run_records",
    "known_metric",
    "MetricFacts",
    "MISSING",
]

OPTIMIZER, SEED = "optimizer", "seed"  # the two columns every long-form table needs
MISSING = frozenset({"", "nan", "-nan", "na", "n/a", "null", "none"})  # cells read as a failed run (any case)


class JudgeError(ValueError):
    """Input judge cannot use; the message names the file and row."""


class MetricFacts(NamedTuple):
    """What optimlab knows of a metric name: which way is better, its range, whether it is a % fraction."""

    better: str  # "higher" | "lower"
    low: float
    high: float
    percent: bool


def known_metric(metric: str) -> MetricFacts | None:
    """optimlab's facts about `metric`, None for a name it does not know. The one place the judging
    package reads optimlab's metric vocabulary (each task declares its metrics: optimlab.tasks)."""
    from optimlab.tasks import known_metrics  # the tasks declare them; imported when a metric is looked up

    m = known_metrics().get(metric)
    return None if m is None else MetricFacts(m.better, m.low, m.high, m.percent)


@dataclass(frozen=True)
class FinalMetrics:
    """The part of a run's History the statistics read: its final metrics (no step time measured)."""

    final: dict[str, float]
    step_time_s: float = math.nan


@dataclass(frozen=True)
class ExternalRun:
    """One run from a table: a RunRecord whose optimizer name is also its label."""

    optimizer: str
    seed: int
    history: FinalMetrics
    diverged: bool  # no usable value: a failed run
    dataset: str = ""  # a table holds one data/model cell
    model: str = ""
    done: bool = True

    @property
    def label(self) -> str:
        return self.optimizer


@dataclass(frozen=True)
class Table:
    """Rows of a long-form table before validation: (where, cells) with `where` like "row 5"."""

    source: str
    columns: list[str]
    rows: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)

    @property
    def metric_columns(self) -> list[str]:
        return [c for c in self.columns if c not in (OPTIMIZER, SEED)]


def read_csv(path: Path) -> Table:
    """The CSV's header and rows (blank lines skipped); a short or long row is refused here."""
    try:
        return _read_csv(path)
    except (UnicodeDecodeError, csv.Error) as e:  # a binary or mangled file: name it, not just the codec
        raise JudgeError(f"{path}: not a CSV text file ({type(e).__name__}: {e})") from None


def _read_csv(path: Path) -> Table:
    name = str(path)
    with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: spreadsheets write a byte-order mark
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if not header:
            raise JudgeError(f"{name}: empty file; expected a header row with {OPTIMIZER}, {SEED}, then metric columns")
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            raise JudgeError(f"{name} row 1: column(s) {', '.join(map(repr, repeated))} appear more than once")
        table = Table(name, header)
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            where = f"row {reader.line_num}"
            if len(cells) != len(header):
                raise JudgeError(f"{name} {where}: {len(cells)} cells, but the header has {len(header)} columns")
            table.rows.append((where, dict(zip(header, cells))))
    _check_columns(table)
    return table


def rows_table(rows: Any, source: str = "records") -> Table:
    """A Table from mappings, or from a data frame (its .to_dict("records"))."""
    if hasattr(rows, "to_dict"):
        rows = rows.to_dict("records")
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise JudgeError(f"{source}: expected a list of rows (mappings) or a data frame, got {type(rows).__name__}")
    columns: dict[str, None] = {}
    table = Table(source, [])
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise JudgeError(f"{source} record {i}: expected a mapping of column -> value, got {type(row).__name__}")
        columns.update(dict.fromkeys(str(k) for k in row))
        table.rows.append((f"record {i}", {str(k): v for k, v in row.items()}))
    table.columns.extend(columns)
    _check_columns(table)
    return table


def _check_columns(table: Table) -> None:
    for col in (OPTIMIZER, SEED):
        if col not in table.columns:
            raise JudgeError(
                f"{table.source}: no {col!r} column (columns: {', '.join(table.columns) or 'none'}); judge reads "
                f"long form: {OPTIMIZER}, {SEED}, then one column per metric"
            )
    if not table.rows:
        raise JudgeError(f"{table.source}: no runs (only a header)")


def _is_missing(cell: Any) -> bool:
    if cell is None:
        return True
    if isinstance(cell, str):
        return cell.strip().lower() in MISSING
    return isinstance(cell, numbers.Real) and not isinstance(cell, bool) and math.isnan(float(cell))


def _seed(cell: Any, where: str) -> int:
    if isinstance(cell, numbers.Integral) and not isinstance(cell, bool):
        return operator.index(cell)
    if isinstance(cell, numbers.Real) and not isinstance(cell, bool) and float(cell).is_integer():
        return int(float(cell))  # a data frame's seed column turns float when a row lacks one
    if isinstance(cell, str):
        try:
            return int(cell.strip())
        except ValueError:
            pass
    raise JudgeError(f"{where}: seed {cell!r} is not an integer")


def _value(cell: Any, metric: str, where: str) -> float:
    """The metric's value, NaN for a failed run (missing or infinite)."""
    if _is_missing(cell):
        return math.nan
    if isinstance(cell, numbers.Real) and not isinstance(cell, bool):
        value = float(cell)
    else:
        try:
            value = float(str(cell).strip())
        except ValueError:
            raise JudgeError(
                f"{where}: {metric} {cell!r} is not a number (a failed run is an empty cell or nan)"
            ) from None
    if not math.isfinite(value):
        return math.nan
    facts = known_metric(metric)
    lo, hi = (facts.low, facts.high) if facts is not None else (-math.inf, math.inf)
    if not lo <= value <= hi:
        raise JudgeError(
            f"{where}: {metric} {value:g} is outside optimlab's range for {metric!r} [{lo:g}, {hi:g}] (a fraction, not "
            "percent, for accuracy-like metrics); convert it, or rename the column to judge it in your own unit"
        )
    return value


def runs_from_table(table: Table, metric: str) -> list[ExternalRun]:
    """One ExternalRun per row, judged on `metric`; refuses a blank optimizer, a non-integer seed, a
    non-numeric value and a seed given twice for one optimizer."""
    runs: list[ExternalRun] = []
    first: dict[tuple[str, int], str] = {}
    for where, cells in table.rows:
        at = f"{table.source} {where}"
        name = cells.get(OPTIMIZER)
        if _is_missing(name) or not str(name).strip():
            raise JudgeError(f"{at}: no optimizer name")
        optimizer = str(name).strip()
        seed = _seed(cells.get(SEED), at)
        if (optimizer, seed) in first:
            raise JudgeError(f"{at}: optimizer {optimizer!r} has seed {seed} twice (also {first[optimizer, seed]})")
        first[optimizer, seed] = where
        value = _value(cells.get(metric), metric, at)
        runs.append(ExternalRun(optimizer, seed, FinalMetrics({metric: value}), math.isnan(value)))
    return runs


def read_run_folder(folder: Path) -> list[Any]:
    """The RunResults of a folder of optimlab run JSONs (folder/runs/*.json when it has runs/). A run's
    error file is read only when the run has no finished file (as optimlab's own loader does)."""
    from optimlab.experiments.results import RunResult

    where = folder / "runs" if (folder / "runs").is_dir() else folder
    files = sorted(p for p in where.glob("*.json") if p.name != "experiment.json")
    finished = {p.name for p in files if not p.name.endswith(".error.json")}
    files = [
        p
        for p in files
        if not p.name.endswith(".error.json") or p.name[: -len(".error.json")] + ".json" not in finished
    ]
    if not files:
        raise JudgeError(f"{folder}: no run files (*.json) in {where}")
    runs = []
    for path in files:
        try:
            runs.append(RunResult.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise JudgeError(f"{path}: not an optimlab run file ({type(e).__name__}: {e})") from None
    return check_run_records(runs, [str(p) for p in files])


def check_run_records(runs: Sequence[Any], names: Sequence[str] | None = None) -> list[Any]:
    """RunRecords (optimlab's own runs) checked for what judge needs: one data/model cell, each
    (optimizer label, seed) once. `names[i]` says where run i came from, for messages."""
    names = list(names) if names is not None else [f"run {i}" for i in range(len(runs))]
    if not runs:
        raise JudgeError("no runs to judge")
    for i, r in enumerate(runs):
        if not all(hasattr(r, a) for a in ("label", "optimizer", "dataset", "model", "seed", "done", "diverged")):
            raise JudgeError(f"{names[i]}: not a run record (needs label, optimizer, dataset, model, seed, done, ...)")
    cells = sorted({(r.dataset, r.model) for r in runs})
    if len(cells) > 1:
        shown = ", ".join(f"{d}/{m}" for d, m in cells)
        raise JudgeError(f"the runs span {len(cells)} data/model cells ({shown}): judge one cell at a time")
    first: dict[tuple[str, int], str] = {}
    for name, r in zip(names, runs):
        if (r.label, r.seed) in first:
            raise JudgeError(f"{name}: optimizer {r.label!r} has seed {r.seed} twice (also {first[r.label, r.seed]})")
        first[r.label, r.seed] = name
    return list(runs)
