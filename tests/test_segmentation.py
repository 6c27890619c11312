"""The segmentation task (paper 004's SEG row): mIoU / pixel accuracy against hand-computed values,
the VOC2007 loader on a two-image tree in the official layout written here, the mnist-5k stand-in,
the LR-ASPP models, the task end to end at toy size with resume bit-identical, and the catalogue
entry's figures against the paper's text."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from optimlab.data import DatasetError, load_dataset
from optimlab.data.voc_segmentation import IGNORE, VOC_CLASSES, load_voc2007_segmentation
from optimlab.models import count_parameters, create_model
from optimlab.reproduce import load_paper_experiment
from optimlab.tasks import get_task
from optimlab.tasks.segmentation import confusion, iou_per_class, pixel_correct, predict, segmentation_metrics
from optimlab.train import TrainConfig, fit
from optimlab.train.checkpoint import CHECKPOINT_FILE
from test_tasks_keypoints_gan import interrupted_then_resumed, write_mnist5k

# ----------------------------------------------------------------------------------------------
# metrics


def test_miou_and_pixel_accuracy_hand_computed_with_void_and_an_absent_class():
    true = np.array([[0, 0, 1], [1, IGNORE, 2]])
    pred = np.array([[0, 1, 1], [1, 0, 2]])  # the void pixel's prediction (0) is not scored
    m = confusion(true, pred, num_classes=4)
    assert m.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    iou = iou_per_class(m)
    assert iou[:3] == pytest.approx([1 / 2, 2 / 3, 1.0]) and math.isnan(iou[3])  # class 3: in neither
    got = segmentation_metrics(m)
    assert got["miou"] == pytest.approx(float(Fraction(1, 2) + Fraction(2, 3) + 1) / 3)  # 13/18, 3 is left out
    assert got["pixel_accuracy"] == pytest.approx(4 / 5)
    # a class predicted but absent from the truth has IoU 0 and counts
    pred[1, 0] = 3
    got = segmentation_metrics(confusion(true, pred, 4))
    assert got["miou"] == pytest.approx((1 / 2 + 1 / 3 + 1 + 0) / 4)  # 11/24
    assert got["pixel_accuracy"] == pytest.approx(3 / 5)
    assert all(math.isnan(v) for v in segmentation_metrics(np.zeros((3, 3))).values())
    with pytest.raises(ValueError, match="label 7 outside 0..3"):
        confusion(np.array([7]), np.array([0]), 4)


def test_an_all_void_evaluation_gives_nan_not_scikit_learns_empty_input_error():
    true = np.full((2, 4, 4), IGNORE)  # every pixel void (scikit-learn >= 1.8 refuses an empty confusion matrix)
    m = confusion(true, np.zeros((2, 4, 4), dtype=np.int64), num_classes=3)
    assert m.shape == (3, 3) and m.sum() == 0 and m.dtype == np.int64
    got = segmentation_metrics(m)
    assert set(got) == {"miou", "pixel_accuracy"} and all(math.isnan(v) for v in got.values())


def test_miou_agrees_with_scikit_learn_jaccard_on_random_maps():
    from sklearn.metrics import jaccard_score

    rng = np.random.RandomState(0)
    true = rng.randint(0, 5, (4, 16, 16))
    pred = np.where(rng.rand(4, 16, 16) < 0.6, true, rng.randint(0, 5, (4, 16, 16)))
    true[:, 0] = IGNORE
    keep = true != IGNORE
    got = segmentation_metrics(confusion(true, pred, 5))
    assert got["miou"] == pytest.approx(jaccard_score(true[keep], pred[keep], average="macro"))
    assert got["pixel_accuracy"] == pytest.approx(float((true[keep] == pred[keep]).mean()))


def test_loss_and_curve_ignore_void_pixels():
    task = get_task("segmentation")
    y = torch.tensor([[[0, 1], [IGNORE, 2]]])
    logits = torch.randn(1, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    loss = task.loss(logits, y)
    changed = logits.clone()
    changed[0, :, 1, 0] = torch.tensor([9.0, -9.0, 4.0])  # the void pixel's logits do not matter
    assert task.loss(changed, y) == pytest.approx(float(loss))
    labelled = logits[0].permute(1, 2, 0).reshape(4, 3)[[0, 1, 3]]
    expected = torch.nn.functional.cross_entropy(labelled, torch.tensor([0, 1, 2]))
    assert float(loss) == pytest.approx(float(expected))
    assert float(task.loss(logits, y, reduction="sum")) == pytest.approx(float(loss))  # x 1 image
    hits = int((logits[0].argmax(0).reshape(-1)[[0, 1, 3]] == torch.tensor([0, 1, 2])).sum())
    assert float(task.correct(logits, y)) == pytest.approx(hits / 3)
    # the fast forms (amax + gather; a channels-last argmax) agree with a plain argmax over classes
    g = torch.Generator().manual_seed(1)
    out, target = torch.randn(3, 6, 9, 7, generator=g), torch.randint(0, 6, (3, 9, 7), generator=g)
    target[:, 0] = IGNORE
    hit, labelled = pixel_correct(out, target)
    plain = (out.argmax(1) == target) & (target != IGNORE)
    assert torch.equal(hit, plain.flatten(1).sum(1)) and torch.equal(labelled, torch.full((3,), 8 * 7))
    assert torch.equal(predict(out), out.argmax(1))


# ----------------------------------------------------------------------------------------------
# the VOC2007 loader


def voc_palette() -> list[int]:
    """The VOC devkit's colour map (bit-interleaved), 256 RGB entries."""
    out = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out += [r, g, b]
    return out


