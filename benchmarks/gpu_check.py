"""GPU figures in one command (under 8 minutes on one GPU): writes gpu_check.json and gpu_check.md.

On CUDA it measures, each section recorded even if a later one fails or runs out of time:

  1. steps    every paper optimizer's step (rsgdm, sgdm-ema, tm-sgd, WGD on its bases, the WGD
              authors' published classes) on the ResNet18-for-CIFAR parameter set (62 tensors,
              11.2M parameters) in float32 and bfloat16, as medians over interleaved rounds, with
              ratios against torch's SGD(momentum) or Adam, foreach=True and fused=True, same run;
  2. epochs   ResNet18 (width 1) epoch time on the CIFAR-10 subset (found as `optimlab reproduce`
              finds it: $OPTIMLAB_CIFAR10_SUBSET, else shared/data/cifar-10-subset above cwd), plain
              (fp32, eager, batches moved per step) against the accelerator options (amp="bf16",
              channels_last, compile, data_on_device), and the options without compile;
  3. compare  a short RSGDM vs SGDM-EMA run at full width (same lr, beta, seeds; a few epochs —
              a sanity check of the GPU path, not a verdict).

    python benchmarks/gpu_check.py [--out gpu_check] [--budget-s 450] [--epochs 3] [--compare-epochs 4]
    python benchmarks/gpu_check.py --dry-run --out /tmp/x    # CPU, tiny sizes: tests the script itself

Without CUDA (and without --dry-run) it refuses with one line and exit status 2, before any work.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

import optimlab
from optimlab.optim import start_multistep

HERE = Path(__file__).resolve().parent
SGDM_LIKE = ["sgdm-ema", "rsgdm", "tmsgd", "tmsgdm", "wgd-sgdm", "wgd-sgdm-ema", "wgd-rsgdm", "wgd-sgdm-published"]
ADAM_LIKE = ["wgd-adam", "wgd-nadam", "wgd-radam", "wgd-adam-published", "wgd-adam2-published"]
ADAM_LIKE += ["wgd-radam-published", "wgd-nadam-published"]


def _bench_module() -> Any:
    spec = importlib.util.spec_from_file_location("bench_optimizers", HERE / "bench_optimizers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("gpu_check"), help="folder for gpu_check.json and .md")
    ap.add_argument("--budget-s", type=float, default=450.0, help="stop starting sections after this (default 450)")
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds of the step timing (default 9)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per epoch-time run; epoch 1 is reported apart")
    ap.add_argument("--compare-epochs", type=int, default=4, help="epochs of the RSGDM vs SGDM-EMA runs")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: exercises the script, measures nothing")
    args = ap.parse_args(argv)
    for name in ("budget_s", "rounds", "epochs", "compare_epochs"):
        if getattr(args, name) <= 0:
            ap.error(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if args.dry_run:
        args.device, args.rounds, args.epochs, args.compare_epochs = "cpu", 2, 1, 1
    return args


def refuse_without_cuda(args: argparse.Namespace) -> None:
    if args.dry_run:
        return
    if not args.device.startswith("cuda") or not torch.cuda.is_available():
        print(
            f"gpu_check: needs a CUDA GPU (device {args.device!r}, torch {torch.__version__}, "
            f"cuda available: {torch.cuda.is_available()}); nothing measured (use --dry-run to test the script on CPU)",
            file=sys.stderr,
        )
        raise SystemExit(2)


def _sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def _make(name: str, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    if name.startswith("torch-"):
        kind, impl = name[len("torch-") :].split("-")
        if kind == "sgdm":
            return torch.optim.SGD(params, lr=1e-3, momentum=0.9, **{impl: True})
        return torch.optim.Adam(params, lr=1e-3, **{impl: True})
    opt = optimlab.create_optimizer(name, params, lr=1e-3)
    if name.startswith("tmsgd"):
        start_multistep(opt)
    return opt


def step_section(args: argparse.Namespace, deadline: float) -> list[dict[str, Any]]:
    bench = _bench_module()
    shapes = bench.LAYOUTS["tiny" if args.dry_run else "resnet18"]()
    sync = _sync(args.device)
    rows: list[dict[str, Any]] = []
    for dtype in (torch.float32, torch.bfloat16):
        params = [p.to(dtype).detach().requires_grad_() for p in bench.make_params(shapes, args.device)]
        for p, q in zip(params, bench.make_params(shapes, args.device)):
            p.grad = q.grad.to(dtype)
        names = [f"torch-{k}-{i}" for k in ("sgdm", "adam") for i in ("foreach", "fused")] + SGDM_LIKE + ADAM_LIKE
        opts: dict[str, torch.optim.Optimizer] = {}
        errors: dict[str, str] = {}
        for name in names:
            try:
                opts[name] = _make(name, params)
                bench.time_steps(opts[name], 2, sync)
            except Exception as e:  # a dtype an optimizer refuses is a finding, not a crash
                opts.pop(name, None)
                errors[name] = f"{type(e).__name__}: {e}"
        times: dict[str, list[float]] = {n: [] for n in opts}
        for r in range(args.rounds):
            if time.monotonic() > deadline:
                break
            order = list(opts)
            for name in order[r % len(order) :] + order[: r % len(order)]:
                times[name].append(bench.time_steps(opts[name], 3, sync))
        for name in names:
            row: dict[str, Any] = {
                "optimizer": name,
                "dtype": str(dtype).removeprefix("torch."),
                "error": errors.get(name),
            }
            ts = times.get(name, [])
            if ts:
                kind = "adam" if name in ADAM_LIKE or name.startswith("torch-adam") else "sgdm"
                row["median_ms"] = statistics.median(ts) * 1e3
                for impl in ("foreach", "fused"):
                    ref = times.get(f"torch-{kind}-{impl}", [])
                    ratios = [a / b for a, b in zip(ts, ref)]
                    row[f"x_{impl}"] = statistics.median(ratios) if ratios else None
            rows.append(row)
    return rows


def _train_config(args: argparse.Namespace, data_dir: Path | None, **kw: Any) -> Any:
    from optimlab.train import TrainConfig

    if args.dry_run:
        setup = dict(dataset="digits", model="cnn", width=0.5, batch_size=32, max_steps_per_epoch=2)
    else:
        setup = dict(dataset="cifar10", data_dir=str(data_dir), model="resnet18", width=1.0, batch_size=128)
    base = dict(optimizer="sgdm", hparams={"lr": 0.05, "momentum": 0.9}, epochs=args.epochs, device=args.device)
    return TrainConfig(**{**setup, **base, "deterministic": False, **kw})


ACCEL = {
    "plain (fp32, eager, batches moved per step)": dict(data_on_device=False),
    "amp bf16 + channels_last + data_on_device": dict(amp="bf16", channels_last=True, data_on_device=True),
    "amp bf16 + channels_last + compile + data_on_device": dict(
        amp="bf16", channels_last=True, compile=True, data_on_device=True
    ),
}


def epoch_section(args: argparse.Namespace, data_dir: Path | None, deadline: float) -> list[dict[str, Any]]:
    from optimlab.train import fit

    rows = []
    for label, kw in ACCEL.items():
        if args.dry_run and kw.get("compile"):
            rows.append({"setup": label, "skipped": "compile is not exercised by --dry-run"})
            continue
        if time.monotonic() > deadline:
            rows.append({"setup": label, "skipped": "time budget spent"})
            continue
        h = fit(_train_config(args, data_dir, **kw), seed=0)
        later = h.epoch_time_s[1:] or h.epoch_time_s
        rows.append(
            {
                "setup": label,
                "first_epoch_s": h.epoch_time_s[0],
                "later_epoch_s": statistics.median(later),
                "step_ms": h.step_time_s * 1e3,
                "test_acc": h.final.get("test_acc", h.test_acc[-1] if h.test_acc else None),
            }
        )
    return rows


def compare_section(args: argparse.Namespace, data_dir: Path | None, deadline: float) -> list[dict[str, Any]]:
    from optimlab.train import fit

    rows = []
    accel = {} if args.dry_run else ACCEL["amp bf16 + channels_last + data_on_device"]
    for name in ("rsgdm", "sgdm-ema"):
        for seed in (0, 1):
            if time.monotonic() > deadline:
                rows.append({"optimizer": name, "seed": seed, "skipped": "time budget spent"})
                continue
            cfg = _train_config(args, data_dir, **accel).replace(
                optimizer=name, hparams={"lr": 0.1, "beta": 0.9}, epochs=args.compare_epochs
            )
            h = fit(cfg, seed=seed)
            rows.append({"optimizer": name, "seed": seed, "val_acc": h.val_acc, "test_acc": h.test_acc})
    return rows


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "—" if v is None else format(v, spec) if isinstance(v, float) else str(v)


def to_markdown(result: dict[str, Any]) -> str:
    """The JSON result as the Markdown tables README / docs/gpu.md quote."""
    lines = [f"# GPU check — {result['device_name']}", "", f"torch {result['torch']}; {result['note']}", ""]
    lines += ["## Optimizer step, ResNet18 parameter set", ""]
    lines += [
        "| optimizer | dtype | median ms | × torch foreach | × torch fused | error |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["steps"]:
        lines.append(
            f"| {r['optimizer']} | {r['dtype']} | {_fmt(r.get('median_ms'), '.2f')} | {_fmt(r.get('x_foreach'))} "
            f"| {_fmt(r.get('x_fused'))} | {r.get('error') or ''} |"
        )
    lines += ["", "## ResNet18 epoch time, CIFAR-10 subset", ""]
    lines += ["| setup | first epoch s | later epochs s (median) | step ms | test acc |", "|---|---|---|---|---|"]
    for r in result["epochs"]:
        if "skipped" in r:
            lines.append(f"| {r['setup']} | skipped: {r['skipped']} | | | |")
        else:
            lines.append(
                f"| {r['setup']} | {_fmt(r['first_epoch_s'], '.2f')} | {_fmt(r['later_epoch_s'], '.2f')} "
                f"| {_fmt(r['step_ms'], '.1f')} | {_fmt(r['test_acc'])} |"
            )
    lines += ["", "## RSGDM vs SGDM-EMA (short, full width; a sanity check, not a verdict)", ""]
    lines += ["| optimizer | seed | final val acc | final test acc |", "|---|---|---|---|"]
    for r in result["compare"]:
        if "skipped" in r:
            lines.append(f"| {r['optimizer']} | {r['seed']} | skipped: {r['skipped']} | |")
        else:
            val, test = r["val_acc"][-1] if r["val_acc"] else None, r["test_acc"][-1] if r["test_acc"] else None
            lines.append(f"| {r['optimizer']} | {r['seed']} | {_fmt(val)} | {_fmt(test)} |")
    errors = result.get("errors", {})
    if errors:
        lines += ["", "## Sections that failed", ""] + [f"- {k}: {v}" for k, v in errors.items()]
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, result: dict[str, Any]) -> tuple[Path, Path]:
    from optimlab.train.checkpoint import write_json_atomic

    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "gpu_check.json", out / "gpu_check.md"
    write_json_atomic(json_path, result)
    md_path.write_text(to_markdown(result), encoding="utf-8")
    return json_path, md_path


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    refuse_without_cuda(args)
    from optimlab.reproduce.run import find_cifar10_subset

    data_dir = None if args.dry_run else find_cifar10_subset()
    start = time.monotonic()
    deadline = start + args.budget_s
    result: dict[str, Any] = {
        "torch": torch.__version__,
        "device_name": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu (dry run)",
        "note": "dry run on CPU: tiny sizes, measures nothing" if args.dry_run else "measured on this GPU",
        "steps": [],
        "epochs": [],
        "compare": [],
        "errors": {},
    }
    sections: list[tuple[str, Callable[[], list[dict[str, Any]]]]] = [("steps", lambda: step_section(args, deadline))]
    if data_dir is None and not args.dry_run:
        result["errors"]["epochs"] = result["errors"]["compare"] = (
            "no CIFAR-10 subset found (set OPTIMLAB_CIFAR10_SUBSET)"
        )
    else:
        sections += [
            ("epochs", lambda: epoch_section(args, data_dir, deadline)),
            ("compare", lambda: compare_section(args, data_dir, deadline)),
        ]
    for key, run in sections:
        try:
            result[key] = run()
        except Exception as e:  # keep what the other sections measured
            result["errors"][key] = f"{type(e).__name__}: {e}"
        result["elapsed_s"] = time.monotonic() - start
        json_path, md_path = write_outputs(args.out, result)  # after every section: nothing lost
    print(f"gpu_check: wrote {json_path} and {md_path} in {result['elapsed_s']:.0f} s")
    return result


if __name__ == "__main__":
    main()
