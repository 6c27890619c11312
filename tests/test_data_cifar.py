"""CIFAR-10/100 from disk (the real subset in shared/data, corrupt and hostile files) and the
checksum-verified download, served from a local http.server."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from optimlab.data import DatasetError, load_dataset

CIFAR_FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]
PER_FILE = 1017


def denormalize(splits, x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(splits.mean, dtype=torch.float64).view(1, -1, 1, 1)
    std = torch.tensor(splits.std, dtype=torch.float64).view(1, -1, 1, 1)
    return x.double() * std + mean


# ----------------------------------------------------------------------------- CIFAR on disk


def read_raw(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def test_subset_files_are_the_published_ones(cifar10_subset):
    sums = dict(line.split()[::-1] for line in (cifar10_subset / "SHA256SUMS").read_text().splitlines() if line.strip())
    for name in CIFAR_FILES:
        assert hashlib.sha256((cifar10_subset / name).read_bytes()).hexdigest() == sums[name], name


@pytest.fixture(scope="module")
def cifar_subset(cifar10_subset):
    return load_dataset("cifar10", cifar10_subset)


def test_cifar10_reads_the_real_subset(cifar_subset, cifar10_subset):
    s = cifar_subset
    assert (len(s.train), len(s.test)) == (5 * PER_FILE, PER_FILE)
    assert s.input_shape == (3, 32, 32) and s.num_classes == 10
    assert s.class_names[:3] == ["airplane", "automobile", "bird"] and s.class_names[-1] == "truck"
    assert torch.allclose(s.train.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(s.train.x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    # images and labels are in file order: batch 1 first, batch 5 last, pixels channel-major
    first, last = read_raw(cifar10_subset / "data_batch_1"), read_raw(cifar10_subset / "data_batch_5")
    pixels = (denormalize(s, s.train.x[:PER_FILE]) * 255).round().to(torch.uint8).reshape(PER_FILE, -1)
    assert torch.equal(pixels, torch.from_numpy(first[b"data"]))
    assert s.train.y[:PER_FILE].tolist() == list(first[b"labels"])
    assert s.train.y[-PER_FILE:].tolist() == list(last[b"labels"])
    assert s.test.y.tolist() == list(read_raw(cifar10_subset / "test_batch")[b"labels"])


def link_subset(cifar10_subset: Path, folder: Path, skip: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True)
    for name in CIFAR_FILES:
        if name not in skip:
            (folder / name).symlink_to(cifar10_subset / name)
    return folder


def test_cifar10_root_may_be_the_parent_folder(tmp_path, cifar_subset, cifar10_subset):
    link_subset(cifar10_subset, tmp_path / "cifar-10-batches-py")
    s = load_dataset("cifar10", tmp_path)
    assert torch.equal(s.train.x, cifar_subset.train.x) and torch.equal(s.test.y, cifar_subset.test.y)


def write_pickle(path: Path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def _good_batch(n: int = 4) -> dict:
    return {b"data": np.zeros((n, 3072), np.uint8), b"labels": [0, 1, 2, 3][:n], b"batch_label": b"x"}


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


CORRUPTIONS = {
    "missing": (None, r"missing file\(s\) \['data_batch_3'\]"),
    "truncated": (
        lambda p: p.write_bytes((p.parent / "data_batch_1").read_bytes()[:5000]),  # a sibling, cut short
        r"data_batch_3.*corrupt or truncated",
    ),
    "not a dict": (lambda p: write_pickle(p, [1, 2, 3]), r"data_batch_3 holds a list, expected a dict"),
    "missing key": (
        lambda p: write_pickle(p, {b"data": np.zeros((4, 3072), np.uint8)}),
        r"data_batch_3 lacks key b'labels'",
    ),
    "wrong width": (
        lambda p: write_pickle(p, {**_good_batch(), b"data": np.zeros((4, 100), np.uint8)}),
        r"data_batch_3.*uint8 N×3072.*\(4, 100\)",
    ),
    "wrong dtype": (
        lambda p: write_pickle(p, {**_good_batch(), b"data": np.zeros((4, 3072), np.float32)}),
        r"data_batch_3.*float32",
    ),
    "label range": (
        lambda p: write_pickle(p, {**_good_batch(), b"labels": [0, 1, 2, 10]}),
        r"data_batch_3.*labels must be in 0\.\.9.*0\.\.10",
    ),
    "length mismatch": (
        lambda p: write_pickle(p, {**_good_batch(), b"labels": [0, 1]}),
        r"data_batch_3: 4 images but 2 labels",
    ),
    "code in pickle": (lambda p: write_pickle(p, {b"data": _Evil()}), r"data_batch_3.*refusing to load global"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_cifar_bad_file_raises_dataset_error_naming_it(tmp_path, case, cifar10_subset):
    make, match = CORRUPTIONS[case]
    folder = link_subset(cifar10_subset, tmp_path / "cifar-10-batches-py", skip=("data_batch_3",))
    if make is not None:
        make(folder / "data_batch_3")
    with pytest.raises(DatasetError, match=match):
        load_dataset("cifar10", folder)


def test_cifar_reads_pickles_written_by_old_numpy(tmp_path, cifar10_subset):
    """The official files name numpy.core.multiarray (numpy 1.x); numpy 2 renamed it numpy._core."""
    folder = link_subset(cifar10_subset, tmp_path / "c10", skip=("test_batch",))
    raw = read_raw(cifar10_subset / "test_batch")
    blob = pickle.dumps(raw, protocol=2)
    assert b"numpy._core.multiarray\n" in blob or b"numpy.core.multiarray\n" in blob
    (folder / "test_batch").write_bytes(blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    s = load_dataset("cifar10", folder)
    assert s.test.y.tolist() == list(raw[b"labels"])


ANIMALS = ["bird", "cat", "deer", "dog", "frog", "horse"]  # CIFAR-10's animal classes


def test_classes_keeps_those_classes_relabelled_in_the_order_given(cifar_subset, cifar10_subset):
    full = cifar_subset
    s = load_dataset("cifar10", cifar10_subset, classes=["horse", "cat", 2])  # names or indices, any order
    assert s.class_names == ["horse", "cat", "bird"] and s.num_classes == 3
    for split, whole in ((s.train, full.train), (s.test, full.test)):
        for new, old in enumerate([full.class_names.index(c) for c in s.class_names]):
            assert int((split.y == new).sum()) == int((whole.y == old).sum())
        # the images are the same up to each loading's normalization: compare raw pixels
        keep = torch.isin(whole.y, torch.tensor([7, 3, 2]))
        assert torch.allclose(denormalize(s, split.x), denormalize(full, whole.x[keep]), atol=1e-4)
    # normalization statistics come from the kept training images only
    raw = denormalize(s, s.train.x)
    assert torch.allclose(raw.mean(dim=(0, 2, 3)), torch.tensor(s.mean, dtype=torch.float64), atol=1e-4)
    assert s.mean != full.mean
    animals = load_dataset("cifar10", cifar10_subset, classes=ANIMALS)
    assert animals.num_classes == 6 and len(animals.train) + len(animals.test) < len(full.train) + len(full.test)


@pytest.mark.parametrize(
    "classes, match",
    [
        (["cat", "cow"], r"unknown class 'cow'; valid: airplane, automobile"),
        (["cat", 3], r"'cat' is selected twice"),
        (["cat"], r"at least 2 classes"),
        ("cat", r"a list of class names or indices"),
        ([1, 10], r"index 10 is outside 0..9"),
        ([True, 1], r"neither a class name nor an index"),
    ],
)
def test_classes_errors_name_the_culprit(classes, match, cifar10_subset):
    with pytest.raises(DatasetError, match=match):
        load_dataset("cifar10", cifar10_subset, classes=classes)


def test_cifar_missing_folder_and_wrong_meta(tmp_path, cifar10_subset):
    with pytest.raises(DatasetError, match=r"missing file.*data_batch_1.*download=True"):
        load_dataset("cifar10", tmp_path / "nowhere")
    folder = link_subset(cifar10_subset, tmp_path / "c10", skip=("batches.meta",))
    write_pickle(folder / "batches.meta", {b"label_names": [b"a", b"b"]})
    with pytest.raises(DatasetError, match=r"batches.meta.*10 class names"):
        load_dataset("cifar10", folder)


def test_cifar100_layout_with_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("train", 300), ("test", 100)):
        labels = np.arange(n) % 100
        write_pickle(
            folder / name,
            {
                b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                b"fine_labels": labels.tolist(),
                b"coarse_labels": (labels // 5).tolist(),
            },
        )
    write_pickle(folder / "meta", {b"fine_label_names": [f"c{k}".encode() for k in range(100)]})
    s = load_dataset("cifar100", tmp_path)
    assert (len(s.train), len(s.test), s.num_classes) == (300, 100, 100)
    assert s.class_names[7] == "c7" and s.train.y[:3].tolist() == [0, 1, 2]
    with pytest.raises(DatasetError, match=r"missing file.*'meta'"):
        (folder / "meta").unlink()
        load_dataset("cifar100", folder)


# ----------------------------------------------------------------------------- download


class _Handler(http.server.SimpleHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        type(self).hits.append(self.path)
        if self.path == "/short.tar.gz":  # announces more bytes than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 100)
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture(scope="module")
def server(tmp_path_factory, cifar10_subset):
    """An HTTP server on 127.0.0.1 serving good.tar.gz (the subset) and bad.tar.gz (one byte flipped)."""
    root = tmp_path_factory.mktemp("www")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w") as tar:
            for name in CIFAR_FILES:
                tar.add(cifar10_subset / name, arcname=f"cifar-10-batches-py/{name}")
    good = buf.getvalue()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    (root / "good.tar.gz").write_bytes(good)
    (root / "bad.tar.gz").write_bytes(bytes(bad))
    handler = functools.partial(_Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield {
        "base": base,
        "sha256": hashlib.sha256(good).hexdigest(),
        "bad_sha256": hashlib.sha256(bytes(bad)).hexdigest(),
    }
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verifies_extracts_and_reuses_the_cache(tmp_path, server, cifar_subset):
    cache = tmp_path / "cache"
    _Handler.hits.clear()
    s = load_dataset(
        "cifar10", cache, download=True, url=server["base"] + "/good.tar.gz", sha256=server["sha256"], progress=True
    )
    assert torch.equal(s.train.x, cifar_subset.train.x) and torch.equal(s.test.y, cifar_subset.test.y)
    assert leftovers(cache) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]  # no temp files
    assert _Handler.hits == ["/good.tar.gz"]
    # second call: the folder is there, nothing is fetched; root may also name the folder itself
    load_dataset(
        "cifar10",
        cache / "cifar-10-batches-py",
        download=True,
        url=server["base"] + "/good.tar.gz",
        sha256=server["sha256"],
    )
    assert _Handler.hits == ["/good.tar.gz"]


def test_corrupt_download_is_discarded_and_never_poisons_the_cache(tmp_path, server):
    cache = tmp_path / "cache"
    with pytest.raises(
        DatasetError, match=rf"checksum mismatch.*expected sha256 {server['sha256']}, got {server['bad_sha256']}"
    ):
        load_dataset("cifar10", cache, download=True, url=server["base"] + "/bad.tar.gz", sha256=server["sha256"])
    assert leftovers(cache) == []
    # the official checksum is the default, so an unofficial archive without sha256= is refused
    with pytest.raises(
        DatasetError, match=r"expected sha256 6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
    ):
        load_dataset("cifar10", cache, download=True, url=server["base"] + "/good.tar.gz")
    assert leftovers(cache) == []
    with pytest.raises(DatasetError, match=r"interrupted"):
        load_dataset("cifar10", cache, download=True, url=server["base"] + "/short.tar.gz", sha256=server["sha256"])
    with pytest.raises(DatasetError, match=r"cannot download .*/missing.tar.gz"):
        load_dataset("cifar10", cache, download=True, url=server["base"] + "/missing.tar.gz", sha256=server["sha256"])
    with pytest.raises(ValueError, match=r"sha256 must be 64 hex digits"):
        load_dataset("cifar10", cache, download=True, url=server["base"] + "/good.tar.gz", sha256="abc")
    assert leftovers(cache) == []
    # after all that, a good download still works into the same cache
    s = load_dataset("cifar10", cache, download=True, url=server["base"] + "/good.tar.gz", sha256=server["sha256"])
    assert len(s.train) == 5 * PER_FILE
