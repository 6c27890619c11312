"""Training throughput of every task through the harness (`optimlab.train.fit`) against a bare loop.

For each task the bare loop trains the same model (the task's build_model, same seed) on the same
split (the task's prepare) with the same optimizer, batch size, number of steps and deterministic-algorithms setting, written out by
hand: shuffled index batches, forward, the task's loss function inlined (cross-entropy, BCE on a
logit, mean squared error, or pixel-wise cross-entropy ignoring void), zero_grad, backward, step; for the GAN a discriminator step on real +
detached fake images, then a generator step, each with its own optimizer (as optimlab.tasks.gan). fit
and the bare loop are interleaved (ABAB..., the order alternating per repetition) so machine load hits
both alike, and the medians are compared (the minima too: on a machine busy with other work the
fastest repetition is the least disturbed one):

    ratio = (samples / fit's training-loop seconds) / (samples / bare seconds)      target >= 0.95

fit's training-loop seconds = History.step_time_s x steps (its epoch loops, evaluation excluded).

--clock cpu (default) times both with the thread's CPU time (time.thread_time; fit's loop clock is
pointed at it for the benchmark): on cores shared with other work, wall time mostly measures how long
the process waited for a core (at load 6-7 on 2 cores wall-clock ratios scattered 0.83-1.27 between
runs of this script), CPU time what the code itself costs. --clock wall uses time.perf_counter.

    python benchmarks/bench_tasks.py [--tasks classification,text,ctr,keypoints,gan,detection,segmentation] [--repeats 5] [--threads 1] [--clock cpu]

classification: scikit-learn digits, cnn width 1, batch 32, 2 epochs (as bench_harness.py).
text: the women's reviews stand-in (../shared/data), lstm width 0.25, 40 tokens, batch 16, 2 x 300 steps.
ctr: UCI Adult (../shared/data), wide-deep width 0.25, batch 256, 2 epochs (2 x 115 steps);
ctr-width1: the same at width 1 (the paper's model size).
keypoints: the mnist-keypoints stand-in (../shared/data/mnist-5k), preactresnet10 width 0.125, batch 32,
  2 x 60 steps (its CPU scale).
segmentation: the mnist-segmentation stand-in (../shared/data/mnist-5k), lraspp-resnet18 width 0.125,
  batch 16, 2 x 40 steps (its CPU scale runs 2 x 125); the bare loss is cross-entropy ignoring void (255).
gan: mnist-5k, dcgan width 0.25, batch 64, 1 epoch (57 steps, two optimizer steps each).
detection: the mnist-detection stand-in (../shared/data/mnist-5k), ssd-small width 0.25, batch 32,
  2 x 60 steps (its CPU scale); the bare loop calls the same multibox loss (optimlab.tasks.detection).
"""

from __future__ import annotations

import argparse
import statistics
import time
import types
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import optimlab.train.loop as loop_module
from optimlab.optim import create_optimizer
from optimlab.tasks import get_task
from optimlab.tasks.detection import multibox_loss
from optimlab.train import TrainConfig, fit

CLOCK = time.perf_counter
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HPARAMS = {"lr": 0.05}
SETUPS = {
    "classification": TrainConfig(dataset="digits", model="cnn", batch_size=32, epochs=2),
    "text": TrainConfig(
        task="text",
        dataset="womens-reviews",
        data_dir=str(SHARED / "womens-ecommerce-reviews"),
        dataset_options={"max_len": 40, "max_vocab": 2000},
        model="lstm",
        width=0.25,
        batch_size=16,
        epochs=2,
        max_steps_per_epoch=300,
    ),
    "ctr": TrainConfig(
        task="ctr",
        dataset="adult",
        data_dir=str(SHARED / "uci-adult"),
        model="wide-deep",
        width=0.25,
        batch_size=256,
        epochs=2,
    ),
    "keypoints": TrainConfig(
        task="keypoints",
        dataset="mnist-keypoints",
        data_dir=str(SHARED / "mnist-5k"),
        model="preactresnet10",
        width=0.125,
        batch_size=32,
        epochs=2,
        max_steps_per_epoch=60,
    ),
    "segmentation": TrainConfig(
        task="segmentation",
        dataset="mnist-segmentation",
        data_dir=str(SHARED / "mnist-5k"),
        model="lraspp-resnet18",
        width=0.125,
        batch_size=16,
        epochs=2,
        max_steps_per_epoch=40,
    ),
    "gan": TrainConfig(
        task="gan",
        dataset="mnist5k",
        data_dir=str(SHARED / "mnist-5k"),
        model="dcgan",
        width=0.25,
        batch_size=64,
        epochs=1,
    ),
}
SETUPS["detection"] = TrainConfig(
    task="detection",
    dataset="mnist-detection",
    data_dir=str(SHARED / "mnist-5k"),
    model="ssd-small",
    width=0.25,
    batch_size=32,
    epochs=2,
    max_steps_per_epoch=60,
)
# the same at the paper's model size (width 1: embedding 8, MLP 256-128): a step of a few ms, where the
# harness's fixed per-step bookkeeping (running loss and accuracy, schedule, stop check) weighs less
SETUPS["ctr-width1"] = SETUPS["ctr"].replace(width=1.0)


