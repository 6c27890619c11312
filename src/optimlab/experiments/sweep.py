"""Run an experiment's grid (optimizers x seeds x models x datasets) through an executor.

    results = run_experiment(config, "runs/compare-default", workers=2)             # local processes
    results = run_experiment(config, "/shared/runs/x", executor=make_executor("ray", ray_address=addr))

Where the runs execute is the executor's (experiments.executor: the local pool, or Ray); the rest
is decided here, the same for every executor. Each finished run is written by the process that
ran it, atomically, to out_dir/runs/<run_id>.json (with its TensorBoard events in
out_dir/runs/<run_id>/, experiments.tblog), so killing the sweep at any moment loses at most the
runs in flight, and those resume from fit's checkpoints in out_dir/ckpt/<run_id>/ on the next
call. A result that comes back to the driver but is missing from its view of out_dir (a folder
that is not shared with a remote node) is written by the driver. A call skips every run whose
file exists, after checking that the file was made by the same TrainConfig and seed (else it
stops and says to use another output folder). An exception inside one run is written to
runs/<run_id>.error.json and the sweep goes on; that run is retried next time (a later success
deletes the error file). Divergence is a result, not an error.

One sweep at a time per folder: run_experiment holds out_dir/.lock (experiments.lock) while it
runs, and a second sweep into the same folder is refused naming the holder's pid. Interruption
and worker clean-up are the executor's (experiments.pool for the local one): Ctrl-C stops
dispatch at once and in-flight runs at their next step boundary (their last epoch checkpoint
stays); workers exit when the main process dies. A run that only ever errored, or never reached
a checkpoint, under an older recipe does not block a corrected one: its stale checkpoint folder
is discarded.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optimlab.experiments.config import ExperimentConfig
from optimlab.experiments.executor import Executor, LocalExecutor, RunTask, make_executor
from optimlab.experiments.lock import output_lock
from optimlab.experiments.pool import INTERRUPTED, mp_context
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
from optimlab.experiments.threads import available_cores
from optimlab.experiments.validate import check_experiment
from optimlab.train import fit
from optimlab.train.checkpoint import CHECKPOINT_FILE, RUN_FILE
from optimlab.train.config import TrainConfig
from optimlab.train.interrupt import RunInterrupted, stop_requested

__all__ = [
    "ExperimentMismatchError",
    "available_cores",
    "make_executor",  # re-exported from experiments.executor
    "mp_context",
    "normalized_config",
    "run_experiment",
]


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


def _set_aside_unreadable_checkpoint(out: Path, run_id: str) -> None:
    """A pending run's checkpoint that torch cannot open (truncated: a full disk, a copy cut short)
    is moved to out/ckpt/<run_id>-checkpoint.pt.corrupt (outside the run's folder, which a finished
    run deletes) and the run restarts from epoch 0, with one warning. Checked before any run starts:
    found inside the run, it would fail after the other runs trained, and again on every rerun. The
    state is lost either way; restarting is what the user would do by hand, and the file stays for a look."""
    import torch

    path = checkpoint_dir(out, run_id) / CHECKPOINT_FILE
    if not path.is_file():
        return
    try:  # mmap: opens the archive and its record index without reading every tensor
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # torch raises several types for a damaged file
        corrupt = path.parent.with_name(f"{run_id}-{CHECKPOINT_FILE}.corrupt")
        path.replace(corrupt)
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        warnings.warn(
            f"run {run_id}: checkpoint {path} is unreadable ({reason}); moved to {corrupt.name}, "
            "the run restarts from epoch 0",
            stacklevel=3,
        )


def _run_task(
    run_id: str,
    label: str,
    config_dict: dict[str, Any],
    seed: int,
    out_dir: str,
    threads: int | None = None,
    tensorboard: bool = True,
) -> dict[str, Any]:
    """Run one grid cell (with `threads` intra-op threads) and write its result (or error) file
    and, with `tensorboard`, its event files; returns the RunResult as a dict."""
    import torch

    out = Path(out_dir)
    config = TrainConfig.from_dict(config_dict)
    ckpt = checkpoint_dir(out, run_id)
    start = time.perf_counter()
    if stop_requested():  # this worker was told to stop: start nothing
        return {"status": INTERRUPTED, "run_id": run_id}
    done = result_path(out, run_id)
    if done.is_file():  # finished by an earlier attempt that died before reporting back (Ray retry)
        return json.loads(done.read_text(encoding="utf-8"))
    previous = torch.get_num_threads()
    logger = None
    if tensorboard:
        from optimlab.experiments.tblog import RunLogger

        logger = RunLogger(out, run_id, label, seed, config)
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        history = fit(config, seed, run_dir=ckpt, progress=False, callback=logger)
        if logger is not None:
            logger.finish(history)
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
        if logger is not None:
            logger.close()
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
    executor: Executor | None = None,
    tensorboard: bool = True,
) -> list[RunResult]:
    """Run every missing run of `config` into out_dir; return all its runs (done or error), grid order.

    executor: where the runs execute (experiments.executor; e.g. make_executor("ray", ...)); by
    default LocalExecutor(workers): workers=1 runs in this process, N > 1 in N forkserver
    processes. Each run gets `threads` intra-op threads, else $OPTIMLAB_THREADS, else the
    executor's choice (local: experiments.threads.choose_threads, 1 for small models, else
    cores // workers; Ray: 1). `check` builds data, models and optimizers once up front so bad
    names or hyperparameters fail before anything runs. `on_result` sees each new result.
    tensorboard: write each run's TensorBoard events beside its JSON (experiments.tblog).
    """
    if executor is None:
        executor = LocalExecutor(workers)  # validates workers
    elif not isinstance(executor, Executor):
        raise TypeError(f"executor must be an optimlab.experiments.executor.Executor, got {type(executor).__name__}")
    if tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise RuntimeError(
            "TensorBoard logging needs the tensorboard package (pip install tensorboard); or turn it off"
        )
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
                    _set_aside_unreadable_checkpoint(out, spec.run_id)
                    pending.append(
                        RunTask(
                            spec.run_id,
                            spec.label,
                            spec.config.to_dict(),
                            spec.seed,
                            str(out.resolve()),
                            executor.threads_for(spec.config, threads),
                            tensorboard,
                        )
                    )
        except BaseException:
            if not existed:  # nothing ran: leave no folder behind
                shutil.rmtree(out, ignore_errors=True)
            raise
        write_json_atomic(experiment_path(out), config.to_dict())
        with _Progress(len(grid), len(grid) - len(pending), enabled=progress) as bar:
            for d in executor.execute(_run_task, pending, _record_crash):
                r = RunResult.from_dict(d)
                _land(out, r, d)
                bar.advance(r)
                if on_result is not None:
                    on_result(r)
    try:
        (out / "ckpt").rmdir()  # only when empty: in-flight checkpoints of failed runs stay
    except OSError:
        pass
    return load_results(out, [spec.run_id for spec in grid])


def _land(out: Path, r: RunResult, d: dict[str, Any]) -> None:
    """Write a returned result the driver cannot see (a run on a node that does not share out_dir)."""
    if r.done and not result_path(out, r.run_id).is_file():
        write_json_atomic(result_path(out, r.run_id), d)
        error_path(out, r.run_id).unlink(missing_ok=True)
        warnings.warn(
            f"{out} is not shared with the node that ran {r.run_id}: its result was written by the driver, "
            "but checkpoints of runs moved between nodes cannot resume (put --out on shared storage)",
            stacklevel=3,
        )
    elif not r.done and not result_path(out, r.run_id).is_file() and not error_path(out, r.run_id).is_file():
        write_json_atomic(error_path(out, r.run_id), d)


def _record_crash(task: RunTask, reason: str) -> dict[str, Any]:
    result = RunResult(
        task.run_id,
        task.label,
        task.seed,
        TrainConfig.from_dict(task.config),
        status="error",
        error=reason,
        versions=library_versions(),
    )
    write_json_atomic(error_path(Path(task.out_dir), task.run_id), result.to_dict())
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

            console = Console(stderr=True)
            if self.done:  # a rerun resumes: say so once, before the bar
                console.print(
                    f"{self.done} of {self.total} runs already finished; running the other {self.total - self.done}"
                )
            self._bar = Progress(
                TextColumn("[bold]runs"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=console,
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
