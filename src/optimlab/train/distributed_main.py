"""Entry point for torchrun: every rank runs fit(config, seed, run_dir); rank 0 writes run_dir.

    torchrun --standalone --nproc_per_node 4 -m optimlab.train.distributed_main \\
        --config run.toml --seed 0 --run-dir runs/r0 [--set device=cuda --set amp=bf16]

--config: a JSON or TOML file of TrainConfig fields (missing fields keep their defaults).
--set key=value: override one field; the value is parsed as JSON when it parses (numbers, true,
"strings", {"lr": 0.1}), else taken as a string. Without torchrun's environment this trains in
one process, exactly like `fit`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from optimlab.train.config import TrainConfig


def load_config(path: str | Path | None, overrides: list[str]) -> TrainConfig:
    fields: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            fields = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the TrainConfig file {path}: {exc}") from exc
        if not isinstance(fields, dict):
            raise ValueError(f"{path} must hold a table/object of TrainConfig fields")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r} must look like key=value")
        try:
            fields[key] = json.loads(raw)
        except ValueError:
            fields[key] = raw
    return TrainConfig.from_dict(fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m optimlab.train.distributed_main",
        description="Train one run with fit; under torchrun, data-parallel.",
    )
    parser.add_argument("--config", help="JSON or TOML file of TrainConfig fields")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one TrainConfig field (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", required=True, help="folder of the run (written by rank 0)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar on rank 0")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except ValueError as exc:
        parser.error(str(exc))
    from optimlab.train.loop import fit

    history = fit(config, args.seed, run_dir=args.run_dir, progress=args.progress)
    from optimlab.train import distributed

    ctx = distributed.detect_env_rank()
    if ctx == 0:
        print(json.dumps({"run_dir": args.run_dir, "epochs_run": history.epochs_run, **history.final}))
    return 0


if __name__ == "__main__":
    code = main()
    if "WORLD_SIZE" in os.environ:  # a torchrun rank: skip the teardown that can abort a finished run
        from optimlab.train.distributed import exit_finished_worker

        exit_finished_worker(code)
    sys.exit(code)
