"""Command-line flags that several subcommands share, declared once.

The statistics and the runner take plain values; argparse lives here and in the subcommand modules.
"""

from __future__ import annotations

from typing import Any

from optimlab.cli.common import UsageError
from optimlab.experiments.config import ConfigError, parse_seeds
from optimlab.experiments.looks import DEFAULT_LOOK_STEP
from optimlab.stats.inference import MIN_SEEDS, plan_looks

__all__ = [
    "add_looks_flags",
    "add_seeds_flag",
    "add_threads_flag",
    "add_wide_flag",
    "add_workers_flag",
    "looks_from_args",
    "seeds_arg",
    "threads_arg",
    "workers_arg",
    "workers_from_args",
]

MAX_DEFAULT_WORKERS = 8  # without --workers: one process per core, at most this many
SEEDS_DIALECT = "a count N (seeds 0..N-1), a comma list a,b,c (one seed: a,) or a range a-b"


def seeds_arg(raw: str, flag: str = "--seeds") -> tuple[int, ...]:
    """Seed text in the one dialect of experiments.config.parse_seeds; UsageError naming the flag."""
    try:
        return parse_seeds(raw, name=flag)
    except ConfigError as e:
        raise UsageError(str(e)) from None  # names the flag and the value


def add_seeds_flag(p: Any, what: str = "seeds", default_note: str = "default: the config's") -> None:
    """--seeds in the one seed dialect (compare, tune, reproduce); parsed to a tuple of ints."""
    p.add_argument("--seeds", type=seeds_arg, metavar="N|a,b,c|a-b", help=f"{what}: {SEEDS_DIALECT} ({default_note})")


def _positive_int(raw: str, flag: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"{flag} {raw!r}: give an int >= 1")
    return value


def threads_arg(raw: str) -> int:
    return _positive_int(raw, "--threads")


def workers_arg(raw: str) -> int:
    return _positive_int(raw, "--workers")


def add_threads_flag(p: Any) -> None:
    p.add_argument(
        "--threads",
        type=threads_arg,
        metavar="N",
        help="torch intra-op threads per run (default: $OPTIMLAB_THREADS, else 1 for small models and "
        "cores // workers for large ones; see docs/clusters.md)",
    )


def add_workers_flag(p: Any) -> None:
    p.add_argument(
        "--workers",
        type=workers_arg,
        metavar="N",
        help=f"worker processes (default: cores, at most {MAX_DEFAULT_WORKERS})",
    )


def workers_from_args(args: Any) -> int:
    """--workers, else one worker per core (at most MAX_DEFAULT_WORKERS)."""
    from optimlab.cli.common import cores

    return int(args.workers) if args.workers is not None else min(cores(), MAX_DEFAULT_WORKERS)


def add_wide_flag(p: Any) -> None:
    """--wide: every column of the headline table, however wide the terminal (compare, report, judge, tune)."""
    p.add_argument(
        "--wide",
        action="store_true",
        help="print every column of the table (default: secondary columns are left out where the terminal "
        "is too narrow for them; report.md always has them)",
    )


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
