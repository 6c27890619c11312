"""The detection task: VOC mAP (11-point and all-point) against hand-computed cases, the VOC2007 loader
on a fixture tree in the official layout, the mnist-5k stand-in, the detector's anchors, and the task
end to end at toy size with resume after an interruption bit-identical."""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import pytest
import torch
from PIL import Image

from optimlab.data import DatasetError, load_dataset
from optimlab.data.detection_mnist import make_scenes
from optimlab.data.voc_detection import VOC_CLASSES, load_voc2007
from optimlab.models.detector import Detector, postprocess
from optimlab.reproduce import load_paper_experiment
from optimlab.tasks import get_task
from optimlab.tasks.detection import match_anchors, multibox_loss, pad_detections, unpad_detections
from optimlab.tasks.detection_map import average_precision, match_detections, voc_map
from optimlab.train import TrainConfig
from test_tasks_keypoints_gan import interrupted_then_resumed


def targets(*images, width=4):
    """[N, width, 6] (class, difficult, x1, y1, x2, y2) with class -1 padding."""
    out = torch.zeros(len(images), width, 6)
    out[..., 0] = -1
    for i, rows in enumerate(images):
        for j, row in enumerate(rows):
            out[i, j] = torch.tensor(row, dtype=torch.float32)
    return out


def dets(*rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)


# ---------------------------------------------------------------------------------------- mAP


def test_map_hand_case_with_a_difficult_box_a_duplicate_and_a_class_without_detections():
    gt = targets(
        [(0, 0, 0, 0, 10, 10), (0, 0, 20, 20, 30, 30)],  # image 0: two class-0 boxes
        [(0, 0, 0, 0, 10, 10), (0, 1, 20, 20, 30, 30), (1, 0, 40, 40, 50, 50)],  # image 1: one difficult; class 1
        [(2, 1, 0, 0, 5, 5)],  # image 2: class 2 only as a difficult box -> left out of the mean
    )
    detections = [
        dets([0, 0, 10, 10, 0.9, 0], [0, 0, 10, 10, 0.7, 0], [50, 50, 60, 60, 0.5, 0], [0, 0, 10, 10, 0.85, 3]),
        dets([20, 20, 30, 30, 0.8, 0], [0, 0, 10, 10, 0.6, 0]),
        dets([0, 0, 5, 5, 0.9, 2]),
    ]
    # class 0 in score order: 0.9 TP, 0.8 hits the difficult box (ignored), 0.7 duplicate FP, 0.6 TP, 0.5 FP;
    # npos = 3: recall 1/3, 1/3, 2/3, 2/3; precision 1, 1/2, 2/3, 1/2
    # 11-point: t = 0..0.3 -> 1, t = 0.4..0.6 -> 2/3, t >= 0.7 -> 0: (4 + 3 * 2/3) / 11 = 6/11
    # all-point: 1/3 * 1 + 1/3 * 2/3 + 1/3 * 0 = 5/9. Class 1: a box, no detection: AP 0.
    # class 2 (only difficult) and class 3 (no box, one false detection) have no positives: left out
    result = voc_map(detections, gt, num_classes=4)
    ap, ap_allpoint = result["ap"], result["ap_allpoint"]
    assert isinstance(ap, list) and isinstance(ap_allpoint, list)  # per class
    assert ap[0] == pytest.approx(6 / 11) and ap_allpoint[0] == pytest.approx(5 / 9)
    assert ap[1] == 0.0 and ap_allpoint[1] == 0.0
    assert math.isnan(ap[2]) and math.isnan(ap[3])
    assert result["map"] == pytest.approx(3 / 11) and result["map_allpoint"] == pytest.approx(5 / 18)


def test_map_iou_threshold_is_inclusive_as_the_devkit_and_perfect_detections_score_one():
    # was test_map_iou_threshold_is_strict...: VOCevaldet.m (2007+) matches at ovmax >= 0.5, not > 0.5
    gt = targets([(0, 0, 0, 0, 2, 1)])
    assert voc_map([dets([0, 0, 1, 1, 0.9, 0])], gt, 1)["map"] == pytest.approx(1.0)  # IoU exactly 0.5: a match
    assert voc_map([dets([0, 0, 0.99, 1, 0.9, 0])], gt, 1)["map"] == 0.0  # just under 0.5: none
    perfect = voc_map([dets([0, 0, 2, 1, 0.9, 0])], gt, 1)
    assert perfect["map"] == pytest.approx(1.0) and perfect["map_allpoint"] == 1.0
    nothing = voc_map([dets()], targets([]), 1)["map"]
    assert isinstance(nothing, float) and math.isnan(nothing)  # no ground truth at all


