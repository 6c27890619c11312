"""The text task: tokenizer, training-split vocabulary, R8 and reviews loaders on fixture files in the
official formats, the LSTM, and a toy end-to-end run that resumes bit-identical."""

from __future__ import annotations

import gzip

import pytest
import torch

from optimlab.data import load_dataset
from optimlab.data.base import DatasetError
from optimlab.data.text import build_vocabulary, encode, tokenize
from optimlab.models.lstm import LSTMClassifier
from optimlab.train import TrainConfig, fit
from optimlab.train.checkpoint import CHECKPOINT_FILE
from task_fixtures import write_r8, write_reviews
from test_resume_kill import Interrupt, _assert_same_run


@pytest.fixture(scope="module")
def r8_dir(tmp_path_factory):
    return write_r8(tmp_path_factory.mktemp("r8"))


def test_tokenizer_lowercases_and_keeps_inner_apostrophes():
    assert tokenize("Don't STOP, 3 oil-barrels!") == ["don't", "stop", "3", "oil", "barrels"]


def test_vocabulary_is_ordered_by_count_then_token_and_capped():
    docs = [["b", "a", "a"], ["c", "b", "a"], ["d"]]
    assert build_vocabulary(docs) == ["<pad>", "<unk>", "a", "b", "c", "d"]
    assert build_vocabulary(docs, min_freq=2) == ["<pad>", "<unk>", "a", "b"]
    assert build_vocabulary(docs, max_vocab=3) == ["<pad>", "<unk>", "a"]
    ids = encode([["a", "zzz", "b"], []], ["<pad>", "<unk>", "a", "b"], max_len=2)
    assert ids.tolist() == [[2, 1], [0, 0]]  # unknown -> 1, truncated at 2, empty -> all padding


def test_r8_loader_reads_the_official_files_and_builds_the_vocabulary_from_train_only(r8_dir, tmp_path):
    splits = load_dataset("r8", r8_dir, max_len=12, min_freq=1)
    assert (len(splits.train), len(splits.test), splits.num_classes) == (60, 21, 3)
    assert splits.class_names == ["acq", "crude", "earn"]
    assert splits.train.x.dtype == torch.int64 and splits.train.x.shape == (60, 12)
    # a word only the test file has stays out of the vocabulary (read as <unk>)
    test_file = r8_dir / "r8-test-all-terms.txt"
    lines = test_file.read_text().splitlines()
    other = tmp_path / "r8"
    write_r8(other)
    (other / "r8-test-all-terms.txt").write_text("\n".join([lines[0] + " zebra"] + lines[1:]) + "\n")
    again = load_dataset("r8", other, max_len=40, min_freq=1)
    assert "zebra" not in again.vocab
    assert again.vocab == splits.vocab


def test_r8_bad_line_and_missing_file_are_named(r8_dir, tmp_path):
    bad = write_r8(tmp_path / "bad")
    path = bad / "r8-train-all-terms.txt"
    path.write_text(path.read_text() + "no tab on this line\n")
    with pytest.raises(DatasetError, match=r"r8-train-all-terms\.txt, line 61: expected 'label<TAB>text'"):
        load_dataset("r8", bad)
    (bad / "r8-test-all-terms.txt").unlink()
    path.write_text("earn\tnet profit\n")
    with pytest.raises(DatasetError, match=r"missing file .*r8-test-all-terms\.txt"):
        load_dataset("r8", bad)


def test_reviews_loader_on_a_fixture_csv(tmp_path):
    root = write_reviews(tmp_path)
    splits = load_dataset("womens-reviews", root, min_freq=1, test_fraction=0.2, seed=3)
    n_rows = 90 - sum(1 for i in range(90) if i % 11 == 5)  # rows without a text are skipped
    assert len(splits.train) + len(splits.test) == n_rows
    assert splits.class_names == ["Bottoms", "Dresses", "Tops"] and splits.split_seed == 3
    assert torch.bincount(splits.test.y).tolist() == [
        round(0.2 * int(c)) for c in torch.bincount(torch.cat([splits.train.y, splits.test.y]))
    ]  # stratified
    rating = load_dataset("womens-reviews", root, label="rating", min_freq=1)
    assert rating.class_names == ["1", "2", "3", "4", "5"]


def test_reviews_bad_files_are_named(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    with gzip.open(root / "reviews.csv.gz", "wt") as f:
        f.write("Clothing ID,Title\n1,x\n")
    with pytest.raises(
        DatasetError, match=r"reviews\.csv\.gz: header lacks column\(s\) \['Department Name', 'Review Text'\]"
    ):
        load_dataset("womens-reviews", root)
    (root / "reviews.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match=r"reviews\.csv\.gz is not a readable gzip CSV"):
        load_dataset("womens-reviews", root)
    with pytest.raises(ValueError, match="label must be one of"):
        load_dataset("womens-reviews", root, label="colour")


def test_lstm_reads_the_last_real_token_so_padding_changes_nothing():
    torch.manual_seed(0)
    model = LSTMClassifier(20, 3, width=0.25).eval()
    x = torch.tensor([[4, 5, 6, 0, 0, 0]])
    assert torch.equal(model(x), model(x[:, :3]))
    assert model(torch.zeros(2, 5, dtype=torch.int64)).shape == (2, 3)


TEXT = TrainConfig(
    task="text",
    dataset="r8",
    model="lstm",
    width=0.25,
    optimizer="tmsgd",
    hparams={"lr": 0.5},
    epochs=3,
    switch_epoch=2,
    batch_size=8,
    max_steps_per_epoch=4,
    dataset_options={"max_len": 12, "min_freq": 1},
)


def test_text_task_trains_and_resumes_bit_identical(r8_dir, tmp_path):
    config = TEXT.replace(data_dir=str(r8_dir))

    def stop(epoch, history):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(config, 1, run_dir=tmp_path / "cut", callback=stop)
    assert (tmp_path / "cut" / CHECKPOINT_FILE).exists()
    resumed = fit(config, 1, run_dir=tmp_path / "cut")
    whole = fit(config, 1, run_dir=tmp_path / "whole")
    _assert_same_run(tmp_path / "cut", resumed, tmp_path / "whole", whole)
    assert set(whole.final) == {"accuracy", "loss", "mean_recall", "mean_precision", "kappa"}
    assert len(whole.confusion) == 3 and whole.epochs_run == 3


def test_text_task_rejects_an_image_data_set_or_model_by_name():
    with pytest.raises(ValueError, match="dataset 'digits' is not a text data set"):
        fit(TEXT.replace(dataset="digits"), 0)
    with pytest.raises(ValueError, match="model 'mlp' is not a text model"):
        fit(TEXT.replace(model="mlp", data_dir="/nowhere"), 0)


def test_real_reviews_stand_in_loads_as_documented(womens_reviews):
    splits = load_dataset("womens-reviews", womens_reviews)
    assert len(splits.train) + len(splits.test) == 22_628  # rows with a text and a department (README)
    assert splits.class_names == ["Bottoms", "Dresses", "Intimate", "Jackets", "Tops", "Trend"]
    counts = torch.bincount(torch.cat([splits.train.y, splits.test.y])).tolist()
    assert counts == [3_662, 6_145, 1_653, 1_002, 10_048, 118]