def steps_per_epoch(config: TrainConfig, n_train: int) -> int:
    n = -(-n_train // config.batch_size)
    return min(n, config.max_steps_per_epoch or n)


def bare_loop(config: TrainConfig, seed: int) -> float:
    """Seconds spent in a minimal training loop of the same steps as fit, under the same
    torch.use_deterministic_algorithms setting as fit uses (config.deterministic: the run's definition,
    not harness overhead; deterministic backward kernels cost ~2-5 % on these embedding models)."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(config.deterministic)
    try:
        return _bare_loop(config, seed)
    finally:
        torch.use_deterministic_algorithms(previous)


def _bare_loop(config: TrainConfig, seed: int) -> float:
    task = get_task(config.task)
    torch.manual_seed(seed)
    data = task.prepare(config, seed, torch.device("cpu"))
    model = task.build_model(config, data)
    gan: Any = model
    if config.task == "gan":
        opt_d = create_optimizer(config.optimizer, gan.discriminator.parameters(), **config.hparams)
        opt = create_optimizer(config.optimizer, gan.generator.parameters(), **config.hparams)
    else:
        opt = create_optimizer(config.optimizer, model.parameters(), **config.hparams)
    g = torch.Generator().manual_seed(seed)
    train, steps = data.train, steps_per_epoch(config, len(data.train))
    binary = config.task == "ctr"  # BCE on one logit
    model.train()
    t0 = CLOCK()
    for _ in range(config.epochs):
        perm = torch.randperm(len(train), generator=g)
        for s in range(steps):
            idx = perm[s * config.batch_size : (s + 1) * config.batch_size]
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
                loss = F.binary_cross_entropy_with_logits(gan.discriminator(fake), ones)
            elif config.task == "keypoints":
                loss = F.mse_loss(model(x), y)
            elif config.task == "detection":
                loss = multibox_loss(model(x), y, model.anchors)[0]
            elif config.task == "segmentation":
                loss = F.cross_entropy(model(x), y, ignore_index=255)
            else:
                out = model(x)
                loss = F.binary_cross_entropy_with_logits(out, y.float()) if binary else F.cross_entropy(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return CLOCK() - t0


def harness(config: TrainConfig, seed: int) -> tuple[float, int]:
    """(fit's training-loop seconds, samples trained on)."""
    h = fit(config, seed)
    task = get_task(config.task)
    n_train = len(task.prepare(config, seed, torch.device("cpu")).train)
    steps = steps_per_epoch(config, n_train) * config.epochs
    samples = min(n_train, steps_per_epoch(config, n_train) * config.batch_size) * config.epochs
    return h.step_time_s * steps, samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="classification,text,ctr,ctr-width1,keypoints,gan,detection,segmentation")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    global CLOCK
    if args.clock == "cpu":
        if args.threads != 1:
            raise SystemExit("--clock cpu measures this thread only: use --threads 1 (or --clock wall)")
        CLOCK = time.thread_time
        loop_module.time = types.SimpleNamespace(perf_counter=time.thread_time)  # type: ignore[assignment]
    print(f"{args.threads} thread(s), {args.repeats} repeats, {args.clock} clock, optimizer sgd {HPARAMS}")
    for name in args.tasks.split(","):
        config = SETUPS[name].replace(optimizer="sgd", hparams=HPARAMS)
        if config.data_dir is not None and not Path(config.data_dir).is_dir():
            print(f"{name:15s} skipped: no {config.data_dir}")
            continue
        bare_loop(config, 0), harness(config, 0)  # warm-up (imports, allocator, the data cache)
        fit_s, bare_s, samples = [], [], 0
        for rep in range(args.repeats):
            for which in ("fit", "bare") if rep % 2 == 0 else ("bare", "fit"):
                if which == "fit":
                    t, samples = harness(config, rep + 1)
                    fit_s.append(t)
                else:
                    bare_s.append(bare_loop(config, rep + 1))
        fit_rate, bare_rate = samples / statistics.median(fit_s), samples / statistics.median(bare_s)
        best = min(bare_s) / min(fit_s)
        print(
            f"{name:15s} {config.dataset}/{config.model} batch {config.batch_size}: bare {bare_rate:9.0f} samples/s, "
            f"fit {fit_rate:9.0f} samples/s (medians), ratio fit/bare = {fit_rate / bare_rate:.3f} "
            f"(of the fastest repetitions: {best:.3f})   target >= 0.95"
        )


if __name__ == "__main__":
    main()
