"""Data registry: digits, CIFAR (real subset on disk, corrupt files, download), image folders,
augmentation, batching, the weighted sampler and stratified splits."""

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
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from optimlab.data import (
    Augment,
    DatasetError,
    TensorSplit,
    class_balancing_weights,
    iterate_batches,
    list_datasets,
    load_dataset,
    stratified_split,
)

SUBSET = Path(__file__).resolve().parents[1].parent / "shared/data/cifar-10-subset"
CIFAR_FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]
PER_FILE = 1017


def denormalize(splits, x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(splits.mean, dtype=torch.float64).view(1, -1, 1, 1)
    std = torch.tensor(splits.std, dtype=torch.float64).view(1, -1, 1, 1)
    return x.double() * std + mean


# ----------------------------------------------------------------------------- registry


def test_registry_lists_every_dataset_with_its_options():
    infos = {info.name: info for info in list_datasets()}
    assert list(infos) == ["digits", "cifar10", "cifar100", "imagefolder"]
    assert not infos["digits"].needs_root and infos["cifar10"].needs_root
    assert infos["imagefolder"].options == {"image_size": 32, "test_fraction": 0.2, "seed": 0}
    assert {"download", "url", "sha256", "progress"} <= set(infos["cifar100"].options)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: load_dataset("mnist"), r"unknown dataset 'mnist'.*cifar10.*digits.*imagefolder"),
        (lambda: load_dataset("digits", image_size=8), r"does not accept option.*image_size"),
        (lambda: load_dataset("cifar10"), r"cifar10.*needs root"),
        (lambda: load_dataset("digits", root="/tmp"), r"bundled.*no root"),
        (lambda: load_dataset("cifar10", SUBSET, colour=True), r"colour"),
    ],
)
def test_registry_rejects_bad_calls(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- digits


def test_digits_split_is_fixed_stratified_and_normalized_by_train_statistics():
    from sklearn.datasets import load_digits

    splits = load_dataset("digits")
    assert (len(splits.train), len(splits.test)) == (1347, 450)
    assert splits.input_shape == (1, 8, 8) and splits.num_classes == 10
    assert splits.class_names == [str(k) for k in range(10)]
    assert splits.train.x.dtype == torch.float32 and splits.train.y.dtype == torch.int64
    # normalized by the training split's own statistics: mean 0, std 1 there (not on test)
    assert abs(splits.train.x.mean().item()) < 1e-5
    assert abs(splits.train.x.std(unbiased=False).item() - 1) < 1e-5
    # stratified: every class has 25 % ± 1 image of its count in the test split
    raw = load_digits()
    total = np.bincount(raw.target, minlength=10)
    test_counts = torch.bincount(splits.test.y, minlength=10).numpy()
    assert np.all(np.abs(test_counts - 0.25 * total) <= 1)
    # undoing the normalization gives back exactly the original pixel values 0..16, all 1,797 images
    pixels = torch.cat([denormalize(splits, splits.train.x), denormalize(splits, splits.test.x)]) * 16
    assert torch.allclose(pixels, pixels.round(), atol=1e-4)
    ours = sorted(map(tuple, pixels.round().long().reshape(-1, 64).tolist()))
    theirs = sorted(map(tuple, raw.data.astype(np.int64).tolist()))
    assert ours == theirs
    # the split is fixed: a second load is identical
    again = load_dataset("digits")
    assert torch.equal(again.train.x, splits.train.x) and torch.equal(again.test.y, splits.test.y)


# ----------------------------------------------------------------------------- CIFAR on disk


def read_raw(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def test_subset_files_are_the_published_ones():
    sums = dict(line.split()[::-1] for line in (SUBSET / "SHA256SUMS").read_text().splitlines() if line.strip())
    for name in CIFAR_FILES:
        assert hashlib.sha256((SUBSET / name).read_bytes()).hexdigest() == sums[name], name


@pytest.fixture(scope="module")
def cifar_subset():
    return load_dataset("cifar10", SUBSET)


def test_cifar10_reads_the_real_subset(cifar_subset):
    s = cifar_subset
    assert (len(s.train), len(s.test)) == (5 * PER_FILE, PER_FILE)
    assert s.input_shape == (3, 32, 32) and s.num_classes == 10
    assert s.class_names[:3] == ["airplane", "automobile", "bird"] and s.class_names[-1] == "truck"
    assert torch.allclose(s.train.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(s.train.x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    # images and labels are in file order: batch 1 first, batch 5 last, pixels channel-major
    first, last = read_raw(SUBSET / "data_batch_1"), read_raw(SUBSET / "data_batch_5")
    pixels = (denormalize(s, s.train.x[:PER_FILE]) * 255).round().to(torch.uint8).reshape(PER_FILE, -1)
    assert torch.equal(pixels, torch.from_numpy(first[b"data"]))
    assert s.train.y[:PER_FILE].tolist() == list(first[b"labels"])
    assert s.train.y[-PER_FILE:].tolist() == list(last[b"labels"])
    assert s.test.y.tolist() == list(read_raw(SUBSET / "test_batch")[b"labels"])


def link_subset(folder: Path, skip: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True)
    for name in CIFAR_FILES:
        if name not in skip:
            (folder / name).symlink_to(SUBSET / name)
    return folder


def test_cifar10_root_may_be_the_parent_folder(tmp_path, cifar_subset):
    link_subset(tmp_path / "cifar-10-batches-py")
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
    "truncated": (lambda p: p.write_bytes((SUBSET / "data_batch_3").read_bytes()[:5000]), r"data_batch_3.*corrupt or truncated"),
    "not a dict": (lambda p: write_pickle(p, [1, 2, 3]), r"data_batch_3 holds a list, expected a dict"),
    "missing key": (lambda p: write_pickle(p, {b"data": np.zeros((4, 3072), np.uint8)}), r"data_batch_3 lacks key b'labels'"),
    "wrong width": (lambda p: write_pickle(p, {**_good_batch(), b"data": np.zeros((4, 100), np.uint8)}), r"data_batch_3.*uint8 N×3072.*\(4, 100\)"),
    "wrong dtype": (lambda p: write_pickle(p, {**_good_batch(), b"data": np.zeros((4, 3072), np.float32)}), r"data_batch_3.*float32"),
    "label range": (lambda p: write_pickle(p, {**_good_batch(), b"labels": [0, 1, 2, 10]}), r"data_batch_3.*labels must be in 0\.\.9.*0\.\.10"),
    "length mismatch": (lambda p: write_pickle(p, {**_good_batch(), b"labels": [0, 1]}), r"data_batch_3: 4 images but 2 labels"),
    "code in pickle": (lambda p: write_pickle(p, {b"data": _Evil()}), r"data_batch_3.*refusing to load global"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_cifar_bad_file_raises_dataset_error_naming_it(tmp_path, case):
    make, match = CORRUPTIONS[case]
    folder = link_subset(tmp_path / "cifar-10-batches-py", skip=("data_batch_3",))
    if make is not None:
        make(folder / "data_batch_3")
    with pytest.raises(DatasetError, match=match):
        load_dataset("cifar10", folder)


def test_cifar_reads_pickles_written_by_old_numpy(tmp_path):
    """The official files name numpy.core.multiarray (numpy 1.x); numpy 2 renamed it numpy._core."""
    folder = link_subset(tmp_path / "c10", skip=("test_batch",))
    raw = read_raw(SUBSET / "test_batch")
    blob = pickle.dumps(raw, protocol=2)
    assert b"numpy._core.multiarray\n" in blob or b"numpy.core.multiarray\n" in blob
    (folder / "test_batch").write_bytes(blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    s = load_dataset("cifar10", folder)
    assert s.test.y.tolist() == list(raw[b"labels"])


def test_cifar_missing_folder_and_wrong_meta(tmp_path):
    with pytest.raises(DatasetError, match=r"missing file.*data_batch_1.*download=True"):
        load_dataset("cifar10", tmp_path / "nowhere")
    folder = link_subset(tmp_path / "c10", skip=("batches.meta",))
    write_pickle(folder / "batches.meta", {b"label_names": [b"a", b"b"]})
    with pytest.raises(DatasetError, match=r"batches.meta.*10 class names"):
        load_dataset("cifar10", folder)


def test_cifar100_layout_with_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("train", 300), ("test", 100)):
        labels = np.arange(n) % 100
        write_pickle(folder / name, {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                     b"fine_labels": labels.tolist(), b"coarse_labels": (labels // 5).tolist()})
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
def server(tmp_path_factory):
    """An HTTP server on 127.0.0.1 serving good.tar.gz (the subset) and bad.tar.gz (one byte flipped)."""
    root = tmp_path_factory.mktemp("www")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w") as tar:
            for name in CIFAR_FILES:
                tar.add(SUBSET / name, arcname=f"cifar-10-batches-py/{name}")
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
    yield {"base": base, "sha256": hashlib.sha256(good).hexdigest(),
           "bad_sha256": hashlib.sha256(bytes(bad)).hexdigest()}
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verifies_extracts_and_reuses_the_cache(tmp_path, server, cifar_subset):
    cache = tmp_path / "cache"
    _Handler.hits.clear()
    s = load_dataset("cifar10", cache, download=True, url=server["base"] + "/good.tar.gz",
                     sha256=server["sha256"], progress=True)
    assert torch.equal(s.train.x, cifar_subset.train.x) and torch.equal(s.test.y, cifar_subset.test.y)
    assert leftovers(cache) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]  # no temp files
    assert _Handler.hits == ["/good.tar.gz"]
    # second call: the folder is there, nothing is fetched; root may also name the folder itself
    load_dataset("cifar10", cache / "cifar-10-batches-py", download=True, url=server["base"] + "/good.tar.gz",
                 sha256=server["sha256"])
    assert _Handler.hits == ["/good.tar.gz"]


def test_corrupt_download_is_discarded_and_never_poisons_the_cache(tmp_path, server):
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match=rf"checksum mismatch.*expected sha256 {server['sha256']}, got {server['bad_sha256']}"):
        load_dataset("cifar10", cache, download=True, url=server["base"] + "/bad.tar.gz", sha256=server["sha256"])
    assert leftovers(cache) == []
    # the official checksum is the default, so an unofficial archive without sha256= is refused
    with pytest.raises(DatasetError, match=r"expected sha256 6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"):
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


# ----------------------------------------------------------------------------- image folders


COLORS = {"cat": (1, 0, 0), "dog": (0, 1, 0), "horse": (0, 0, 1)}  # the channel each class lights up


def make_tree(root: Path, per_class: int = 10) -> None:
    """Solid-colour images of varied sizes and formats; brightness 255 − 5·i tells them apart."""
    for name, channel in COLORS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            color = tuple(c * (255 - 5 * i) for c in channel)
            fmt = ["png", "jpg", "bmp"][i % 3]
            Image.new("RGB", (20 + i, 12 + 2 * i), color).save(root / name / f"{i}.{fmt}")


def test_imagefolder_decodes_resizes_and_splits_stratified(tmp_path):
    make_tree(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    s = load_dataset("imagefolder", tmp_path, image_size=8)
    assert s.class_names == ["cat", "dog", "horse"] and s.input_shape == (3, 8, 8)
    assert (len(s.train), len(s.test)) == (24, 6)
    assert torch.bincount(s.test.y).tolist() == [2, 2, 2]
    pixels = denormalize(s, torch.cat([s.train.x, s.test.x])) * 255
    labels = torch.cat([s.train.y, s.test.y])
    for k, channel in enumerate(COLORS.values()):  # solid colours survive decoding (jpg: within 3 levels)
        mean = pixels[labels == k].mean(dim=(2, 3))  # [10, 3]
        assert torch.allclose(mean[:, [c == 0 for c in channel]], torch.zeros(1, dtype=torch.float64), atol=3)
        lit = mean[:, channel.index(1)].sort().values
        assert torch.allclose(lit, torch.arange(210.0, 256.0, 5, dtype=torch.float64), atol=3)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing cached on disk
    other = load_dataset("imagefolder", tmp_path, image_size=8, seed=1)
    assert not torch.equal(other.test.x, s.test.x)  # the seed picks the split
    assert torch.equal(load_dataset("imagefolder", tmp_path, image_size=8).test.x, s.test.x)


def test_imagefolder_skips_unreadable_files_with_one_warning(tmp_path):
    make_tree(tmp_path, per_class=4)
    for i in range(7):
        (tmp_path / "dog" / f"broken{i}.jpg").write_bytes(b"not an image")
    (tmp_path / "dog" / "notes.txt").write_text("not an image file, ignored by extension")
    with pytest.warns(UserWarning, match=r"skipped 7 unreadable image\(s\).*dog/broken0\.jpg.*\(and 2 more\)") as record:
        s = load_dataset("imagefolder", tmp_path, image_size=8, test_fraction=0.25)
    assert len([w for w in record if "skipped" in str(w.message)]) == 1
    assert len(s.train) + len(s.test) == 12


def test_imagefolder_uses_given_train_test_folders(tmp_path):
    make_tree(tmp_path / "train", per_class=3)
    make_tree(tmp_path / "test", per_class=2)
    s = load_dataset("imagefolder", tmp_path, image_size=8)
    assert (len(s.train), len(s.test)) == (9, 6)
    assert s.class_names == ["cat", "dog", "horse"]


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"no class sub-folders"):
        load_dataset("imagefolder", tmp_path)
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "a.png").write_bytes(b"junk")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DatasetError, match=r"no readable images under"):
            load_dataset("imagefolder", tmp_path)
    Image.new("RGB", (9, 9)).save(tmp_path / "cat" / "b.png")
    Image.new("RGB", (9, 9)).save(tmp_path / "cat" / "c.png")
    (tmp_path / "dog").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DatasetError, match=r"\['dog'\].*no readable images"):
            load_dataset("imagefolder", tmp_path)
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\)"):
        load_dataset("imagefolder", tmp_path, test_fraction=1.5)
    with pytest.raises(ValueError, match=r"image_size must be an int"):
        load_dataset("imagefolder", tmp_path, image_size=0)


# ----------------------------------------------------------------------------- augmentation


def reference_augment(x: torch.Tensor, padding: int, flip: bool, seed: int) -> torch.Tensor:
    """Per-sample loop: pad, slice, flip — drawing the same random numbers in the same order."""
    g = torch.Generator().manual_seed(seed)
    b, _, h, w = x.shape
    out = x.clone()
    if padding:
        dy = torch.randint(0, 2 * padding + 1, (b,), generator=g)
        dx = torch.randint(0, 2 * padding + 1, (b,), generator=g)
        padded = torch.nn.functional.pad(x, (padding,) * 4)
        for i in range(b):
            out[i] = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
    if flip:
        coin = torch.rand(b, generator=g) < 0.5
        for i in range(b):
            if coin[i]:
                out[i] = out[i].flip(-1)
    return out


@pytest.mark.parametrize("padding, flip, shape", [(4, True, (64, 3, 32, 32)), (2, False, (33, 1, 8, 8)),
                                                  (0, True, (16, 3, 5, 7)), (3, True, (20, 2, 6, 9))])
def test_augment_matches_a_per_sample_loop(padding, flip, shape):
    x = torch.randn(shape)
    got = Augment(crop_padding=padding, flip=flip)(x, torch.Generator().manual_seed(7))
    assert got.shape == x.shape
    assert torch.equal(got, reference_augment(x, padding, flip, 7))


def test_augment_is_random_deterministic_and_validated():
    x = torch.randn(256, 3, 16, 16)
    aug = Augment()
    a = aug(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, aug(x, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, aug(x, torch.Generator().manual_seed(2)))
    assert torch.equal(Augment(crop_padding=0, flip=False)(x), x)
    # flip alone: about half the samples mirrored, the rest untouched
    f = Augment(crop_padding=0)(x, torch.Generator().manual_seed(0))
    mirrored = sum(torch.equal(f[i], x[i].flip(-1)) for i in range(256))
    assert sum(torch.equal(f[i], x[i]) for i in range(256)) + mirrored == 256 and 96 < mirrored < 160
    # crop: a padded border row of zeros appears in some samples
    c = Augment(crop_padding=4, flip=False)(torch.ones(64, 1, 8, 8), torch.Generator().manual_seed(0))
    assert (c == 0).any() and (c == 1).any()
    with pytest.raises(ValueError, match="crop_padding"):
        Augment(crop_padding=-1)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        aug(torch.randn(3, 8, 8))


# ----------------------------------------------------------------------------- batches


def indexed_split(labels: list[int]) -> TensorSplit:
    n = len(labels)
    return TensorSplit(torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1), torch.tensor(labels))


def test_iterate_batches_covers_each_sample_once_per_epoch():
    split = indexed_split([i % 3 for i in range(103)])
    batches = list(iterate_batches(split, 10, generator=torch.Generator().manual_seed(0)))
    assert [len(y) for _, y in batches] == [10] * 10 + [3]
    order = torch.cat([x.flatten() for x, _ in batches]).long()
    assert sorted(order.tolist()) == list(range(103)) and order.tolist() != list(range(103))
    assert torch.equal(torch.cat([y for _, y in batches]), split.y[order])
    again = torch.cat([x.flatten() for x, _ in iterate_batches(split, 10, generator=torch.Generator().manual_seed(0))])
    assert torch.equal(again.long(), order)
    plain = torch.cat([x.flatten() for x, _ in iterate_batches(split, 7, shuffle=False)]).long()
    assert plain.tolist() == list(range(103))
    assert [len(y) for _, y in iterate_batches(split, 10, drop_last=True)] == [10] * 10
    seen = []
    list(iterate_batches(split, 50, augment=lambda x, g: seen.append(x.shape) or x + 1000))
    assert seen == [(50, 1, 1, 1), (50, 1, 1, 1), (3, 1, 1, 1)]
    with pytest.raises(ValueError, match="batch_size"):
        next(iterate_batches(split, 0))


def test_weighted_sampler_follows_weighted_random_sampler_and_balances_classes():
    from torch.utils.data import WeightedRandomSampler

    labels = [0] * 900 + [1] * 90 + [2] * 10
    split = indexed_split(labels)
    weights = class_balancing_weights(split.y)
    assert torch.allclose(weights[:2], torch.tensor([1 / 900, 1 / 900]))
    assert torch.allclose(torch.bincount(split.y, weights=weights.double()), torch.ones(3, dtype=torch.float64))
    ours = torch.cat([x.flatten() for x, _ in iterate_batches(split, 128, generator=torch.Generator().manual_seed(3),
                                                               sampler_weights=weights)]).long()
    theirs = list(WeightedRandomSampler(weights, len(labels), replacement=True, generator=torch.Generator().manual_seed(3)))
    assert ours.tolist() == theirs
    draws = torch.cat([y for _ in range(5) for _, y in iterate_batches(split, 500, sampler_weights=weights,
                                                                        generator=torch.Generator().manual_seed(_))])
    freq = torch.bincount(draws, minlength=3).double() / len(draws)
    assert torch.allclose(freq, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.03)


@pytest.mark.parametrize("weights, match", [(torch.ones(5), r"shape \(10,\)"), (-torch.ones(10), ">= 0"),
                                            (torch.zeros(10), "all be zero"), (torch.full((10,), float("nan")), "finite")])
def test_weighted_sampler_rejects_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        next(iterate_batches(indexed_split([0] * 10), 4, sampler_weights=weights))


def test_stratified_split_carves_a_disjoint_per_class_fraction():
    labels = [0] * 50 + [1] * 31 + [2] * 7 + [3]
    split = indexed_split(labels)
    train, val = stratified_split(split, 0.2, seed=0)
    ti, vi = train.x.flatten().long(), val.x.flatten().long()
    assert sorted(ti.tolist() + vi.tolist()) == list(range(len(labels)))
    assert torch.bincount(val.y, minlength=4).tolist() == [10, 6, 1, 0]  # round(0.2·n), ≥1 kept each side
    assert torch.equal(train.y, split.y[ti]) and torch.equal(val.y, split.y[vi])
    assert torch.equal(stratified_split(split, 0.2, seed=0)[1].x, val.x)
    assert not torch.equal(stratified_split(split, 0.2, seed=1)[1].x, val.x)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="fraction"):
            stratified_split(split, bad, seed=0)
