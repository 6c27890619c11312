"""Optimizer step time and state memory against torch's own optimizers, measured in one run.

On a ResNet18-for-CIFAR-10-shaped parameter set (11,173,962 parameters in 62 tensors) this prints,
for each pair, the median step time of ours over the median of torch's reference, interleaving the
two so that machine load hits both alike:

    RSGDM          vs torch SGD(momentum=0.9, nesterov=True, foreach=True)   target <= 1.10
    TMSGD (multi)  vs torch SGD(momentum=0.9, foreach=True)                  target <= 1.25
    WGD + SGDM     vs torch SGD(momentum=0.9, foreach=True)                  target <= 1.15

and the optimizer-state bytes per parameter of every registered optimizer.

    python benchmarks/bench_optimizers.py [--repeats 30] [--device cpu|cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import optimlab
from optimlab.optim import start_multistep


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


def make_params(device: str, dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    params = []
    for shape in resnet18_cifar_shapes():
        p = torch.randn(shape, generator=gen, dtype=dtype).to(device).requires_grad_()
        p.grad = torch.randn(shape, generator=gen, dtype=dtype).to(device) * 1e-3
        params.append(p)
    return params


Factory = Callable[[list[torch.Tensor]], torch.optim.Optimizer]


def torch_sgd(nesterov: bool) -> Factory:
    return lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9, nesterov=nesterov, foreach=True)


def torch_opt(cls: type, **kw) -> Factory:
    return lambda ps: cls(ps, lr=1e-3, foreach=True, **kw)


def ours(name: str, multistep: bool = False, **hp) -> Factory:
    def make(ps: list[torch.Tensor]) -> torch.optim.Optimizer:
        opt = optimlab.create_optimizer(name, ps, lr=1e-3, **hp)
        if multistep:
            start_multistep(opt)
        return opt

    return make


def time_steps(opt: torch.optim.Optimizer, steps: int, sync: Callable[[], None]) -> float:
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.step()
    sync()
    return (time.perf_counter() - t0) / steps


def compare(
    label: str, mine: Factory, reference: Factory, args: argparse.Namespace, sync: Callable[[], None]
) -> tuple[float, float, float]:
    """Interleaved medians (seconds per step) of ours and the reference, and their ratio."""
    dtype = torch.float32
    opt_a = mine(make_params(args.device, dtype))
    opt_b = reference(make_params(args.device, dtype))
    for opt in (opt_a, opt_b):  # warm-up: allocate state, settle caches
        time_steps(opt, 3, sync)
    a, b = [], []
    for _ in range(args.repeats):
        a.append(time_steps(opt_a, args.steps, sync))
        b.append(time_steps(opt_b, args.steps, sync))
    ma, mb = statistics.median(a), statistics.median(b)
    return ma, mb, ma / mb


def state_bytes_per_param(name: str, device: str) -> float:
    params = make_params(device, torch.float32)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15, help="interleaved timing rounds per pair")
    ap.add_argument("--steps", type=int, default=5, help="optimizer steps per timing round")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    n = sum(torch.Size(s).numel() for s in resnet18_cifar_shapes())
    print(
        f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
        f"{n:,} parameters in {len(resnet18_cifar_shapes())} tensors, float32"
    )
    print(f"{'pair':58s} {'ours ms':>9s} {'torch ms':>9s} {'ratio':>7s} {'target':>7s}")
    pairs = [
        ("RSGDM vs SGD(nesterov, foreach)", ours("rsgdm", beta=0.9), torch_sgd(True), 1.10),
        ("SGDM-EMA vs SGD(momentum, foreach)", ours("sgdm-ema", beta=0.9), torch_sgd(False), None),
        ("TMSGD multi-step vs SGD(momentum, foreach)", ours("tmsgd", multistep=True), torch_sgd(False), 1.25),
        ("TMSGD-M multi-step vs SGD(momentum, foreach)", ours("tmsgdm", multistep=True), torch_sgd(False), None),
        ("WGD(filter)+SGDM vs SGD(momentum, foreach)", ours("wgd-sgdm", momentum=0.9), torch_sgd(False), 1.15),
        (
            "WGD(kernel)+SGDM vs SGD(momentum, foreach)",
            ours("wgd-sgdm", momentum=0.9, wgd_mode="kernel"),
            torch_sgd(False),
            None,
        ),
        ("WGD(update)+Adam vs Adam(foreach)", ours("wgd-adam", wgd_target="update"), torch_opt(torch.optim.Adam), None),
        ("WGD-RAdam (published) vs RAdam(foreach)", ours("wgd-radam-published"), torch_opt(torch.optim.RAdam), None),
        (
            "Nadam (published WGD-Nadam) vs NAdam(foreach)",
            ours("wgd-nadam-published"),
            torch_opt(torch.optim.NAdam),
            None,
        ),
    ]
    for label, mine, ref, target in pairs:
        ma, mb, ratio = compare(label, mine, ref, args, sync)
        verdict = "" if target is None else ("ok" if ratio <= target else "OVER")
        tgt = "" if target is None else f"<={target:.2f}"
        print(f"{label:58s} {ma * 1e3:9.2f} {mb * 1e3:9.2f} {ratio:7.3f} {tgt:>7s} {verdict}")
    print("\noptimizer state, bytes per parameter (float32 params; 4.0 = one buffer)")
    for info in optimlab.list_optimizers():
        print(f"  {info.name:14s} {state_bytes_per_param(info.name, args.device):6.2f}   ({info.convention})")


if __name__ == "__main__":
    main()
