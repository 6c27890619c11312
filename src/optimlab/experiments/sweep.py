"""Run an experiment's grid (optimizers x seeds x models x datasets) in local worker processes.

    results = run_experiment(config, "runs/compare-default", workers=2)

Each finished run is written by the process that ran it, atomically, to out_dir/runs/<run_id>.json,
so killing the sweep at any moment loses at most the runs in flight, and those resume from fit's
checkpoints in out_dir/ckpt/<run_id>/ on the next call. A call skips every run whose file exists,
after checking that the file was made by the same TrainConfig and seed (else it stops and says to
use another output folder). An exception inside one run is written to runs/<run_id>.error.json and
the sweep goes on; that run is retried next time (a later success deletes the error file).
Divergence is a result, not an error.

One sweep at a time per folder: run_experiment holds out_dir/.lock (experiments.lock) while it
runs, and a second sweep into the same folder is refused naming the holder's pid. Interruption
and worker clean-up are experiments.pool's: Ctrl-C stops dispatch at once and in-flight runs at
their next step boundary (their last epoch checkpoint stays); workers exit when the main process
dies. A run that only ever errored, or never reached a checkpoint, under an older recipe does not
block a corrected one: its stale checkpoint folder is discarded.
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optimlab.experiments.config import ExperimentConfig
from optimlab.experiments.lock import output_lock
from optimlab.experiments.pool import INTERRUPTED, mp_context, run_in_pool
from optimlab.experiments.results import (
    RunResult,
    checkpoint_dir,
    error_path,
    experiment_path,
    library_versions,
    load_results,
    read_result,
    result_path,
    write_json_atomic,
)
from optimlab.experiments.threads import available_cores, choose_threads
from optimlab.experiments.validate import check_experiment
from optimlab.train import fit
from optimlab.train.checkpoint import CHECKPOINT_FILE, RUN_FILE
from optimlab.train.config import TrainConfig
from optimlab.train.interrupt import RunInterrupted, stop_requested

__all__ = ["ExperimentMismatchError", "available_cores", "mp_context", "normalized_config", "run_experiment"]


class ExperimentMismatchError(ValueError):
    """out_dir holds a result made by a different configuration than the one being run."""


def normalized_config(config: TrainConfig) -> dict[str, Any]:
    """A run config as stored on disk (JSON round trip): what two runs must share to be the same run."""
    return json.loads(json.dumps(config.to_dict()))  # tuples -> lists, as stored on disk


def _check_same(existing: RunResult, config: TrainConfig, seed: int, path: Path, out_dir: Path) -> None:
    old, new = normalized_config(existing.config), normalized_config(config)
    diffs = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if existing.seed != seed:
        diffs.append(f"seed: {existing.seed} -> {seed}")
    if diffs:
        raise ExperimentMismatchError(
            f"{path} was made by a different configuration ({'; '.join(diffs[:3])}); "
            f"use another output folder (--out) or delete {out_dir}"
        )


def _discard_stale_checkpoint(out: Path, run_id: str, config: TrainConfig, seed: int) -> None:
    """A pending run's checkpoint folder made by another recipe: discard it when that attempt
    errored or never wrote a checkpoint (nothing to lose), else refuse naming the folder."""
    ckpt = checkpoint_dir(out, run_id)
    try:
        stored = json.loads((ckpt / RUN_FILE).read_text(encoding="utf-8"))
        same = (
            normalized_config(TrainConfig.from_dict(stored["config"])) == normalized_config(config)
            and stored["seed"] == seed
        )
    except (OSError, ValueError, KeyError, TypeError):
        same = not (ckpt / RUN_FILE).exists()  # nothing there, or unreadable: treat as stale
    if same:
        return
    if (ckpt / CHECKPOINT_FILE).exists() and not error_path(out, run_id).exists():
        raise ExperimentMismatchError(
            f"{ckpt} holds a partly trained run of a different configuration; use another output "
            f"folder (--out) or delete {out} (or that folder) to start over"
        )
    shutil.rmtree(ckpt, ignore_errors=True)
    error_path(out, run_id).unlink(missing_ok=True)


def _run_task(
    run_id: str, label: str, config_dict: dict[str, Any], seed: int, out_dir: str, threads: int | None = None
) -> dict[str, Any]:
    """Run one grid cell (with `threads` intra-op threads) and write its result (or error) file;
    returns the RunResult as a dict."""
    import torch

    out = Path(out_dir)
    config = TrainConfig.from_dict(config_dict)
    ckpt = checkpoint_dir(out, run_id)
    start = time.perf_counter()
    if stop_requested():  # this worker was told to stop: start nothing
        return {"status": INTERRUPTED, "run_id": run_id}
    previous = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        history = fit(config, seed, run_dir=ckpt, progress=False)
    except RunInterrupted:  # stopped at a step boundary; its last epoch checkpoint stays
        return {"status": INTERRUPTED, "run_id": run_id}
    except Exception as e:  # recorded, so one bad run does not end the sweep
        reason = " ".join(f"{type(e).__name__}: {e}".split())
        result = RunResult(
            run_id,
            label,
            seed,
            config,
            status="error",
            error=reason,
            versions=library_versions(),
            wall_time_s=time.perf_counter() - start,
        )
        write_json_atomic(error_path(out, run_id), {**result.to_dict(), "traceback": traceback.format_exc()})
        return result.to_dict()
    finally:
        torch.set_num_threads(previous)
    result = RunResult(
        run_id,
        label,
        seed,
        config,
        status="done",
        history=history,
        versions=library_versions(),
        wall_time_s=time.perf_counter() - start,
    )
    write_json_atomic(result_path(out, run_id), result.to_dict())
    error_path(out, run_id).unlink(missing_ok=True)
    shutil.rmtree(ckpt, ignore_errors=True)
    return result.to_dict()


def run_experiment(
    config: ExperimentConfig,
    out_dir: str | Path,
    workers: int = 1,
    progress: bool = True,
    check: bool = True,
    on_result: Callable[[RunResult], None] | None = None,
    threads: int | None = None,
) -> list[RunResult]:
    """Run every missing run of `config` into out_dir; return all its runs (done or error), grid order.

    workers=1 runs in this process; N > 1 uses N spawned/forkserver processes. Each run gets
    `threads` intra-op threads, else $OPTIMLAB_THREADS, else experiments.threads.choose_threads'
    choice (1 for small models, else cores // workers). `check` builds data, models and optimizers once up front
    so bad names or hyperparameters fail before anything runs. `on_result` sees each new result.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    out = Path(out_dir)
    if check:
        check_experiment(config)
    grid = config.runs()
    existed = out.exists()
    with output_lock(out):
        try:
            pending = []
            for spec in grid:
                path = result_path(out, spec.run_id)
                if path.is_file():
                    _check_same(read_result(path), spec.config, spec.seed, path, out)
                else:
                    _discard_stale_checkpoint(out, spec.run_id, spec.config, spec.seed)
                    pending.append(
                        (
                            spec.run_id,
                            spec.label,
                            spec.config.to_dict(),
                            spec.seed,
                            str(out),
                            choose_threads(spec.config, workers, threads),
                        )
                    )
        except BaseException:
            if not existed:  # nothing ran: leave no folder behind
                shutil.rmtree(out, ignore_errors=True)
            raise
        write_json_atomic(experiment_path(out), config.to_dict())
        with _Progress(len(grid), len(grid) - len(pending), enabled=progress) as bar:
            for d in _execute(pending, workers):
                r = RunResult.from_dict(d)
                bar.advance(r)
                if on_result is not None:
                    on_result(r)
    try:
        (out / "ckpt").rmdir()  # only when empty: in-flight checkpoints of failed runs stay
    except OSError:
        pass
    return load_results(out, [spec.run_id for spec in grid])


def _execute(pending: list[tuple[str, str, dict[str, Any], int, str, int]], workers: int):
    """Yield result dicts as runs finish (in this process for workers == 1, else in a pool)."""
    if not pending:
        return
    if workers == 1:
        for task in pending:
            d = _run_task(*task)
            if d.get("status") == INTERRUPTED:
                raise KeyboardInterrupt
            yield d
        return
    yield from run_in_pool(_run_task, pending, workers, _record_crash)


def _record_crash(task: tuple[str, str, dict[str, Any], int, str, int], reason: str) -> dict[str, Any]:
    rid, label, cfg, seed, out, _ = task
    result = RunResult(
        rid, label, seed, TrainConfig.from_dict(cfg), status="error", error=reason, versions=library_versions()
    )
    write_json_atomic(error_path(Path(out), rid), result.to_dict())
    return result.to_dict()


class _Progress:
    """A rich progress bar over runs (on stderr), or nothing when disabled."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.enabled = enabled
        self.total, self.done = total, done
        self._bar: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("[bold]runs"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=self.total, completed=self.done)
        return self

    def advance(self, r: RunResult) -> None:
        if self._bar is not None:
            state = "error" if not r.done else ("diverged" if r.diverged else "done")
            self._bar.update(self._task, advance=1, description=f"{r.run_id} {state}")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
