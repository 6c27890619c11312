"""What a reproduction folder holds, shared by the runner (run.py) and the judge (judging.py).

out/reproduce.json     what reproduce() resolved: scale, data, counts, sweep time (META_FILE)
out/experiment.json    the sweep's config; out/runs/*.json one result per run
out/tuned/             optimlab.tune's search/ and final/ sweeps, tune.md, tune.json (TUNED_DIR)
out/sequential.json    --until-decided's looks and decisions; out/looks.json fixed-n looks
out/report.md, out/verdict.md
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optimlab.report.display import DATASET_TITLES

__all__ = ["TUNED_DIR", "META_FILE", "DATASET_TITLES", "ReproduceError", "read_meta"]

TUNED_DIR = "tuned"
META_FILE = "reproduce.json"


class ReproduceError(ValueError):
    """A reproduction that cannot start (missing data, no GPU, bad scale or seeds); says what to fix."""


def read_meta(out_dir: str | Path) -> dict[str, Any]:
    path = Path(out_dir) / META_FILE
    if not path.is_file():
        raise ReproduceError(f"{out_dir} has no {META_FILE}: not a folder made by optimlab reproduce")
    return json.loads(path.read_text(encoding="utf-8"))
