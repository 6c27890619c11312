"""Text classification data: a tokenizer, a vocabulary from the training split only, and two loaders.

    splits = load_dataset("r8", root="~/data/r8")                           # R8, Cardoso-Cachopo's files
    splits = load_dataset("womens-reviews", root="shared/data/womens-ecommerce-reviews")

R8 (the 8 most frequent single-topic classes of Reuters-21578, 5,485 train / 2,189 test documents) as
Ana Cardoso-Cachopo distributes it: `r8-train-all-terms.txt` and `r8-test-all-terms.txt`, one
document per line, "label<TAB>text" (text lower-case letters and single spaces; the title first).
The stand-in: Women's E-Commerce Clothing Reviews (`reviews.csv.gz`, a CSV with a header), Review
Text -> Department Name (6 imbalanced classes) or Rating (5 classes); it has no split of its own, so a
stratified test split is drawn with a recorded seed.

Tokens: lower-case runs of letters and digits (an apostrophe inside a word kept: "don't").
The vocabulary is built from the TRAINING split alone (the test split never shapes it): tokens seen
at least `min_freq` times, the `max_vocab` most frequent (ties by token), after id 0 = <pad> and
1 = <unk>. A document becomes int64 ids [max_len], truncated or right-padded with 0.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from optimlab.data.base import DatasetError, Split
from optimlab.data.batches import stratified_indices

PAD, UNK = 0, 1
SPECIALS = ("<pad>", "<unk>")
R8_FILES = ("r8-train-all-terms.txt", "r8-test-all-terms.txt")
REVIEWS_FILE = "reviews.csv.gz"
REVIEW_LABELS = {"department": "Department Name", "rating": "Rating"}
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def build_vocabulary(docs: Iterable[Sequence[str]], min_freq: int = 1, max_vocab: int | None = None) -> list[str]:
    """id -> token: <pad>, <unk>, then tokens with count >= min_freq by falling count (ties by token)."""
    counts = Counter(t for doc in docs for t in doc)
    kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    if max_vocab is not None:
        kept = kept[: max(0, max_vocab - len(SPECIALS))]
    return [*SPECIALS, *kept]


def encode(docs: Sequence[Sequence[str]], vocab: Sequence[str], max_len: int) -> torch.Tensor:
    """int64 [len(docs), max_len]: token ids (unknown tokens -> <unk>), truncated, right-padded with <pad>."""
    index = {t: i for i, t in enumerate(vocab)}
    out = torch.zeros(len(docs), max_len, dtype=torch.int64)
    for row, doc in enumerate(docs):
        ids = [index.get(t, UNK) for t in doc[:max_len]]
        if ids:
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return out


@dataclass
class TextSplits:
    train: Split  # x int64 [N, max_len] token ids, y int64 [N] classes
    test: Split
    num_classes: int
    class_names: list[str]
    vocab: list[str]  # id -> token (vocab[0] = <pad>, vocab[1] = <unk>), from the training split only
    max_len: int
    name: str
    split_seed: int | None = None  # the seed of a drawn test split (None: the data set's own split)

    def __repr__(self) -> str:
        return (
            f"TextSplits(name={self.name!r}, train={len(self.train)}, test={len(self.test)}, "
            f"num_classes={self.num_classes}, vocab={len(self.vocab)}, max_len={self.max_len})"
        )


def _check_options(max_len: int, min_freq: int, max_vocab: int | None) -> None:
    for name, v, low in (("max_len", max_len, 1), ("min_freq", min_freq, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    if max_vocab is not None and (isinstance(max_vocab, bool) or not isinstance(max_vocab, int) or max_vocab < 3):
        raise ValueError(f"max_vocab must be None or an int >= 3, got {max_vocab!r}")


def make_text_splits(
    name: str,
    train_docs: list[list[str]],
    train_labels: list[str],
    test_docs: list[list[str]],
    test_labels: list[str],
    max_len: int,
    min_freq: int,
    max_vocab: int | None,
    class_names: list[str] | None = None,
    split_seed: int | None = None,
) -> TextSplits:
    if not train_docs or not test_docs:
        raise DatasetError(f"dataset {name!r} has an empty split (train {len(train_docs)}, test {len(test_docs)})")
    names = class_names if class_names is not None else sorted(set(train_labels))
    label_id = {c: i for i, c in enumerate(names)}
    unseen = sorted(set(test_labels) - set(label_id))
    if unseen:
        raise DatasetError(f"dataset {name!r}: test labels {unseen} never occur in the training split")
    vocab = build_vocabulary(train_docs, min_freq, max_vocab)

    def split(docs: list[list[str]], labels: list[str]) -> Split:
        return Split(encode(docs, vocab, max_len), torch.tensor([label_id[c] for c in labels], dtype=torch.int64))

    return TextSplits(
        split(train_docs, train_labels),
        split(test_docs, test_labels),
        len(names),
        list(names),
        vocab,
        max_len,
        name,
        split_seed,
    )


def read_labelled_lines(path: Path) -> tuple[list[list[str]], list[str]]:
    """Documents and labels of one "label<TAB>text" file; DatasetError naming the file and line."""
    if not path.is_file():
        raise DatasetError(f"missing file {path} (R8 needs {' and '.join(R8_FILES)})")
    docs: list[list[str]] = []
    labels: list[str] = []
    try:
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                label, tab, text = line.partition("\t")
                if not tab or not label.strip():
                    raise DatasetError(f"{path}, line {number}: expected 'label<TAB>text', got {line[:60]!r}")
                docs.append(tokenize(text))
                labels.append(label.strip())
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path} is not UTF-8 text: {e}") from None
    if not docs:
        raise DatasetError(f"{path} holds no documents")
    return docs, labels


def load_r8(root: Path, max_len: int = 100, min_freq: int = 2, max_vocab: int | None = 20_000) -> TextSplits:
    """R8 from `root` (or root/r8): r8-train-all-terms.txt and r8-test-all-terms.txt."""
    _check_options(max_len, min_freq, max_vocab)
    folder = root / "r8" if not (root / R8_FILES[0]).exists() and (root / "r8").is_dir() else root
    train_docs, train_labels = read_labelled_lines(folder / R8_FILES[0])
    test_docs, test_labels = read_labelled_lines(folder / R8_FILES[1])
    return make_text_splits("r8", train_docs, train_labels, test_docs, test_labels, max_len, min_freq, max_vocab)


def read_reviews(path: Path, label: str) -> tuple[list[list[str]], list[str]]:
    """(tokenized Review Text, label) of every row with both; DatasetError naming the file."""
    if label not in REVIEW_LABELS:
        raise ValueError(f"label must be one of {sorted(REVIEW_LABELS)}, got {label!r}")
    if not path.is_file():
        raise DatasetError(f"missing file {path} (the women's e-commerce reviews CSV)")
    column = REVIEW_LABELS[label]
    docs: list[list[str]] = []
    labels: list[str] = []
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = sorted({"Review Text", column} - set(reader.fieldnames or []))
            if missing:
                raise DatasetError(f"{path}: header lacks column(s) {missing}; found {reader.fieldnames}")
            for row in reader:
                text, y = row["Review Text"], row[column]
                if text and y:
                    docs.append(tokenize(text))
                    labels.append(y)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{path} is not a readable gzip CSV: {e}") from None
    if not docs:
        raise DatasetError(f"{path} has no rows with both a review text and a {column}")
    return docs, labels


def load_womens_reviews(
    root: Path,
    label: str = "department",
    test_fraction: float = 0.2,
    seed: int = 0,
    max_len: int = 100,
    min_freq: int = 2,
    max_vocab: int | None = 20_000,
) -> TextSplits:
    """Review Text -> Department Name (label="department", 6 classes) or Rating ("rating", 5 classes);
    a stratified test split of `test_fraction` drawn with `seed` (recorded in split_seed)."""
    _check_options(max_len, min_freq, max_vocab)
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    docs, labels = read_reviews(root / REVIEWS_FILE, label)
    names = sorted(set(labels), key=lambda c: (int(c), c) if c.isdigit() else (0, c))
    y = torch.tensor([names.index(c) for c in labels])
    keep, held = stratified_indices(y, test_fraction, seed)
    train = [int(i) for i in keep]
    test = [int(i) for i in held]
    return make_text_splits(
        "womens-reviews",
        [docs[i] for i in train],
        [labels[i] for i in train],
        [docs[i] for i in test],
        [labels[i] for i in test],
        max_len,
        min_freq,
        max_vocab,
        class_names=names,
        split_seed=seed,
    )


__all__ = [
    "TextSplits",
    "build_vocabulary",
    "encode",
    "load_r8",
    "load_womens_reviews",
    "read_labelled_lines",
    "tokenize",
]
