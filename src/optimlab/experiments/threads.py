"""How many intra-op threads each run gets: workers x threads never exceeds the cores, and small
models get one thread.

Why: torch's default (one thread per core) makes every small step pay for waking and joining a
thread team, and on cores shared with other work a team waits for its slowest member. Measured by
benchmarks/bench_threads.py on the 2-core machine at load average 5-7 (2026-11-30), median step
ms with 1 thread vs 2: digits mlp 0.86 vs 95; digits cnn x0.5 b32 (19 M MACs/step) 17.8 vs 743;
digits cnn x2 b128 (1.2 G) 188 vs 555; CIFAR cnn b128 (4.9 G) 794 vs 3053; CIFAR resnet18 x0.125
b128 (1.1 G) 850 vs 5637. No crossover there: under load one thread won at every size, hence the
idle-core rule below. SMALL_STEP_MACS, the work per step below which one thread is used even on
an idle machine, could not be measured on an idle machine here; 1 G MACs/step is an estimate.

    threads = choose_threads(config, workers=2)            # what a sweep's runs use
    threads = choose_threads(config, workers=1, override=4)  # --threads 4
"""

from __future__ import annotations

import json
import os

from optimlab.train.config import TrainConfig

SMALL_STEP_MACS = 1e9  # forward MACs per step below which one thread is used (an estimate: see above)
THREADS_ENV = "OPTIMLAB_THREADS"  # the user's override when no --threads is given
_MACS: dict[str, int] = {}  # forward_macs per config (JSON), this process


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def forward_macs(config: TrainConfig) -> int:
    """Multiply-accumulates of one forward pass of one sample, as the run's task estimates them without
    reading the data (Task.forward_macs: image tasks from the shape the data set's registry line declares).
    Counted once per data/model recipe in a process: a sweep (or a tune's lr grid) asks for every run,
    and the optimizer and its hyperparameters do not change the model."""
    from optimlab.tasks import get_task

    recipe = config.to_dict()
    recipe.pop("optimizer", None)
    recipe.pop("hparams", None)
    key = json.dumps(recipe, sort_keys=True, default=str)
    if key not in _MACS:
        if len(_MACS) >= 256:
            _MACS.clear()
        _MACS[key] = get_task(config.task).forward_macs(config)
    return _MACS[key]


def resolve_override(override: int | None) -> int | None:
    """--threads N, else $OPTIMLAB_THREADS, else None (choose automatically); ValueError when bad."""
    if override is None:
        raw = os.environ.get(THREADS_ENV, "").strip()
        if not raw:
            return None
        try:
            override = int(raw)
        except ValueError:
            raise ValueError(f"${THREADS_ENV}={raw!r} must be an int >= 1") from None
    if isinstance(override, bool) or not isinstance(override, int) or override < 1:
        raise ValueError(f"threads must be an int >= 1, got {override!r}")
    return override


def idle_cores(cores: int) -> float:
    """Cores not busy with other work: cores minus the 1-minute load average (Unix; else all)."""
    try:
        return cores - os.getloadavg()[0]
    except (AttributeError, OSError):
        return float(cores)


def choose_threads(config: TrainConfig, workers: int = 1, override: int | None = None, cores: int | None = None) -> int:
    """Intra-op threads per run: the override if given; else 1 below SMALL_STEP_MACS of forward
    work per step; else the idle cores (cores minus the load average) // workers, at most
    cores // workers, at least 1 — a thread team on a core busy with other work waits for it."""
    chosen = resolve_override(override)
    if chosen is not None:
        return chosen
    cores = cores or available_cores()
    workers = max(1, workers)
    share = max(1, min(cores // workers, int(idle_cores(cores)) // workers))
    if share == 1:
        return 1
    if config.device != "cpu":
        return share  # GPU runs: the CPU threads only feed the device
    return 1 if forward_macs(config) * config.batch_size < SMALL_STEP_MACS else share
