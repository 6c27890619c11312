"""Worker processes of a sweep: start them clean, stop them promptly, never leave one behind.

    for result in run_in_pool(task_fn, tasks, workers=2, on_crash=record):
        ...

* Start: forkserver on Linux (a clean server that imported torch once), spawn elsewhere; each
  worker installs optimlab.train.interrupt's handlers (each task sets its own torch threads).
* Ctrl-C (SIGINT to the process group), or SIGINT/SIGTERM to the main process: the main process
  stops dispatching at once (queued runs are cancelled), sends SIGTERM to every worker, whose
  handler asks fit to stop at its next step boundary (the run's last epoch checkpoint stays for
  the resume), waits up to STOP_GRACE_S for them and SIGKILLs any that is still there. Then the
  interrupt propagates (the CLI exits 130). The forkserver and the resource tracker exit by
  themselves once the main process and the workers are gone.
* The main process dies without cleaning up (kill -9): every worker watches the main process
  (a pidfd on Linux, else polling its pid) and exits as soon as it is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

STOP_GRACE_S = 10.0  # how long stopped workers get to reach a step boundary before SIGKILL
PARENT_POLL_S = 0.5  # fallback polling period when pidfd_open is unavailable
INTERRUPTED = "interrupted"  # status a task returns when it was stopped (nothing written)


def mp_context() -> multiprocessing.context.BaseContext:
    # Never fork a parent that may hold torch threads; forkserver (Linux) starts workers from a
    # clean server that has imported torch (and torch._dynamo, which torch.optim pulls in on the
    # first optimizer, ~1.5 s) once, spawn elsewhere.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["optimlab.experiments.sweep", "torch._dynamo"])
        return ctx
    return multiprocessing.get_context("spawn")


def _watch_parent(pid: int) -> None:
    """Exit this process as soon as process `pid` (the sweep's main process) is gone."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(70)
    except (AttributeError, OSError):
        fd = None

    def wait_and_exit() -> None:
        if fd is not None:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            while not poller.poll():
                pass
        else:
            while True:
                time.sleep(PARENT_POLL_S)
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    continue
        os._exit(70)  # nobody is left to collect results; checkpoints on disk are atomic

    threading.Thread(target=wait_and_exit, name="optimlab-parent-watch", daemon=True).start()


def init_worker(parent_pid: int) -> None:
    import torch

    from optimlab.train.interrupt import install_stop_handlers

    install_stop_handlers()
    _watch_parent(parent_pid)
    import warnings

    from optimlab.data.imagefolder import SKIP_WARNING

    warnings.filterwarnings("ignore", message=SKIP_WARNING)  # the parent's pre-sweep check showed it once
    torch.set_num_threads(1)  # until a task sets its own


def _raise_interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def run_in_pool(
    task_fn: Callable[..., dict[str, Any]],
    tasks: list[tuple[Any, ...]],
    workers: int,
    on_crash: Callable[[tuple[Any, ...], str], dict[str, Any]],
) -> Iterator[dict[str, Any]]:
    """Yield task_fn(*task) results as they finish, in `workers` processes.

    A task that returns {"status": INTERRUPTED} means its worker was told to stop: the whole pool
    stops (KeyboardInterrupt). on_crash(task, reason) records a task whose worker died."""
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=mp_context(), initializer=init_worker, initargs=(os.getpid(),)
    )
    in_main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, _raise_interrupt) if in_main else None
    futures: dict[Future[dict[str, Any]], tuple[Any, ...]] = {}
    try:
        futures = {pool.submit(task_fn, *task): task for task in tasks}
        for fut in as_completed(futures):
            try:
                result = fut.result()
            except BrokenProcessPool:
                result = on_crash(futures[fut], "a worker process died (killed, or out of memory)")
            except Exception as e:  # e.g. an unpicklable result; keep the sweep going
                result = on_crash(futures[fut], f"{type(e).__name__}: {e}")
            if result.get("status") == INTERRUPTED:
                raise KeyboardInterrupt
            yield result
    except BaseException:
        stop_pool(pool, futures)
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old_term)
    pool.shutdown(wait=True)


def stop_pool(pool: ProcessPoolExecutor, futures: dict[Future[Any], Any], grace_s: float = STOP_GRACE_S) -> None:
    """Cancel queued tasks, ask running workers to stop at a step boundary, kill stragglers."""
    processes = list(getattr(pool, "_processes", {}).values())  # snapshot: shutdown clears it
    for fut in futures:
        fut.cancel()
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive() and p.pid is not None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace_s
    for p in processes:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in processes:
        if p.is_alive():
            p.kill()
            p.join(timeout=5)
