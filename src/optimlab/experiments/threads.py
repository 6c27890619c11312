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

import functools
import json
import os

from optimlab.train.config import TrainConfig

SMALL_STEP_MACS = 1e9  # forward MACs per step below which one thread is used (an estimate: see above)
THREADS_ENV = "OPTIMLAB_THREADS"  # the user's override when no --threads is given


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def forward_macs(config: TrainConfig) -> int:
    """Multiply-accumulates of one forward pass of one sample (images: conv and linear layers; other
    tasks: their own estimate, Task.forward_macs)."""
    if config.task != "classification":
        from optimlab.tasks import get_task

        return get_task(config.task).forward_macs(config)
    return _forward_macs(
        config.dataset,
        config.model,
        float(config.width),
        config.data_dir,
        json.dumps(config.dataset_options, sort_keys=True),
    )


@functools.lru_cache(maxsize=64)
def _forward_macs(dataset: str, model_name: str, width: float, data_dir: str | None, options_json: str) -> int:
    import torch
    from torch import nn

    from optimlab.models import create_model

    shape, classes = _input_shape(dataset, json.loads(options_json), data_dir)
    model = create_model(model_name, classes, shape, width=width)
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += output.numel() * k
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    return total


def _input_shape(dataset: str, options: dict, data_dir: str | None) -> tuple[tuple[int, int, int], int]:
    """Image shape and class count without reading the data where the registry knows them."""
    if dataset == "digits":
        return (1, 8, 8), 10
    if dataset in ("cifar10", "cifar100"):
        classes = options.get("classes")
        return (3, 32, 32), len(classes) if classes else (10 if dataset == "cifar10" else 100)
    if dataset == "imagefolder":
        size = int(options.get("image_size", 32))
        return (3, size, size), 10  # the class count barely changes the work
    from optimlab.data import load_dataset

    splits = load_dataset(dataset, data_dir, **options)
    c, h, w = splits.input_shape
    return (c, h, w), splits.num_classes


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
