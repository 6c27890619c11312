"""The `optimlab` command: one module per subcommand over optimlab.cli.common.

    optimlab compare                        # the embedded default: digits, 6 optimizers, 10 seeds
    optimlab compare --config my.toml --workers 4 --out runs/mine
    optimlab compare --optimizers sgdm-ema:lr=0.1,beta=0.9 rsgdm:lr=0.1 --seeds 10 --epochs 20
    optimlab train --optimizer rsgdm:lr=0.1 --seed 3 --epochs 5
    optimlab report runs/compare-default    # rebuild report.md and the figures from result files
    optimlab list                           # optimizers (with conventions), models, data sets
    optimlab study | tune | reproduce ...   # the papers' analyses, the fair judge, the papers' experiments
    optimlab judge runs.csv --baseline sgdm # runs made elsewhere, judged by compare's statistics

Bad input (unknown names, bad TOML, a missing data folder, a bad hyperparameter: UsageError,
ValueError and its subclasses, OSError) ends with exit status 2 and one line on stderr; set
OPTIMLAB_DEBUG=1 to see the traceback instead. Anything else is a bug and raises with its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from optimlab.cli.commands import COMMANDS
from optimlab.cli.common import EXIT_BAD_INPUT, Parser, UsageError, fail

__all__ = ["main", "build_parser"]


def __getattr__(name: str) -> tuple[ModuleType, ...]:
    if name == "SUBCOMMANDS":  # each has add_parser(subparsers); imported on use (they pull in torch)
        return tuple(importlib.import_module(module) for module, _ in COMMANDS.values())
    raise AttributeError(f"module 'optimlab.cli' has no attribute {name!r}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `optimlab` parser. command None: every subcommand in full; a name: only that subcommand in
    full and the others by name and help, so `optimlab --help` imports no subcommand module (main)."""
    import optimlab

    parser = Parser(prog="optimlab", description="Compare first-order optimizers over seeds, with statistics.")
    parser.add_argument("--version", action="version", version=f"optimlab {optimlab.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    for name, (module, help_text) in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def named_command(argv: Sequence[str]) -> str:
    """The subcommand argv names ('' for none: `optimlab --help`, `optimlab --version`)."""
    first = next((a for a in argv if not a.startswith("-")), "")
    return first if first in COMMANDS else ""


def main(argv: Sequence[str] | None = None) -> int:
    debug = os.environ.get("OPTIMLAB_DEBUG", "") not in ("", "0")
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser(named_command(argv))
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("optimlab: interrupted; finished runs are kept — re-run the same command to resume", file=sys.stderr)
        return 130
    except UsageError as e:
        message = str(e)
        if not message.startswith("optimlab"):
            return fail(message)
        print(" ".join(message.split()), file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, OSError) as e:  # ConfigError, ReproduceError, TuneError, DatasetError are ValueErrors
        if debug:
            raise
        return fail(str(e))
