"""`optimlab judge FILE --baseline LABEL`: compare's table for runs optimlab did not make.

FILE is a CSV in long form (optimizer, seed, one column per metric; an empty cell or nan is a
failed run) or a folder of optimlab run JSONs. The table and report.md come from optimlab.judging;
bad files end with one line naming the row (exit 2), like every subcommand's bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from optimlab.cli.commands import command_help
from optimlab.cli.common import console
from optimlab.cli.flags import add_wide_flag


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "judge",
        help=command_help("judge"),
        description="Pair each optimizer with the baseline by seed: Student-t interval, Holm over the "
        "optimizers, failure rates, decision and MDE; writes DIR/report.md and DIR/judgement.json.",
    )
    p.add_argument(
        "file",
        metavar="FILE",
        help="CSV with columns optimizer, seed, then one per metric (empty cell or nan: a failed run), "
        "or a folder of optimlab run JSONs",
    )
    p.add_argument("--baseline", required=True, metavar="LABEL", help="the optimizer every other one is paired with")
    p.add_argument("--metric", metavar="NAME", help="the metric column to judge (default: the only one)")
    p.add_argument(
        "--lower-is-better",
        action="store_true",
        default=None,
        help="smaller values win (for a metric optimlab does not know; known metrics keep their direction)",
    )
    p.add_argument(
        "--out", metavar="DIR", help="where report.md and judgement.json go (default runs/judge-<FILE name>)"
    )
    add_wide_flag(p)
    p.set_defaults(func=cmd_judge)
    return p


def cmd_judge(args: argparse.Namespace) -> int:
    from optimlab.cli.tables import print_fitted
    from optimlab.judging import judge

    judgement = judge(args.file, args.baseline, args.metric, lower_is_better=args.lower_is_better)
    out = Path(args.out or f"runs/judge-{Path(args.file).stem}")
    report = judgement.write(out)
    headers, rows = judgement.table()
    con = console()
    print_fitted(con, judgement.title(), headers, rows, args.wide)
    for note in judgement.table_notes(rows):
        con.print(note)
    con.print(f"report: {report}")
    con.print(f"judgement: {out / 'judgement.json'}")
    return 0
