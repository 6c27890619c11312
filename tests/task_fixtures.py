"""Small files in the official formats of the text and click-through-rate data sets, written by tests."""

from __future__ import annotations

import csv
import gzip
import random
from pathlib import Path

from optimlab.data.ctr import ADULT_CATEGORICAL, ADULT_NUMERIC, ADULT_TEST_ROWS, AVAZU_COLUMNS

R8_WORDS = {
    "earn": "net profit shr dividend quarter revs",
    "acq": "acquire merger stake company buy shares",
    "crude": "oil barrel opec price crude output",
}
FILLER = "the of and to in said".split()


def write_r8(root: Path, n_train: int = 60, n_test: int = 21, seed: int = 0) -> Path:
    """r8-train-all-terms.txt / r8-test-all-terms.txt: "label<TAB>text", lower-case letters and spaces."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    labels = list(R8_WORDS)
    for name, n in (("r8-train-all-terms.txt", n_train), ("r8-test-all-terms.txt", n_test)):
        with (root / name).open("w", encoding="utf-8") as f:
            for i in range(n):
                label = labels[i % len(labels)]
                words = R8_WORDS[label].split() + FILLER
                f.write(label + "\t" + " ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + "\n")
    return root


REVIEW_HEADER = [
    "Clothing ID",
    "Age",
    "Title",
    "Review Text",
    "Rating",
    "Recommended IND",
    "Positive Feedback Count",
    "Division Name",
    "Department Name",
    "Class Name",
]
DEPARTMENTS = {"Tops": "shirt sleeve blouse", "Dresses": "dress skirt hem", "Bottoms": "jeans pants waist"}


def write_reviews(root: Path, n: int = 90, seed: int = 0) -> Path:
    """reviews.csv.gz: the Kaggle columns, standard quoting (line breaks inside quoted texts), "" = missing."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    with gzip.open(root / "reviews.csv.gz", "wt", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(REVIEW_HEADER)
        for i in range(n):
            dept = list(DEPARTMENTS)[i % 3]
            words = DEPARTMENTS[dept].split() + ["love", "fit", "size", "great"]
            text = " ".join(rng.choice(words) for _ in range(rng.randint(4, 15)))
            if i % 7 == 0:
                text = text.replace(" ", "\n", 1)  # a line break inside a quoted field
            if i % 11 == 5:
                text = ""  # missing review text: the row is skipped
            w.writerow([i, 30, "title", text, 1 + i % 5, 1, 0, "General", dept, "Knits"])
    return root


def avazu_rows(n: int, days: tuple[str, ...] = ("141021", "141022", "141023"), seed: int = 0) -> list[list[str]]:
    """Rows in Avazu's 24-column layout; click depends on banner_pos and device_type."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        day = days[min(i * len(days) // n, len(days) - 1)]  # time-ordered, as Avazu's file
        banner, device = rng.choice("01"), rng.choice("0145")
        click = "1" if (banner == "1") ^ (rng.random() < 0.2) else "0"
        row = [str(10**18 + i), click, f"{day}{rng.randint(0, 23):02d}", "1005", banner]
        row += [rng.choice(["1fbe01fe", "85f751fd", "d6137915"]), "f3845767", rng.choice(["28905ebd", "f028772b"])]
        row += ["ecad2386", "7801e8d9", "07d7df22", "a99f214a", f"{rng.getrandbits(32):08x}", "44956a24", device, "2"]
        row += [str(rng.randint(15000, 21000)), "320", "50", "1722", "0", "35", "-1", "79"]
        rows.append(row)
    return rows


def write_avazu(path: Path, n: int = 300, gz: bool = False, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(AVAZU_COLUMNS)
        w.writerows(avazu_rows(n, seed=seed))
    return path


def write_adult(root: Path, n_train: int = 400, seed: int = 0) -> Path:
    """adult.csv.gz: UCI's 16,281 test rows then training rows, the Kaggle/OpenML column names."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    header = ["age", "workclass", "fnlwgt", "education", "educational-num", "marital-status", "occupation"]
    header += ["relationship", "race", "gender", "capital-gain", "capital-loss", "hours-per-week", "native-country"]
    header += ["income"]
    assert set(header) == {*ADULT_CATEGORICAL, *ADULT_NUMERIC, "income"}
    with gzip.open(root / "adult.csv.gz", "wt", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for _ in range(ADULT_TEST_ROWS + n_train):
            edu = rng.choice(["Bachelors", "HS-grad", "Masters"])
            age = rng.randint(17, 90)
            rich = (edu != "HS-grad") ^ (rng.random() < 0.2)
            w.writerow(
                [age, "Private", rng.randint(12285, 1490400), edu, 13, "Married-civ-spouse", rng.choice(["Sales", "?"])]
                + ["Husband", "White", rng.choice(["Male", "Female"]), 0, 0, 40, "United-States"]
                + [">50K" if rich else "<=50K"]
            )
    return root
