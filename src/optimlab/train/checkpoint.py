"""A run's folder: atomic files, the per-epoch checkpoint and the marks of a finished run.

    run_dir/
      run.json        config + seed of the run (written first; a mismatch on resume is an error)
      checkpoint.pt   latest end-of-epoch state (model, optimizer, scheduler, RNGs, History, epoch)
      model.pt        final weights (state_dict), once the run has finished
      history.json    final History (JSON; NaN written as NaN)
      done            written last: its presence means "finished, never redo"

Every file is written to a temporary file in the same folder, fsynced, then os.replace'd over
the target, so a kill at any moment leaves either the old or the new file, never a torn one.
The checkpoint is deleted once `done` exists (model.pt and history.json keep the result).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from optimlab.train.config import History, TrainConfig

CHECKPOINT_FORMAT = 1
RUN_FILE = "run.json"
CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
HISTORY_FILE = "history.json"
DONE_FILE = "done"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. platforms that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, unique temporary file beside `path`, opened for writing with mode 0o666 less the umask,
    as open() creates files (tempfile.mkstemp's 0o600 would survive os.replace: run files on a shared
    folder must be readable by the others the umask lets in)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name beside {path}")


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Call write(binary file) on a unique temporary file beside `path`, fsync it, and rename it over
    `path` (so a reader never sees half a file and two writers never share a temporary file). The
    file gets the permissions open() would give it (0o666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def save_torch_atomic(path: Path, obj: Any) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def write_json_atomic(path: Path, obj: Any, sort_keys: bool = False) -> None:
    """The one JSON writer of run folders and result files: indent 1, UTF-8, atomic."""
    text = json.dumps(obj, indent=1, sort_keys=sort_keys)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


def _with_defaults(record: Any) -> Any:
    """A stored {config, seed} record with TrainConfig fields added since it was written filled in
    with their defaults (which keep the old behaviour), so older runs still resume."""
    try:
        return {**record, "config": TrainConfig.from_dict(record["config"]).to_dict()}
    except (KeyError, TypeError, ValueError):
        return record  # not a record this version can read: it will compare as a different run


class RunDir:
    """The files of one run (config + seed) in `path`."""

    def __init__(self, path: str | Path, config: TrainConfig, seed: int) -> None:
        self.path = Path(path)
        self.record = {"config": config.to_dict(), "seed": int(seed)}

    def file(self, name: str) -> Path:
        return self.path / name

    def prepare(self) -> None:
        """Create the folder, or check that the run already there is this run (else ValueError)."""
        self.path.mkdir(parents=True, exist_ok=True)
        run_file = self.file(RUN_FILE)
        if run_file.exists():
            try:
                stored = json.loads(run_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read {run_file}: {exc}") from exc
            if _canonical(_with_defaults(stored)) != _canonical(json.loads(_canonical(self.record))):
                raise ValueError(
                    f"{self.path} holds a different run (config/seed in {run_file} differ from this "
                    f"call's); use another folder (--out, run_dir) or delete that one"
                )
        else:
            write_json_atomic(run_file, self.record, sort_keys=True)
        for name in (CHECKPOINT_FILE, MODEL_FILE, HISTORY_FILE):
            self.file(name + ".tmp").unlink(missing_ok=True)  # left by a kill mid-write

    def is_done(self) -> bool:
        return self.file(DONE_FILE).exists()

    def load_history(self) -> History:
        path = self.file(HISTORY_FILE)
        try:
            return History.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{self.path} is marked done but {path} is unreadable: {exc}") from exc

    def load_checkpoint(self) -> dict[str, Any] | None:
        path = self.file(CHECKPOINT_FILE)
        if not path.exists():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for a damaged file
            raise ValueError(f"checkpoint {path} is unreadable ({exc}); delete it to restart the run") from exc
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint {path} has an unknown format; delete it to restart the run")
        if _canonical(_with_defaults(state["run"])) != _canonical(json.loads(_canonical(self.record))):
            raise ValueError(f"checkpoint {path} belongs to a different config/seed")
        return state

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        save_torch_atomic(self.file(CHECKPOINT_FILE), {"format": CHECKPOINT_FORMAT, "run": self.record, **state})

    def finish(self, model_state: dict[str, Any], history: History) -> None:
        """Write model.pt, history.json, then `done`; then drop the checkpoint."""
        save_torch_atomic(self.file(MODEL_FILE), model_state)
        write_json_atomic(self.file(HISTORY_FILE), history.to_dict(), sort_keys=True)
        write_json_atomic(
            self.file(DONE_FILE),
            {"epochs_run": history.epochs_run, "diverged_epoch": history.diverged_epoch},
            sort_keys=True,
        )
        self.file(CHECKPOINT_FILE).unlink(missing_ok=True)
