"""`optimlab compare`: optimizers x seeds on one recipe, the table, report.md (and --until-decided)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from optimlab.cli.commands import command_help
from optimlab.cli.common import (
    EXIT_RUNS_FAILED,
    add_executor_flags,
    add_run_flags,
    build_config,
    checked_out_dir,
    console,
    executor_from_args,
    log,
    print_summary,
)
from optimlab.cli.flags import (
    add_looks_flags,
    add_seeds_flag,
    add_threads_flag,
    add_wide_flag,
    add_workers_flag,
    looks_from_args,
    workers_from_args,
)
from optimlab.experiments.config import ExperimentConfig
from optimlab.experiments.results import RunResult


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("compare", help=command_help("compare"))
    add_run_flags(p)
    p.add_argument(
        "--optimizers",
        nargs="+",
        metavar="SPEC",
        help="name[:k=v,...] or label=name[:k=v,...], e.g. sgdm-ema:lr=0.1,beta=0.9 adam:lr=1e-3",
    )
    add_seeds_flag(p)
    p.add_argument("--baseline", metavar="LABEL", help="optimizer label for paired statistics (default: config's)")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/compare-<name>); re-running resumes")
    add_workers_flag(p)
    add_threads_flag(p)
    add_executor_flags(p)
    add_looks_flags(p)
    p.add_argument(
        "--margin",
        action="append",
        default=[],
        metavar="METRIC=M",
        help="equivalence margin, e.g. accuracy=0.005 (repeatable), or 'defaults' for optimlab.stats.margins' "
        "table: adds the decision 'equivalent (within ±M)' inside the same Holm budget (TOML: margins = {...})",
    )
    add_wide_flag(p)
    p.set_defaults(func=cmd_compare)
    return p


def cmd_compare(args: argparse.Namespace) -> int:
    from optimlab.experiments import looks as sequential_looks
    from optimlab.experiments.sweep import run_experiment
    from optimlab.experiments.validate import check_experiment
    from optimlab.report.markdown import write_report
    from optimlab.stats import sequential

    config = build_config(args)
    out = checked_out_dir(args.out or f"runs/compare-{config.name}")
    workers = workers_from_args(args)
    executor = executor_from_args(args, workers)  # bad flags fail before the data and models are built
    check_experiment(config)
    n = len(config.runs())
    log(
        args,
        f"optimlab compare: {n} runs ({len(config.optimizers)} optimizers × {len(config.seeds)} seeds"
        f"{' × ' + str(len(config.model_grid) * len(config.dataset_grid)) + ' data/model cells' if n > len(config.optimizers) * len(config.seeds) else ''})"
        f" → {out}, {executor.describe()}",
    )
    looks = looks_from_args(args)

    def sweep(cfg: ExperimentConfig) -> list[RunResult]:
        return run_experiment(
            cfg,
            out,
            progress=not args.quiet,
            check=False,
            threads=args.threads,
            executor=executor,
            tensorboard=not args.no_tensorboard,
        )

    if looks is None:
        results = sweep(config)
    else:
        from optimlab.experiments.results import load_results

        log(args, f"--until-decided: looks at {looks} seeds")
        holder: dict[str, Any] = {}

        def run(cfg: ExperimentConfig) -> None:
            holder["results"] = sweep(cfg)

        def decide(cfg: ExperimentConfig, alpha: float) -> dict[str, str]:
            return sequential.compare_decisions(
                load_results(out, [r.run_id for r in cfg.runs()]),
                cfg.baseline_label,
                alpha,
                margins=cfg.margins or None,
            )

        sequential_looks.run_until_decided(config, out, looks, run, decide)
        results = holder["results"]
    report = write_report(out)
    done, failed = print_summary(out, wide=args.wide)
    console().print(f"report: {report}")
    if failed:
        errs = [r for r in results if not r.done]
        print(
            f"optimlab: {failed} of {len(results)} runs failed (first: {errs[0].run_id}: {errs[0].error}); "
            f"see {out}/runs/*.error.json; re-run the same command to retry them",
            file=sys.stderr,
        )
        return EXIT_RUNS_FAILED
    return 0
