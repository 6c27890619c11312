"""Data registry: digits, image folders, augmentation, batching, the weighted sampler and
stratified splits (CIFAR from disk and the download: test_data_cifar.py)."""

from __future__ import annotations

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


def denormalize(splits, x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(splits.mean, dtype=torch.float64).view(1, -1, 1, 1)
    std = torch.tensor(splits.std, dtype=torch.float64).view(1, -1, 1, 1)
    return x.double() * std + mean


# ----------------------------------------------------------------------------- registry


def test_registry_lists_every_dataset_with_its_options():
    infos = {info.name: info for info in list_datasets()}
    assert list(infos) == [
        *("digits", "cifar10", "cifar100", "imagefolder"),
        *("r8", "womens-reviews", "avazu", "adult"),
        *("mnist5k", "mnist-keypoints", "keypoints-folder"),
        *("mnist-detection", "voc2007"),
        *("mnist-segmentation", "voc2007-segmentation"),
        "npz",
    ]
    tasks = ["classification"] * 4 + ["text"] * 2 + ["ctr"] * 2 + ["classification"] + ["keypoints"] * 2
    tasks += ["detection"] * 2 + ["segmentation"] * 2 + ["classification"]
    assert [i.task for i in infos.values()] == tasks
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
        (lambda: load_dataset("cifar10", "/nonexistent", colour=True), r"colour"),  # options are checked first,
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
    with pytest.warns(
        UserWarning, match=r"skipped 7 unreadable image\(s\).*dog/broken0\.jpg.*\(and 2 more\)"
    ) as record:
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


@pytest.mark.parametrize(
    "padding, flip, shape",
    [(4, True, (64, 3, 32, 32)), (2, False, (33, 1, 8, 8)), (0, True, (16, 3, 5, 7)), (3, True, (20, 2, 6, 9))],
)
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
    seen: list[torch.Size] = []

    def shift(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        seen.append(x.shape)
        return x + 1000

    list(iterate_batches(split, 50, augment=shift))
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
    ours = torch.cat(
        [
            x.flatten()
            for x, _ in iterate_batches(split, 128, generator=torch.Generator().manual_seed(3), sampler_weights=weights)
        ]
    ).long()
    theirs = list(
        WeightedRandomSampler(
            weights,  # type: ignore[arg-type]  # torch's stub says Sequence[float]; it takes (and documents) a Tensor
            len(labels),
            replacement=True,
            generator=torch.Generator().manual_seed(3),
        )
    )
    assert ours.tolist() == theirs
    draws = torch.cat(
        [
            y
            for _ in range(5)
            for _, y in iterate_batches(split, 500, sampler_weights=weights, generator=torch.Generator().manual_seed(_))
        ]
    )
    freq = torch.bincount(draws, minlength=3).double() / len(draws)
    assert torch.allclose(freq, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.03)


@pytest.mark.parametrize(
    "weights, match",
    [
        (torch.ones(5), r"shape \(10,\)"),
        (-torch.ones(10), ">= 0"),
        (torch.zeros(10), "all be zero"),
        (torch.full((10,), float("nan")), "finite"),
    ],
)
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


def test_normalize_pair_uses_the_training_split_statistics_for_both_splits():
    """The one normalization every image data set goes through (classification, key points,
    detection, segmentation): scale, then the TRAINING split's per-channel mean/std — never the test's."""
    from optimlab.data.base import normalize_pair

    gen = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (40, 3, 5, 5), generator=gen, dtype=torch.uint8)
    test = (torch.randint(0, 128, (10, 3, 5, 5), generator=gen) + 100).to(torch.uint8)  # another distribution
    got = normalize_pair(train, test, scale=1 / 255)
    x = train.double() / 255
    mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3), unbiased=False)
    assert got.input_shape == (3, 5, 5)
    assert got.mean == pytest.approx(mean.tolist(), abs=1e-6) and got.std == pytest.approx(std.tolist(), abs=1e-6)
    torch.testing.assert_close(
        got.train.double().mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0
    )
    want = (test.double() / 255 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    torch.testing.assert_close(got.test.double(), want, atol=1e-5, rtol=1e-5)
    assert got.train.dtype == got.test.dtype == torch.float32
