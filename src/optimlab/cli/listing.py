"""`optimlab list`: registered optimizers (with conventions), models and data sets."""

from __future__ import annotations

import argparse
from typing import Any

from optimlab.cli.commands import command_help
from optimlab.cli.common import (
    console,
    rich_table,
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("list", help=command_help("list"))
    p.add_argument("what", nargs="?", default="all", choices=["all", "optimizers", "models", "datasets", "tasks"])
    p.set_defaults(func=cmd_list)
    return p


def cmd_list(args: argparse.Namespace) -> int:
    from optimlab.data import list_datasets
    from optimlab.models import list_models
    from optimlab.optim import list_optimizers

    con = console()
    what = args.what
    if what in ("all", "optimizers"):
        rows = [
            [i.name, i.convention, ", ".join(f"{k}={v}" for k, v in i.defaults.items()), i.paper, i.origin, i.summary]
            for i in list_optimizers()
        ]
        con.print(
            rich_table(
                "optimizers (wgd-<base> works for every base; package.module:attr names a user's own)",
                ["name", "momentum convention", "defaults", "paper", "origin", "summary"],
                rows,
                numeric=False,
            )
        )
    if what in ("all", "models"):
        rows = [[m.name, m.family, m.origin, m.summary] for m in list_models()]
        con.print(
            rich_table(
                "models (create_model(name, num_classes, input_shape, width))",
                ["name", "family", "origin", "summary"],
                rows,
                numeric=False,
            )
        )
    if what in ("all", "datasets"):
        rows = [
            [
                d.name,
                "yes" if d.needs_root else "no",
                ", ".join(f"{k}={v}" for k, v in d.options.items()) or "—",
                d.origin,
                d.summary,
            ]
            for d in list_datasets()
        ]
        columns = ["name", "needs --data-dir", "options (dataset_options)", "origin", "summary"]
        con.print(rich_table("datasets", columns, rows, numeric=False))
    if what in ("all", "tasks"):
        from optimlab.tasks import list_tasks

        rows = [
            [
                t.name,
                ", ".join(t.datasets) or "the image data sets above",
                ", ".join(t.models) or "the models above",
                ", ".join(t.metrics) + f" (headline {t.headline})",
                t.summary,
            ]
            for t in list_tasks()
        ]
        con.print(
            rich_table(
                "tasks (task = ... in a config)",
                ["name", "data sets", "models", "metrics", "summary"],
                rows,
                numeric=False,
            )
        )
    return 0
