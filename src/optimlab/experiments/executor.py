"""Where a sweep's runs execute: the executor interface and the local one (today's process pool).

    executor = make_executor("local", workers=2)               # the registry below: EXECUTORS
    executor = make_executor("ray", ray_address="10.0.0.5:6379")  # experiments.ray_executor
    results = run_experiment(config, out, executor=executor)

An executor only runs tasks; everything a sweep decides stays in experiments.sweep, shared by all
executors: which runs are pending (finished ones are skipped), the result and error files
(written by the run itself, atomically, in out/runs/), the checkpoints a retried or restarted run
resumes from (out/ckpt/<run_id>/), the progress bar and the reports. A task is one RunTask; the
executor calls `fn(*task.args)` somewhere, once per task (plus its own bounded retries after a
crash), and yields each returned dict as it arrives. A task whose process died for good is given
to `on_crash(task, reason)`, which records the run as failed; the next sweep retries it.

Contract of an implementation (a Slurm one with submitit would follow the Ray one):
  * `execute(fn, tasks, on_crash)` yields one dict per task, in completion order; a dict with
    status INTERRUPTED means a run was told to stop: raise KeyboardInterrupt after stopping the rest.
  * KeyboardInterrupt / SIGTERM in the driver: stop dispatching, ask in-flight runs to stop (their
    last epoch checkpoint stays), then re-raise.
  * `threads_for(config, override)`: intra-op threads (= CPUs reserved) per run.
  * The run's folders must be reachable where the task runs: `fn` writes them itself.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from optimlab.experiments.threads import choose_threads
from optimlab.train.config import TrainConfig

# name -> "module:class" of an Executor with from_options(workers, **options); the one place an executor is
# registered (the CLI's --executor choices are these keys). A string, so Ray is imported only when asked for.
EXECUTORS: dict[str, str] = {
    "local": "optimlab.experiments.executor:LocalExecutor",
    "ray": "optimlab.experiments.ray_executor:RayExecutor",
}

TaskFn = Callable[..., dict[str, Any]]
OnCrash = Callable[["RunTask", str], dict[str, Any]]


@dataclass(frozen=True)
class RunTask:
    """One pending run of a sweep, as handed to an executor (plain data: picklable anywhere)."""

    run_id: str
    label: str
    config: dict[str, Any]  # TrainConfig.to_dict()
    seed: int
    out_dir: str  # absolute path of the sweep's folder
    threads: int  # intra-op threads = CPUs the run needs
    tensorboard: bool = True  # write TensorBoard event files beside the run's JSON

    @property
    def args(self) -> tuple[Any, ...]:
        return (self.run_id, self.label, self.config, self.seed, self.out_dir, self.threads, self.tensorboard)

    @property
    def gpus(self) -> int:
        """GPUs the run needs: 1 when its config trains on CUDA, else 0."""
        return 1 if str(self.config.get("device", "cpu")).startswith("cuda") else 0


class Executor(ABC):
    """Runs a sweep's tasks; see the module docstring for the contract."""

    name: str = "?"
    options: tuple[str, ...] = ()  # keyword options of from_options beyond workers

    @abstractmethod
    def execute(self, fn: TaskFn, tasks: Sequence[RunTask], on_crash: OnCrash) -> Iterator[dict[str, Any]]:
        """Yield fn(*task.args) for every task as it finishes (on_crash's dict for a dead one)."""

    @abstractmethod
    def threads_for(self, config: TrainConfig, override: int | None) -> int:
        """Intra-op threads of one run (the CPUs it reserves)."""

    def describe(self) -> str:
        """One line for the CLI's log: where the runs go."""
        return self.name

    @classmethod
    def from_options(cls, workers: int, **options: Any) -> Executor:
        """The executor for `workers` parallel runs and its own options; ValueError naming an option it
        does not take. An executor with options overrides this."""
        if options:  # make_executor names the executor that takes it
            raise ValueError(f"{', '.join(sorted(options))} is not an option of the {cls.name} executor")
        return cls(workers)  # type: ignore[call-arg]


class LocalExecutor(Executor):
    """This machine: workers == 1 runs in this process, N > 1 in N pool processes (experiments.pool)."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        self.workers = workers

    def threads_for(self, config: TrainConfig, override: int | None) -> int:
        return choose_threads(config, self.workers, override)

    def describe(self) -> str:
        return f"{self.workers} worker(s)"

    def execute(self, fn: TaskFn, tasks: Sequence[RunTask], on_crash: OnCrash) -> Iterator[dict[str, Any]]:
        from optimlab.experiments.pool import INTERRUPTED, run_in_pool

        if not tasks:
            return
        if self.workers == 1:
            for task in tasks:
                d = fn(*task.args)
                if d.get("status") == INTERRUPTED:
                    raise KeyboardInterrupt
                yield d
            return
        by_id = {task.run_id: task for task in tasks}  # run ids are unique within a sweep
        yield from run_in_pool(
            fn, [task.args for task in tasks], self.workers, lambda args, reason: on_crash(by_id[args[0]], reason)
        )


def make_executor(kind: str = "local", workers: int = 1, **options: Any) -> Executor:
    """The executor registered as `kind` (EXECUTORS), for `workers` parallel runs, with its own options
    (ray: ray_address, max_retries; see RayExecutor.from_options); ValueError naming the culprit."""
    if kind not in EXECUTORS:
        raise ValueError(f"executor must be one of {list(EXECUTORS)}, got {kind!r}")
    for option in options:
        if option not in executor_options(kind):
            owners = [k for k in EXECUTORS if option in executor_options(k)]
            where = (
                f"an option of the {owners[0]} executor (use executor {owners[0]!r})"
                if owners
                else "no executor's option"
            )
            raise ValueError(f"{option} is {where}")
    return executor_class(kind).from_options(workers, **options)


def executor_class(kind: str) -> type[Executor]:
    module, _, attr = EXECUTORS[kind].partition(":")
    cls: type[Executor] = getattr(importlib.import_module(module), attr)
    return cls


def executor_options(kind: str) -> tuple[str, ...]:
    """The keyword options executor `kind` takes beyond workers (its class's `options`)."""
    return executor_class(kind).options
