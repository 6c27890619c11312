"""The click-through-rate task: hashing, the Avazu loader (plain and gzip, streamed in chunks) and the
UCI Adult loader on fixture files in the official formats, Wide&Deep, AUC / log loss against
hand-computed values, and a toy end-to-end run that resumes bit-identical."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch

from optimlab.data import load_dataset
from optimlab.data.base import DatasetError
from optimlab.data.ctr import AVAZU_FIELDS, hash_column, quantile_bins
from optimlab.models.wide_deep import WideDeep
from optimlab.tasks.ctr import ctr_metrics
from optimlab.train import TrainConfig, fit
from task_fixtures import write_adult, write_avazu
from test_resume_kill import Interrupt, _assert_same_run


def test_auc_log_loss_and_accuracy_against_hand_computed_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = ctr_metrics(y, p, loss=0.5)
    # AUC: of the 4 (positive, negative) pairs, 3 rank the positive higher (0.35 < 0.4 is the miss)
    assert m["auc"] == pytest.approx(3 / 4)
    hand = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4  # = 0.472288
    assert m["log_loss"] == pytest.approx(hand, rel=1e-7) and m["log_loss"] == pytest.approx(0.4722880, abs=1e-6)
    assert m["accuracy"] == 0.75 and m["loss"] == 0.5  # threshold 0.5: only 0.35 is wrong
    assert math.isnan(ctr_metrics(np.array([1, 1]), np.array([0.2, 0.9]), 0.0)["auc"])  # one class: AUC undefined
    with_nan = ctr_metrics(y, np.array([0.1, float("nan"), 0.3, 0.2]), 0.0)
    assert all(math.isnan(v) for k, v in with_nan.items() if k != "loss")


def test_hashing_is_crc32_of_field_and_value_and_quantile_bins_use_train_edges():
    ids = hash_column("site_id", ["a", "b", "a"], 1000)
    assert ids.dtype == np.int32 and ids[0] == ids[2] == zlib.crc32(b"site_id=a") % 1000
    assert hash_column("app_id", ["a"], 1000)[0] == zlib.crc32(b"app_id=a") % 1000  # the field is part of the key
    train = np.arange(100.0)
    assert quantile_bins(train, np.array([0.0, 50.0, 99.0, 1e9]), 4) == ["q0", "q2", "q3", "q3"]


def test_avazu_loader_streams_plain_and_gzip_files_the_same_way(tmp_path):
    plain = write_avazu(tmp_path / "a" / "train.csv", n=300)
    gz = write_avazu(tmp_path / "b" / "train.gz", n=300, gz=True)
    one = load_dataset("avazu", plain.parent, buckets=4096)
    chunked = load_dataset("avazu", gz.parent, buckets=4096, chunk_rows=7)  # 43 chunks
    for a, b in ((one.train, chunked.train), (one.test, chunked.test)):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    n_fields, n_crosses = len(AVAZU_FIELDS), 3
    assert one.train.x.shape[1] == n_fields + n_crosses and one.train.x.dtype == torch.int32
    assert len(one.train) == 200 and len(one.test) == 100  # the last of the 3 days is the test split
    assert int(one.train.x.max()) < 4096
    capped = load_dataset("avazu", plain.parent, max_rows=150)  # the first 150 rows: days 1 and 2
    assert (len(capped.train), len(capped.test)) == (100, 50)


def test_avazu_bad_files_are_named_with_the_line(tmp_path):
    path = write_avazu(tmp_path / "train.csv", n=20)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:5] + ["1,0,14102100,1005"] + lines[5:]) + "\n")
    with pytest.raises(DatasetError, match=r"train\.csv, line 6: 4 fields, expected 24"):
        load_dataset("avazu", tmp_path)
    path.write_text("id,click\n1,0\n")
    with pytest.raises(DatasetError, match=r"train\.csv: header is not Avazu's 24 columns"):
        load_dataset("avazu", tmp_path)
    path.unlink()
    with pytest.raises(DatasetError, match=r"no Avazu training file in .* \(looked for train\.gz"):
        load_dataset("avazu", tmp_path)
    with pytest.raises(ValueError, match="names unknown field"):
        load_dataset("avazu", tmp_path, crosses=[["site_id", "colour"]])


def test_adult_loader_uses_the_official_split_and_names_a_bad_row(tmp_path):
    root = write_adult(tmp_path / "adult", n_train=400)
    splits = load_dataset("adult", root, buckets=2048)
    assert (len(splits.train), len(splits.test)) == (400, 16_281)
    assert splits.train.x.shape[1] == 14 + 3 and set(splits.train.y.unique().tolist()) <= {0, 1}
    path = root / "adult.csv.gz"
    import gzip

    text = gzip.decompress(path.read_bytes()).decode().splitlines()
    text[16_500] = text[16_500].rsplit(",", 1)[0] + ",maybe"  # line 0 is the header
    path.write_bytes(gzip.compress(("\n".join(text) + "\n").encode()))
    with pytest.raises(DatasetError, match=r"adult\.csv\.gz, data row 16500: income 'maybe'"):
        load_dataset("adult", root)


def test_wide_deep_shapes_and_the_wide_part_starts_at_zero():
    torch.manual_seed(0)
    model = WideDeep(buckets=100, n_fields=4, width=0.5)
    x = torch.randint(0, 100, (6, 7), dtype=torch.int32)
    out = model(x)
    assert out.shape == (6,)
    assert torch.equal(model.wide(x).sum(dim=(1, 2)), torch.zeros(6))
    with pytest.raises(ValueError, match="buckets must be an int >= 1"):
        WideDeep(0, 4)


CTR = TrainConfig(
    task="ctr",
    dataset="avazu",
    model="wide-deep",
    width=0.25,
    optimizer="tmsgd",
    hparams={"lr": 0.05},
    epochs=3,
    switch_epoch=2,
    batch_size=32,
    max_steps_per_epoch=4,
    dataset_options={"buckets": 4096},
)


def test_ctr_task_trains_and_resumes_bit_identical(tmp_path):
    write_avazu(tmp_path / "data" / "train.csv", n=300)
    config = CTR.replace(data_dir=str(tmp_path / "data"))

    def stop(epoch, history):
        if epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(config, 4, run_dir=tmp_path / "cut", callback=stop)
    resumed = fit(config, 4, run_dir=tmp_path / "cut")
    whole = fit(config, 4, run_dir=tmp_path / "whole")
    _assert_same_run(tmp_path / "cut", resumed, tmp_path / "whole", whole)
    assert set(whole.final) == {"auc", "log_loss", "accuracy", "loss"}
    assert 0.0 <= whole.final["auc"] <= 1.0 and whole.final["log_loss"] > 0
    assert whole.final["log_loss"] == pytest.approx(whole.final["loss"], rel=1e-6)  # sklearn's = ours
    assert np.asarray(whole.confusion).sum() == 100


def test_real_adult_stand_in_loads_as_documented(uci_adult):
    splits = load_dataset("adult", uci_adult)
    assert (len(splits.train), len(splits.test)) == (32_561, 16_281)
    assert int(splits.train.y.sum()) == 7_841 and int(splits.test.y.sum()) == 3_846  # README's counts
