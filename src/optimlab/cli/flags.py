"""Command-line flags that several subcommands share, declared once.

The statistics and the runner take plain values; argparse lives here and in the subcommand modules.
"""

from __future__ import annotations

from typing import Any

from optimlab.experiments.looks import DEFAULT_LOOK_STEP
from optimlab.stats.inference import MIN_SEEDS, plan_looks

__all__ = ["add_looks_flags", "looks_from_args"]


def add_looks_flags(p: Any) -> None:
    """--until-decided, --min-seeds, --max-seeds, --look-step on an argparse parser."""
    p.add_argument(
        "--until-decided",
        action="store_true",
        help="add seeds in planned looks until every comparison is decided or --max-seeds is reached "
        "(alpha spending over the looks keeps the error rate; see docs/statistics.md)",
    )
    p.add_argument(
        "--min-seeds",
        type=int,
        metavar="N",
        default=MIN_SEEDS,
        help=f"with --until-decided: seeds at the first look (default {MIN_SEEDS})",
    )
    p.add_argument("--max-seeds", type=int, metavar="N", help="with --until-decided: the seed budget (required)")
    p.add_argument(
        "--look-step",
        type=int,
        metavar="N",
        default=DEFAULT_LOOK_STEP,
        help=f"with --until-decided: seeds added between looks (default {DEFAULT_LOOK_STEP})",
    )


def looks_from_args(args: Any) -> list[int] | None:
    """The planned looks from parsed flags (None without --until-decided); ValueError on misuse."""
    if not args.until_decided:
        if args.max_seeds is not None:
            raise ValueError("--max-seeds needs --until-decided (plain runs take --seeds)")
        return None
    if args.max_seeds is None:
        raise ValueError("--until-decided needs --max-seeds N (the most seeds you will pay for)")
    if getattr(args, "seeds", None) is not None:
        raise ValueError("--until-decided chooses the seeds: give --min-seeds/--max-seeds instead of --seeds")
    return plan_looks(args.min_seeds, args.max_seeds, args.look_step)