def write_voc(root, size=(40, 30), extra_train=0):
    """root/VOCdevkit/VOC2007 with two images: 'a' (train: a person, id 15) and 'b' (val: a cat, id 8),
    each mask a palette PNG with the object's rectangle, a 255 border around it, background 0
    (extra_train: more training images t0, t1, ... like 'a')."""
    voc = root / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True)
    w, h = size
    rng = np.random.RandomState(0)
    for name, cls in (("a", 15), ("b", 8), *((f"t{i}", 15) for i in range(extra_train))):
        mask = np.zeros((h, w), np.uint8)
        mask[4:26, 8:32] = IGNORE
        mask[6:24, 10:30] = cls
        img = (rng.rand(h, w, 3) * 80).astype(np.uint8)
        img[mask == cls] = 220
        Image.fromarray(img).save(voc / "JPEGImages" / f"{name}.jpg", quality=95)
        png = Image.fromarray(mask)
        png.putpalette(voc_palette())
        png.save(voc / "SegmentationClass" / f"{name}.png")
    (voc / "ImageSets/Segmentation/train.txt").write_text(
        "".join(f"{n}\n" for n in ["a", *(f"t{i}" for i in range(extra_train))])
    )
    (voc / "ImageSets/Segmentation/val.txt").write_text("b\n")
    return voc


def test_voc_loader_reads_the_official_layout_from_any_of_its_folders(tmp_path):
    voc = write_voc(tmp_path)
    assert Image.open(voc / "SegmentationClass" / "a.png").mode == "P"
    for root in (tmp_path, tmp_path / "VOCdevkit", voc):
        data = load_voc2007_segmentation(root, image_size=20)
        assert data.train_x.shape == (1, 3, 20, 20) and data.test_y.shape == (1, 20, 20)
        assert data.num_classes == 21 and data.class_names[15] == "person" and len(VOC_CLASSES) == 21
    # nearest resizing keeps ids: only background, the object's id and void, all three present
    assert set(data.train_y.unique().tolist()) == {0, 15, IGNORE}
    assert set(data.test_y.unique().tolist()) == {0, 8, IGNORE}
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    # the object's pixels are the bright ones (image and mask stay aligned after resizing)
    x = data.train_x[0].mean(0)
    assert float(x[data.train_y[0] == 15].mean()) > float(x[data.train_y[0] == 0].mean()) + 1.0
    via_registry = load_dataset("voc2007-segmentation", tmp_path, image_size=20)
    assert torch.equal(via_registry.train_y, data.train_y)


def test_paper_scale_model_trains_on_the_voc_layout(tmp_path):
    """The paper-scale path end to end: the VOC2007 loader, LR-ASPP on MobileNetV3-Large, 21 classes."""
    write_voc(tmp_path, extra_train=3)
    config = TrainConfig(
        task="segmentation",
        dataset="voc2007-segmentation",
        data_dir=str(tmp_path),
        dataset_options={"image_size": 32},
        model="lraspp",
        width=0.25,
        optimizer="tmsgd",
        hparams={"lr": 1e-4},
        epochs=2,
        switch_epoch=2,
        batch_size=2,
        val_fraction=0.25,
    )
    history = fit(config, 0)
    assert len(history.test_acc) == 2 and 0 <= history.final["miou"] <= 1
    assert np.array(history.confusion).shape == (21, 21)
    assert np.array(history.confusion).sum() == 32 * 32 - int(
        (load_voc2007_segmentation(tmp_path, 32).test_y == IGNORE).sum()
    )