def test_equal_iou_with_a_difficult_and_a_plain_box_goes_to_the_first_annotated():
    # a detection straddling two boxes of the same class with IoU 1/3 each: the devkit keeps the first
    # box of largest IoU (its scan updates only on a strictly larger overlap), difficult or not
    plain, difficult = (0, 0, 0, 0, 2, 2), (0, 1, 2, 0, 4, 2)
    straddle = dets([1, 0, 3, 2, 0.9, 0])
    first_plain = match_detections([straddle], targets([plain, difficult]), 1, iou_threshold=0.3)[0]
    assert first_plain.tp.tolist() == [1.0] and first_plain.fp.tolist() == [0.0]  # matched the plain box
    first_difficult = match_detections([straddle], targets([difficult, plain]), 1, iou_threshold=0.3)[0]
    assert first_difficult.tp.size == 0 and first_difficult.npos == 1  # matched the difficult box: ignored


def test_eleven_point_ap_counts_recall_three_tenths_at_t_point_three():
    # 3 of 10 boxes found at precision 1, nothing else: t = 0, 0.1, 0.2, 0.3 reach precision 1 -> 4/11
    recall, precision = np.array([0.1, 0.2, 0.3]), np.ones(3)
    assert average_precision(recall, precision, "11point") == pytest.approx(4 / 11)
    assert average_precision(recall, precision, "allpoint") == pytest.approx(0.3)
    # a non-monotone curve: the all-point envelope takes the later, higher precision
    recall, precision = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    assert average_precision(recall, precision, "allpoint") == pytest.approx(0.5 + 0.5 * 2 / 3)
    with pytest.raises(ValueError, match="11point"):
        average_precision(recall, precision, cast(Any, "voc12"))  # not a method name: the check under test


def test_detections_pad_and_unpad():
    d = [dets([1, 2, 3, 4, 0.5, 2]), dets()]
    padded = pad_detections(d, width=3)
    assert padded.shape == (2, 3, 6) and (padded[1, :, 5] == -1).all()
    back = unpad_detections(padded)
    assert torch.equal(back[0], d[0]) and back[1].shape == (0, 6)


# ----------------------------------------------------------------------------------- VOC loader

XML = """<annotation>
  <folder>VOC2007</folder><filename>{id}.jpg</filename>
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
  {objects}
</annotation>"""
OBJECT = """<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>
  <difficult>{difficult}</difficult>
  <bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"""


