"""CIFAR files are verified against the folder's SHA256SUMS, or the official checksums for the full set."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

import optimlab.data.cifar as cifar
from optimlab.data import DatasetError, load_dataset


def _copy(cifar10_subset: Path, tmp_path: Path, with_sums: bool) -> Path:
    folder = tmp_path / "cifar"
    folder.mkdir()
    for name in (*cifar.CIFAR10.files, *(["SHA256SUMS"] if with_sums else [])):
        shutil.copyfile(cifar10_subset / name, folder / name)
    return folder


def _flip_a_pixel_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the middle of the file is pixel bytes: it still unpickles
    path.write_bytes(bytes(data))


def test_a_flipped_pixel_byte_fails_against_sha256sums(tmp_path, cifar10_subset):
    folder = _copy(cifar10_subset, tmp_path, with_sums=True)
    assert load_dataset("cifar10", folder).train.y.numel() > 0  # the intact copy verifies
    _flip_a_pixel_byte(folder / "data_batch_2")
    expected = dict(line.split()[::-1] for line in (cifar10_subset / "SHA256SUMS").read_text().splitlines())[
        "data_batch_2"
    ]
    actual = hashlib.sha256((folder / "data_batch_2").read_bytes()).hexdigest()
    with pytest.raises(
        DatasetError, match=rf"data_batch_2 is corrupt: its sha256 is {actual}, .*SHA256SUMS says {expected}"
    ):
        load_dataset("cifar10", folder)


def test_official_files_are_checked_against_the_official_checksums(tmp_path, monkeypatch, cifar10_subset):
    folder = _copy(cifar10_subset, tmp_path, with_sums=False)
    # pretend the subset is the official archive: its counts and MD5s stand in for the official ones
    counts = {name: 0 for name in (*cifar.CIFAR10.train_files, *cifar.CIFAR10.test_files)}
    for name in counts:
        counts[name] = len(cifar.read_batch(folder / name, b"labels", 10)[1])
    md5 = {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in cifar.CIFAR10.files}
    monkeypatch.setitem(cifar.OFFICIAL_COUNTS, "cifar10", counts)
    monkeypatch.setitem(cifar.OFFICIAL_MD5, "cifar10", md5)
    load_dataset("cifar10", folder)
    _flip_a_pixel_byte(folder / "test_batch")
    with pytest.raises(
        DatasetError, match=r"test_batch is corrupt: its md5 is [0-9a-f]{32}, the official cifar10 files say"
    ):
        load_dataset("cifar10", folder)


def test_a_subset_without_sha256sums_still_loads(tmp_path, cifar10_subset):
    folder = _copy(cifar10_subset, tmp_path, with_sums=False)
    _flip_a_pixel_byte(folder / "data_batch_1")  # nothing to compare with: loads (documented)
    assert load_dataset("cifar10", folder).train.y.numel() > 0
