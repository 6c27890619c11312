"""What every `optimlab` subcommand shares: the parser class, the run flags (--config, --set, ...),
the experiment config built from them, and the terminal output (tables, the run summary).

The command and its usage are in optimlab.cli (one module per subcommand)."""

from __future__ import annotations

import argparse
import importlib
import importlib.resources
import importlib.util
import math
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from optimlab.experiments.config import ExperimentConfig, absolute_data_dir, load_experiment_config
from optimlab.experiments.executor import EXECUTORS
from optimlab.train.config import NULL

DEFAULT_CONFIG = "configs/default.toml"  # package data of optimlab
EXIT_BAD_INPUT = 2
EXIT_RUNS_FAILED = 1
MAX_LISTED = 5  # diverged runs named under the table


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


# ----------------------------------------------------------------------------------------------
# parsing helpers


def _parse_value(raw: str) -> Any:
    """A hyperparameter value: TOML literal (0.1, 1e-3, 5, true, [0.9, 0.99], "x") or a bare string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _split_top_level(s: str) -> list[str]:
    """Split on commas that are not inside [...] (so betas=[0.9,0.99] stays whole)."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def parse_optimizer_spec(spec: str) -> dict[str, Any]:
    """'name', 'name:k=v,k=v' or 'label=name:k=v' -> {name, label, hparams}.

    The name may be a reference 'package.module:attribute' (also as wgd-/lookahead-<reference>),
    hyperparameters then after a second ':' ('mypkg.opt:SignSGD:lr=0.1'): it is one when the part
    before the first ':' is a dotted module path (registry names hold no '.') and the segment after
    it holds no '=' (hyperparameters always do)."""
    head, _, tail = spec.partition(":")
    attribute, _, rest = tail.partition(":")
    if "." in head.rpartition("=")[2] and attribute.strip() and "=" not in attribute:
        head, tail = f"{head}:{attribute.strip()}", rest
    label, _, name = head.rpartition("=")
    name = name.strip()
    if not name:
        raise UsageError(f"--optimizers entry {spec!r}: missing optimizer name (use name[:k=v,k=v])")
    hparams: dict[str, Any] = {}
    if tail.strip():
        for item in _split_top_level(tail):
            key, eq, raw = item.partition("=")
            if not eq or not key.strip() or not raw.strip():
                raise UsageError(f"--optimizers entry {spec!r}: {item!r} is not key=value")
            hparams[key.strip()] = _parse_value(raw.strip())
    out: dict[str, Any] = {"name": name, "hparams": hparams}
    if label.strip():
        out["label"] = label.strip()
    return out


def default_config_text() -> str:
    return importlib.resources.files("optimlab").joinpath(DEFAULT_CONFIG).read_text(encoding="utf-8")


def build_config(args: argparse.Namespace, single: bool = False) -> ExperimentConfig:
    """The config file (or the embedded default) with command-line overrides applied."""
    if args.config:
        base = load_experiment_config(args.config)
    else:
        base = ExperimentConfig.from_dict(tomllib.loads(default_config_text()), source=f"optimlab/{DEFAULT_CONFIG}")
    d = base.to_dict()
    if args.dataset is not None:
        d.update(dataset=args.dataset, datasets=[])
    if args.data_dir is not None:  # recorded absolute, as a TOML's (experiments.config.absolute_data_dir)
        d["data_dir"] = absolute_data_dir(args.data_dir)
    if args.model is not None:
        d.update(model=args.model, models=[])
    for key in ("width", "epochs", "batch_size", "max_steps_per_epoch", "switch_epoch"):
        if getattr(args, key) is not None:
            d[key] = getattr(args, key)
    opts = getattr(args, "optimizers", None) or ([args.optimizer] if getattr(args, "optimizer", None) else None)
    if opts:
        d["optimizers"] = [parse_optimizer_spec(s) for s in opts]
        labels = [o.get("label", o["name"]) for o in d["optimizers"]]
        if d.get("baseline") not in labels:
            d["baseline"] = None  # the first listed optimizer
    recipe_flags = (
        "dataset",
        "data_dir",
        "model",
        "width",
        "epochs",
        "batch_size",
        "max_steps_per_epoch",
        "switch_epoch",
    )
    sets = getattr(args, "set", None) or []
    apply_sets(d, sets)
    if not args.config and (opts or sets or any(getattr(args, k, None) is not None for k in recipe_flags)):
        d["name"] = "custom"  # not the embedded default any more: not titled (or filed) as "default"
    if single:
        d["optimizers"] = d["optimizers"][:1]
        d.update(seeds=[args.seed], baseline=None)
    else:
        if args.seeds is not None:
            d["seeds"] = args.seeds  # a tuple from cli.flags.seeds_arg
        if args.baseline is not None:
            d["baseline"] = args.baseline
        if getattr(args, "margin", None):
            from optimlab.stats.margins import parse_margins

            try:
                d["margins"] = {**d.get("margins", {}), **parse_margins(args.margin)}
            except ValueError as e:
                raise UsageError(str(e)) from None
    return ExperimentConfig.from_dict(d, source=args.config or "command line")


