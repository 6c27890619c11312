"""`optimlab tune`: give every optimizer the same lr-search budget, choose on validation, compare on test.

    optimlab tune --optimizers sgdm:momentum=0.9 sgdm-ema:beta=0.9 --budget 8 --epochs 6
    optimlab tune --config my.toml --search sobol --budget 16 --tune-weight-decay --out runs/tune-mine
    optimlab tune --tune-weight-decay 1e-5,1e-3 --lr-min 1e-3 --lr-max 1 --tune-seeds 1000,1001

optimlab.cli calls `add_parser(subparsers)`; the parsed arguments go to `run_from_args(args)`
(the subparser's `func`). Bad input raises ValueError subclasses (TuneError, ConfigError), which
optimlab.cli.main prints as one line with exit status 2. The config (or the embedded default) and
the data/model/optimizer flags are read exactly as `optimlab compare` reads them (optimlab.cli's
build_config); the optimizers' own lr values are replaced by the search.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from optimlab.cli.commands import command_help
from optimlab.tasks import known_metrics
from optimlab.tune.search import SEARCHES, TuneError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `tune` subcommand to an argparse subparsers object and return its parser."""
    from optimlab.cli.common import add_executor_flags, add_run_flags
    from optimlab.cli.flags import add_seeds_flag, add_threads_flag, add_wide_flag, add_workers_flag

    p = subparsers.add_parser(
        "tune",
        help=command_help("tune"),
        description="Search lr (and weight decay with --tune-weight-decay) with the same budget for every "
        "optimizer, choose each one's setting on the validation split, rerun the choices on the "
        "final seeds and compare them on the test split with paired statistics. Resumable.",
    )
    add_run_flags(p)  # --config --dataset --data-dir --model --width --epochs ... --quiet, as compare
    p.add_argument(
        "--optimizers",
        nargs="+",
        metavar="SPEC",
        help="name[:k=v,...] or label=name[:k=v,...]; any lr given is replaced by the search",
    )
    add_seeds_flag(p, what="final seeds")
    p.add_argument(
        "--tune-seeds",
        metavar="a,b,c|a-b",
        default="1000,1001,1002",
        help="seeds of the search runs, in --seeds' dialect (default 1000,1001,1002: >= 3 so one lucky seed "
        "cannot choose; keep them apart from the final seeds: a bare N is seeds 0..N-1, give a list or a range)",
    )
    p.add_argument("--baseline", metavar="LABEL", help="optimizer label for paired statistics (default: config's)")
    p.add_argument("--budget", type=int, default=8, metavar="N", help="settings per optimizer (default 8)")
    p.add_argument("--lr-min", type=float, default=1e-4, help="smallest lr searched (default 1e-4)")
    p.add_argument("--lr-max", type=float, default=1.0, help="largest lr searched (default 1)")
    p.add_argument("--search", choices=SEARCHES, default="grid", help="log grid or seeded Sobol points (default grid)")
    p.add_argument(
        "--tune-weight-decay",
        nargs="?",
        const="default",
        metavar="MIN,MAX",
        help="also search weight decay (log scale; default range 1e-6,1e-2)",
    )
    p.add_argument(
        "--metric",
        default=None,
        choices=[m for m in known_metrics() if m != "train_accuracy"],
        help="validation metric that chooses (default: the task's headline, accuracy for classifiers, auc for ctr)",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/tune-<name>); re-running resumes")
    add_workers_flag(p)
    add_threads_flag(p)
    add_wide_flag(p)
    add_executor_flags(p)
    p.set_defaults(func=run_from_args)
    return p


def _wd_arg(raw: str | None) -> bool | tuple[float, float]:
    if raw is None:
        return False
    if raw == "default":
        return True
    try:
        lo, hi = (float(v) for v in raw.split(","))
    except ValueError:
        raise TuneError(f"--tune-weight-decay {raw!r}: give MIN,MAX, e.g. 1e-6,1e-2") from None
    return lo, hi


def run_from_args(args: argparse.Namespace) -> int:
    """Execute a parsed `tune` command; returns the exit status (ValueError on bad input)."""
    from optimlab.cli.common import build_config, checked_out_dir, console, executor_from_args
    from optimlab.cli.flags import seeds_arg, workers_from_args
    from optimlab.experiments.validate import check_experiment
    from optimlab.tune.search import edge_note, tune

    if args.budget < 2:  # one setting per optimizer is no search: every optimizer would "choose" it
        raise TuneError(f"--budget must be >= 2 settings per optimizer (one setting is no search), got {args.budget}")
    tune_seeds = seeds_arg(args.tune_seeds, "--tune-seeds")  # a string default (the help shows it as given)
    weight_decay = _wd_arg(args.tune_weight_decay)
    config = build_config(args)
    out = checked_out_dir(args.out or f"runs/tune-{config.name}")
    workers = workers_from_args(args)
    executor = executor_from_args(args, workers)  # bad flags fail before the data and models are built
    check_experiment(config)
    if not args.quiet:
        print(
            f"optimlab tune: {len(config.optimizers)} optimizers × {args.budget} settings × {len(tune_seeds)} "
            f"tuning seed(s), then × {len(config.seeds)} final seeds → {out}, {executor.describe()}",
            file=sys.stderr,
        )
    result = tune(
        config,
        out,
        budget=args.budget,
        lr_range=(args.lr_min, args.lr_max),
        search=args.search,
        tune_weight_decay=weight_decay,
        tune_seeds=tune_seeds,
        metric=args.metric,
        progress=not args.quiet,
        executor=executor,
        tensorboard=not args.no_tensorboard,
        threads=args.threads,
    )
    con = console()
    _print_tables(con, result, args.wide)
    edge = edge_note({lab: b.candidate if b is not None else None for lab, b in result.best.items()}, result.candidates)
    if edge is not None:  # a warning, shown even with --quiet
        print(f"optimlab tune: {edge}", file=sys.stderr)
    con.print(f"tune page: {result.page}")
    failed = [r for r in result.final_results if not r.done]
    if failed or result.final_config is None:
        print(
            f"optimlab: {len(failed)} final run(s) failed or no optimizer had a finite setting; see {out}; "
            "re-run the same command to retry",
            file=sys.stderr,
        )
        return 1
    return 0


def _print_tables(con: Any, result: Any, wide: bool) -> None:
    """The chosen settings with their validation scores, then the final seeds' compare table."""
    from optimlab.cli.common import rich_table
    from optimlab.cli.tables import print_fitted
    from optimlab.report.display import fmt_value, metric_title
    from optimlab.report.markdown import compare_table, headline_title
    from optimlab.train.vocabulary import task_headline

    metric = result.metric
    rows = []
    for label, b in result.best.items():
        if b is None:
            rows.append([label, "— (all diverged)", "", ""])
        else:
            wd = b.candidate.weight_decay
            rows.append([label, f"{b.candidate.lr:.3g}", "—" if wd is None else f"{wd:.3g}", fmt_value(metric, b.mean)])
    con.print(
        rich_table(
            f"chosen on validation {result.metric} ({len(result.candidates)} settings each)",
            ["optimizer", "lr", "weight decay", f"val {metric_title(metric)}"],
            rows,
        )
    )
    if result.summary is not None and result.final_config is not None:
        fc = result.final_config
        headline = task_headline(fc.task)
        headers, rows = compare_table(result.summary, fc.baseline_label, fc.dataset_grid[0], fc.model_grid[0], headline)
        title = f"chosen settings, {len(fc.seeds)} final seeds — final {headline_title(headline)}"
        print_fitted(con, title, headers, rows, wide)
