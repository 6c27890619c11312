"""Training throughput of the harness (`optimlab.train.fit`) against bare PyTorch loops, for the
key-point and GAN tasks (their CPU-scale settings on the mnist-5k stand-ins in ../shared/data).

Same data tensors (the task's own prepare: the run's train split), same model (the task's
build_model, same seed), same optimizer(s), batch size and step count; the bare loops are the
minimum: shuffled index batches, forward, loss, zero_grad, backward, step (the GAN: a
discriminator step on real + detached fake, then a generator step, as optimlab.tasks.gan does).
The two are interleaved (ABAB..., order alternating per repetition) so machine load hits both
alike, and the medians are compared:

    harness samples/s = train samples x epochs / fit's training-loop time (History.step_time_s x steps)
    ratio = harness samples/s / bare samples/s        target >= 0.95

    python benchmarks/bench_keypoints_gan.py [--task keypoints|gan|both] [--repeats 5] [--epochs 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from optimlab.optim import create_optimizer
from optimlab.tasks import get_task
from optimlab.train import TrainConfig, fit

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-5k"
SETUPS: dict[str, dict[str, Any]] = {
    "keypoints": dict(
        task="keypoints",
        dataset="mnist-keypoints",
        model="preactresnet10",
        width=0.125,
        batch_size=32,
        optimizer="sgd",
        hparams={"lr": 0.1},
    ),
    "gan": dict(
        task="gan", dataset="mnist5k", model="dcgan", width=0.25, batch_size=64, optimizer="sgd", hparams={"lr": 0.002}
    ),
}


def bare_loop(config: TrainConfig, seed: int) -> float:
    """Seconds spent in a minimal training loop over config.epochs epochs."""
    task = get_task(config.task)
    data = task.prepare(config, seed, torch.device("cpu"))
    torch.manual_seed(seed)
    model = task.build_model(config, data)
    train = data.train
    g = torch.Generator().manual_seed(seed)
    model.train()
    if config.task == "gan":
        gan: Any = model
        opt_d = create_optimizer(config.optimizer, gan.discriminator.parameters(), **config.hparams)
        opt_g = create_optimizer(config.optimizer, gan.generator.parameters(), **config.hparams)
    else:
        opt = create_optimizer(config.optimizer, model.parameters(), **config.hparams)
    t0 = time.perf_counter()
    for _ in range(config.epochs):
        perm = torch.randperm(len(train), generator=g)
        for i in range(0, len(train), config.batch_size):
            idx = perm[i : i + config.batch_size]
            x, y = train.x[idx], train.y[idx]
            if config.task == "gan":
                n = x.shape[0]
                fake = gan.generator(torch.randn(n, gan.latent_dim))
                ones, zeros = torch.ones(n), torch.zeros(n)
                d_loss = F.binary_cross_entropy_with_logits(
                    gan.discriminator(x), ones
                ) + F.binary_cross_entropy_with_logits(gan.discriminator(fake.detach()), zeros)
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                g_loss = F.binary_cross_entropy_with_logits(gan.discriminator(fake), ones)
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
            else:
                loss = F.mse_loss(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return time.perf_counter() - t0


def harness(config: TrainConfig, seed: int, steps: int) -> float:
    """Training-loop seconds of fit; steps = optimizer steps of the run (per role)."""
    return fit(config, seed).step_time_s * steps


def bench(name: str, repeats: int, epochs: int) -> float:
    config = TrainConfig(data_dir=str(MNIST), epochs=epochs, **SETUPS[name])
    task = get_task(config.task)
    n_train = len(task.prepare(config, 0, torch.device("cpu")).train)
    samples, steps = n_train * epochs, math.ceil(n_train / config.batch_size) * epochs
    print(
        f"{name}: {config.dataset} ({n_train} train samples), {config.model} width {config.width}, "
        f"{config.optimizer} {config.hparams}, batch {config.batch_size}, {epochs} epoch(s), {repeats} repeats"
    )
    bare_loop(config, 0), harness(config, 0, steps)  # warm-up (imports, allocator, caches)
    fit_s, bare_s = [], []
    for rep in range(repeats):
        for which in ("fit", "bare") if rep % 2 == 0 else ("bare", "fit"):
            if which == "fit":
                fit_s.append(harness(config, rep, steps))
            else:
                bare_s.append(bare_loop(config, rep))
    fit_sps, bare_sps = samples / statistics.median(fit_s), samples / statistics.median(bare_s)
    ratio = fit_sps / bare_sps
    print(f"  bare loop          : {bare_sps:9.0f} samples/s  (median of {repeats})")
    print(f"  fit, training loop : {fit_sps:9.0f} samples/s")
    print(f"  ratio fit/bare = {ratio:.3f}   target >= 0.95")
    return ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=["keypoints", "gan", "both"], default="both")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if not (MNIST / "mnist_5k.csv.gz").is_file():
        raise SystemExit(f"needs the mnist-5k folder at {MNIST}")
    torch.set_num_threads(args.threads)
    for name in ("keypoints", "gan") if args.task == "both" else (args.task,):
        bench(name, args.repeats, args.epochs)


if __name__ == "__main__":
    main()
