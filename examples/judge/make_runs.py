"""Write their_runs.csv: SYNTHETIC "someone else's runs" for the `optimlab judge` example.

Three optimizers x 12 seeds of a final test accuracy (a fraction, as optimlab's `accuracy`), drawn
from a fixed generator so the file and the judgement are reproducible:

- each seed has its own difficulty (shared by the three optimizers on that seed: what pairing by
  seed removes), N(0, 0.006) around 0.912;
- sgdm is the baseline; adamw is 0.6 points better on average, lion 0.1 points worse; each run adds
  its own noise N(0, 0.002);
- lion's run on seed 7 failed (diverged): its cell is empty, which judge counts as a failed run.

    python examples/judge/make_runs.py   # rewrites examples/judge/their_runs.csv
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SEEDS = range(12)
MEAN = 0.912
EFFECT = {"sgdm": 0.0, "adamw": 0.006, "lion": -0.001}  # true mean accuracy difference to sgdm
SEED_SD, RUN_SD = 0.006, 0.002
FAILED = {("lion", 7)}
CSV = Path(__file__).with_name("their_runs.csv")


def main(path: Path = CSV) -> Path:
    rng = np.random.default_rng(20261207)
    difficulty = rng.normal(0.0, SEED_SD, size=len(SEEDS))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["optimizer", "seed", "accuracy"])
        for name, effect in EFFECT.items():
            for seed in SEEDS:
                acc = MEAN + difficulty[seed] + effect + rng.normal(0.0, RUN_SD)
                w.writerow([name, seed, "" if (name, seed) in FAILED else f"{acc:.4f}"])
    return path


if __name__ == "__main__":
    print(main())
