"""tune.md and the lr-sensitivity plot, rendered from a TuneResult (optimlab.tune.search)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from optimlab.experiments.config import ExperimentConfig
from optimlab.report.display import fmt_value, is_percent, markdown_table
from optimlab.report.markdown import compare_table, table_notes
from optimlab.tasks import lower_is_better
from optimlab.tune.candidates import (
    MIN_FINAL_SEEDS,
    SOBOL_SEED,
    CandidateScore,
    TuneResult,
    edge_note,
    fresh_validation,
)


def sensitivity_plot(r: TuneResult, config: ExperimentConfig, path: Path) -> Path | None:
    """Mean validation metric over the tuning seeds vs lr (log x), one line per optimizer; with a
    weight-decay search each lr shows its best weight decay. Diverged/failed settings: red crosses."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogFormatter

    from optimlab.report.plots import series_color

    scale = 100.0 if is_percent(r.metric) else 1.0
    sign = -1.0 if lower_is_better([r.metric]) else 1.0
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    drawn = False
    for i, opt in enumerate(config.optimizers):
        per_lr: dict[float, list[CandidateScore]] = {}
        for s in r.scores.get(opt.label, []):
            per_lr.setdefault(s.candidate.lr, []).append(s)
        xs, ys, bad = [], [], []
        for lr, ss in sorted(per_lr.items()):
            ok = [s for s in ss if s.ok]
            if ok:
                xs.append(lr)
                ys.append(max(sign * s.mean for s in ok) * sign * scale)
            else:
                bad.append(lr)
        if xs:
            ax.plot(xs, ys, marker="o", ms=4, color=series_color(i), label=opt.label)
            drawn = True
        b = r.best.get(opt.label)
        if b is not None:
            ax.scatter(
                [b.candidate.lr], [b.mean * scale], s=120, facecolors="none", edgecolors=series_color(i), zorder=4
            )
        if bad:
            ax.scatter(bad, [0.02] * len(bad), marker="x", color="red", transform=ax.get_xaxis_transform(), zorder=4)
            drawn = True
    if not drawn:
        return None
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))  # plain "0.01", not "10^-2" / "2x10^-1"
    unit = " %" if is_percent(r.metric) else ""
    ax.set(
        xlabel="learning rate",
        ylabel=f"validation {r.metric}{unit} (mean over tuning seeds)",
        title=f"lr sensitivity ({len(r.candidates)} settings per optimizer; ○ chosen, × diverged)",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def write_page(
    r: TuneResult, config: ExperimentConfig, search: str, tune_seeds: Sequence[int], final_seeds: Sequence[int]
) -> Path:
    lines = _budget_section(r, config, search, tune_seeds, final_seeds)
    lines += _chosen_settings_section(r, config)
    lines += _final_comparison_section(r)
    if r.plot is not None:
        lines += ["## lr sensitivity", "", f"![lr sensitivity]({r.plot.name})", ""]
    lines += _search_tables(r, config)
    lines += [
        "Search runs: `search/runs/`; final runs: `final/runs/`; machine-readable summary: `tune.json`. "
        "Re-running the same command resumes and skips finished runs.",
        "",
    ]
    r.page.parent.mkdir(parents=True, exist_ok=True)
    r.page.write_text("\n".join(lines), encoding="utf-8")
    return r.page


def _has_weight_decay(r: TuneResult) -> bool:
    return any(c.weight_decay is not None for c in r.candidates)


def _budget_section(
    r: TuneResult, config: ExperimentConfig, search: str, tune_seeds: Sequence[int], final_seeds: Sequence[int]
) -> list[str]:
    """The page's head: the run settings, the budget every optimizer got, and notes on the seeds."""
    wd = _has_weight_decay(r)
    n = len(r.candidates)
    lrs = sorted({c.lr for c in r.candidates})
    how = (
        f"a log grid of {len(lrs)} lrs" + (" × log-spaced weight decays" if wd else "")
        if search == "grid"
        else f"{n} scrambled Sobol points (seed {SOBOL_SEED}) over log lr" + (" × log weight decay" if wd else "")
    )
    lines = [
        f"# optimlab tune `{config.name}`",
        "",
        f"Data `{config.dataset_grid[0]}`, model `{config.model_grid[0]}` (width {config.width}), "
        f"{config.epochs} epochs, batch {config.batch_size}"
        + (f", at most {config.max_steps_per_epoch} steps/epoch" if config.max_steps_per_epoch else "")
        + ".",
        "",
        f"**Same budget for every optimizer: {n} settings × {len(tune_seeds)} tuning seed(s) "
        f"{list(tune_seeds)}** — {how}, lr in [{lrs[0]:.3g}, {lrs[-1]:.3g}]. Each optimizer's setting is "
        f"chosen by its mean **validation** {r.metric} (final weights; the test split is not used to choose). "
        "A setting with any diverged or failed tuning run loses to every finite one; ties go to the smaller lr. "
        f"The chosen settings are then rerun on the final seeds {list(final_seeds)} (the same for every "
        "optimizer) and compared on the **test** split with paired statistics.",
        "",
    ]
    overlap = sorted(set(tune_seeds) & set(final_seeds))
    if overlap:
        lines += [f"> Note: seeds {overlap} are used both to tune and to judge.", ""]
    if len(final_seeds) < MIN_FINAL_SEEDS:
        lines += [
            f"> Note: only {len(final_seeds)} final seed(s); use at least {MIN_FINAL_SEEDS} for the statistics "
            "to mean much.",
            "",
        ]
    return lines


def _chosen_settings_section(r: TuneResult, config: ExperimentConfig) -> list[str]:
    """Each optimizer's chosen setting with its validation score on the tuning and on the final seeds."""
    lines = ["## Chosen settings", ""]
    rows = []
    fresh = fresh_validation(r.final_results, r.metric)
    for opt in config.optimizers:
        b = r.best.get(opt.label)
        given = opt.hparams.get("lr", "registry default")
        if b is None:
            rows.append([opt.label, f"`{opt.name}`", str(given), "— (every setting diverged or failed)", "", "", ""])
        else:
            again = fresh.get(opt.label)
            rows.append(
                [
                    opt.label,
                    f"`{opt.name}`",
                    str(given),
                    f"{b.candidate.lr:.3g}",
                    f"{b.candidate.weight_decay:.3g}" if b.candidate.weight_decay is not None else "(as given)",
                    fmt_value(r.metric, b.mean),
                    f"{fmt_value(r.metric, again[0])} (n={again[1]})" if again else "—",
                ]
            )
    lines += [
        markdown_table(
            [
                "optimizer",
                "registered",
                "lr given",
                "chosen lr",
                "chosen weight decay",
                f"validation {r.metric}: tuning seeds (chose it)",
                f"validation {r.metric}: final seeds (fresh)",
            ],
            rows,
        ),
        "",
        "The tuning seeds' score is the maximum over the candidates and so flatters the winner (the "
        "winner's curse); the same setting's validation score on the final seeds, which played no part in "
        "the choice, shows how much. The final comparison below is conditional on these chosen settings.",
        "",
    ]
    note = edge_note({lab: (b.candidate if b is not None else None) for lab, b in r.best.items()}, r.candidates)
    if note:
        lines += [f"> {note.replace('widen lr_range', 'widen --lr-min/--lr-max')}", ""]
    return lines


def _final_comparison_section(r: TuneResult) -> list[str]:
    lines = ["## Final comparison on the test split (chosen settings)", ""]
    if r.summary is not None and r.final_config is not None:
        fc = r.final_config
        from optimlab.train.vocabulary import task_headline

        headline = task_headline(fc.task)  # accuracy for classifiers (the page as before), auc for ctr
        headers, rows = compare_table(r.summary, fc.baseline_label, fc.dataset_grid[0], fc.model_grid[0], headline)
        lines += [markdown_table(headers, rows), ""]
        lines += [f"- {n}" for n in table_notes(r.summary, rows)] + [""]
        if r.metric != headline:
            headers, rows = compare_table(r.summary, fc.baseline_label, fc.dataset_grid[0], fc.model_grid[0], r.metric)
            lines += [markdown_table(headers, rows), ""]
        lines += [f"- {note}" for note in r.summary.notes]
        lines += ["", "Full report with every metric and figure: [final/report.md](final/report.md).", ""]
    else:
        lines += ["No optimizer had a finite setting: nothing to compare.", ""]
    return lines


def _search_tables(r: TuneResult, config: ExperimentConfig) -> list[str]:
    """Every candidate's validation score, one table per optimizer."""
    wd = _has_weight_decay(r)
    lines = [f"## Search (validation {r.metric}, mean over tuning seeds)", ""]
    for opt in config.optimizers:
        b = r.best.get(opt.label)
        rows = []
        for s in r.scores.get(opt.label, []):
            state = (
                "ok"
                if s.ok
                else (f"{s.n_diverged} diverged" if s.n_diverged else "")
                + (f" {s.n_failed} failed" if s.n_failed else "")
            )
            row = [f"{s.candidate.lr:.3g}"] + ([f"{s.candidate.weight_decay:.3g}"] if wd else [])
            row += [fmt_value(r.metric, s.mean) if s.values else "—", state.strip(), "**chosen**" if s is b else ""]
            rows.append(row)
        lines += [
            f"### {opt.label} (`{opt.name}`)",
            "",
            markdown_table(["lr"] + (["weight decay"] if wd else []) + [f"val {r.metric}", "runs", ""], rows),
            "",
        ]
    return lines
