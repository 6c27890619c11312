"""Turn a sweep's result files into report.md, its tables and PNG figures (matplotlib, Agg).

    write_report("runs/compare-default")  # -> runs/compare-default/report.md

The report is rebuilt from out_dir/experiment.json and out_dir/runs/*.json alone, so it can be
regenerated at any time (also for a sweep that is still missing runs: they are counted as missing).
Optimizers are named by their labels, which default to the registry names, so `sgdm` (heavy ball)
and `sgdm-ema` (EMA) never merge; a label that differs from its registry name is shown as
"label [name]".
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from optimlab.experiments.config import ExperimentConfig
from optimlab.experiments.results import RunResult, load_experiment
from optimlab.report.display import (
    CLIP_MARK,
    CLIP_NOTE,
    display_name,
    fmt_ci,
    fmt_p,
    fmt_rate,
    fmt_value,
    is_percent,
    markdown_table,
    metric_title,
)
from optimlab.stats import inference
from optimlab.stats.summary import (
    BOOTSTRAP_MIN_PAIRS,
    PairedComparison,
    Summary,
    summarize,
)
from optimlab.tasks import known_metrics, lower_is_better
from optimlab.train.vocabulary import task_headline, task_metrics

__all__ = [
    "compare_table",
    "earlier_looks_text",
    "experiment_metrics",
    "metric_title",
    "table_notes",
    "display_name",
    "write_report",
    "fmt_diff",
    "headline_title",
    "fmt_ci",
    "fmt_p",
    "fmt_rate",
    "fmt_value",
    "markdown_table",
]


def headline_title(metric: str) -> str:
    """The heading of a headline table on `metric` ("test accuracy"), as its task declares it; a metric
    of the user's own (a train_function experiment's) by its name."""
    m = known_metrics().get(metric)
    return m.headline if m is not None else metric


class ExperimentMetrics(NamedTuple):
    headline: str  # the metric of the headline table and strip plot
    metrics: tuple[str, ...]  # History.final's keys, in table order
    lower_is_better: frozenset[str]  # where lower wins (summarize's lower_is_better)


def experiment_metrics(config: ExperimentConfig) -> ExperimentMetrics:
    """The metrics an experiment's runs report and which way each is better: its task's, or for a
    train_function experiment the TOML's `metrics` table (names as given, first = headline)."""
    if config.metrics:
        lower = frozenset(m for m, d in config.metrics.items() if d == "lower")
        return ExperimentMetrics(next(iter(config.metrics)), tuple(config.metrics), lower)
    metrics = task_metrics(config.task)
    return ExperimentMetrics(task_headline(config.task), metrics, lower_is_better(metrics))


def fmt_diff(p: PairedComparison) -> tuple[str, str]:
    if p.n_pairs == 0:
        return "—", "—"
    ci = (
        "—"
        if not math.isfinite(p.ci_low)
        else f"[{fmt_value(p.metric, p.ci_low, True)}, {fmt_value(p.metric, p.ci_high, True)}]"
    )
    return fmt_value(p.metric, p.mean_diff, True), ci


