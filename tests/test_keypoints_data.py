"""Key-point data: the CSV + image-folder loader on fixture files written here in the YouTube Faces
key-point layout, its errors (each naming the bad file), mnist-5k's reader, and the stand-in's
placement and point definitions on hand-built images."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
import torch
from PIL import Image

from optimlab.data import DatasetError, load_dataset
from optimlab.data.keypoints import load_keypoints_folder
from optimlab.data.keypoints_mnist import CANVAS, affine_params, keypoints_of, load_mnist_keypoints, place
from optimlab.data.mnist5k import read_mnist5k


def write_folder(root, rows_train, rows_test, size=(20, 10)):
    """Write root/{training,test}_frames_keypoints.csv and images of `size` (W, H)."""
    for csv_name, folder, rows in (
        ("training_frames_keypoints.csv", "training", rows_train),
        ("test_frames_keypoints.csv", "test", rows_test),
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
        k = (len(rows[0]) - 1) if rows else 0
        lines = ["," + ",".join(str(i) for i in range(k))]
        for i, row in enumerate(rows):
            name = row[0]
            shade = 40 * (i + 1)
            Image.fromarray(np.full((size[1], size[0], 3), shade, np.uint8)).save(root / folder / name)
            lines.append(",".join(str(v) for v in row))
        (root / csv_name).write_text("\n".join(lines) + "\n")


def good_folder(tmp_path):
    # 2 points per image (4 coordinates), images 20 wide and 10 high
    write_folder(
        tmp_path,
        [["a.png", 5, 2.5, 10, 5], ["b.jpg", 0, 0, 20, 10], ["c.png", 15, 7.5, 5, 2.5]],
        [["d.png", 10, 5, 0, 10]],
    )
    return tmp_path


def test_folder_loader_reads_the_official_layout_and_normalizes_points(tmp_path):
    s = load_keypoints_folder(good_folder(tmp_path), image_size=8)
    assert s.train_x.shape == (3, 1, 8, 8) and s.test_x.shape == (1, 1, 8, 8)
    assert s.num_points == 2 and s.num_outputs == 4 and s.input_shape == (1, 8, 8)
    # u = 2x/W - 1 with W = 20, v = 2y/H - 1 with H = 10 (original pixels; resizing does not move them)
    expected = torch.tensor([[-0.5, -0.5, 0.0, 0.0], [-1.0, -1.0, 1.0, 1.0], [0.5, 0.5, -0.5, -0.5]])
    torch.testing.assert_close(s.train_y, expected)
    torch.testing.assert_close(s.test_y, torch.tensor([[0.0, 0.0, -1.0, 1.0]]))
    # grey 40/80/120 train images, normalized by the training mean/std
    assert s.mean[0] == pytest.approx(80 / 255, abs=2e-3)
    assert float(s.train_x.mean()) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize(
    "mutate, culprit, match",
    [
        (lambda r: (r / "training_frames_keypoints.csv").unlink(), "training_frames_keypoints.csv", "not found"),
        (lambda r: (r / "test" / "d.png").unlink(), "d.png", "not found"),
        (lambda r: (r / "training" / "b.jpg").write_bytes(b"not a jpeg"), "b.jpg", "cannot be decoded"),
        (
            lambda r: (r / "training_frames_keypoints.csv").write_text(",0,1,2,3\na.png,1,2,3,4\nb.jpg,1,2,3\n"),
            "training_frames_keypoints.csv",
            "line 3: 3 coordinates, expected 4",
        ),
        (
            lambda r: (r / "test_frames_keypoints.csv").write_text(",0,1,2,3\nd.png,1,x,3,4\n"),
            "test_frames_keypoints.csv",
            "line 2: a coordinate is not a number",
        ),
        (
            lambda r: (r / "test_frames_keypoints.csv").write_text(",0,1\nd.png,1,2\n"),
            "training_frames_keypoints.csv",
            "has 2 points a row but",
        ),
        (lambda r: (r / "test_frames_keypoints.csv").write_text(""), "test_frames_keypoints.csv", "empty"),
        (
            lambda r: (r / "training_frames_keypoints.csv").write_text(",0,1,2\na.png,1,2,3\n"),
            "training_frames_keypoints.csv",
            "even number",
        ),
    ],
)
def test_folder_loader_names_the_bad_file(tmp_path, mutate, culprit, match):
    root = good_folder(tmp_path)
    mutate(root)
    with pytest.raises(DatasetError, match=match) as info:
        load_keypoints_folder(root, image_size=8)
    assert culprit in str(info.value)


def test_mnist5k_reader_checks_rows_and_names_the_file(tmp_path):
    path = tmp_path / "mnist_5k.csv.gz"
    rows = [[0] * 784 + [3], [255] * 784 + [7]]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    images, labels = read_mnist5k(tmp_path)
    assert images.shape == (2, 28, 28) and images[1].min() == 255 and labels.tolist() == [3, 7]
    with gzip.open(path, "wt") as fh:
        fh.write(",".join(["1"] * 784 + ["3"]) + "\n" + ",".join(["1"] * 700) + "\n")
    with pytest.raises(DatasetError, match=r"mnist_5k\.csv\.gz line 2: 700 values, expected 785"):
        read_mnist5k(tmp_path)
    path.write_bytes(b"plain text, not gzip")
    with pytest.raises(DatasetError, match=r"mnist_5k\.csv\.gz is not a readable gzip"):
        read_mnist5k(tmp_path)
    with pytest.raises(DatasetError, match=r"not found"):
        read_mnist5k(tmp_path / "nowhere")


def test_points_of_hand_built_images():
    img = torch.zeros(1, 8, 8)
    img[0, 3, 5] = 1.0  # one ink pixel at row 3, column 5: every point is its centre (5.5, 3.5)
    got = keypoints_of(img)[0]
    u, v = 2 * 5.5 / 8 - 1, 2 * 3.5 / 8 - 1
    torch.testing.assert_close(got, torch.tensor([u, v] * 5, dtype=torch.float64))

    img = torch.zeros(1, 8, 8)
    img[0, 2, 1:4] = 1.0  # a bar on row 2, columns 1-3 ...
    img[0, 6, 3] = 1.0  # ... and a dot at row 6, column 3
    img[0, 4, 6] = 0.4  # faint (below INK): moves the centroid, is never an extreme point
    got = keypoints_of(img)[0] * 4 + 4  # back to pixels
    mass = 4 + 0.4
    cx = (1.5 + 2.5 + 3.5 + 3.5 + 0.4 * 6.5) / mass
    cy = (3 * 2.5 + 6.5 + 0.4 * 4.5) / mass
    expected = [cx, cy, 1.5, 2.5, 3.5, (2.5 + 6.5) / 2, 2.5, 2.5, 3.5, 6.5]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_placement_identity_and_integer_shift_are_exact():
    digit = torch.rand(2, 28, 28)
    ident = place(digit, np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 2.0, -2.0]]))
    pad = (CANVAS - 28) // 2
    torch.testing.assert_close(ident[0, pad : pad + 28, pad : pad + 28], digit[0])
    assert float(ident[0].sum()) == pytest.approx(float(digit[0].sum()), rel=1e-5)
    # t = (+2, -2): two columns right, two rows up
    torch.testing.assert_close(ident[1, pad - 2 : pad + 26, pad + 2 : pad + 30], digit[1])
    # a 90° rotation keeps the ink and moves the centroid by the rotation
    quarter = place(digit[:1], np.array([[math.pi / 2, 1.0, 0.0, 0.0]]))
    assert float(quarter.sum()) == pytest.approx(float(digit[0].sum()), rel=1e-3)


def test_affine_parameters_are_fixed_and_in_range():
    p = affine_params(500)
    np.testing.assert_array_equal(p, affine_params(500))
    assert np.abs(np.rad2deg(p[:, 0])).max() <= 25 and p[:, 1].min() >= 0.75 and p[:, 1].max() <= 1.05
    assert np.abs(p[:, 2:]).max() <= 3


def test_mnist_keypoints_stand_in_on_the_real_digits(mnist5k):
    s = load_mnist_keypoints(mnist5k)
    assert s.train_x.shape == (4000, 1, CANVAS, CANVAS) and s.test_y.shape == (1000, 10)
    assert float(s.train_y.abs().max()) < 1.0  # every point on the canvas
    # the left-most point is left of the centroid, the top-most above it, on every image
    assert bool((s.train_y[:, 2] <= s.train_y[:, 0]).all()) and bool((s.train_y[:, 7] <= s.train_y[:, 1]).all())
    # regressing the training mean leaves a clear error to beat
    assert float(((s.test_y - s.train_y.mean(0)) ** 2).mean()) > 0.02
    again = load_mnist_keypoints(mnist5k)
    assert torch.equal(s.train_x, again.train_x) and torch.equal(s.test_y, again.test_y)


def test_mnist5k_registry_entry(mnist5k):
    s = load_dataset("mnist5k", root=mnist5k)
    assert (len(s.train), len(s.test), s.num_classes, s.input_shape) == (4000, 1000, 10, (1, 28, 28))
    assert torch.bincount(s.test.y).tolist() == [100] * 10
