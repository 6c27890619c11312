"""Stop requests: how a signal asks a running `fit` to stop at its next step boundary.

    install_stop_handlers()        # in a worker process: SIGINT/SIGTERM set the flag, nothing raises
    request_stop(); stop_requested()  # what the handlers do; what fit checks before every step

fit checks `stop_requested()` before each training step and raises RunInterrupted there, so a
run stops within one step of the signal and its last end-of-epoch checkpoint (written
atomically) is what a later call resumes from. The main process keeps Python's own SIGINT
behaviour (KeyboardInterrupt); worker processes use these handlers so that a Ctrl-C, which the
terminal sends to the whole process group, stops the step loop instead of unwinding through
the pool's bookkeeping.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

_STOP = threading.Event()


class RunInterrupted(Exception):
    """fit stopped at a step boundary because a stop was requested (the run is resumable)."""


def request_stop(*_: Any) -> None:
    """Ask every fit in this process to stop at its next step boundary (signal-handler safe)."""
    _STOP.set()


def stop_requested() -> bool:
    return _STOP.is_set()


def install_stop_handlers() -> None:
    """SIGINT and SIGTERM set the stop flag instead of raising (call in a worker's main thread)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)


def check_stop() -> None:
    """Raise RunInterrupted when a stop was requested."""
    if _STOP.is_set():
        raise RunInterrupted("stopped by a signal at a step boundary; the last epoch checkpoint is kept")
