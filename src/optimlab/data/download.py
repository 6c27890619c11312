"""Fetch an archive over HTTP(S), verify its SHA-256, and extract it — never leaving a bad cache.

Every step is atomic with respect to the cache folder:
  * the download goes to a unique temporary file next to its destination, is hashed while it is
    written, and is moved into place with os.replace only once the checksum matches; a partial,
    interrupted or corrupt download is deleted and raises DatasetError (expected vs actual hash);
  * the archive is unpacked into a unique temporary folder and its top-level folder is then moved
    into place, so a half-extracted folder is never mistaken for the data set.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported only when a bar is shown
    from rich.progress import Progress

from optimlab.data.base import DatasetError

CHUNK_BYTES = 1 << 20  # read/hash granularity
TIMEOUT_S = 60.0  # socket timeout for one read


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(sha256: str) -> str:
    value = str(sha256).strip().lower()
    if len(value) != 64 or any(ch not in "0123456789abcdef" for ch in value):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    return value


def download_file(url: str, dest: Path, sha256: str, progress: bool = False) -> Path:
    """Download `url` to `dest` only if its SHA-256 equals `sha256`; otherwise raise DatasetError."""
    expected = _check_sha256(sha256)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=TIMEOUT_S)  # noqa: S310 (http(s) URLs)
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                raise DatasetError(f"cannot download {url}: {exc}") from exc
            with response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with _progress_bar(progress, total, dest.name) as advance:
                    received = 0
                    try:
                        for block in iter(lambda: response.read(CHUNK_BYTES), b""):
                            out.write(block)
                            digest.update(block)
                            received += len(block)
                            advance(len(block))
                    except (OSError, http.client.HTTPException) as exc:
                        raise DatasetError(f"download of {url} was interrupted: {exc!r}") from exc
                    # http.client returns a short body silently when the server hangs up early
                    if total is not None and received != total:
                        raise DatasetError(f"download of {url} was interrupted: got {received} of {total} bytes")
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != expected:
            raise DatasetError(
                f"checksum mismatch for {url}: expected sha256 {expected}, got {actual}; the download was discarded"
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


class _progress_bar:
    """Context manager yielding advance(n); a rich progress bar when enabled, else a no-op."""

    def __init__(self, enabled: bool, total: int | None, label: str) -> None:
        self.enabled, self.total, self.label = enabled, total, label
        self._progress: Progress | None = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        progress = Progress(
            "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn()
        )
        self._progress = progress
        progress.__enter__()
        task = progress.add_task(f"download {self.label}", total=self.total)
        return lambda n: progress.advance(task, n)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(kind, error, trace)


def extract_folder(archive: Path, folder: str, dest_dir: Path) -> Path:
    """Unpack `folder/` from tar archive `archive` into dest_dir/folder, atomically; return it."""
    target = Path(dest_dir) / folder
    staging = Path(tempfile.mkdtemp(dir=dest_dir, prefix=f".{folder}.", suffix=".extract"))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = [m for m in tar.getmembers() if Path(m.name).parts[:1] == (folder,)]
                if not members:
                    raise DatasetError(f"archive {archive} has no folder {folder!r}")
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(staging, members=members, filter="data")
                else:  # Python < 3.11.4: refuse anything that is not a plain file/dir inside staging
                    for m in members:
                        if not (m.isfile() or m.isdir()) or ".." in Path(m.name).parts or Path(m.name).is_absolute():
                            raise DatasetError(f"archive {archive} has an unsafe member {m.name!r}")
                    tar.extractall(staging, members=members)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DatasetError(f"cannot extract {archive}: {exc}") from exc
        try:
            os.replace(staging / folder, target)
        except OSError:
            if not target.is_dir():  # someone else finished first is fine; anything else is not
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def download_and_extract(
    url: str, sha256: str, root: Path, archive_name: str, folder: str, progress: bool = False
) -> Path:
    """Make root/folder from the archive at `url` (reusing a verified root/archive_name if present)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    archive = root / archive_name
    if not (archive.is_file() and sha256_file(archive) == _check_sha256(sha256)):
        download_file(url, archive, sha256, progress)
    return extract_folder(archive, folder, root)