def checked_out_dir(out: str | Path, flag: str = "--out") -> Path:
    """`out` as given, after checking that it is (or can become) a writable folder: UsageError naming
    the path and what is wrong, before any header is printed or any file written."""
    import os

    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {str(path)!r} is a file, not a folder; give a folder (it is created if missing)")
    existing = path
    while not existing.exists():  # the nearest existing folder above: where the first mkdir happens
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {str(path)!r}: {str(existing)!r} is a file, so no folder can be made under it")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "folder is not writable" if existing == path else f"cannot create it: {str(existing)!r} is not writable"
        raise UsageError(f"{flag} {str(path)!r}: {what}")
    return path


# ----------------------------------------------------------------------------------------------
# output


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, width=None if stream.isatty() else 220, soft_wrap=False, highlight=False)


def rich_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: bool = True) -> Any:
    from rich.table import Table
    from rich.text import Text

    # plain Text, not markup: "[exact 95% CI]" in a header or a label is text, not a rich style tag
    table = Table(title=Text(title), title_justify="left")
    for i, h in enumerate(headers):
        table.add_column(Text(h), justify="right" if numeric and i > 0 else "left", no_wrap=i == 0)
    for r in rows:
        table.add_row(*(Text(str(cell)) for cell in r))
    return table


def log(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        console(stderr=True).print(message)


def print_summary(out_dir: Path, wide: bool = False) -> tuple[int, int]:
    """Print the headline table(s) of an experiment folder, fitted to the terminal unless `wide`;
    returns (finished, failed) run counts."""
    from optimlab.cli.tables import print_fitted
    from optimlab.experiments import looks
    from optimlab.experiments.results import load_experiment
    from optimlab.report.markdown import (
        compare_table,
        earlier_looks_text,
        experiment_metrics,
        headline_title,
        table_notes,
    )
    from optimlab.stats import sequential
    from optimlab.stats.summary import summarize

    config, results = load_experiment(out_dir)
    headline, metrics, lower = experiment_metrics(config)
    summary = summarize(
        results, config.baseline_label, metrics=metrics, lower_is_better=lower, margins=config.margins or None
    )
    record = looks.read_sequential(out_dir)
    if record is not None:
        sequential.apply_to_summary(summary, record)
    con = console()
    for ds in config.dataset_grid:
        for model in config.model_grid:
            headers, rows = compare_table(summary, config.baseline_label, ds, model, headline)
            recipe = config.train_function or f"(width {config.width}), {config.epochs} epochs"
            title = (
                f"{config.name}: {ds} / {model} {recipe}, {len(config.seeds)} seeds — final {headline_title(headline)}"
            )
            print_fitted(con, title, headers, rows, wide)
            for note in table_notes(summary, rows):
                con.print(note)
    if record is not None:
        con.print(sequential.plan_text(record))
    earlier = looks.earlier_looks(out_dir, len(config.seeds))
    if earlier:  # the README promises this on the terminal, not only in report.md
        print(f"optimlab: warning: earlier looks: {earlier_looks_text(earlier)}", file=sys.stderr)
    for note in summary.notes:
        con.print(f"note: {note}")
    timed = [r.history for r in results if r.done and r.history is not None and math.isfinite(r.history.step_time_s)]
    threads = sorted({h.threads for h in timed if h.threads})  # no note where no step was timed (train_function)
    if threads:
        con.print(
            f"step ms: mean wall time of one training step (forward, backward, optimizer step; "
            f"evaluation excluded), mean over seeds, measured with {'/'.join(map(str, threads))} "
            f"intra-op thread(s) per run on a machine with {cores()} core(s)"
        )
    diverged = [r for r in results if r.done and r.diverged and r.history is not None]
    for r in diverged[:MAX_LISTED]:
        assert r.history is not None
        reason = r.history.diverged_reason or "non-finite final metrics"
        con.print(f"diverged: {r.run_id} at epoch {r.history.diverged_epoch} ({reason})")
    if len(diverged) > MAX_LISTED:
        con.print(f"diverged: ... and {len(diverged) - MAX_LISTED} more runs (see report.md)")
    return sum(r.done for r in results), sum(not r.done for r in results)


def cores() -> int:
    from optimlab.experiments.threads import available_cores

    return available_cores()


# ----------------------------------------------------------------------------------------------
# parser


def add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE.toml", help="experiment TOML (default: the embedded default)")
    p.add_argument("--dataset", help="data set name (see `optimlab list datasets`)")
    p.add_argument("--data-dir", metavar="DIR", help="folder of a data set read from disk (cifar10, imagefolder)")
    p.add_argument("--model", help="model name (see `optimlab list models`)")
    p.add_argument("--width", type=float, help="model width multiplier")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument(
        "--max-steps-per-epoch",
        type=int_or_null,
        metavar="K",
        help=f"cap the steps of each epoch (quick runs); '{NULL}': no cap",
    )
    p.add_argument(
        "--switch-epoch",
        type=int_or_null,
        metavar="E",
        help=f"TM-SGD: epoch of the switch to the multi-step rule; '{NULL}': never switch",
    )
    add_set_flag(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or log lines")


def int_or_null(raw: str) -> int | str:
    """An int, or the null spelling "none" (kept as text: ExperimentConfig.from_dict reads it as None)."""
    if raw.strip() == NULL:
        return NULL
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is neither an int nor '{NULL}'") from None


def add_set_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any training option, e.g. --set amp=bf16 --set val_fraction=0.2 (TOML values; repeatable; "
        f"every TrainConfig field but optimizer/hparams; '{NULL}' unsets an optional number, e.g. "
        f"--set diverge_factor={NULL})",
    )


def settable_keys() -> list[str]:
    """The keys --set and a TOML file accept: every TrainConfig field an experiment shares."""
    import dataclasses

    from optimlab.experiments.config import PER_OPTIMIZER_FIELDS
    from optimlab.train.config import TrainConfig

    return [f.name for f in dataclasses.fields(TrainConfig) if f.name not in PER_OPTIMIZER_FIELDS]


def apply_sets(d: dict[str, Any], sets: Sequence[str]) -> dict[str, Any]:
    """d with each KEY=VALUE of --set applied (the value parsed as TOML, else kept as a string)."""
    keys = settable_keys()
    for item in sets:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"--set {item!r}: give KEY=VALUE, e.g. --set amp=bf16")
        if key not in keys:
            raise UsageError(f"--set {item!r}: unknown option {key!r}; settable: {', '.join(keys)}")
        d[key] = _parse_value(raw.strip())
    return d


def add_executor_flags(p: argparse.ArgumentParser) -> None:
    """--executor, --ray-address, --ray-retries and --no-tensorboard (compare, tune, reproduce)."""
    p.add_argument(
        "--executor",
        choices=tuple(EXECUTORS),
        default="local",
        help="where runs execute: local worker processes (default) or Ray tasks (see docs/clusters.md)",
    )
    p.add_argument(
        "--ray-address",
        metavar="HOST:PORT",
        help="with --executor ray: an existing cluster (or 'auto'); default: a private Ray instance on this machine "
        "with --workers CPUs. --out must then be a folder every node sees at the same path",
    )
    p.add_argument(
        "--ray-retries",
        type=int,
        metavar="N",
        help="with --executor ray: reruns of a run whose worker or node died, each from its checkpoint (default 3)",
    )
    p.add_argument(
        "--no-tensorboard",
        action="store_true",
        help="do not write TensorBoard event files beside each run's JSON (written by default)",
    )


def executor_from_args(args: argparse.Namespace, workers: int) -> Any:
    """The experiments.executor.Executor the flags ask for (UsageError on a bad combination)."""
    from optimlab.experiments.executor import make_executor

    kind = getattr(args, "executor", "local")
    address, retries = getattr(args, "ray_address", None), getattr(args, "ray_retries", None)
    if kind != "ray" and (address is not None or retries is not None):
        raise UsageError("--ray-address and --ray-retries need --executor ray")
    if retries is not None and retries < 0:
        raise UsageError(f"--ray-retries must be >= 0, got {retries}")
    options = {k: v for k, v in (("ray_address", address), ("max_retries", retries)) if v is not None}
    return make_executor(kind, workers=workers, **options)


def fail(message: str) -> int:
    print("optimlab: error: " + " ".join(str(message).split()), file=sys.stderr)
    return EXIT_BAD_INPUT
