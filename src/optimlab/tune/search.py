"""Tune each optimizer's step size with the same budget, choose on validation, judge on test.

    result = tune(config, "runs/tune-default", budget=8)           # -> runs/tune-default/tune.md

Why: the papers give every optimizer the same lr, but the step an lr buys differs by convention
(torch's heavy-ball `sgdm` moves lr/(1−β) per unit gradient, the EMA form `sgdm-ema` moves lr), so
one shared lr favours whichever optimizer it happens to suit. Here every optimizer gets the same
candidate set (a log grid or a seeded scrambled Sobol sequence over lr, and weight_decay when
asked) and the same tuning seeds; each picks the candidate with the best mean *validation* metric
(History.final_val — the test split is never looked at while choosing); a setting where any
tuning run diverged or failed loses to every finite one. Then each optimizer's chosen setting is
rerun on the final seeds (the same seeds for all, so the test-set comparison is paired) and
reported with optimlab.stats, plus an lr-sensitivity plot.

Both phases are ordinary sweeps (run_experiment) in out/search and out/final, so a tune is
resumable and skips finished runs. Search runs are labelled `<label>+lr<lr>[+wd<wd>]` (the label
charset of ExperimentConfig has no '@' or '=').
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from optimlab.experiments.config import ConfigError, ExperimentConfig, OptimizerSpec, parse_seeds
from optimlab.experiments.executor import Executor
from optimlab.experiments.results import RunResult, write_json_atomic
from optimlab.experiments.sweep import run_experiment
from optimlab.stats.summary import Summary, summarize
from optimlab.tasks import lower_is_better
from optimlab.train.vocabulary import task_headline, task_metrics
from optimlab.tune.candidates import (
    DEFAULT_TUNE_SEEDS,
    DEFAULT_WD_RANGE,
    MIN_FINAL_SEEDS,
    SEARCHES,
    SOBOL_SEED,
    Candidate,
    CandidateScore,
    TuneError,
    TuneResult,
    _range,
    _tags,
    edge_note,
    fresh_validation,
    grid_edge,
    make_candidates,
    score_candidates,
    select_best,
)
from optimlab.tune.page import sensitivity_plot, write_page

__all__ = [  # what optimlab.tune re-exports lazily (see tune/__init__.py)
    "tune",
    "TuneResult",
    "TuneError",
    "Candidate",
    "CandidateScore",
    "make_candidates",
    "score_candidates",
    "select_best",
    "SEARCHES",
    "fresh_validation",
    "grid_edge",
    "edge_note",
    "sensitivity_plot",
    "write_page",
    "DEFAULT_WD_RANGE",
    "SOBOL_SEED",
    "MIN_FINAL_SEEDS",
    "DEFAULT_TUNE_SEEDS",
]


def _with(opt: OptimizerSpec, c: Candidate, label: str) -> OptimizerSpec:
    hp = {**opt.hparams, "lr": c.lr}
    if c.weight_decay is not None:
        hp["weight_decay"] = c.weight_decay
    return OptimizerSpec(name=opt.name, label=label, hparams=hp)


# ---------------------------------------------------------------------------------------------
# the two phases


def tune(
    config: ExperimentConfig,
    out_dir: str | Path,
    budget: int = 8,
    lr_range: Sequence[float] = (1e-4, 1.0),
    search: str = "grid",
    tune_weight_decay: bool | Sequence[float] = False,
    tune_seeds: Sequence[int] = DEFAULT_TUNE_SEEDS,
    final_seeds: Sequence[int] | None = None,
    metric: str | None = None,
    workers: int = 1,
    progress: bool = True,
    executor: Executor | None = None,
    tensorboard: bool = True,
    threads: int | None = None,
) -> TuneResult:
    """Search, choose on validation, rerun the choices on paired final seeds; write out/tune.md.

    executor / tensorboard / threads: as run_experiment's (default: `workers` local processes; event
    files on; each run's intra-op threads chosen by the executor)."""
    metrics, metric = _checked_metric(config, metric)
    # tune chooses on the validation split: there is always one, as TrainConfig holds val_fraction in
    # (0, 1) and the tasks' splits hold out at least one sample (tests/test_small_things.py)
    tune_seeds = _seeds("tune_seeds", tune_seeds)
    final_seeds = _seeds("final_seeds", config.seeds if final_seeds is None else final_seeds)
    candidates = make_candidates(budget, lr_range, search, _weight_decay_range(tune_weight_decay))
    out = Path(out_dir)
    sweep = functools.partial(
        run_experiment, workers=workers, progress=progress, executor=executor, tensorboard=tensorboard, threads=threads
    )

    # Phase 1: every optimizer x every candidate x tuning seeds, one sweep.
    run_labels: dict[str, tuple[str, Candidate]] = {}
    specs = []
    for opt in config.optimizers:
        for cand, tag in zip(candidates, _tags(candidates)):
            run_labels[opt.label + tag] = (opt.label, cand)
            specs.append(_with(opt, cand, opt.label + tag))
    search_cfg = config.replace(name=f"{config.name}-search", optimizers=tuple(specs), seeds=tune_seeds, baseline=None)
    search_results = sweep(search_cfg, out / "search")
    scores = score_candidates(search_results, run_labels, len(tune_seeds), metric)
    best = {opt.label: select_best(scores[opt.label], metric) for opt in config.optimizers}

    # Phase 2: each optimizer's chosen setting on the final seeds (paired across optimizers).
    final_cfg, final_results, summary = _final_phase(config, best, final_seeds, metrics, out, sweep)
    result = TuneResult(out, out / "tune.md", None, metric, candidates, scores, best, final_cfg, final_results, summary)
    result.plot = sensitivity_plot(result, config, out / "lr_sensitivity.png")
    write_page(result, config, search, tune_seeds, final_seeds)
    write_json_atomic(out / "tune.json", _to_json(result, search, tune_seeds, final_seeds))
    return result


