"""`optimlab reproduce`: re-run a paper's experiment and judge its claims.

    optimlab reproduce --list
    optimlab reproduce rsgdm-cifar10-resnet18                    # CPU scale, a few minutes
    optimlab reproduce rsgdm-cifar10-resnet18 --tune             # + each optimizer at its own best lr
    optimlab reproduce rsgdm-cifar10-resnet18 --scale paper --data-dir ~/data/cifar10   # CUDA GPU

optimlab.cli calls `add_parser(subparsers)`; the parsed arguments go to `run_from_args(args)`
(the subparser's `func`). Bad input raises ValueError subclasses (ReproduceError, ConfigError,
DatasetError), which optimlab.cli.main prints as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from optimlab.cli.commands import command_help
from optimlab.cli.common import add_executor_flags, add_set_flag, apply_sets, checked_out_dir, executor_from_args
from optimlab.cli.flags import add_looks_flags, add_seeds_flag, add_workers_flag, looks_from_args, workers_from_args
from optimlab.reproduce.catalog import list_paper_experiments, load_paper_experiment
from optimlab.reproduce.run import SCALES, STAND_INS, ReproduceError, default_out, reproduce


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `reproduce` subcommand to an argparse subparsers object and return its parser."""
    p = subparsers.add_parser(
        "reproduce",
        help=command_help("reproduce"),
        description="Re-run one of the papers' experiments (see --list) and write verdict.md: for each claim the "
        "paper's figure, ours with 95% CIs over seeds, the paired difference and a verdict.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="a paper experiment (see --list)")
    p.add_argument("--list", action="store_true", help="list the paper experiments and exit")
    p.add_argument(
        "--scale",
        choices=SCALES,
        default="cpu",
        help="cpu: the catalogue's small settings on the CIFAR-10 subset (or --data-dir); "
        "paper: the paper's settings on --data-dir with a CUDA GPU (default: cpu)",
    )
    p.add_argument(
        "--data-dir", metavar="DIR", help="the data set's folder (paper scale; at cpu scale a CIFAR-10 folder)"
    )
    add_seeds_flag(p, default_note="default: the catalogue's, 10")
    p.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        help="output folder (default runs/reproduce-<name>-<scale>); re-running resumes",
    )
    add_workers_flag(p)
    add_executor_flags(p)
    p.add_argument(
        "--stand-in",
        choices=STAND_INS,
        metavar="DATA",
        help="cpu scale without CIFAR-10: run the catalogue's small stand-in instead (only 'digits'); "
        "never chosen silently, and the verdict then says it is about digits",
    )
    p.add_argument("--allow-cpu", action="store_true", help="paper scale: run on the CPU when there is no CUDA GPU")
    add_set_flag(p)
    p.add_argument(
        "--tune",
        action="store_true",
        help="also judge each optimizer at its own best lr: the same lr grid for all (the catalogue's "
        "[tune]), chosen on validation, rerun on the same seeds; verdict.md shows both",
    )
    p.add_argument(
        "--tune-budget",
        type=int,
        metavar="N",
        help="lr candidates per optimizer with --tune (default: the catalogue's, 4-5)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_looks_flags(p)
    p.set_defaults(func=run_from_args)
    return p


def list_lines() -> list[str]:
    """One line per paper experiment: name, paper id and title, number of claims."""
    out = []
    for name in list_paper_experiments():
        exp = load_paper_experiment(name)
        n = len(exp.paper.claims)
        out.append(f"{name:<28} paper {exp.paper.id}: {exp.paper.title} — {n} claim{'s' if n != 1 else ''}")
    return out


def run_from_args(args: argparse.Namespace) -> int:
    """Execute a parsed `reproduce` command; returns the exit status (ValueError on bad input)."""
    if args.list:
        print("\n".join(list_lines()))
        return 0
    if args.name is None:
        raise ReproduceError(
            f"optimlab reproduce: give a paper experiment NAME or --list (names: {', '.join(list_paper_experiments())})"
        )
    workers = workers_from_args(args)
    if args.tune_budget is not None and not args.tune:
        raise ReproduceError("--tune-budget needs --tune")
    try:
        looks = looks_from_args(args)
    except ValueError as e:
        raise ReproduceError(str(e)) from None
    out = checked_out_dir(args.out) if args.out else default_out(args.name, args.scale)
    executor = executor_from_args(args, workers)
    start = time.perf_counter()
    overrides = apply_sets({}, args.set) or None
    made = reproduce(
        args.name,
        scale=args.scale,
        data_dir=args.data_dir,
        seeds=looks[0] if looks else args.seeds,
        out=out,
        workers=workers,
        executor=executor,
        tensorboard=not args.no_tensorboard,
        progress=not args.quiet,
        allow_cpu=args.allow_cpu,
        tune=args.tune,
        tune_budget=args.tune_budget,
        looks=looks,
        stand_in=args.stand_in,
        overrides=overrides,
    )
    print(headline(made.judged))
    print(
        f"verdict: {made.verdict}  (report: {made.verdict.parent / 'report.md'}; {time.perf_counter() - start:.0f} s)"
    )
    return 0


def headline(judged: Any) -> str:
    """The scale line and one line per claim with its verdict(s), from the judged claims."""
    exp, meta, claims, tuned = judged
    lines = [f"{exp.name}: scale {meta['scale']}, {meta.get('description', '')}"]
    for i, r in enumerate(claims):
        tail = f"; tuned: {tuned.claims[i].verdict}" if tuned is not None else ""
        lines.append(f"{i + 1}. {r.claim.text} — {r.verdict} (at {meta.get('judge_name', 'the settings run')}){tail}")
    return "\n".join(lines)
