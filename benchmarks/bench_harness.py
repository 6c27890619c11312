"""Training throughput of the harness (`optimlab.train.fit`) against a bare hand-written PyTorch loop.

Same data tensors (the run's stratified train split), same model (create_model, same seed), same
optimizer and batch size; the bare loop is the minimum: shuffled index batches, forward,
cross-entropy, zero_grad, backward, step. The two are interleaved (ABAB..., order alternating per
repetition) so machine load hits both alike, and the medians are compared:

    harness images/s = train images x epochs / fit's training-loop time (History.step_time_s x steps)
    ratio = harness images/s / bare images/s        target >= 0.95

fit's end-to-end rate (including its per-epoch validation/test evaluation and checkpoint-free
bookkeeping) is printed too, for context.

    python benchmarks/bench_harness.py [--data digits|cifar] [--repeats 5] [--epochs 2] [--threads 1]

--data digits: scikit-learn digits, `cnn` at width 1, batch 32, rsgdm.
--data cifar:  the CIFAR-10 subset in ../shared/data/cifar-10-subset, `resnet18` at width 0.25,
               batch 128, rsgdm.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from optimlab.data import load_dataset, stratified_split
from optimlab.models import create_model
from optimlab.optim import create_optimizer
from optimlab.train import TrainConfig, fit

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar-10-subset"
SETUPS = {
    "digits": dict(dataset="digits", data_dir=None, model="cnn", width=1.0, batch_size=32),
    "cifar": dict(dataset="cifar10", data_dir=str(CIFAR), model="resnet18", width=0.25, batch_size=128),
}
OPTIMIZER, HPARAMS = "rsgdm", {"lr": 0.1, "beta": 0.9}


def bare_loop(config: TrainConfig, seed: int) -> float:
    """Seconds spent in a minimal training loop over config.epochs epochs."""
    data = load_dataset(config.dataset, config.data_dir)
    train, _ = stratified_split(data.train, config.val_fraction, seed=seed)
    torch.manual_seed(seed)
    model = create_model(config.model, data.num_classes, data.input_shape, width=config.width)
    opt = create_optimizer(config.optimizer, model.parameters(), **config.hparams)
    g = torch.Generator().manual_seed(seed)
    model.train()
    t0 = time.perf_counter()
    for _ in range(config.epochs):
        perm = torch.randperm(len(train), generator=g)
        for i in range(0, len(train), config.batch_size):
            idx = perm[i : i + config.batch_size]
            x, y = train.x[idx], train.y[idx]
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return time.perf_counter() - t0


def harness(config: TrainConfig, seed: int, steps: int) -> tuple[float, float]:
    """(training-loop seconds, end-to-end seconds) of fit; steps = optimizer steps of the run."""
    t0 = time.perf_counter()
    h = fit(config, seed)
    wall = time.perf_counter() - t0
    return h.step_time_s * steps, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=sorted(SETUPS), default="digits")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = TrainConfig(optimizer=OPTIMIZER, hparams=HPARAMS, epochs=args.epochs, **SETUPS[args.data])
    data = load_dataset(config.dataset, config.data_dir)
    n_train = len(stratified_split(data.train, config.val_fraction, seed=0)[0])
    images, steps = n_train * config.epochs, math.ceil(n_train / config.batch_size) * config.epochs
    print(
        f"{config.dataset} ({n_train} train images), {config.model} width {config.width}, {OPTIMIZER} {HPARAMS}, "
        f"batch {config.batch_size}, {config.epochs} epochs, {args.threads} thread(s), {args.repeats} repeats"
    )
    bare_loop(config, 0), harness(config, 0, steps)  # warm-up (imports, allocator, dynamo import)
    fit_s, wall_s, bare_s = [], [], []
    for rep in range(args.repeats):
        order = ("fit", "bare") if rep % 2 == 0 else ("bare", "fit")
        for which in order:
            if which == "fit":
                t, w = harness(config, rep, steps)
                fit_s.append(t)
                wall_s.append(w)
            else:
                bare_s.append(bare_loop(config, rep))
    fit_ips, bare_ips = images / statistics.median(fit_s), images / statistics.median(bare_s)
    wall_ips = images / statistics.median(wall_s)
    print(f"bare loop           : {bare_ips:9.0f} images/s  (median of {args.repeats})")
    print(f"fit, training loop  : {fit_ips:9.0f} images/s")
    print(f"fit, end to end     : {wall_ips:9.0f} images/s  (incl. data load, per-epoch val/test evaluation)")
    print(f"ratio fit/bare (training loop) = {fit_ips / bare_ips:.3f}   target >= 0.95")


if __name__ == "__main__":
    main()
