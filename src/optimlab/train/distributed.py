"""Data-parallel training (DDP) for fit: process group, batch sharding, rank-0 I/O, the worker's exit.

launch_local (spawn N processes on this machine) is in distributed_main: it calls fit, and
fit's loop imports this module, so the launcher living here made the import cycle loop <-> distributed.

fit is the same function with one process or N: it detects torchrun's environment (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or an already initialised process group.
Decisions (documented in docs/gpu.md):

  * Backend: gloo for CPU, nccl for CUDA; device "cuda" means cuda:LOCAL_RANK.
  * Global batch = TrainConfig.batch_size, split evenly over the ranks (batch_size % world_size
    must be 0). Every rank draws the SAME epoch permutation from the shared, identically seeded
    data generator and takes its contiguous slice of every global batch (torch.tensor_split), so
    N processes see exactly the batches one process sees. The last, short global batch is split
    as evenly as possible; each rank scales its mean loss by (local size · world / global size),
    so DDP's gradient average is the mean over the global batch in every step (mean-of-means is
    exact only for equal shards). Augmentation draws from the shared generator, so it is applied
    to the global batch on every rank (keeping the generators in lock-step) before slicing.
  * The training loss/accuracy are all-reduced at epoch end (all ranks agree on divergence);
    validation/test metrics are computed by rank 0 alone on the full splits (the weights are the
    same on every rank), and the finished History is broadcast so every rank returns it.
  * Rank 0 alone writes run_dir (checkpoints, model.pt, history.json, done) and calls callback;
    every rank reads the checkpoint on resume (run_dir must be visible to all ranks).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from optimlab.data import Split
from optimlab.data.batches import check_sampler_weights
from optimlab.train.config import History, TrainConfig

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # fit initialised the process group, so fit destroys it

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be an integer") from None


def detect() -> DistContext | None:
    """The distributed setting fit runs in: an initialised process group, torchrun's environment
    (WORLD_SIZE > 1), or None for a single process."""
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        return DistContext(dist.get_rank(), dist.get_world_size(), local, owns_group=False)
    if "WORLD_SIZE" not in os.environ or _env_int("WORLD_SIZE") <= 1:
        return None
    missing = [name for name in ENV_VARS + ("MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']} is set but {missing} are not; "
            "launch with torchrun or optimlab.train.distributed_main.launch_local"
        )
    rank, world, local = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} must be in [0, WORLD_SIZE={world})")
    return DistContext(rank, world, local, owns_group=True)


def detect_env_rank() -> int:
    """This process's RANK from the environment (0 when not launched distributed)."""
    return _env_int("RANK") if "RANK" in os.environ else 0


def check_batch_size(config: TrainConfig, world_size: int) -> int:
    """The per-rank batch size; ValueError when batch_size does not split evenly."""
    if config.batch_size % world_size:
        raise ValueError(
            f"TrainConfig.batch_size={config.batch_size} (the global batch) must be divisible by "
            f"the number of processes WORLD_SIZE={world_size}"
        )
    return config.batch_size // world_size


def init_group(ctx: DistContext, device: torch.device) -> None:
    """init_process_group for ctx (gloo on CPU, nccl on CUDA) when fit owns the group."""
    if not ctx.owns_group or dist.is_initialized():
        return
    if not dist.is_available():
        raise RuntimeError(
            "distributed training was requested (WORLD_SIZE > 1) but torch.distributed "
            "is not available in this torch build"
        )
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, init_method="env://", rank=ctx.rank, world_size=ctx.world_size)


def destroy_group(ctx: DistContext | None) -> None:
    if ctx is not None and ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext | None) -> None:
    if ctx is not None and ctx.enabled:
        dist.barrier()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum float64 scalars over all ranks (one collective)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(v) for v in t.cpu()]


def broadcast_history(history: History | None, ctx: DistContext) -> History:
    """Rank 0's History on every rank."""
    box = [history.to_dict() if ctx.is_main and history is not None else None]
    dist.broadcast_object_list(box, src=0)
    if box[0] is None:
        raise RuntimeError("broadcast_history: rank 0 had no History to send")
    return History.from_dict(box[0])


def shard_batches(
    split: Split,
    batch_size: int,
    generator: torch.Generator | None,
    rank: int,
    world_size: int,
    augment: Callable[[Tensor, Any], Tensor] | None = None,
    sampler_weights: Tensor | None = None,
) -> Iterator[tuple[Tensor, Tensor, int]]:
    """Yield (x_local, y_local, global_batch_size) for one epoch: rank `rank`'s slice of every global
    batch that optimlab.data.iterate_batches(split, batch_size, shuffle=True, generator, augment,
    sampler_weights) yields, drawing the same numbers from `generator` (so, with world_size 1, the
    very same batches)."""
    n = len(split)
    if sampler_weights is not None:
        order = torch.multinomial(check_sampler_weights(sampler_weights, n), n, replacement=True, generator=generator)
    else:
        order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        size = index.shape[0]
        bounds = _slice_bounds(size, rank, world_size)
        if augment is not None:  # global draws keep every rank's generator in lock-step
            x = augment(split.x[index], generator)[bounds[0] : bounds[1]]
        else:
            x = split.x[index[bounds[0] : bounds[1]]]
        yield x, split.y[index[bounds[0] : bounds[1]]], size


def _slice_bounds(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """[start, stop) of rank's part of a batch of `size`, as torch.tensor_split would cut it."""
    base, extra = divmod(size, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


# -- for launchers (distributed_main) --------------------------------------------------------------------------
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def exit_finished_worker(code: int = 0) -> None:
    """End a distributed worker process whose run is finished (files written, group destroyed)
    without the interpreter's final teardown: there, gloo's C++ threads can be torn down in an order
    that aborts the process (SIGABRT, "terminate called without an active exception"; seen once in
    CI on 2 busy cores), which would report a finished run as failed. Call it only after fit
    returned; an exception from fit must propagate instead (spawn and torchrun report it)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


__all__ = [
    "DistContext",
    "check_batch_size",
    "detect",
    "exit_finished_worker",
    "free_port",
    "shard_batches",
]
