"""judge(): compare's statistics on runs optimlab did not make.

The numbers come from optimlab.stats.summary.summarize, the function behind compare, report and the
paper verdicts, which decides through optimlab.stats.inference.judge_family: paired by seed,
Student-t interval, Holm over the optimizers compared with the baseline, failure rates, the decision
and the MDE. So a judgement's error rates are the ones tests/test_inference_calibration.py measures,
and for that reason there is no level (alpha) to choose.

Direction: a metric optimlab knows (optimlab.stats.metrics) keeps its known direction,
and asking for the other one is an error, since it would swap every *better* and *worse* (rename the
column to judge a different quantity). Any other metric is higher-is-better unless lower_is_better
(`--lower-is-better`) says otherwise; the page and the table say which applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from optimlab.judging.judgement import Judgement
from optimlab.judging.records import (
    JudgeError,
    Table,
    check_run_records,
    known_metric,
    read_csv,
    read_run_folder,
    rows_table,
    runs_from_table,
)
from optimlab.stats.summary import Summary, summarize

__all__ = ["judge", "resolve_direction"]


def resolve_direction(metric: str, lower_is_better: bool | None) -> tuple[bool, str]:
    """(lower wins?, why) for a metric: its known direction, else the caller's, else higher."""
    facts = known_metric(metric)
    if facts is None:
        if lower_is_better is None:
            return False, "higher is better (optimlab does not know this metric; --lower-is-better to flip)"
        return bool(lower_is_better), f"{'lower' if lower_is_better else 'higher'} is better (as asked)"
    known_lower = facts.better == "lower"
    if lower_is_better is not None and bool(lower_is_better) != known_lower:
        raise JudgeError(
            f"metric {metric!r} is {facts.better}-is-better in optimlab; asking for "
            f"{'lower' if lower_is_better else 'higher'} would swap every better and worse "
            "(rename the column to judge another quantity)"
        )
    return known_lower, f"{facts.better} is better (optimlab's {metric!r})"


def judge(
    data: str | Path | Sequence[Any] | Any,
    baseline: str,
    metric: str | None = None,
    *,
    lower_is_better: bool | None = None,
    out: str | Path | None = None,
) -> Judgement:
    """Judge every optimizer of `data` against `baseline` on one metric, paired by seed.

    data: a CSV path in long form (optimizer, seed, one column per metric), a folder of optimlab run
    JSONs, a list of row mappings, a data frame, or RunRecords. metric: needed when there are several
    (default: the only metric column; for optimlab runs, their task's headline). out: also write
    out/report.md and out/judgement.json. Bad input raises JudgeError naming the file and row."""
    runs, metric, source = _load(data, metric)
    lower, direction = resolve_direction(metric, lower_is_better)
    labels = list(dict.fromkeys(r.label for r in runs))
    if baseline not in labels:
        raise JudgeError(f"{source}: unknown baseline {baseline!r}; optimizers: {', '.join(labels)}")
    if len(labels) < 2:
        raise JudgeError(f"{source}: only {baseline!r} has runs; there is nothing to compare with it")
    runs = sorted(runs, key=lambda r: r.label != baseline)  # the baseline's row first, the rest in file order
    summary = summarize(runs, baseline, metrics=(metric,), lower_is_better={metric} if lower else ())
    judgement = Judgement(source, baseline, metric, lower, direction, summary, runs, _notes(runs, summary, baseline))
    if out is not None:
        judgement.write(out)
    return judgement


def _load(data: Any, metric: str | None) -> tuple[list[Any], str, str]:
    """(runs, the metric judged, a name for the source) from any input judge accepts."""
    if isinstance(data, (str, Path)):
        path = Path(data)
        if path.is_dir():
            return _optimlab_runs(read_run_folder(path), metric, str(path))
        if not path.is_file():
            raise JudgeError(f"{path}: no such file or folder")
        table = read_csv(path)
    elif (
        isinstance(data, Sequence) and data and all(hasattr(r, "history") and not isinstance(r, Mapping) for r in data)
    ):
        return _optimlab_runs(check_run_records(data), metric, "runs")
    else:
        table = rows_table(data)
    metric = _choose_metric(table, metric)
    return runs_from_table(table, metric), metric, table.source


def _choose_metric(table: Table, metric: str | None) -> str:
    columns = table.metric_columns
    if metric is not None:
        if metric not in columns:
            raise JudgeError(f"{table.source}: no column {metric!r}; metric columns: {', '.join(columns) or 'none'}")
        return metric
    if len(columns) == 1:
        return columns[0]
    if not columns:
        raise JudgeError(f"{table.source}: no metric column (only optimizer and seed)")
    raise JudgeError(f"{table.source}: several metric columns ({', '.join(columns)}); choose one with --metric")


def _optimlab_runs(runs: list[Any], metric: str | None, source: str) -> tuple[list[Any], str, str]:
    """optimlab's own runs: the metric (default: their task's headline) must be in every finished run."""
    finished = [r for r in runs if r.done and not r.diverged and r.history is not None]
    known = list(dict.fromkeys(k for r in finished for k in r.history.final))
    if metric is None:
        tasks = {getattr(getattr(r, "config", None), "task", None) for r in runs}
        if len(tasks) == 1 and None not in tasks:
            from optimlab.train.vocabulary import task_headline

            metric = task_headline(str(tasks.pop()))
        elif len(known) == 1:
            metric = known[0]
        else:
            raise JudgeError(f"{source}: choose a metric with --metric (the runs have: {', '.join(known) or 'none'})")
    for r in finished:
        if metric not in r.history.final:
            name = getattr(r, "run_id", f"{r.label} seed {r.seed}")
            raise JudgeError(
                f"{source}: run {name} has no final {metric!r} (its metrics: {', '.join(r.history.final)})"
            )
    return runs, metric, source


def _notes(runs: list[Any], summary: Summary, baseline: str) -> list[str]:
    """What the table does not say: failed runs, seeds without a partner, comparisons with no test."""
    notes = []
    seeds: dict[str, set[int]] = {}
    for r in runs:
        seeds.setdefault(r.label, set()).add(r.seed)
    for label in seeds:
        failed = sorted(r.seed for r in runs if r.label == label and (not r.done or r.diverged))
        if failed:
            notes.append(
                f"{label}: {len(failed)} of {len(seeds[label])} runs failed (seeds {failed}); they count in the "
                "failure rate, are left out of the mean, and count at the worst value either arm reached in "
                "the paired test"
            )
        if label != baseline and seeds[label] ^ seeds[baseline]:
            notes.append(f"{label}: seeds {sorted(seeds[label] ^ seeds[baseline])} lack a partner run: not paired")
    for p in summary.paired:  # the comparison's own notes: over its differences, failed seeds included
        notes += [f"{p.label}: {n}" for n in p.notes]
    return notes
