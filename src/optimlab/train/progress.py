"""Progress display for fit: a rich bar over epochs and the steps of the current epoch, or a
do-nothing stand-in with the same methods so the training loop never branches on `progress`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class _Silent:
    """The subset of rich.progress.Progress that fit uses, doing nothing."""

    def add_task(self, description: str, **kwargs: Any) -> int:
        return 0

    def advance(self, task: int, advance: float = 1) -> None:
        pass

    def update(self, task: int, **kwargs: Any) -> None:
        pass

    def reset(self, task: int, **kwargs: Any) -> None:
        pass


@contextlib.contextmanager
def make_progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield _Silent()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
    ) as bar:
        yield bar
