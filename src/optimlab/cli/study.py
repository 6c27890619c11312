"""`optimlab study`: run the papers' analyses from the command line.

    optimlab study --list
    optimlab study ode --out docs/studies
    optimlab study all --out docs/studies      # regenerates the checked-in pages

optimlab.cli calls `add_parser(subparsers)`; the parsed arguments go to `run_from_args(args)`
(also set as the subparser's `func` default).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from optimlab.cli.commands import command_help
from optimlab.studies import STUDIES, SUMMARIES, run_study

DEFAULT_OUT = Path("studies")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `study` subcommand to an argparse subparsers object and return its parser."""
    p = subparsers.add_parser(
        "study",
        help=command_help("study"),
        description="Run a study: " + "; ".join(f"{k}: {v}" for k, v in SUMMARIES.items()),
    )
    p.add_argument("name", nargs="?", metavar="NAME", help=f"one of {', '.join(STUDIES)}, or 'all'")
    p.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=DEFAULT_OUT,
        help=f"folder for <name>.md and its figures (default: ./{DEFAULT_OUT})",
    )
    p.add_argument("--list", action="store_true", help="list the studies and exit")
    p.set_defaults(func=run_from_args)
    return p


def run_from_args(args: argparse.Namespace) -> int:
    """Execute a parsed `study` command; returns the exit status (ValueError on a bad NAME)."""
    if args.list:
        for name, summary in SUMMARIES.items():
            print(f"{name:<14} {summary}")
        return 0
    if args.name is None:
        raise ValueError(f"optimlab study: give a study NAME ({', '.join(STUDIES)}, all) or --list")
    names = list(STUDIES) if args.name == "all" else [args.name]
    if args.name != "all" and args.name not in STUDIES:
        raise ValueError(f"Unknown study {args.name!r}. Valid names: {', '.join(STUDIES)}, all")
    for name in names:
        start = time.perf_counter()
        result = run_study(name, args.out)
        print(f"{name}: wrote {result.page} and {len(result.figures)} figure(s) in {time.perf_counter() - start:.1f} s")
    return 0