def test_voc_loader_names_the_missing_or_bad_file(tmp_path):
    voc = write_voc(tmp_path)
    with pytest.raises(DatasetError, match=r"no VOC2007 folder \(with ImageSets/Segmentation/\)"):
        load_voc2007_segmentation(tmp_path / "VOCdevkit" / "VOC2007" / "JPEGImages")
    (voc / "SegmentationClass" / "b.png").unlink()
    with pytest.raises(DatasetError, match=r"mask .*SegmentationClass/b\.png not found"):
        load_voc2007_segmentation(tmp_path, image_size=20)
    Image.new("RGB", (40, 30)).save(voc / "SegmentationClass" / "b.png")
    with pytest.raises(DatasetError, match=r"b\.png is a 'RGB' image; VOC masks are palette"):
        load_voc2007_segmentation(tmp_path, image_size=20)
    bad = Image.fromarray(np.full((30, 40), 30, np.uint8))
    bad.putpalette(voc_palette())
    bad.save(voc / "SegmentationClass" / "b.png")
    with pytest.raises(DatasetError, match=r"b\.png holds class id 30"):
        load_voc2007_segmentation(tmp_path, image_size=20)
    (voc / "JPEGImages" / "a.jpg").unlink()
    with pytest.raises(DatasetError, match=r"JPEGImages/a\.jpg \(listed in train\.txt\) not found"):
        load_voc2007_segmentation(tmp_path, image_size=20)
    with pytest.raises(DatasetError, match=r"image set .*Segmentation/trainval\.txt not found"):
        load_voc2007_segmentation(tmp_path, train_split="trainval", test_split="test")
    with pytest.raises(ValueError, match="overlap"):
        load_voc2007_segmentation(tmp_path, train_split="trainval", test_split="val")
    with pytest.raises(ValueError, match="does not accept option"):
        load_dataset("voc2007-segmentation", tmp_path, crop=3)


# ----------------------------------------------------------------------------------------------
# the stand-in and the models


def test_stand_in_is_deterministic_and_its_masks_are_the_digits(tmp_path):
    from optimlab.data.mnist5k import read_mnist5k
    from optimlab.data.segmentation_mnist import composite, load_mnist_segmentation

    folder = write_mnist5k(tmp_path / "mnist", per_class=4)
    a, b = load_mnist_segmentation(folder), load_mnist_segmentation(folder)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert a.train_x.shape[1:] == (3, 32, 32) and a.num_classes == 11 and a.class_names[0] == "background"
    digits, labels = read_mnist5k(folder)
    images, masks = composite(digits, labels)
    for i in range(len(labels)):
        ids = set(masks[i].unique().tolist())
        assert ids <= {0, 1 + int(labels[i]), IGNORE} and 1 + int(labels[i]) in ids and IGNORE in ids
    # the void rim exists, and the images are stored as 8-bit pixels
    assert int((masks == IGNORE).sum()) > 0 and images.dtype == torch.uint8


def test_stand_in_on_the_real_digits(mnist5k):
    data = load_dataset("mnist-segmentation", mnist5k)
    assert (len(data.train_y), len(data.test_y)) == (4000, 1000)
    share = {k: float((data.train_y == k).double().mean()) for k in (0, IGNORE)}
    assert 0.8 < share[0] < 0.95 and 0.01 < share[IGNORE] < 0.06  # digits cover a few % of each image
    assert set(data.test_y.unique().tolist()) == {*range(11), IGNORE}


