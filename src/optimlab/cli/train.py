"""`optimlab train`: one run, resumable from its folder; prints the final metrics."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from optimlab.cli.commands import command_help
from optimlab.cli.common import add_run_flags, build_config, checked_out_dir, console, log, rich_table
from optimlab.cli.flags import add_threads_flag
from optimlab.train.vocabulary import task_metrics


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help=command_help("train"))
    add_run_flags(p)
    p.add_argument("--optimizer", metavar="SPEC", help="name[:k=v,...] (default: the config's first optimizer)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="run folder: checkpoints (resume), model.pt, history.json")
    add_threads_flag(p)
    p.set_defaults(func=cmd_train)
    return p


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


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from optimlab.experiments.threads import choose_threads
    from optimlab.experiments.validate import check_experiment
    from optimlab.report.display import fmt_value, metric_title
    from optimlab.train import fit

    config = build_config(args, single=True)
    if args.out:
        checked_out_dir(args.out)
    check_experiment(config)
    spec = config.runs()[0]
    threads = choose_threads(spec.config, workers=1, override=args.threads)
    torch.set_num_threads(threads)
    resuming = _resume_note(Path(args.out)) if args.out else ""
    log(
        args,
        f"optimlab train: {spec.run_id}"
        + (f" → {args.out}" if args.out else "")
        + f", {threads} intra-op thread(s){resuming}",
    )
    history = fit(spec.config, spec.seed, run_dir=args.out, progress=not args.quiet)
    rows = [
        [metric_title(m), fmt_value(m, history.final.get(m)), fmt_value(m, history.final_val.get(m))]
        for m in spec.config.metrics or task_metrics(spec.config.task)  # a train_function's own metrics
    ]
    con = console()
    con.print(
        rich_table(
            f"{spec.run_id}: final metrics ({len(history.train_loss)} epochs)", ["metric", "test", "validation"], rows
        )
    )
    diverged = f"epoch {history.diverged_epoch} ({history.diverged_reason})" if history.diverged else "no"
    if not history.diverged and history.diverged_reason:  # a train_function run diverges without epochs
        diverged = history.diverged_reason
    con.print(
        f"diverged: {diverged}; "
        f"step time {history.step_time_s * 1e3:.3f} ms (mean wall time of forward + backward + "
        f"optimizer step, {history.threads} intra-op thread(s)); wall time {history.wall_time_s:.1f} s"
    )
    return 0
