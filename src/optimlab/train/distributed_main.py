"""Starting a data-parallel fit: torchrun's entry point and launch_local.

Under torchrun every rank runs fit(config, seed, run_dir); rank 0 writes run_dir.

    torchrun --standalone --nproc_per_node 4 -m optimlab.train.distributed_main \\
        --config run.toml --seed 0 --run-dir runs/r0 [--set device=cuda --set amp=bf16]

--config: a JSON or TOML file of TrainConfig fields (missing fields keep their defaults).
--set key=value: override one field; the value is parsed as JSON when it parses (numbers, true,
"strings", {"lr": 0.1}), else taken as a string. Without torchrun's environment this trains in
one process, exactly like `fit`.

Without torchrun, launch_local(config, seed, world_size) spawns the ranks on this machine. Both
starters live here, above loop and distributed: fit's loop imports distributed, so a launcher there
would make an import cycle.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import torch

from optimlab.train.checkpoint import HISTORY_FILE
from optimlab.train.config import History, TrainConfig
from optimlab.train.distributed import check_batch_size, detect_env_rank, exit_finished_worker, free_port
from optimlab.train.loop import fit


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


def _worker(
    rank: int, world_size: int, port: int, config: dict[str, Any], seed: int, run_dir: str, threads: int | None
) -> None:
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "LOCAL_RANK": str(rank),
        }
    )
    if threads is not None:
        torch.set_num_threads(threads)
    fit(TrainConfig.from_dict(config), seed, run_dir=run_dir)
    exit_finished_worker()


def launch_local(
    config: TrainConfig,
    seed: int,
    world_size: int,
    run_dir: str | Path | None = None,
    threads_per_process: int | None = None,
) -> History:
    """Run fit(config, seed, run_dir) in `world_size` local processes (torch.multiprocessing spawn,
    rendezvous on a free port of 127.0.0.1; gloo for CPU configs, nccl + one GPU per rank for CUDA)
    and return rank 0's History. run_dir None: a temporary folder, deleted afterwards.

    threads_per_process: torch threads of each worker (default: CPU cores // world_size, >= 1).
    """
    import torch.multiprocessing as mp

    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be an int >= 1, got {world_size!r}")
    check_batch_size(config, world_size)
    if threads_per_process is None:
        threads_per_process = max(1, (os.cpu_count() or 1) // world_size)
    with tempfile.TemporaryDirectory(prefix="optimlab-ddp-") as tmp:
        folder = Path(run_dir) if run_dir is not None else Path(tmp) / "run"
        mp.spawn(
            _worker,
            args=(world_size, free_port(), config.to_dict(), int(seed), str(folder), threads_per_process),
            nprocs=world_size,
            join=True,
        )
        return History.from_dict(json.loads((folder / HISTORY_FILE).read_text(encoding="utf-8")))


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
    history = fit(config, args.seed, run_dir=args.run_dir, progress=args.progress)
    if detect_env_rank() == 0:
        print(json.dumps({"run_dir": args.run_dir, "epochs_run": history.epochs_run, **history.final}))
    return 0


if __name__ == "__main__":
    code = main()
    if "WORLD_SIZE" in os.environ:  # a torchrun rank: skip the teardown that can abort a finished run
        exit_finished_worker(code)
    sys.exit(code)