def write_voc(root, images):
    """VOCdevkit/VOC2007 with images = {id: (split, w, h, [(name, difficult, xmin, ymin, xmax, ymax), ...])}."""
    voc = root / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    lists: dict[str, list[str]] = {"trainval": [], "test": []}
    for image_id, (split, w, h, objects) in images.items():
        img = (rng.rand(h, w, 3) * 60).astype(np.uint8)
        for name, _, xmin, ymin, xmax, ymax in objects:
            colour = 255 if name == "dog" else 128
            img[ymin - 1 : ymax, xmin - 1 : xmax] = colour  # 1-based inclusive corners
        Image.fromarray(img).save(voc / "JPEGImages" / f"{image_id}.jpg", quality=95)
        body = "\n".join(
            OBJECT.format(name=n, difficult=d, xmin=a, ymin=b, xmax=c, ymax=e) for n, d, a, b, c, e in objects
        )
        (voc / "Annotations" / f"{image_id}.xml").write_text(XML.format(id=image_id, w=w, h=h, objects=body))
        lists[split].append(image_id)
    for split, ids in lists.items():
        (voc / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root


def test_voc_loader_reads_the_official_layout(tmp_path):
    root = write_voc(
        tmp_path,
        {
            "000005": ("trainval", 40, 20, [("dog", 0, 1, 1, 20, 10), ("person", 1, 21, 5, 40, 20)]),
            "000007": ("test", 30, 30, [("car", 0, 4, 7, 15, 30)]),
        },
    )
    data = load_voc2007(root, image_size=20)  # root = the folder above VOCdevkit
    assert data.train_x.shape == (1, 3, 20, 20) and data.test_x.shape == (1, 3, 20, 20)
    assert data.train_y.shape == (1, 2, 6) and data.test_y.shape == (1, 2, 6)  # padded to the most objects
    dog, person = VOC_CLASSES.index("dog"), VOC_CLASSES.index("person")
    # xmin 1..xmax 20 (1-based inclusive) -> [0, 20) -> x scale 20/40; y 1..10 -> [0, 10), y scale 1
    assert data.train_y[0, 0].tolist() == pytest.approx([dog, 0, 0, 0, 10, 10])
    assert data.train_y[0, 1].tolist() == pytest.approx([person, 1, 10, 4, 20, 20])  # the difficult flag kept
    s = 20 / 30
    assert data.test_y[0, 0].tolist() == pytest.approx([VOC_CLASSES.index("car"), 0, 3 * s, 6 * s, 15 * s, 30 * s])
    assert data.test_y[0, 1, 0] == -1  # padding
    assert data.num_classes == 20 and data.class_names[dog] == "dog"
    # the same through the registry, with VOC2007 itself as the root
    again = load_dataset("voc2007", root / "VOCdevkit" / "VOC2007", image_size=20)
    assert torch.equal(again.train_y, data.train_y)


def test_voc_loader_names_the_bad_file(tmp_path):
    root = write_voc(tmp_path, {"1": ("trainval", 20, 20, [("dog", 0, 1, 1, 5, 5)]), "2": ("test", 20, 20, [])})
    voc = root / "VOCdevkit" / "VOC2007"
    (voc / "JPEGImages" / "2.jpg").unlink()
    with pytest.raises(DatasetError, match=r"JPEGImages/2\.jpg.*not found"):
        load_voc2007(root, image_size=16)
    (voc / "Annotations" / "1.xml").write_text("<annotation><object>")
    with pytest.raises(DatasetError, match=r"1\.xml is not valid XML"):
        load_voc2007(root, image_size=16)
    (voc / "Annotations" / "1.xml").write_text(XML.format(id=1, w=20, h=20, objects=OBJECT.format(
        name="unicorn", difficult=0, xmin=1, ymin=1, xmax=2, ymax=2)))  # fmt: skip
    with pytest.raises(DatasetError, match="'unicorn' is not one of the 20 VOC classes"):
        load_voc2007(root, image_size=16)
    (voc / "Annotations" / "1.xml").write_text(XML.format(id=1, w=20, h=20, objects=""))
    (voc / "ImageSets" / "Main" / "test.txt").unlink()
    with pytest.raises(DatasetError, match=r"Main/test\.txt not found"):
        load_voc2007(root, image_size=16)
    with pytest.raises(DatasetError, match="no VOC2007 folder"):
        load_voc2007(tmp_path / "nowhere")


# ----------------------------------------------------------------------------------- stand-in


def test_scenes_are_deterministic_and_boxes_are_tight():
    rng = np.random.RandomState(3)
    digits = np.zeros((20, 28, 28), dtype=np.uint8)
    for d in digits:
        top, left = rng.randint(2, 8, 2)
        d[top : top + 18, left : left + 10] = 255  # a solid 18x10 'digit'
    labels = np.arange(20) % 10
    a_img, a_obj = make_scenes(digits, labels, 30, seed=5)
    b_img, b_obj = make_scenes(digits, labels, 30, seed=5)
    assert torch.equal(a_img, b_img) and a_obj == b_obj
    assert not torch.equal(a_img, make_scenes(digits, labels, 30, seed=6)[0])
    for img, objects in zip(a_img, a_obj):
        assert 1 <= len(objects) <= 4
        for cls, difficult, x1, y1, x2, y2 in objects:
            assert difficult == 0 and 0 <= cls <= 9 and 14 <= y2 - y1 <= 28
            inside = img[0, int(y1) : int(y2), int(x1) : int(x2)]
            assert inside[0].max() > 64 and inside[-1].max() > 64  # the box's edges touch ink
            assert inside[:, 0].max() > 64 and inside[:, -1].max() > 64


def test_stand_in_on_the_real_digits(mnist5k):
    data = load_dataset("mnist-detection", mnist5k)
    assert data.train_x.shape == (3000, 1, 64, 64) and data.test_x.shape == (500, 1, 64, 64)
    assert data.class_names == [str(d) for d in range(10)]
    counts = (data.train_y[..., 0] >= 0).sum(1)
    assert counts.min() >= 1 and counts.max() <= 4


# ----------------------------------------------------------------------------------- detector and loss


def test_anchors_follow_the_heads_and_every_box_gets_an_anchor():
    model = Detector(3, (1, 64, 64), width=0.125)
    logits, deltas = model(torch.zeros(2, 1, 64, 64))
    assert model.anchors.shape == (8 * 8 * 6 + 4 * 4 * 6, 4)
    assert logits.shape == (2, model.anchors.shape[0], 4) and deltas.shape == (2, model.anchors.shape[0], 4)
    y = targets([(2, 0, 3, 3, 6, 40)], [(0, 1, 0, 0, 30, 30), (1, 0, 10, 10, 40, 40)])
    labels, boxes = match_anchors(model.anchors, y)
    assert (labels[0] == 3).sum() >= 1 and set(labels[0].unique().tolist()) <= {0, 3}  # a thin box is matched
    assert set(labels[1].unique().tolist()) == {0, 2}  # the difficult box is not trained on
    assert torch.equal(
        boxes[1][labels[1] == 2], torch.tensor([[10.0, 10, 40, 40]]).expand(int((labels[1] == 2).sum()), 4)
    )
    loss, share = multibox_loss((logits, deltas), y, model.anchors)
    assert torch.isfinite(loss) and 0 <= float(share) <= 2
    out = postprocess(logits, deltas, model.anchors, (64, 64))
    assert len(out) == 2 and all(d.shape[1] == 6 and d.shape[0] <= 100 for d in out)


# ----------------------------------------------------------------------------------- end to end


def toy_voc(root, n_trainval=24, n_test=8):
    rng = np.random.RandomState(1)
    images = {}
    for i in range(n_trainval + n_test):
        objects = []
        for k in range(rng.randint(1, 3)):
            x, y = rng.randint(1, 18, 2)
            objects.append(("dog" if k == 0 else "car", int(i % 7 == 3), x, y, x + 12, y + 12))
        images[f"{i:06d}"] = ("trainval" if i < n_trainval else "test", 32, 32, objects)
    return write_voc(root, images)


def detection_config(root, **kw):
    base = dict(
        task="detection",
        dataset="voc2007",
        data_dir=str(root),
        dataset_options={"image_size": 32},
        model="ssd-small",
        width=0.0625,
        optimizer="tmsgd",
        hparams={"lr": 0.02},
        epochs=3,
        switch_epoch=2,
        batch_size=8,
        val_fraction=0.25,
    )
    return TrainConfig(**{**base, **kw})


def test_detection_task_end_to_end_and_resume_bit_identical(tmp_path):
    config = detection_config(toy_voc(tmp_path / "voc"))
    state, whole = interrupted_then_resumed(config, 2, tmp_path, stop_after=1)  # resumed ≡ whole, bit for bit
    assert state["epoch"] == 1
    final = whole.final
    assert set(final) == {"map", "map_allpoint", "loss"}
    assert 0.0 <= final["map"] <= 1.0 and 0.0 <= final["map_allpoint"] <= 1.0 and math.isfinite(final["loss"])
    assert len(whole.test_acc) == 3 and whole.test_acc[-1] == pytest.approx(final["map"])
    assert whole.train_loss[-1] < whole.train_loss[0]


def test_detection_task_describes_and_rejects_other_models(tmp_path):
    task = get_task("detection")
    config = detection_config(toy_voc(tmp_path / "voc", 4, 2))
    d = task.describe(config)
    assert (d["n_train"], d["n_test"], d["num_classes"]) == (4, 2, 20) and "32x32" in d["detail"]
    assert task.forward_macs(config) > 0
    with pytest.raises(ValueError, match="not a detection model"):
        task.check(config.replace(model="resnet18"))
    with pytest.raises(ValueError, match="not a detection data set"):
        task.check(config.replace(dataset="cifar10"))


def test_catalogue_entry_loads_with_the_papers_figures(papers_dir):
    exp = load_paper_experiment("tmsgd-detection-voc2007")
    text = " ".join((papers_dir / exp.paper.source).read_text(encoding="utf-8").split())
    e = exp.experiment
    assert "0D 210 $4e-3$ 32 10" in text  # Table 2's OD row as printed
    assert (e["task"], e["epochs"], e["batch_size"], e["switch_epoch"]) == ("detection", 210, 32, 10)
    assert all(o["hparams"]["lr"] == 4e-3 for o in e["optimizers"])
    for figure in ("61.77", "62.29", "65.89", "55.07", "77.13", "77.32", "79.33", "74.51"):
        assert figure in text and any(figure in c.text for c in exp.paper.claims)
    assert {k: v["map"] for k, v in exp.paper.reported.items()} == {
        "sgd": 0.6177,
        "tmsgd": 0.6229,
        "sgdm": 0.6589,
        "apollo": 0.5507,
    }
    assert exp.cpu["dataset"] == "mnist-detection" and "STAND-IN" not in exp.paper.notes  # the page says it
    assert "stand" in exp.paper.notes.lower() and "mnist-detection" in exp.paper.notes