def compare_table(
    summary: Summary, baseline: str, dataset: str, model: str, metric: str = "accuracy"
) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the headline table: one row per optimizer, paired columns vs baseline."""
    unit = " pp" if is_percent(metric) else ""
    headers = [
        "optimizer",
        "runs",
        "failed [exact 95% CI]",
        f"{metric_title(metric)} [95% CI]",
        f"Δ vs {baseline}{unit} [paired-t 95% CI]",
        "p (paired t)",
        "p Holm",
        "decision",
        "wins/seeds",
        "step ms",
    ]
    rows = []
    for g in summary.groups:
        if (g.dataset, g.model) != (dataset, model):
            continue
        step = f"{g.step_time_s.mean * 1e3:.2f}" if g.step_time_s.n else "—"
        row = [
            display_name(g.label, g.optimizer),
            str(g.n_runs + g.n_errors),
            fmt_rate(g.failures),
            fmt_ci(metric, g.metrics[metric]),
        ]
        if g.label == baseline:
            row += ["baseline", "", "", "", "", step]
        else:
            try:
                p = summary.comparison(g.label, metric, dataset, model)
            except KeyError:
                row += ["—", "—", "—", "—", "—", step]
            else:
                diff, ci = fmt_diff(p)
                row += [
                    f"{diff} {ci}",
                    fmt_p(p.t_p),
                    fmt_p(p.holm_p),
                    p.decision,
                    f"{p.wins}/{p.wins + p.losses + p.ties}",
                    step,
                ]
        rows.append(row)
    return headers, rows


def table_notes(summary: Summary, rows: Sequence[Sequence[str]]) -> list[str]:
    """What a reader needs under the headline table: the decision rule, and clipping if any."""
    n_labels = len({p.label for p in summary.paired})
    notes = [
        f"decision: Holm over the {n_labels} optimizer(s) compared with the baseline, family-wise "
        f"{summary.alpha:.3g} two-sided; 'too few seeds' below {inference.MIN_SEEDS} paired seeds."
    ]
    if any(CLIP_MARK in cell for r in rows for cell in r):
        notes.append(CLIP_NOTE)
    if any(g.n_diverged or g.n_errors for g in summary.groups):
        notes.append(
            "failed runs (diverged or raised): each optimizer's own mean and CI leave them out; in the paired "
            "comparison a failed run counts at the worst value either arm reached (a tie where both failed), "
            "the difference and its interval are over those values, and the decision is the sign-flip "
            "permutation test's (docs/statistics.md: Failures)."
        )
    return notes


def earlier_looks_text(earlier: Sequence[int]) -> str:
    """The warning for a folder whose statistics were reported before at fewer seeds (report.md and the
    terminal both say it)."""
    return (
        f"this folder's statistics were already reported at {list(earlier)} seeds. The fixed-n p-values and "
        "decisions ignore that, so a false *better* is more likely than the 2.5 % they state; add seeds with "
        "`--until-decided` to keep the error rate."
    )


def write_report(out_dir: str | Path) -> Path:
    """Write out_dir/report.md (+ PNG figures next to it); returns the report's path."""
    out = Path(out_dir)
    from optimlab.experiments import looks
    from optimlab.stats import sequential

    config, results = load_experiment(out)
    baseline = config.baseline_label
    vocabulary = experiment_metrics(config)
    summary = summarize(
        results,
        baseline,
        metrics=vocabulary.metrics,
        lower_is_better=vocabulary.lower_is_better,
        margins=config.margins or None,
    )
    record = looks.read_sequential(out)
    if record is not None:
        sequential.apply_to_summary(summary, record)
    looks.record_look(out, len(config.seeds))
    earlier = looks.earlier_looks(out, len(config.seeds))
    expected = len(config.runs())
    n_done = sum(r.done for r in results)
    n_err = sum(not r.done for r in results)
    n_div = sum(r.diverged for r in results)
    lines = [f"# optimlab experiment `{config.name}`", ""]
    lines += [
        f"Runs: {n_done} finished ({n_div} diverged), {n_err} failed, {expected - len(results)} missing, "
        f"of {expected} (optimizers × seeds {list(config.seeds)}"
        + (f" × models {list(config.model_grid)}" if len(config.model_grid) > 1 else "")
        + (f" × datasets {list(config.dataset_grid)}" if len(config.dataset_grid) > 1 else "")
        + ").",
        "",
    ]
    if record is not None:
        lines += [sequential.plan_text(record), ""]
    if earlier:
        lines += [f"> **Earlier looks:** {earlier_looks_text(earlier)}", ""]
    lines += _setup_section(config)
    if summary.notes:
        lines += ["**Notes**", ""] + [f"- {n}" for n in summary.notes] + [""]
    for dataset in config.dataset_grid:
        for model in config.model_grid:
            lines += _block(out, config, summary, results, dataset, model)
    lines += _method_section(config)
    lines += ["## Versions", ""]
    versions = sorted({json.dumps(r.versions, sort_keys=True) for r in results if r.versions})
    lines += [f"- {', '.join(f'{k} {v}' for k, v in json.loads(v).items())}" for v in versions] or ["- (no runs)"]
    if len(versions) > 1:
        lines += ["", "**Runs were made with different library versions** (listed above)."]
    lines += [
        "",
        "## Configuration (experiment.json)",
        "",
        "```json",
        json.dumps(config.to_dict(), indent=1),
        "```",
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _setup_section(config: ExperimentConfig) -> list[str]:
    rows = [
        [o.label, f"`{o.name}`", ", ".join(f"{k}={v}" for k, v in o.hparams.items()) or "(registry defaults)"]
        for o in config.optimizers
    ]
    if config.train_function is not None:  # the user's code trained each run: its recipe is the code's
        directions = ", ".join(f"{m} ({d} is better)" for m, d in config.metrics.items())
        setup = (
            f"Data `{'`, `'.join(config.dataset_grid)}`, model `{'`, `'.join(config.model_grid)}`, each run "
            f"trained by `{config.train_function}` with train_options `{json.dumps(config.train_options)}`; "
            f"metrics {directions}. Baseline for paired statistics: **{config.baseline_label}**."
        )
        table = markdown_table(["label", "registered optimizer", "hyperparameters"], rows)
        return ["## Set-up", "", setup, "", table, ""]
    sched = config.schedule + (
        f" (×{config.step_gamma} every {config.step_every} epochs)" if config.schedule == "step" else ""
    )
    setup = (
        f"Data `{'`, `'.join(config.dataset_grid)}`, model `{'`, `'.join(config.model_grid)}` (width {config.width}), "
        f"{config.epochs} epochs, batch {config.batch_size}, lr schedule {sched}"
        + (f", TM-SGD switch at epoch {config.switch_epoch}" if config.switch_epoch else "")
        + (f", at most {config.max_steps_per_epoch} steps/epoch" if config.max_steps_per_epoch else "")
        + f"; val fraction {config.val_fraction}, augment {config.augment}, weighted sampler "
        f"{config.weighted_sampler}. Baseline for paired statistics: **{config.baseline_label}**."
    )
    return ["## Set-up", "", setup, "", markdown_table(["label", "registered optimizer", "hyperparameters"], rows), ""]


def _method_section(config: ExperimentConfig) -> list[str]:
    what = (
        f"The metrics each run's `{config.train_function}` returned."
        if config.train_function is not None
        else "Final-epoch test metrics (no best-epoch picking)."
    )
    return [
        "## How to read the tables",
        "",
        f"{what} Means are over seeds with a Student-t 95% "
        "interval. Every optimizer sees the same seeds, so differences against the baseline are paired "
        "by seed, over the seeds both ran, a failed run at the worst value either arm reached: the paired "
        "Student-t 95% interval (unadjusted) "
        "and the paired t-test, raw and Holm-adjusted over the optimizers compared with the baseline on "
        "that metric. **decision**: *better* / *worse* when the Holm-adjusted p < 0.05 (0.025 per "
        f"direction); *no difference shown* otherwise; *too few seeds* below {inference.MIN_SEEDS} paired "
        "seeds, where no decision is made. **MDE**: the smallest true difference these seeds and this "
        "spread would detect with 80% power at Holm's strictest level — a *no difference shown* only "
        "rules out differences of about that size. Failed runs (diverged or raised) are counted with an "
        "exact (Clopper-Pearson) 95% interval of the failure rate and left out of each optimizer's mean; a "
        "comparison with one takes its direction from the sign-flip permutation test (the t-test runs over "
        "its level on those spiky differences), and in wins/seeds a "
        f"failed run loses to a finite one. A percentile bootstrap interval is added from "
        f"{BOOTSTRAP_MIN_PAIRS} pairs on (below that it undercovers). Method: optimlab.stats.inference.",
        "",
    ]


def _block(
    out: Path, config: ExperimentConfig, summary: Summary, results: list[RunResult], dataset: str, model: str
) -> list[str]:
    base = config.baseline_label
    runs = [r for r in results if r.dataset == dataset and r.model == model]
    suffix = f"{dataset}_{model}"
    lines = [f"## {dataset} / {model}", ""]
    headline, metrics, _ = experiment_metrics(config)
    headers, rows = compare_table(summary, base, dataset, model, headline)
    lines += [f"### Headline: {headline_title(headline)}", "", markdown_table(headers, rows), ""]
    lines += [f"- {n}" for n in table_notes(summary, rows)] + [""]
    groups = [g for g in summary.groups if (g.dataset, g.model) == (dataset, model)]
    mrows = [[display_name(g.label, g.optimizer)] + [fmt_ci(m, g.metrics[m]) for m in metrics] for g in groups]
    lines += [
        "### All final test metrics (mean [95% CI] over finite runs)",
        "",
        markdown_table(["optimizer"] + [metric_title(m) for m in metrics], mrows),
        "",
    ]
    prows = []
    comps = [p for p in summary.paired if (p.dataset, p.model) == (dataset, model)]
    boot = any(p.n_pairs >= BOOTSTRAP_MIN_PAIRS for p in comps)
    for p in comps:
        diff, ci = fmt_diff(p)
        extra = (
            [
                "—"
                if not math.isfinite(p.boot_low)
                else f"[{fmt_value(p.metric, p.boot_low, True)}, {fmt_value(p.metric, p.boot_high, True)}]"
            ]
            if boot
            else []
        )
        prows.append(
            [
                p.label,
                metric_title(p.metric),
                str(p.n_pairs),
                diff,
                ci,
                *extra,
                fmt_p(p.t_p),
                fmt_p(p.holm_p),
                p.decision,
                fmt_value(p.metric, p.mde),
                f"{p.wins}/{p.losses}/{p.ties}",
                "; ".join(p.notes),
            ]
        )
    if prows:
        lines += [
            f"### Paired differences vs {base} (optimizer − baseline; pp for % metrics)",
            "",
            markdown_table(
                [
                    "optimizer",
                    "metric",
                    "pairs",
                    "Δ mean",
                    "paired-t 95% CI",
                    *(["bootstrap 95% CI (secondary)"] if boot else []),
                    "p (paired t)",
                    "p Holm",
                    "decision",
                    "MDE (80% power)",
                    "wins/losses/ties",
                    "notes",
                ],
                prows,
            ),
            "",
        ]
    if runs:
        from optimlab.report import plots

        order = [o.label for o in config.optimizers]
        figs = [
            plots.learning_curves(runs, config, out / f"curves_{suffix}.png"),
            plots.final_strip(groups, headline, order, out / f"final_{headline}_{suffix}.png"),
            plots.step_times(groups, order, out / f"step_time_{suffix}.png"),
        ]
        lines += ["### Figures", ""] + [f"![{p.stem}]({p.name})" for p in figs if p is not None] + [""]
    return lines
