"""The Ray executor: each run of a sweep is one Ray task on a cluster (or a private local instance).

    executor = RayExecutor(address="10.0.0.5:6379")   # an existing cluster (`ray start --head`)
    executor = RayExecutor(num_cpus=2)                # a private Ray instance on this machine
    run_experiment(config, "/shared/runs/x", executor=executor)

Resources: a run reserves `threads` CPUs (its intra-op threads; 1 unless --threads says more) and
one GPU when its config trains on CUDA, so Ray packs as many runs on a node as it has cores.

Where results live: the run itself writes its files, so the sweep folder must be a path every
node sees at the same place (NFS, a cluster file system; on one machine any folder). A run that
Ray moves to another node (its worker or node died) resumes there from its last epoch checkpoint
in out/ckpt/<run_id>/. If the folder is not shared after all, the driver still writes each
returned result into its own copy of the folder (nothing finished is lost), but a moved run then
restarts from epoch 0 instead of its checkpoint. Tasks run in the driver's working directory when
that exists on the node (relative data paths then mean what they mean to the driver).

Faults: a worker process or node that dies mid-run makes Ray rerun the task (at most
`max_retries` times, default 3; each rerun resumes from the checkpoint); a run still dying after
that is recorded as failed (out/runs/<run_id>.error.json) and retried by the next sweep. An
exception inside a run is not a crash: the run records it as failed and is not rerun in this
sweep. Driver death: Ray ends the driver's tasks; re-running the command resumes (finished runs
are skipped, in-flight ones resume from their checkpoints). Ctrl-C cancels every task (a running
one stops with its last checkpoint kept).

Each attempt appends a line to out/ray/<run_id>.jsonl (node id, IP, host, pid, times): where a
run ran, how often it was retried, and how long it waited to be scheduled.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from optimlab.experiments.executor import Executor, OnCrash, RunTask, TaskFn
from optimlab.experiments.threads import resolve_override
from optimlab.train.config import TrainConfig

DEFAULT_MAX_RETRIES = 3  # reruns of a task whose worker or node died (each resumes from its checkpoint)
PLACEMENT_DIR = "ray"  # out/ray/<run_id>.jsonl: one line per attempt
INSTALL_HINT = "pip install 'optimlab[ray]' (ray==2.60.0)"
REACH_TIMEOUT_S = 3.0  # a TCP connect to the cluster's address before anything else (ray.init retries ~25 s)


class RayUnavailable(ConnectionError):
    """Ray is not installed, or the cluster cannot be reached (an OSError: the CLI's exit status 2)."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable(f"the ray executor needs Ray on the driver and on every node: {INSTALL_HINT}") from None
    return ray


def placement_path(out_dir: str | Path, run_id: str) -> Path:
    return Path(out_dir) / PLACEMENT_DIR / f"{run_id}.jsonl"


def read_placements(out_dir: str | Path, run_id: str) -> list[dict[str, Any]]:
    """The attempts recorded for `run_id` (oldest first), each {"event", "node_id", "ip", ...}."""
    path = placement_path(out_dir, run_id)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _append(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:  # one short write per line
        f.write(json.dumps(record) + "\n")


def run_on_node(fn: TaskFn, args: tuple[Any, ...], cwd: str, submitted: float) -> dict[str, Any]:
    """The body of one Ray task: record where it runs, then fn(*args) (which writes the run's files)."""
    import warnings

    import ray

    from optimlab.data.imagefolder import SKIP_WARNING

    warnings.filterwarnings("ignore", message=SKIP_WARNING)  # the driver's pre-sweep check showed it once
    if os.path.isdir(cwd):
        os.chdir(cwd)
    ctx = ray.get_runtime_context()
    path = placement_path(args[4], args[0])
    where = {"node_id": ctx.get_node_id(), "ip": ray.util.get_node_ip_address(), "host": socket.gethostname()}
    _append(path, {"event": "start", **where, "pid": os.getpid(), "submitted": submitted, "time": time.time()})
    result = fn(*args)
    _append(path, {"event": "end", **where, "pid": os.getpid(), "status": result.get("status"), "time": time.time()})
    return result


def check_reachable(address: str, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """RayUnavailable, in at most `timeout_s`, when nothing listens at the cluster address (host:port, or
    ray://host:port for Ray Client); ray.init would retry for ~25 s and print client warnings first.
    "auto" is checked through $RAY_ADDRESS when that is set; otherwise Ray looks for a cluster
    started on this machine, which fails at once when there is none."""
    target = address
    if address == "local":  # a private instance: nothing to reach
        return
    if address == "auto":
        target = os.environ.get("RAY_ADDRESS", "").strip()
        if target in ("", "auto", "local"):
            return
    host, sep, port = target.split("://", 1)[-1].rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not sep or not host or not port.isdigit():
        raise ValueError(f"ray address must be 'host:port', 'ray://host:port' or 'auto', got {target!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        reason = "no answer" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__).lower()
        raise RayUnavailable(
            f"cannot reach the Ray cluster at {target!r} ({reason} within {timeout_s:g} s); "
            "check the address or start the head node (`ray start --head`)"
        ) from None


def _raise_interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _check_fits(ray: Any, tasks: Sequence[RunTask]) -> None:
    """ValueError before anything is submitted when a run needs more than the largest node has
    (Ray would wait for such a node forever)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
    gpus = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
    for task in tasks:
        if task.threads > cpus or task.gpus > gpus:
            raise ValueError(
                f"run {task.run_id} needs {task.threads} CPU(s) and {task.gpus} GPU(s), but the largest node "
                f"of the Ray cluster has {cpus:g} CPU(s) and {gpus:g} GPU(s); lower --threads or add nodes"
            )


class RayExecutor(Executor):
    """Runs each task as a Ray task; see the module docstring."""

    name = "ray"
    options = ("ray_address", "max_retries")

    def __init__(
        self, address: str | None = None, num_cpus: int | None = None, max_retries: int = DEFAULT_MAX_RETRIES
    ) -> None:
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ValueError(f"ray address must be 'host:port' or 'auto', got {address!r}")
        if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1):
            raise ValueError(f"num_cpus must be an int >= 1, got {num_cpus!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        _import_ray()  # fail before any work when Ray is missing
        if address is not None:
            check_reachable(address)  # and when the cluster is not there: seconds, not ray.init's ~25 s
        self.address, self.num_cpus, self.max_retries = address, num_cpus, max_retries

    @classmethod
    def from_options(cls, workers: int, **options: Any) -> RayExecutor:
        """ray_address: an existing cluster (host:port, or "auto"); None starts a private Ray instance on
        this machine with `workers` CPUs. max_retries: reruns of a run whose worker or node died (it
        resumes from its checkpoint); default DEFAULT_MAX_RETRIES."""
        ray_address, max_retries = options.pop("ray_address", None), options.pop("max_retries", None)
        if options:  # make_executor names the executor that takes it
            raise ValueError(f"{', '.join(sorted(options))} is not an option of the ray executor")
        retries = DEFAULT_MAX_RETRIES if max_retries is None else max_retries
        return cls(address=ray_address, num_cpus=None if ray_address else workers, max_retries=retries)

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else f"a local Ray instance ({self.num_cpus} CPUs)"
        return f"Ray tasks on {where}, {self.max_retries} retries after a crash"

    def threads_for(self, config: TrainConfig, override: int | None) -> int:
        # One CPU per run unless told: on a cluster the driver cannot see the nodes' idle cores, and
        # for a sweep of many runs one thread per core is the throughput choice (experiments.threads).
        return resolve_override(override) or 1

    def connect(self) -> bool:
        """ray.init unless already connected; True when this call connected (and must disconnect)."""
        ray = _import_ray()
        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        if self.address is None:
            kwargs.update(address="local", num_cpus=self.num_cpus, include_dashboard=False)
        else:
            kwargs.update(address=self.address)
        try:
            ray.init(**kwargs)
        except ConnectionError as e:
            raise RayUnavailable(f"cannot reach the Ray cluster at {self.address!r}: {e}") from None
        return True

    def execute(self, fn: TaskFn, tasks: Sequence[RunTask], on_crash: OnCrash) -> Iterator[dict[str, Any]]:
        from optimlab.experiments.pool import INTERRUPTED

        if not tasks:
            return
        ray = _import_ray()
        connected_here = self.connect()
        in_main = threading.current_thread() is threading.main_thread()
        old_term = signal.signal(signal.SIGTERM, _raise_interrupt) if in_main else None
        refs: dict[Any, RunTask] = {}
        try:
            _check_fits(ray, tasks)
            remote = ray.remote(run_on_node)
            cwd = os.getcwd()
            for task in tasks:
                options = remote.options(
                    num_cpus=task.threads,
                    num_gpus=task.gpus,
                    max_retries=self.max_retries,
                    retry_exceptions=False,  # an exception in a run is its result, not a crash
                    name=f"optimlab:{task.run_id}",
                )
                refs[options.remote(fn, task.args, cwd, time.time())] = task
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                task = refs[ready[0]]
                try:
                    result = ray.get(ready[0])
                except ray.exceptions.RayError as e:  # retries used up: worker/node died, or could not start
                    lines = str(e).strip().splitlines() or [type(e).__name__]
                    result = on_crash(task, f"Ray task failed after {self.max_retries} retries: {lines[-1][:300]}")
                if result.get("status") == INTERRUPTED:
                    raise KeyboardInterrupt
                yield result
        except BaseException:
            for ref in refs:
                ray.cancel(ref)  # a running task gets KeyboardInterrupt: its last checkpoint stays
            raise
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, old_term)
            if connected_here:
                ray.shutdown()
