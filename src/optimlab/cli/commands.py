"""The subcommands of `optimlab`: name, module and one-line help, with no imports.

`optimlab --help` lists them from this table alone; a subcommand's module (and torch, SciPy,
matplotlib behind it) is imported only when that subcommand is named on the command line."""

from __future__ import annotations

COMMANDS: dict[str, tuple[str, str]] = {  # name -> (module, one-line help)
    "compare": ("optimlab.cli.compare", "run optimizers x seeds, print the table, write the report"),
    "train": ("optimlab.cli.train", "one training run; prints its final metrics"),
    "report": ("optimlab.cli.report", "rebuild report.md and figures from an experiment folder"),
    "list": ("optimlab.cli.listing", "optimizers, models, data sets and tasks"),
    "study": (
        "optimlab.cli.study",
        "run one of the papers' analyses (deterministic; writes a Markdown page + PNGs)",
    ),
    "tune": (
        "optimlab.cli.tune",
        "same lr-search budget per optimizer, chosen on validation, compared on test (tune.md)",
    ),
    "reproduce": (
        "optimlab.cli.reproduce",
        "re-run a paper's experiment over seeds and judge its claims (writes verdict.md)",
    ),
    "judge": (
        "optimlab.cli.judge",
        "judge runs made elsewhere (a CSV or a folder of run JSONs) with compare's statistics",
    ),
}


def command_help(name: str) -> str:
    return COMMANDS[name][1]
