"""Click-through-rate data: categorical fields hashed into one id space, crossed fields for the wide part.

    splits = load_dataset("avazu", root="~/data/avazu")                      # Kaggle's train.gz / train.csv
    splits = load_dataset("adult", root="shared/data/uci-adult")             # the CPU stand-in

Every sample becomes int32 ids x [F + C]: one per field (F, the deep part's inputs) then one per
crossed field group (C; the wide part reads all F + C). An id is crc32("field=value") mod `buckets`
(the hashing trick: no vocabulary to keep, unseen values get ids too, collisions are rare at 2^20 for
Avazu's ~2 M distinct values). y is int64 {0, 1} (click; for adult: income >50K).

Avazu (Kaggle's "Click-Through Rate Prediction", 40 M impressions over 10 days, time-ordered) is one
CSV with a header: id, click, hour (YYMMDDHH), C1, banner_pos, site_id, site_domain, site_category,
app_id, app_domain, app_category, device_id, device_ip, device_model, device_type, device_conn_type,
C14-C21. It is STREAMED: read in chunks of `chunk_rows` rows (plain or gzip), each chunk hashed to
int32 at once, so the raw file (about 6 GB of text) never sits in memory - only the ids do (4 bytes x
(F + C) per row, ~4 GB for all of Avazu; `max_rows` takes the first rows only). `hour` becomes two
fields, hour of day and weekday. Kaggle's test file has no labels, so the test split is the last
`test_days` day(s) of the labelled file (a time split, as in deployment).

UCI Adult (`adult.csv.gz`): its 8 categorical columns are fields as they are; its 6 numeric columns
become fields too, each cut into `numeric_bins` quantile bins with edges from the TRAINING split only.
The official split: rows 0-16,280 are UCI's test file, the rest its training file.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from optimlab.data.base import DatasetError, Split

AVAZU_COLUMNS = (
    "id",
    "click",
    "hour",
    "C1",
    "banner_pos",
    "site_id",
    "site_domain",
    "site_category",
    "app_id",
    "app_domain",
    "app_category",
    "device_id",
    "device_ip",
    "device_model",
    "device_type",
    "device_conn_type",
    "C14",
    "C15",
    "C16",
    "C17",
    "C18",
    "C19",
    "C20",
    "C21",
)
AVAZU_FIELDS = ("hour_of_day", "weekday", *AVAZU_COLUMNS[3:])  # 23 fields
AVAZU_FILES = ("train.gz", "train.csv.gz", "train.csv", "train")
# our choice of crossed fields (the paper names none): placement x device, site x app category, hour x device
AVAZU_CROSSES = (("banner_pos", "device_type"), ("site_category", "app_category"), ("hour_of_day", "device_type"))

ADULT_FILE = "adult.csv.gz"
ADULT_CATEGORICAL = (
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "native-country",
)
ADULT_NUMERIC = ("age", "fnlwgt", "educational-num", "capital-gain", "capital-loss", "hours-per-week")
ADULT_TEST_ROWS = 16_281  # rows 0..16,280 are UCI's adult.test
# the crosses of the original Wide&Deep tutorial (Cheng et al. 2016's census example)
ADULT_CROSSES = (("education", "occupation"), ("native-country", "occupation"), ("age", "education", "occupation"))


@dataclass
class TabularSplits:
    train: Split  # x int32 [N, F + C] hashed ids, y int64 [N] in {0, 1}
    test: Split
    fields: list[str]  # the F deep fields, in column order
    crosses: list[tuple[str, ...]]  # the C crossed groups, in column order after the fields
    buckets: int  # ids lie in [0, buckets)
    name: str
    num_classes: int = 2
    class_names: list[str] = field(default_factory=lambda: ["0", "1"])

    def __repr__(self) -> str:
        return (
            f"TabularSplits(name={self.name!r}, train={len(self.train)}, test={len(self.test)}, "
            f"fields={len(self.fields)}, crosses={len(self.crosses)}, buckets={self.buckets})"
        )


def hash_column(name: str, values: Sequence[str], buckets: int) -> np.ndarray:
    """int32 ids of `values` of field `name`: crc32(b"name=value") mod buckets (each distinct value hashed once)."""
    table = {v: zlib.crc32(f"{name}={v}".encode()) % buckets for v in set(values)}
    return np.fromiter((table[v] for v in values), dtype=np.int32, count=len(values))


def hash_rows(
    columns: Mapping[str, Sequence[str]], fields: Sequence[str], crosses: Sequence[Sequence[str]], buckets: int
) -> np.ndarray:
    """int32 [N, F + C]: each field's ids, then each crossed group's (its values joined by \\x1f)."""
    n = len(columns[fields[0]]) if fields else 0
    out = np.empty((n, len(fields) + len(crosses)), dtype=np.int32)
    for j, f in enumerate(fields):
        out[:, j] = hash_column(f, columns[f], buckets)
    for k, group in enumerate(crosses):
        joined = ["\x1f".join(vals) for vals in zip(*(columns[f] for f in group))]
        out[:, len(fields) + k] = hash_column("x".join(group), joined, buckets)
    return out


def _check_common(buckets: int, crosses: Sequence[Sequence[str]], fields: Sequence[str]) -> list[tuple[str, ...]]:
    if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 2:
        raise ValueError(f"buckets must be an int >= 2, got {buckets!r}")
    out = []
    for group in crosses:
        if isinstance(group, str) or len(group) < 2:
            raise ValueError(f"each cross must list >= 2 field names, got {group!r}")
        unknown = [f for f in group if f not in fields]
        if unknown:
            raise ValueError(f"cross {list(group)} names unknown field(s) {unknown}; fields: {list(fields)}")
        out.append(tuple(group))
    return out


# ----------------------------------------------------------------------------------------------
# Avazu


def _open_text(path: Path) -> TextIO:
    with path.open("rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    if gz:
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def find_avazu_file(root: Path) -> Path:
    if root.is_file():
        return root
    for name in AVAZU_FILES:
        if (root / name).is_file():
            return root / name
    raise DatasetError(f"no Avazu training file in {root} (looked for {', '.join(AVAZU_FILES)})")


def read_avazu_chunks(path: Path, chunk_rows: int, max_rows: int | None) -> Iterator[tuple[dict[str, list[str]], int]]:
    """Yield ({field: values}, first line number) per chunk of rows; DatasetError naming file and line."""
    try:
        with _open_text(path) as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != AVAZU_COLUMNS:
                raise DatasetError(f"{path}: header is not Avazu's 24 columns {list(AVAZU_COLUMNS)}; got {header}")
            done = 0
            chunk: dict[str, list[str]] = {k: [] for k in ("click", *AVAZU_FIELDS)}
            first = 2
            for line, row in enumerate(reader, start=2):
                if max_rows is not None and done >= max_rows:
                    break
                if len(row) != len(AVAZU_COLUMNS):
                    raise DatasetError(f"{path}, line {line}: {len(row)} fields, expected {len(AVAZU_COLUMNS)}")
                click, hour = row[1], row[2]
                if click not in ("0", "1") or len(hour) != 8 or not hour.isdigit():
                    raise DatasetError(f"{path}, line {line}: click {click!r} / hour {hour!r} malformed")
                chunk["click"].append(click)
                chunk["hour_of_day"].append(hour[6:])
                chunk["weekday"].append(hour[:6])  # the date YYMMDD; turned into a weekday per chunk
                for name, value in zip(AVAZU_COLUMNS[3:], row[3:]):
                    chunk[name].append(value)
                done += 1
                if len(chunk["click"]) == chunk_rows:
                    yield chunk, first
                    chunk = {k: [] for k in chunk}
                    first = line + 1
            if chunk["click"]:
                yield chunk, first
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, zlib.error) as e:
        raise DatasetError(f"{path} is not a readable Avazu CSV: {e}") from None


def load_avazu(
    root: Path,
    buckets: int = 2**20,
    crosses: Sequence[Sequence[str]] | None = None,
    test_days: int = 1,
    max_rows: int | None = None,
    chunk_rows: int = 200_000,
) -> TabularSplits:
    """Avazu's labelled file, streamed and hashed; the last `test_days` day(s) are the test split.
    crosses: lists of field names (None: AVAZU_CROSSES; [] for none)."""
    groups = _check_common(buckets, AVAZU_CROSSES if crosses is None else crosses, AVAZU_FIELDS)
    for name, v in (("test_days", test_days), ("chunk_rows", chunk_rows)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 2):
        raise ValueError(f"max_rows must be None or an int >= 2, got {max_rows!r}")
    path = find_avazu_file(root)
    ids, ys, days = [], [], []
    for chunk, _ in read_avazu_chunks(path, chunk_rows, max_rows):
        day = chunk["weekday"]
        weekday = {d: str(date(2000 + int(d[:2]), int(d[2:4]), int(d[4:6])).weekday()) for d in set(day)}
        chunk["weekday"] = [weekday[d] for d in day]
        ids.append(hash_rows(chunk, AVAZU_FIELDS, groups, buckets))
        ys.append(np.asarray(chunk["click"], dtype=np.int64))
        days.append(np.asarray(day, dtype=np.int32))
    if not ids:
        raise DatasetError(f"{path} has a header but no rows")
    x, y, d = np.concatenate(ids), np.concatenate(ys), np.concatenate(days)
    last = np.unique(d)[-test_days:]
    if len(np.unique(d)) <= test_days:
        raise DatasetError(f"{path}: {len(np.unique(d))} day(s) of data, need more than test_days={test_days}")
    test = np.isin(d, last)
    return TabularSplits(
        Split(torch.from_numpy(x[~test]), torch.from_numpy(y[~test])),
        Split(torch.from_numpy(x[test]), torch.from_numpy(y[test])),
        list(AVAZU_FIELDS),
        groups,
        buckets,
        "avazu",
        class_names=["no click", "click"],
    )


# ----------------------------------------------------------------------------------------------
# UCI Adult (the stand-in)


def quantile_bins(train: np.ndarray, values: np.ndarray, bins: int) -> list[str]:
    """Bin labels ("q0".."q{bins-1}") of `values` by the quantile edges of `train` (repeated edges merged)."""
    edges = np.unique(np.quantile(train, np.linspace(0, 1, bins + 1)[1:-1]))
    return [f"q{int(i)}" for i in np.searchsorted(edges, values, side="right")]


def load_adult(
    root: Path, buckets: int = 2**14, crosses: Sequence[Sequence[str]] | None = None, numeric_bins: int = 10
) -> TabularSplits:
    """UCI Adult from adult.csv.gz: label income >50K; the official train/test split.
    crosses: lists of field names (None: ADULT_CROSSES; [] for none)."""
    fields = (*ADULT_CATEGORICAL, *ADULT_NUMERIC)
    groups = _check_common(buckets, ADULT_CROSSES if crosses is None else crosses, fields)
    if isinstance(numeric_bins, bool) or not isinstance(numeric_bins, int) or numeric_bins < 2:
        raise ValueError(f"numeric_bins must be an int >= 2, got {numeric_bins!r}")
    path = root / ADULT_FILE if root.is_dir() else root
    if not path.is_file():
        raise DatasetError(f"missing file {path} (UCI Adult as adult.csv.gz)")
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = sorted({*fields, "income"} - set(reader.fieldnames or []))
            if missing:
                raise DatasetError(f"{path}: header lacks column(s) {missing}; found {reader.fieldnames}")
            rows = list(reader)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{path} is not a readable gzip CSV: {e}") from None
    if len(rows) <= ADULT_TEST_ROWS:
        raise DatasetError(
            f"{path}: {len(rows)} rows, expected UCI's {ADULT_TEST_ROWS} test rows then the training rows"
        )
    bad = next((i for i, r in enumerate(rows) if r["income"] not in ("<=50K", ">50K")), None)
    if bad is not None:
        raise DatasetError(f"{path}, data row {bad + 1}: income {rows[bad]['income']!r} is not <=50K / >50K")
    parts = {"test": rows[:ADULT_TEST_ROWS], "train": rows[ADULT_TEST_ROWS:]}
    numeric: dict[str, dict[str, np.ndarray]] = {}
    for name in ADULT_NUMERIC:
        try:
            numeric[name] = {k: np.asarray([float(r[name]) for r in part]) for k, part in parts.items()}
        except ValueError as e:
            raise DatasetError(f"{path}: column {name!r} is not numeric: {e}") from None
    splits = []
    for key in ("train", "test"):
        part = parts[key]
        columns: dict[str, Sequence[str]] = {c: [r[c] for r in part] for c in ADULT_CATEGORICAL}
        for name in ADULT_NUMERIC:
            columns[name] = quantile_bins(numeric[name]["train"], numeric[name][key], numeric_bins)
        x = hash_rows(columns, fields, groups, buckets)
        y = np.asarray([r["income"] == ">50K" for r in part], dtype=np.int64)
        splits.append(Split(torch.from_numpy(x), torch.from_numpy(y)))
    return TabularSplits(splits[0], splits[1], list(fields), groups, buckets, "adult", class_names=["<=50K", ">50K"])


__all__ = [
    "AVAZU_COLUMNS",
    "AVAZU_FIELDS",
    "TabularSplits",
    "find_avazu_file",
    "hash_column",
    "hash_rows",
    "load_adult",
    "load_avazu",
    "quantile_bins",
]
