"""The `optimlab` command.

    optimlab compare                        # the embedded default: digits, 6 optimizers, 5 seeds
    optimlab compare --config my.toml --workers 4 --out runs/mine
    optimlab compare --optimizers sgdm-ema:lr=0.1,beta=0.9 rsgdm:lr=0.1 --seeds 10 --epochs 20
    optimlab train --optimizer rsgdm:lr=0.1 --seed 3 --epochs 5
    optimlab report runs/compare-default    # rebuild report.md and the figures from result files
    optimlab list                           # optimizers (with conventions), models, data sets
    optimlab study ...                      # the papers' analyses (when optimlab.studies is present)

Bad input (unknown names, bad TOML, a missing data folder, a bad hyperparameter) ends with exit
status 2 and one line on stderr; set OPTIMLAB_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.resources
import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from optimlab.experiments.config import ConfigError, ExperimentConfig, load_experiment_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_CONFIG = "configs/default.toml"  # package data of optimlab
EXIT_BAD_INPUT = 2
EXIT_RUNS_FAILED = 1
MAX_LISTED = 5  # diverged runs named under the table


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
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
    """'name', 'name:k=v,k=v' or 'label=name:k=v' -> {name, label, hparams}."""
    head, _, tail = spec.partition(":")
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


def _seeds_arg(raw: str) -> Any:
    try:
        return int(raw) if "," not in raw else [int(s) for s in raw.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds {raw!r}: give a count (5) or a comma list (0,1,7)") from None


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
    if args.data_dir is not None:
        d["data_dir"] = args.data_dir
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
    recipe_flags = ("dataset", "data_dir", "model", "width", "epochs", "batch_size", "max_steps_per_epoch",
                    "switch_epoch")
    if not args.config and (opts or any(getattr(args, k, None) is not None for k in recipe_flags)):
        d["name"] = "custom"  # not the embedded default any more: not titled (or filed) as "default"
    if single:
        d["optimizers"] = d["optimizers"][:1]
        d.update(seeds=[args.seed], baseline=None)
    else:
        if args.seeds is not None:
            d["seeds"] = _seeds_arg(args.seeds)
        if args.baseline is not None:
            d["baseline"] = args.baseline
    return ExperimentConfig.from_dict(d, source=args.config or "command line")


# ----------------------------------------------------------------------------------------------
# output


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, width=None if stream.isatty() else 220, soft_wrap=False, highlight=False)


def _rich_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: bool = True) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, h in enumerate(headers):
        table.add_column(h, justify="right" if numeric and i > 0 else "left", no_wrap=i == 0)
    for r in rows:
        table.add_row(*r)
    return table


def _log(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        _console(stderr=True).print(message)


def print_summary(out_dir: Path) -> tuple[int, int]:
    """Print the headline table(s) of an experiment folder; returns (finished, failed) run counts."""
    from optimlab.experiments import sequential
    from optimlab.experiments.report import compare_table, load_experiment, table_notes
    from optimlab.experiments.stats import summarize

    config, results = load_experiment(out_dir)
    summary = summarize(results, config.baseline_label)
    record = sequential.read_sequential(out_dir)
    if record is not None:
        sequential.apply_to_summary(summary, record)
    console = _console()
    for ds in config.dataset_grid:
        for model in config.model_grid:
            headers, rows = compare_table(summary, config.baseline_label, ds, model)
            title = (f"{config.name}: {ds} / {model} (width {config.width}), {config.epochs} epochs, "
                     f"{len(config.seeds)} seeds — final test accuracy")
            console.print(_rich_table(title, headers, rows))
            for note in table_notes(summary, rows):
                console.print(note)
    if record is not None:
        console.print(sequential.plan_text(record))
    for note in summary.notes:
        console.print(f"note: {note}")
    threads = sorted({r.history.threads for r in results if r.done and r.history.threads})
    if threads:
        console.print(f"step ms: mean wall time of one training step (forward, backward, optimizer step; "
                      f"evaluation excluded), mean over seeds, measured with {'/'.join(map(str, threads))} "
                      f"intra-op thread(s) per run on a machine with {_cores()} core(s)")
    diverged = [r for r in results if r.done and r.diverged]
    for r in diverged[:MAX_LISTED]:
        reason = r.history.diverged_reason or "non-finite final metrics"
        console.print(f"diverged: {r.run_id} at epoch {r.history.diverged_epoch} ({reason})")
    if len(diverged) > MAX_LISTED:
        console.print(f"diverged: ... and {len(diverged) - MAX_LISTED} more runs (see report.md)")
    return sum(r.done for r in results), sum(not r.done for r in results)


def _cores() -> int:
    from optimlab.experiments.threads import available_cores

    return available_cores()


def _resume_note(run_dir: Path) -> str:
    """', resuming from epoch N' when run_dir holds a checkpoint of an unfinished run."""
    from optimlab.train.checkpoint import CHECKPOINT_FILE, DONE_FILE

    if (run_dir / DONE_FILE).exists():
        return ", already finished: reading its result"
    if not (run_dir / CHECKPOINT_FILE).exists():
        return ""
    import torch

    try:
        epoch = int(torch.load(run_dir / CHECKPOINT_FILE, map_location="cpu", weights_only=True)["epoch"])
    except Exception:  # fit itself reports an unreadable checkpoint
        return ", resuming from its checkpoint"
    return f", resuming after epoch {epoch} (from {run_dir / CHECKPOINT_FILE})"


# ----------------------------------------------------------------------------------------------
# commands


def cmd_compare(args: argparse.Namespace) -> int:
    from optimlab.experiments import sequential
    from optimlab.experiments.report import write_report
    from optimlab.experiments.sweep import available_cores, run_experiment
    from optimlab.experiments.validate import check_experiment

    config = build_config(args)
    check_experiment(config)
    out = Path(args.out or f"runs/compare-{config.name}")
    workers = args.workers or min(available_cores(), 8)
    n = len(config.runs())
    _log(args, f"optimlab compare: {n} runs ({len(config.optimizers)} optimizers × {len(config.seeds)} seeds"
               f"{' × ' + str(len(config.model_grid) * len(config.dataset_grid)) + ' data/model cells' if n > len(config.optimizers) * len(config.seeds) else ''})"
               f" → {out}, {workers} worker(s)")
    looks = sequential.looks_from_args(args)
    if looks is None:
        results = run_experiment(config, out, workers=workers, progress=not args.quiet, check=False, threads=args.threads)
    else:
        from optimlab.experiments.results import load_results

        _log(args, f"--until-decided: looks at {looks} seeds")
        holder: dict[str, Any] = {}

        def run(cfg: ExperimentConfig) -> None:
            holder["results"] = run_experiment(cfg, out, workers=workers, progress=not args.quiet, check=False,
                                               threads=args.threads)

        def decide(cfg: ExperimentConfig, alpha: float) -> dict[str, str]:
            return sequential.compare_decisions(load_results(out, [r.run_id for r in cfg.runs()]),
                                                cfg.baseline_label, alpha)

        sequential.run_until_decided(config, out, looks, run, decide)
        results = holder["results"]
    report = write_report(out)
    done, failed = print_summary(out)
    _console().print(f"report: {report}")
    if failed:
        errs = [r for r in results if not r.done]
        print(f"optimlab: {failed} of {len(results)} runs failed (first: {errs[0].run_id}: {errs[0].error}); "
              f"see {out}/runs/*.error.json; re-run the same command to retry them", file=sys.stderr)
        return EXIT_RUNS_FAILED
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from optimlab.experiments.threads import choose_threads
    from optimlab.experiments.validate import check_experiment
    from optimlab.train import fit

    config = build_config(args, single=True)
    check_experiment(config)
    spec = config.runs()[0]
    threads = choose_threads(spec.config, workers=1, override=args.threads)
    torch.set_num_threads(threads)
    resuming = _resume_note(Path(args.out)) if args.out else ""
    _log(args, f"optimlab train: {spec.run_id}" + (f" → {args.out}" if args.out else "")
               + f", {threads} intra-op thread(s){resuming}")
    history = fit(spec.config, spec.seed, run_dir=args.out, progress=not args.quiet)
    rows = [[m, f"{history.final.get(m, math.nan):.4f}", f"{history.final_val.get(m, math.nan):.4f}"]
            for m in ("accuracy", "loss", "mean_recall", "mean_precision", "kappa")]
    console = _console()
    console.print(_rich_table(f"{spec.run_id}: final metrics ({len(history.train_loss)} epochs)",
                              ["metric", "test", "validation"], rows))
    diverged = f"epoch {history.diverged_epoch} ({history.diverged_reason})" if history.diverged else "no"
    console.print(f"diverged: {diverged}; "
                  f"step time {history.step_time_s * 1e3:.3f} ms (mean wall time of forward + backward + "
                  f"optimizer step, {history.threads} intra-op thread(s)); wall time {history.wall_time_s:.1f} s")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from optimlab.experiments.report import write_report
    from optimlab.experiments.results import experiment_path
    from optimlab.train.checkpoint import RUN_FILE

    folder = Path(args.dir)
    expected = "a folder written by `optimlab compare` (or tune's search/ and final/), with experiment.json and runs/"
    if not folder.is_dir():
        raise UsageError(f"report: {str(folder)!r} does not exist; expected {expected}")
    if not experiment_path(folder).is_file():
        what = ("a run folder of `optimlab train` (run.json): its result is history.json"
                if (folder / RUN_FILE).is_file() else "not an experiment folder")
        raise UsageError(f"report: {str(folder)!r} is {what}; expected {expected}")
    path = write_report(folder)
    print_summary(Path(args.dir))
    _console().print(f"report: {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from optimlab.data import list_datasets
    from optimlab.models import list_models
    from optimlab.optim import list_optimizers

    console = _console()
    what = args.what
    if what in ("all", "optimizers"):
        rows = [[i.name, i.convention, ", ".join(f"{k}={v}" for k, v in i.defaults.items()), i.paper, i.summary]
                for i in list_optimizers()]
        console.print(_rich_table("optimizers (wgd-<base> works for every base)",
                                  ["name", "momentum convention", "defaults", "paper", "summary"], rows, numeric=False))
    if what in ("all", "models"):
        rows = [[m.name, m.family, m.summary] for m in list_models()]
        console.print(_rich_table("models (create_model(name, num_classes, input_shape, width))",
                                  ["name", "family", "summary"], rows, numeric=False))
    if what in ("all", "datasets"):
        rows = [[d.name, "yes" if d.needs_root else "no",
                 ", ".join(f"{k}={v}" for k, v in d.options.items()) or "—", d.summary] for d in list_datasets()]
        console.print(_rich_table("datasets", ["name", "needs --data-dir", "options (dataset_options)", "summary"], rows,
                                  numeric=False))
    return 0


# ----------------------------------------------------------------------------------------------
# parser


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE.toml", help="experiment TOML (default: the embedded default)")
    p.add_argument("--dataset", help="data set name (see `optimlab list datasets`)")
    p.add_argument("--data-dir", metavar="DIR", help="folder of a data set read from disk (cifar10, imagefolder)")
    p.add_argument("--model", help="model name (see `optimlab list models`)")
    p.add_argument("--width", type=float, help="model width multiplier")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-steps-per-epoch", type=int, metavar="K", help="cap the steps of each epoch (quick runs)")
    p.add_argument("--switch-epoch", type=int, metavar="E", help="TM-SGD: epoch of the switch to the multi-step rule")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or log lines")


def _threads_arg(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"--threads {raw!r}: give an int >= 1")
    return value


def _add_threads_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=_threads_arg, metavar="N",
                   help="torch intra-op threads per run (default: $OPTIMLAB_THREADS, else 1 for small models and "
                        "cores // workers for large ones; see README, Threads)")


def build_parser() -> argparse.ArgumentParser:
    import optimlab

    parser = _Parser(prog="optimlab", description="Compare first-order optimizers over seeds, with statistics.")
    parser.add_argument("--version", action="version", version=f"optimlab {optimlab.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("compare", help="run optimizers x seeds, print the table, write the report")
    _add_run_flags(p)
    p.add_argument("--optimizers", nargs="+", metavar="SPEC",
                   help="name[:k=v,...] or label=name[:k=v,...], e.g. sgdm-ema:lr=0.1,beta=0.9 adam:lr=1e-3")
    p.add_argument("--seeds", metavar="N|a,b,c", help="a count (seeds 0..N-1) or a comma list")
    p.add_argument("--baseline", metavar="LABEL", help="optimizer label for paired statistics (default: config's)")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/compare-<name>); re-running resumes")
    p.add_argument("--workers", type=int, metavar="N", help="worker processes (default: cores, at most 8)")
    _add_threads_flag(p)
    from optimlab.experiments.sequential import add_flags

    add_flags(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("train", help="one training run; prints its final metrics")
    _add_run_flags(p)
    p.add_argument("--optimizer", metavar="SPEC", help="name[:k=v,...] (default: the config's first optimizer)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="run folder: checkpoints (resume), model.pt, history.json")
    _add_threads_flag(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("report", help="rebuild report.md and figures from an experiment folder")
    p.add_argument("dir", metavar="DIR")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("list", help="optimizers, models and data sets")
    p.add_argument("what", nargs="?", default="all", choices=["all", "optimizers", "models", "datasets"])
    p.set_defaults(func=cmd_list)

    _add_plugins(sub)
    return parser


# Subcommands that live beside their packages: (command, module exposing add_parser, help).
_PLUGINS = (
    ("study", "optimlab.studies.cli", "the papers' analyses"),
    ("reproduce", "optimlab.reproduce.cli", "the papers' experiments by name, with verdicts"),
    ("tune", "optimlab.tune.cli", "the same lr-search budget for every optimizer"),
)


def _add_plugins(sub: Any) -> None:
    """Wire each plugin's subcommand; one that fails to import says why when used."""
    for command, module_name, help_text in _PLUGINS:
        try:
            importlib.import_module(module_name).add_parser(sub)
        except Exception as e:  # keep the other commands usable; say why on use
            reason = " ".join(f"{type(e).__name__}: {e}".split())
            p = sub.add_parser(command, help=f"(unavailable) {help_text}", add_help=False)
            p.add_argument("rest", nargs=argparse.REMAINDER)
            p.set_defaults(func=lambda _a, c=command, r=reason: _fail(f"optimlab {c} is unavailable: {r}"))


def _fail(message: str) -> int:
    print("optimlab: error: " + " ".join(str(message).split()), file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    debug = os.environ.get("OPTIMLAB_DEBUG", "") not in ("", "0")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("optimlab: interrupted; finished runs are kept — re-run the same command to resume", file=sys.stderr)
        return 130
    except UsageError as e:
        message = str(e)
        if not message.startswith("optimlab"):
            return _fail(message)
        print(" ".join(message.split()), file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ConfigError, ValueError, TypeError, OSError, KeyError) as e:
        if debug:
            raise
        return _fail(e.args[0] if isinstance(e, KeyError) and e.args else str(e))
    except Exception as e:
        if debug:
            raise
        return _fail(f"{type(e).__name__}: {e} (set OPTIMLAB_DEBUG=1 for the traceback)")


if __name__ == "__main__":
    sys.exit(main())
