"""`optimlab report DIR`: rebuild report.md and the figures from a folder's result files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from optimlab.cli.commands import command_help
from optimlab.cli.common import (
    UsageError,
    console,
    print_summary,
)
from optimlab.cli.flags import add_wide_flag


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help=command_help("report"))
    p.add_argument("dir", metavar="DIR")
    add_wide_flag(p)
    p.set_defaults(func=cmd_report)
    return p


def cmd_report(args: argparse.Namespace) -> int:
    from optimlab.experiments.results import experiment_path
    from optimlab.report.markdown import write_report
    from optimlab.train.checkpoint import RUN_FILE

    folder = Path(args.dir)
    expected = "a folder written by `optimlab compare` (or tune's search/ and final/), with experiment.json and runs/"
    if not folder.is_dir():
        raise UsageError(f"report: {str(folder)!r} does not exist; expected {expected}")
    if not experiment_path(folder).is_file():
        what = (
            "a run folder of `optimlab train` (run.json): its result is history.json"
            if (folder / RUN_FILE).is_file()
            else "not an experiment folder"
        )
        raise UsageError(f"report: {str(folder)!r} is {what}; expected {expected}")
    path = write_report(folder)
    print_summary(Path(args.dir), wide=args.wide)
    console().print(f"report: {path}")
    return 0
