"""Optimizer step time against torch's own steps AND against the machine's memory bandwidth, in one run.

An optimizer step is memory-bound: its floor is (bytes it must read and write) / bandwidth. This
script measures the bandwidth in the same process — an in-place triad a ← a + s·b over two float32
tensors larger than the caches (12 bytes per element) — interleaved with the steps, so machine load
hits probe and steps alike. For every step it prints, over interleaved rounds (min / median / max):

    B/param   bytes per parameter a step must move (float32): SGD 12; SGD(momentum), Nesterov,
              sgdm-ema, rsgdm, WGD on them 20 (the gradient mean re-reads g while it is in cache);
              tm-sgd multi-step 24 (g, θ, two displacements read; θ and one displacement written);
              Adam and WGD on it 28
    GB/s      achieved: B/param × parameters / step time
    frac      GB/s over the probe's GB/s of the same round (1.0 = at the bandwidth limit)
    ×foreach  step time over torch's corresponding foreach step (same round)
    ×fused    step time over torch's corresponding fused=True step (same round)

on 1 and 2 intra-op threads, for two parameter layouts:

    resnet18   ResNet18 for CIFAR-10: 11,173,962 parameters in 62 tensors
    blocks324  a transformer-like stack, 27 blocks × 12 tensors of width 192: 324 tensors, 12.0M params
    many       the same stack with 300 blocks of width 32: 3,600 tensors, 3.8M params
               (WGD with wgd_include_linear=True on both stacks: they have no conv weights)

Default steps of rsgdm, sgdm-ema, wgd-* and (for its large tensors) tmsgd run torch's own fused kernels where
the update is theirs (docs/optimizers.md, "Speed"). Steps labelled fused=True run optimlab's compiled
single-pass kernel (optimlab.optim.compiled) — for rsgdm and sgdm-ema, whose update is torch's
fused SGD step, the same torch kernel as their default; the compiled kernel is built (or loaded
from torch's extension cache) before the timing, and the time that took is printed. WGD's kernel also writes the whitened gradient back into p.grad (4 more bytes per
parameter than the B/param column, which counts what the rule itself must move).

and the optimizer-state bytes per parameter of every registered optimizer (--state).

    python benchmarks/bench_optimizers.py [--rounds 11] [--steps 3] [--threads 1 2] [--layouts resnet18 blocks324 many]
    python benchmarks/bench_optimizers.py --quick     # 2 rounds, 1 step: a smoke test, not a measurement

The 1-minute load average is printed with each table: on a shared machine the absolute figures
(ms, GB/s) move with the load; the per-round ratios and fractions are what to read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

import optimlab
from optimlab.optim import compiled, start_multistep

Factory = Callable[[list[torch.Tensor]], torch.optim.Optimizer]


def resnet18_cifar_shapes(num_classes: int = 10) -> list[tuple[int, ...]]:
    """Parameter shapes of ResNet18 with the CIFAR stem (conv, BN weight/bias, linear)."""
    shapes: list[tuple[int, ...]] = [(64, 3, 3, 3), (64,), (64,)]
    in_c = 64
    for out_c, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for block in range(2):
            s = stride if block == 0 else 1
            shapes += [(out_c, in_c, 3, 3), (out_c,), (out_c,), (out_c, out_c, 3, 3), (out_c,), (out_c,)]
            if s != 1 or in_c != out_c:
                shapes += [(out_c, in_c, 1, 1), (out_c,), (out_c,)]
            in_c = out_c
    shapes += [(num_classes, 512), (num_classes,)]
    return shapes


def many_small_shapes(blocks: int = 300, d: int = 32) -> list[tuple[int, ...]]:
    """A transformer-like stack: per block, attention in/out projections, two layer norms and an MLP
    (12 tensors, most of them small)."""
    block = [(3 * d, d), (3 * d,), (d, d), (d,), (d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,), (d,), (d,)]
    return block * blocks


LAYOUTS: dict[str, Callable[[], list[tuple[int, ...]]]] = {
    "resnet18": resnet18_cifar_shapes,
    "blocks324": lambda: many_small_shapes(blocks=27, d=192),
    "many": many_small_shapes,
    "tiny": lambda: [(8, 4, 3, 3), (8,), (10, 8), (10,)],  # for smoke tests only
}


def make_params(shapes: Sequence[tuple[int, ...]], device: str, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    params = []
    for shape in shapes:
        p = torch.randn(shape, generator=gen).to(device).requires_grad_()
        p.grad = torch.randn(shape, generator=gen).to(device) * 1e-3
        params.append(p)
    return params


def torch_sgd(nesterov: bool, impl: str) -> Factory:
    return lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9, nesterov=nesterov, **{impl: True})


def torch_adam(impl: str) -> Factory:
    return lambda ps: torch.optim.Adam(ps, lr=1e-3, **{impl: True})


def ours(name: str, multistep: bool = False, **hp: object) -> Factory:
    def make(ps: list[torch.Tensor]) -> torch.optim.Optimizer:
        opt = optimlab.create_optimizer(name, ps, lr=1e-3, **hp)
        if multistep:
            start_multistep(opt)
        return opt

    return make


@dataclass(frozen=True)
class Step:
    label: str
    make: Factory
    bytes_per_param: int
    ref: str  # key of torch's corresponding steps: "sgdm", "nag" or "adam" (foreach and fused)


def steps_for(layout: str) -> list[Step]:
    linear = {"wgd_include_linear": True} if layout != "resnet18" else {}
    return [
        Step("torch SGD(momentum) foreach", torch_sgd(False, "foreach"), 20, "sgdm"),
        Step("torch SGD(momentum) fused", torch_sgd(False, "fused"), 20, "sgdm"),
        Step("torch SGD(nesterov) foreach", torch_sgd(True, "foreach"), 20, "nag"),
        Step("torch SGD(nesterov) fused", torch_sgd(True, "fused"), 20, "nag"),
        Step("torch Adam foreach", torch_adam("foreach"), 28, "adam"),
        Step("torch Adam fused", torch_adam("fused"), 28, "adam"),
        Step("rsgdm (default)", ours("rsgdm"), 20, "nag"),
        Step("sgdm-ema (default)", ours("sgdm-ema"), 20, "sgdm"),
        Step("tmsgd (default), multi-step phase", ours("tmsgd", multistep=True), 24, "sgdm"),
        Step("wgd-sgdm (default)", ours("wgd-sgdm", **linear), 20, "sgdm"),
        Step("wgd-sgdm (generic, wgd_fused=False)", ours("wgd-sgdm", wgd_fused=False, **linear), 20, "sgdm"),
        Step("wgd-rsgdm (default)", ours("wgd-rsgdm", **linear), 20, "nag"),
        Step("wgd-sgdm-ema (default)", ours("wgd-sgdm-ema", **linear), 20, "sgdm"),
        # fused=True: optimlab's compiled single-pass kernel (optimlab.optim.compiled)
        Step("rsgdm fused=True", ours("rsgdm", fused=True), 20, "nag"),
        Step("sgdm-ema fused=True", ours("sgdm-ema", fused=True), 20, "sgdm"),
        Step("tmsgd fused=True, multi-step", ours("tmsgd", multistep=True, fused=True), 24, "sgdm"),
        Step("wgd-sgdm fused=True", ours("wgd-sgdm", fused=True, **linear), 20, "sgdm"),
        Step("wgd-rsgdm fused=True", ours("wgd-rsgdm", fused=True, **linear), 20, "nag"),
        Step("wgd-adam (default)", ours("wgd-adam", **linear), 28, "adam"),
        Step("wgd-adam fused=True", ours("wgd-adam", fused=True, **linear), 28, "adam"),
    ]


def time_steps(opt: torch.optim.Optimizer, steps: int, sync: Callable[[], None]) -> float:
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.step()
    sync()
    return (time.perf_counter() - t0) / steps


class Probe:
    """In-place triad a ← a + s·b on two float32 tensors of `n` elements: 12 bytes per element."""

    def __init__(self, n: int, device: str, sync: Callable[[], None]) -> None:
        self.a = torch.ones(n, device=device)
        self.b = torch.ones(n, device=device)
        self.sync = sync

    def gbps(self, reps: int = 3) -> float:
        """Best of `reps` passes (the sustained rate the machine gives a streaming kernel now)."""
        best = float("inf")
        for _ in range(reps):
            self.sync()
            t0 = time.perf_counter()
            self.a.add_(self.b, alpha=1e-7)
            self.sync()
            best = min(best, time.perf_counter() - t0)
        return 12 * self.a.numel() / best / 1e9


def mmm(xs: Sequence[float], fmt: str = "{:.2f}") -> str:
    return "/".join(fmt.format(v) for v in (min(xs), statistics.median(xs), max(xs)))


def measure(layout: str, threads: int, args: argparse.Namespace, sync: Callable[[], None]) -> list[dict]:
    """Interleaved rounds: probe, then every step (order rotated per round). One row per step."""
    torch.set_num_threads(threads)
    shapes = LAYOUTS[layout]()
    params = make_params(shapes, args.device)
    n = sum(p.numel() for p in params)
    steps = steps_for(layout)
    opts = [s.make(params) for s in steps]  # one shared parameter set: state per optimizer
    for opt in opts:  # warm-up: allocate state, settle caches
        time_steps(opt, 2, sync)
    probe = Probe(max(n, 16 * 2**20), args.device, sync)
    probe.gbps()
    times: list[list[float]] = [[] for _ in steps]
    limits: list[float] = []
    for r in range(args.rounds):
        limits.append(probe.gbps())
        order = list(range(len(steps)))
        order = order[r % len(order) :] + order[: r % len(order)]
        for i in order:
            times[i].append(time_steps(opts[i], args.steps, sync))
    ref = {
        (s.ref, "foreach" if "foreach" in s.label else "fused"): times[i]
        for i, s in enumerate(steps)
        if "torch" in s.label
    }
    rows = []
    for s, ts in zip(steps, times):
        gb = [s.bytes_per_param * n / t / 1e9 for t in ts]
        rows.append(
            {
                "step": s.label,
                "layout": layout,
                "tensors": len(shapes),
                "params": n,
                "threads": threads,
                "bytes_per_param": s.bytes_per_param,
                "ms": [t * 1e3 for t in ts],
                "gbps": gb,
                "frac": [g / lim for g, lim in zip(gb, limits)],
                "x_foreach": [t / u for t, u in zip(ts, ref[(s.ref, "foreach")])],
                "x_fused": [t / u for t, u in zip(ts, ref[(s.ref, "fused")])],
                "limit_gbps": limits,
            }
        )
    return rows


def print_table(rows: list[dict]) -> None:
    r0 = rows[0]
    load = os.getloadavg()
    print(
        f"\n{r0['layout']}: {r0['params']:,} float32 parameters in {r0['tensors']} tensors, {r0['threads']} thread(s); "
        f"bandwidth probe {mmm(r0['limit_gbps'], '{:.1f}')} GB/s (min/median/max); "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"{'step':38s} {'B/p':>3s} {'ms (median)':>11s} {'GB/s (median)':>13s} "
        f"{'frac of limit':>16s} {'x torch foreach':>16s} {'x torch fused':>16s}"
    )
    for r in rows:
        print(
            f"{r['step']:38s} {r['bytes_per_param']:3d} {statistics.median(r['ms']):11.2f} "
            f"{statistics.median(r['gbps']):13.1f} {mmm(r['frac']):>16s} {mmm(r['x_foreach']):>16s} "
            f"{mmm(r['x_fused']):>16s}"
        )


def state_bytes_per_param(name: str, device: str) -> float:
    params = make_params(resnet18_cifar_shapes(), device)
    opt = optimlab.create_optimizer(name, params, lr=1e-3)
    if name.startswith("tmsgd"):
        start_multistep(opt)
    opt.step()
    opt.step()
    n = sum(p.numel() for p in params)
    total = 0
    states = [opt.state] + ([opt.optimizer.state] if hasattr(opt, "optimizer") else [])  # Lookahead: + its base
    for state in states:
        for st in state.values():
            for v in st.values():
                if torch.is_tensor(v):
                    total += v.numel() * v.element_size()
    return total / n


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=11, help="interleaved timing rounds (default 11)")
    ap.add_argument("--steps", type=int, default=3, help="optimizer steps per timing (default 3)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread counts (default 1 2)")
    ap.add_argument("--layouts", nargs="+", choices=sorted(LAYOUTS), default=["resnet18", "blocks324", "many"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--state", action="store_true", help="also print optimizer-state bytes per parameter")
    ap.add_argument("--quick", action="store_true", help="2 rounds of 1 step: a smoke test, not a measurement")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.steps = 2, 1
    if args.rounds < 1 or args.steps < 1 or any(t < 1 for t in args.threads):
        ap.error("--rounds, --steps and --threads must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    print(
        f"torch {torch.__version__}, device {args.device}, {os.cpu_count()} cores, {args.rounds} rounds x "
        f"{args.steps} steps; load average at start {os.getloadavg()[0]:.2f}"
        + ("  [--quick: smoke test, not a measurement]" if args.quick else "")
    )
    kernel = compiled.load()  # build (or load the cached build) before any timing
    print(
        f"fused=True kernel: {'ready' if kernel is not None else 'NOT available, fused rows run the unfused path'}"
        f" ({compiled.build_seconds():.1f} s to build or load in this process)"
    )
    rows: list[dict] = []
    for layout in args.layouts:
        for threads in args.threads:
            table = measure(layout, threads, args, sync)
            print_table(table)
            rows += table
    if args.state:
        print("\noptimizer state, bytes per parameter (float32 params; 4.0 = one buffer)")
        for info in optimlab.list_optimizers():
            print(f"  {info.name:14s} {state_bytes_per_param(info.name, args.device):6.2f}   ({info.convention})")
    return rows


if __name__ == "__main__":
    main()