def test_lraspp_matches_torchvisions_parameter_count_and_keeps_the_input_size():
    with torch.device("meta"):
        # torchvision's lraspp_mobilenet_v3_large(num_classes=21): 3,221,538 parameters
        assert count_parameters(create_model("lraspp", 21, (3, 64, 64))) == 3_221_538
        assert count_parameters(create_model("lraspp", 21, (3, 64, 64), width=0.25)) < 400_000
    big = create_model("lraspp", 5, (3, 48, 40), width=0.25)
    small = create_model("lraspp-resnet18", 11, (1, 30, 22), width=0.125)
    assert big(torch.zeros(2, 3, 48, 40)).shape == (2, 5, 48, 40)
    assert small(torch.zeros(2, 1, 30, 22)).shape == (2, 11, 30, 22)
    # the head's inputs: low level at stride 8 and high at 16 for lraspp (torchvision's), 1 and 8 for the ResNet
    for model, shape, strides in ((big, (1, 3, 64, 64), (8, 16)), (small, (1, 1, 32, 32), (1, 8))):
        seen: dict = {}
        head = model.head
        assert isinstance(head, torch.nn.Module)
        hook = head.register_forward_hook(lambda m, args, out, seen=seen: seen.update(low=args[0], high=args[1]))
        model(torch.zeros(shape))
        hook.remove()
        assert (seen["low"].shape[-1], seen["high"].shape[-1]) == tuple(shape[-1] // s for s in strides)


# ----------------------------------------------------------------------------------------------
# the task end to end


def seg_config(folder, **kw):
    base = dict(
        task="segmentation",
        dataset="mnist-segmentation",
        data_dir=str(folder),
        model="lraspp-resnet18",
        width=0.125,
        optimizer="tmsgd",
        hparams={"lr": 0.05},
        epochs=3,
        switch_epoch=2,
        batch_size=8,
        max_steps_per_epoch=4,
        val_fraction=0.25,
    )
    return TrainConfig(**{**base, **kw})


def test_segmentation_task_end_to_end_and_resume(tmp_path):
    folder = write_mnist5k(tmp_path / "mnist", per_class=8)
    config = seg_config(folder)
    state, history = interrupted_then_resumed(config, 5, tmp_path, stop_after=1)
    assert set(history.final) == {"miou", "pixel_accuracy", "loss"}
    assert 0 < history.final["miou"] <= 1 and 0 < history.final["pixel_accuracy"] <= 1
    assert math.isfinite(history.final["loss"]) and len(history.test_acc) == 3
    assert history.test_acc[-1] == pytest.approx(history.final["pixel_accuracy"])  # the curve
    assert all(0 <= a <= 1 for a in history.train_acc)
    matrix = np.array(history.confusion)
    test = load_dataset("mnist-segmentation", folder).test_y
    assert matrix.shape == (11, 11) and matrix.sum() == int((test != IGNORE).sum())
    assert state["epoch"] == 1 and all(not g["multistep"] for g in state["optimizer"]["param_groups"])


def test_segmentation_model_fits_a_few_images(tmp_path):
    """A check that training works at all: Adam overfits 8 images well past 'all background'."""
    folder = write_mnist5k(tmp_path / "mnist", per_class=2)
    config = seg_config(folder, optimizer="adam", hparams={"lr": 0.01}, switch_epoch=None, epochs=1)
    task = get_task("segmentation")
    torch.manual_seed(0)
    data = task.prepare(config, 0, torch.device("cpu"))
    model = task.build_model(config, data)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = data.train.x[:8], data.train.y[:8]
    for _ in range(60):
        opt.zero_grad()
        task.loss(model(x), y).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(1)
    got = segmentation_metrics(confusion(y, pred, 11))
    background_only = segmentation_metrics(confusion(y, torch.zeros_like(y), 11))
    assert got["miou"] > background_only["miou"] + 0.2


def test_segmentation_task_checks_names_and_estimates_without_data(tmp_path):
    task = get_task("segmentation")
    with pytest.raises(ValueError, match="model 'cnn' is not a segmentation model"):
        task.check(seg_config("/nonexistent", model="cnn"))
    with pytest.raises(ValueError, match="dataset 'digits' is not a segmentation data set"):
        task.check(seg_config("/nonexistent", dataset="digits"))
    macs = task.forward_macs(seg_config("/nonexistent", width=0.25))
    assert macs > 32 * 32 * 16 * 27  # the stem conv alone (3x3x3 -> 16 channels at 32x32)
    voc = seg_config("/nonexistent", dataset="voc2007-segmentation", dataset_options={"image_size": 64}, width=0.25)
    assert task.forward_macs(voc) == pytest.approx(4 * macs, rel=0.02)  # 4x the pixels (21 classes, not 11)
    with pytest.raises(DatasetError, match=r"mnist_5k\.csv\.gz not found"):
        fit(seg_config(tmp_path / "empty"), 0, run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / CHECKPOINT_FILE).exists()


# ----------------------------------------------------------------------------------------------
# the catalogue entry


def test_catalogue_entry_has_the_papers_figures_and_table_2_row(papers_dir):
    (path,) = papers_dir.glob("004_*.txt")
    text = " ".join(path.read_text(encoding="utf-8").split())
    exp = load_paper_experiment("tmsgd-segmentation-voc2007")
    assert "mIoU) of 70.8" in text and "(IoU for SGD is 70.1%, for Adam is 68.6%, and for Apollo is 68.5%)" in text
    assert {k: v["miou"] for k, v in exp.paper.reported.items()} == {
        "tmsgd": 0.708,
        "sgd": 0.701,
        "adam": 0.686,
        "apollo": 0.685,
    }
    assert re.search(r"<b>SEG</b> 30 \$1e-4\$ 4 200", text)  # Table 2 as printed
    e = exp.experiment
    # our reading: the Epoch and Switch Epoch columns swapped (as for the IC row): 200 epochs, switch 30
    assert (e["epochs"], e["switch_epoch"], e["batch_size"]) == (200, 30, 4)
    assert {o["hparams"]["lr"] for o in e["optimizers"]} == {1e-4}
    assert {c.metric for c in exp.paper.claims} == {"miou"} and len(exp.paper.claims) == 3
    assert "swap" in exp.paper.notes and "STAND-IN" in exp.paper.notes.upper()
