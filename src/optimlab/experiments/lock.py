"""One sweep per output folder: an exclusive lock on out_dir/.lock, held for the whole sweep.

    with output_lock(out):     # OutputLocked (exit status 2 in the CLI) if another process holds it
        ...

The lock is a flock(2) on the file, so the kernel releases it when the holder exits for any
reason (kill -9 included): a stale lock file never blocks anyone. The holder writes its pid into
the file so that the refusal can name it. Re-entrant within one process (tune's phases and the
CLI around a sweep may both take it).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from optimlab.experiments.config import ConfigError

LOCK_FILE = ".lock"
_HELD: dict[str, int] = {}  # resolved folder -> nesting depth in this process


class OutputLocked(ConfigError):
    """Another process is running a sweep into the same output folder."""


@contextmanager
def output_lock(out_dir: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of `out_dir` (created if missing) for the duration of the block."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key = str(out.resolve())
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield out / LOCK_FILE
        finally:
            _HELD[key] -= 1
        return
    path = out / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise OutputLocked(
            f"output folder {str(out)!r} is in use by another optimlab process (pid {holder}, "
            f"lock {path}); wait for it to finish, stop it, or use another --out"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD[key] = 1
        yield path
    finally:
        _HELD.pop(key, None)
        os.close(fd)  # releases the flock