def _checked_metric(config: ExperimentConfig, metric: str | None) -> tuple[tuple[str, ...], str]:
    """The task's metrics and the one tune chooses on (default: the task's headline); TuneError otherwise."""
    if len(config.dataset_grid) != 1 or len(config.model_grid) != 1:
        raise TuneError(
            f"tune takes one dataset and one model, got datasets {list(config.dataset_grid)} "
            f"and models {list(config.model_grid)}"
        )
    metrics = task_metrics(config.task)
    if metric is None:  # the task's headline: accuracy for classifiers, auc for click-through rate
        metric = task_headline(config.task)
    if metric not in metrics:
        raise TuneError(f"metric must be one of {list(metrics)} (task {config.task!r}), got {metric!r}")
    return metrics, metric


def _final_phase(
    config: ExperimentConfig,
    best: dict[str, Any],
    final_seeds: tuple[int, ...],
    metrics: tuple[str, ...],
    out: Path,
    sweep: Callable[..., list[RunResult]],
) -> tuple[ExperimentConfig | None, list[RunResult], Summary | None]:
    """Each optimizer's chosen setting rerun on the final seeds, paired, summarized and reported."""
    chosen = []
    for opt in config.optimizers:
        pick = best[opt.label]
        if pick is not None:
            chosen.append(_with(opt, pick.candidate, opt.label))
    if not chosen:
        return None, [], None
    labels = [o.label for o in chosen]
    baseline = config.baseline_label if config.baseline_label in labels else labels[0]
    final_cfg = config.replace(
        name=f"{config.name}-final", optimizers=tuple(chosen), seeds=final_seeds, baseline=baseline
    )
    _drop_stale_finals(final_cfg, out / "final")
    final_results = sweep(final_cfg, out / "final")
    summary = summarize(final_results, baseline, metrics=metrics, lower_is_better=lower_is_better(metrics))
    from optimlab.report.markdown import write_report

    write_report(out / "final")
    return final_cfg, final_results, summary


def _seeds(name: str, seeds: Sequence[int]) -> tuple[int, ...]:
    """Seeds in the one dialect of experiments.config.parse_seeds, as a TuneError naming `name`."""
    try:
        return parse_seeds(seeds, name=name)
    except ConfigError as e:
        raise TuneError(str(e)) from None


def _weight_decay_range(tune_weight_decay: bool | Sequence[float]) -> tuple[float, float] | None:
    """The weight-decay range to search: none (False), the default (True), or the one given."""
    if tune_weight_decay is True:
        return DEFAULT_WD_RANGE
    if tune_weight_decay not in (False, None):
        return _range("tune_weight_decay", tune_weight_decay)  # type: ignore[arg-type]
    return None


def _drop_stale_finals(final_cfg: ExperimentConfig, final_dir: Path) -> None:
    """Delete final runs made at a setting that is no longer the choice (the search grew and a
    choice moved); they are derived from the search, so rerunning them is the right resume."""
    from optimlab.experiments.results import read_result, result_path
    from optimlab.experiments.sweep import normalized_config

    stale = []
    for spec in final_cfg.runs():
        path = result_path(final_dir, spec.run_id)
        if path.is_file() and normalized_config(read_result(path).config) != normalized_config(spec.config):
            stale.append(path)
    for path in stale:
        path.unlink()
    if stale:
        warnings.warn(
            f"tune: {len(stale)} final run(s) in {final_dir} were made at a setting that is no longer "
            f"chosen and will be rerun: {', '.join(p.stem for p in stale)}",
            stacklevel=3,
        )


def _to_json(r: TuneResult, search: str, tune_seeds: Sequence[int], final_seeds: Sequence[int]) -> dict:
    def cand(c: Candidate) -> dict:
        return {"lr": c.lr, "weight_decay": c.weight_decay}

    return {
        "metric": r.metric,
        "search": search,
        "budget": len(r.candidates),
        "tune_seeds": list(tune_seeds),
        "final_seeds": list(final_seeds),
        "candidates": [cand(c) for c in r.candidates],
        "scores": {
            lab: [
                {
                    **cand(s.candidate),
                    "val_mean": s.mean if s.values else None,
                    "values": s.values,
                    "n_diverged": s.n_diverged,
                    "n_failed": s.n_failed,
                }
                for s in ss
            ]
            for lab, ss in r.scores.items()
        },
        "best": {lab: (cand(b.candidate) if b is not None else None) for lab, b in r.best.items()},
    }
