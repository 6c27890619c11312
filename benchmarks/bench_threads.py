"""Step time of `fit` with 1 intra-op thread against all cores, per model size: where is the crossover?

For each setup, fit runs a few steps with torch.set_num_threads(1) and with torch.set_num_threads(cores),
interleaved (1, N, N, 1, ...) so machine load hits both alike; medians of History.step_time_s
(forward + backward + optimizer step, synchronised) are compared. Work per step is reported as
forward multiply-accumulates per step (batch x MACs per image, conv and linear layers only), the
figure optimlab.experiments.threads.choose_threads uses to pick 1 thread below the crossover.

    python benchmarks/bench_threads.py [--repeats 3] [--steps 20] [--setups digits-mlp digits-cnn ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch

from optimlab.experiments.sweep import available_cores
from optimlab.experiments.threads import forward_macs
from optimlab.train import TrainConfig, fit

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar-10-subset"
SETUPS = {
    "digits-mlp": dict(dataset="digits", model="mlp", width=0.5, batch_size=32),
    "digits-cnn": dict(dataset="digits", model="cnn", width=0.5, batch_size=32),
    "digits-cnn-w2": dict(dataset="digits", model="cnn", width=2.0, batch_size=128),
    "cifar-cnn": dict(dataset="cifar10", data_dir=str(CIFAR), model="cnn", width=1.0, batch_size=128),
    "cifar-resnet18-w0.125": dict(
        dataset="cifar10", data_dir=str(CIFAR), model="resnet18", width=0.125, batch_size=128
    ),
    "cifar-resnet18-w0.25": dict(dataset="cifar10", data_dir=str(CIFAR), model="resnet18", width=0.25, batch_size=128),
}


def step_ms(config: TrainConfig, threads: int) -> float:
    torch.set_num_threads(threads)
    return fit(config, 0).step_time_s * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    args = ap.parse_args()
    cores = available_cores()
    print(f"{cores} cores (affinity), load average {os.getloadavg()[0]:.2f} at start; torch {torch.__version__}")
    print(f"{'setup':<24} {'MACs/step':>10} {'1 thread ms':>12} {f'{cores} threads ms':>14} {'N/1 ratio':>10}")
    for name in args.setups:
        s = SETUPS[name]
        if s["dataset"] == "cifar10" and not CIFAR.is_dir():
            print(f"{name:<24} skipped: no {CIFAR}")
            continue
        config = TrainConfig(optimizer="rsgdm", hparams={"lr": 0.05}, epochs=1, max_steps_per_epoch=args.steps, **s)
        macs = forward_macs(config) * config.batch_size
        times: dict[int, list[float]] = {1: [], cores: []}
        for r in range(args.repeats):
            for t in (1, cores) if r % 2 == 0 else (cores, 1):
                times[t].append(step_ms(config, t))
        one, many = statistics.median(times[1]), statistics.median(times[cores])
        print(f"{name:<24} {macs / 1e6:>9.1f}M {one:>12.2f} {many:>14.2f} {many / one:>10.2f}")
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
