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
reported with experiments.stats, plus an lr-sensitivity plot.

Both phases are ordinary sweeps (run_experiment) in out/search and out/final, so a tune is
resumable and skips finished runs. Search runs are labelled `<label>+lr<lr>[+wd<wd>]` (the label
charset of ExperimentConfig has no '@' or '=').
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from optimlab.experiments.config import ExperimentConfig, OptimizerSpec
from optimlab.experiments.results import RunResult, write_json_atomic
from optimlab.experiments.inference import MIN_SEEDS
from optimlab.experiments.stats import LOWER_IS_BETTER, METRICS, Summary, summarize
from optimlab.experiments.sweep import run_experiment

SEARCHES = ("grid", "sobol")
DEFAULT_WD_RANGE = (1e-6, 1e-2)
SOBOL_SEED = 0  # scrambling seed: a sobol search is reproducible from its arguments
MIN_FINAL_SEEDS = MIN_SEEDS  # below this the final comparison decides nothing (inference.MIN_SEEDS)
DEFAULT_TUNE_SEEDS = (1000, 1001, 1002)  # >= 3, so one lucky seed does not pick the setting; apart from the final seeds


class TuneError(ValueError):
    """Bad tune arguments; the message names the argument and its value."""


@dataclass(frozen=True)
class Candidate:
    lr: float
    weight_decay: float | None = None  # None: the optimizer's own (config or registry) value


@dataclass
class CandidateScore:
    """One optimizer's result at one candidate, over the tuning seeds (validation split only)."""

    label: str  # the optimizer's label in the experiment
    run_label: str  # the label of its search runs
    candidate: Candidate
    values: list[float]  # validation metric per finished, finite tuning run
    n_runs: int  # tuning seeds
    n_diverged: int
    n_failed: int  # raised an error or missing

    @property
    def ok(self) -> bool:
        return self.n_diverged == 0 and self.n_failed == 0 and len(self.values) == self.n_runs > 0

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan


@dataclass
class TuneResult:
    out_dir: Path
    page: Path  # out/tune.md
    plot: Path | None  # out/lr_sensitivity.png
    metric: str  # validation metric the choice maximizes (minimizes for loss)
    candidates: list[Candidate]  # the same for every optimizer
    scores: dict[str, list[CandidateScore]]  # label -> one per candidate, sorted by (lr, wd)
    best: dict[str, CandidateScore | None]  # label -> chosen setting (None: every setting diverged)
    final_config: ExperimentConfig | None  # chosen settings x final seeds
    final_results: list[RunResult] = field(default_factory=list)
    summary: Summary | None = None  # test metrics, paired vs the baseline


# ---------------------------------------------------------------------------------------------
# candidates


def _range(name: str, r: Sequence[float]) -> tuple[float, float]:
    try:
        lo, hi = (float(r[0]), float(r[1]))
        if len(r) != 2:
            raise TypeError
    except (TypeError, ValueError, IndexError):
        raise TuneError(f"{name} must be a pair (min, max), got {r!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise TuneError(f"{name} must satisfy 0 < min <= max (finite), got ({lo!r}, {hi!r})")
    return lo, hi


def _log_grid(lo: float, hi: float, n: int) -> list[float]:
    return [float(v) for v in np.logspace(math.log10(lo), math.log10(hi), n)] if n > 1 else [math.sqrt(lo * hi)]


def make_candidates(budget: int, lr_range: Sequence[float] = (1e-4, 1.0), search: str = "grid",
                    wd_range: Sequence[float] | None = None, seed: int = SOBOL_SEED) -> list[Candidate]:
    """The settings every optimizer tries, sorted by (lr, weight_decay).

    grid: `budget` log-spaced lrs from min to max (both ends included); with weight decay a
    k × k log grid, k = floor(√budget), so at most `budget` settings. sobol: `budget` points of a
    scrambled Sobol sequence (scipy.stats.qmc, seeded) mapped to log10 of the range(s).
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise TuneError(f"budget must be an int >= 1, got {budget!r}")
    if search not in SEARCHES:
        raise TuneError(f"search must be one of {list(SEARCHES)}, got {search!r}")
    lo, hi = _range("lr_range", lr_range)
    bounds = [(lo, hi)] + ([_range("weight_decay range", wd_range)] if wd_range is not None else [])
    if search == "grid":
        if wd_range is None:
            out = [Candidate(lr) for lr in _log_grid(lo, hi, budget)]
        else:
            k = math.isqrt(budget)
            out = [Candidate(lr, wd) for lr in _log_grid(lo, hi, k) for wd in _log_grid(*bounds[1], k)]
    else:
        from scipy.stats import qmc

        kw = {"rng": seed} if "rng" in inspect.signature(qmc.Sobol).parameters else {"seed": seed}
        sampler = qmc.Sobol(d=len(bounds), scramble=True, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "balance properties ... power of 2"
            u = sampler.random(budget)
        logs = qmc.scale(u, [math.log10(a) for a, _ in bounds], [math.log10(b) + 1e-12 for _, b in bounds])
        pts = [[min(max(10.0 ** v, a), b) for v, (a, b) in zip(row, bounds)] for row in logs]
        out = [Candidate(p[0], p[1] if wd_range is not None else None) for p in pts]
    return sorted(out, key=lambda c: (c.lr, c.weight_decay or 0.0))


def _tags(candidates: Sequence[Candidate]) -> list[str]:
    """Short, distinct label suffixes: +lr<lr>[+wd<wd>] with as few significant digits as needed."""
    for digits in range(3, 18):
        tags = [f"+lr{c.lr:.{digits}g}" + (f"+wd{c.weight_decay:.{digits}g}" if c.weight_decay is not None else "")
                for c in candidates]
        if len(set(tags)) == len(tags):
            return tags
    raise TuneError("candidate settings are not distinct")


def _with(opt: OptimizerSpec, c: Candidate, label: str) -> OptimizerSpec:
    hp = {**opt.hparams, "lr": c.lr}
    if c.weight_decay is not None:
        hp["weight_decay"] = c.weight_decay
    return OptimizerSpec(name=opt.name, label=label, hparams=hp)


# ---------------------------------------------------------------------------------------------
# selection (validation split only)


def score_candidates(results: Sequence[RunResult], run_labels: dict[str, tuple[str, Candidate]],
                     n_seeds: int, metric: str = "accuracy") -> dict[str, list[CandidateScore]]:
    """Group search runs by run label; read History.final_val[metric] (never History.final)."""
    by_label: dict[str, list[RunResult]] = {rl: [] for rl in run_labels}
    for r in results:
        if r.label in by_label:
            by_label[r.label].append(r)
    out: dict[str, list[CandidateScore]] = {}
    for rl, (label, cand) in run_labels.items():
        runs = by_label[rl]
        done = [r for r in runs if r.done and r.history is not None]
        vals = [float(r.history.final_val.get(metric, math.nan)) if not r.diverged else math.nan for r in done]
        values = [v for v in vals if math.isfinite(v)]
        out.setdefault(label, []).append(CandidateScore(label, rl, cand, values, n_seeds, len(done) - len(values),
                                                        max(0, n_seeds - len(done))))
    return out


def select_best(scores: Sequence[CandidateScore], metric: str = "accuracy") -> CandidateScore | None:
    """The best mean validation metric among settings with no diverged or failed run; ties go to
    the smaller lr (then the smaller weight decay). None when no setting qualifies."""
    ok = [s for s in scores if s.ok]
    if not ok:
        return None
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    return min(ok, key=lambda s: (-sign * s.mean, s.candidate.lr, s.candidate.weight_decay or 0.0))


# ---------------------------------------------------------------------------------------------
# the two phases


def tune(config: ExperimentConfig, out_dir: str | Path, budget: int = 8, lr_range: Sequence[float] = (1e-4, 1.0),
         search: str = "grid", tune_weight_decay: bool | Sequence[float] = False,
         tune_seeds: Sequence[int] = DEFAULT_TUNE_SEEDS,
         final_seeds: Sequence[int] | None = None, metric: str = "accuracy", workers: int = 1,
         progress: bool = True) -> TuneResult:
    """Search, choose on validation, rerun the choices on paired final seeds; write out/tune.md."""
    if len(config.dataset_grid) != 1 or len(config.model_grid) != 1:
        raise TuneError(f"tune takes one dataset and one model, got datasets {list(config.dataset_grid)} "
                        f"and models {list(config.model_grid)}")
    if metric not in METRICS:
        raise TuneError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    if config.val_fraction <= 0:
        raise TuneError("tune chooses on the validation split: val_fraction must be > 0")
    tune_seeds = tuple(tune_seeds)
    final_seeds = tuple(config.seeds if final_seeds is None else final_seeds)
    for name, seeds in (("tune_seeds", tune_seeds), ("final_seeds", final_seeds)):
        if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) and s >= 0 for s in seeds):
            raise TuneError(f"{name} must be a non-empty list of distinct ints >= 0, got {list(seeds)}")
    wd_range = None
    if tune_weight_decay is True:
        wd_range = DEFAULT_WD_RANGE
    elif tune_weight_decay not in (False, None):
        wd_range = _range("tune_weight_decay", tune_weight_decay)  # type: ignore[arg-type]
    candidates = make_candidates(budget, lr_range, search, wd_range)
    out = Path(out_dir)

    # Phase 1: every optimizer x every candidate x tuning seeds, one sweep.
    run_labels: dict[str, tuple[str, Candidate]] = {}
    specs = []
    for opt in config.optimizers:
        for cand, tag in zip(candidates, _tags(candidates)):
            run_labels[opt.label + tag] = (opt.label, cand)
            specs.append(_with(opt, cand, opt.label + tag))
    search_cfg = config.replace(name=f"{config.name}-search", optimizers=tuple(specs), seeds=tune_seeds, baseline=None)
    search_results = run_experiment(search_cfg, out / "search", workers=workers, progress=progress)
    scores = score_candidates(search_results, run_labels, len(tune_seeds), metric)
    best = {opt.label: select_best(scores[opt.label], metric) for opt in config.optimizers}

    # Phase 2: each optimizer's chosen setting on the final seeds (paired across optimizers).
    chosen = [_with(opt, best[opt.label].candidate, opt.label) for opt in config.optimizers  # type: ignore[union-attr]
              if best[opt.label] is not None]
    final_cfg, final_results, summary = None, [], None
    if chosen:
        labels = [o.label for o in chosen]
        baseline = config.baseline_label if config.baseline_label in labels else labels[0]
        final_cfg = config.replace(name=f"{config.name}-final", optimizers=tuple(chosen), seeds=final_seeds,
                                   baseline=baseline)
        _drop_stale_finals(final_cfg, out / "final")
        final_results = run_experiment(final_cfg, out / "final", workers=workers, progress=progress)
        summary = summarize(final_results, baseline)
        from optimlab.experiments.report import write_report

        write_report(out / "final")
    result = TuneResult(out, out / "tune.md", None, metric, candidates, scores, best, final_cfg, final_results, summary)
    result.plot = sensitivity_plot(result, config, out / "lr_sensitivity.png")
    write_page(result, config, search, tune_seeds, final_seeds)
    write_json_atomic(out / "tune.json", _to_json(result, search, tune_seeds, final_seeds))
    return result


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
        warnings.warn(f"tune: {len(stale)} final run(s) in {final_dir} were made at a setting that is no longer "
                      f"chosen and will be rerun: {', '.join(p.stem for p in stale)}", stacklevel=3)


def fresh_validation(final_results: Sequence[RunResult], metric: str) -> dict[str, tuple[float, int]]:
    """label -> (mean validation metric over the finished, finite final runs, their count)."""
    out: dict[str, list[float]] = {}
    for r in final_results:
        if r.done and not r.diverged and r.history is not None:
            v = float(r.history.final_val.get(metric, math.nan))
            if math.isfinite(v):
                out.setdefault(r.label, []).append(v)
    return {lab: (float(np.mean(v)), len(v)) for lab, v in out.items()}


def grid_edge(lr: float, candidates: Sequence[Candidate]) -> str | None:
    """'largest' / 'smallest' when lr is the grid's top / bottom lr (the best may lie beyond), else None."""
    lrs = sorted({c.lr for c in candidates})
    if len(lrs) < 2:
        return None
    return "largest" if lr == lrs[-1] else "smallest" if lr == lrs[0] else None


def edge_note(best: dict[str, Candidate | None], candidates: Sequence[Candidate]) -> str | None:
    """One sentence naming the optimizers whose chosen lr is an end of the grid (None if none is)."""
    hits = [f"{label} ({grid_edge(c.lr, candidates)}, {c.lr:.3g})" for label, c in best.items()
            if c is not None and grid_edge(c.lr, candidates)]
    if not hits:
        return None
    return (f"At the edge of the grid: {', '.join(hits)}. The best lr may lie beyond it, so this optimizer may be "
            "under-tuned; widen lr_range to be sure.")


def _to_json(r: TuneResult, search: str, tune_seeds: Sequence[int], final_seeds: Sequence[int]) -> dict:
    def cand(c: Candidate) -> dict:
        return {"lr": c.lr, "weight_decay": c.weight_decay}

    return {"metric": r.metric, "search": search, "budget": len(r.candidates), "tune_seeds": list(tune_seeds),
            "final_seeds": list(final_seeds), "candidates": [cand(c) for c in r.candidates],
            "scores": {lab: [{**cand(s.candidate), "val_mean": s.mean if s.values else None, "values": s.values,
                              "n_diverged": s.n_diverged, "n_failed": s.n_failed} for s in ss]
                       for lab, ss in r.scores.items()},
            "best": {lab: (cand(b.candidate) if b is not None else None) for lab, b in r.best.items()}}


# ---------------------------------------------------------------------------------------------
# tune.md and the lr-sensitivity plot


def sensitivity_plot(r: TuneResult, config: ExperimentConfig, path: Path) -> Path | None:
    """Mean validation metric over the tuning seeds vs lr (log x), one line per optimizer; with a
    weight-decay search each lr shows its best weight decay. Diverged/failed settings: red crosses."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from optimlab.experiments.plots import series_color
    from optimlab.experiments.stats import PERCENT_METRICS

    scale = 100.0 if r.metric in PERCENT_METRICS else 1.0
    sign = -1.0 if r.metric in LOWER_IS_BETTER else 1.0
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
            ax.scatter([b.candidate.lr], [b.mean * scale], s=120, facecolors="none", edgecolors=series_color(i), zorder=4)
        if bad:
            ax.scatter(bad, [0.02] * len(bad), marker="x", color="red", transform=ax.get_xaxis_transform(), zorder=4)
            drawn = True
    if not drawn:
        return None
    ax.set_xscale("log")
    unit = " %" if r.metric in PERCENT_METRICS else ""
    ax.set(xlabel="learning rate", ylabel=f"validation {r.metric}{unit} (mean over tuning seeds)",
           title=f"lr sensitivity ({len(r.candidates)} settings per optimizer; ○ chosen, × diverged)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def write_page(r: TuneResult, config: ExperimentConfig, search: str, tune_seeds: Sequence[int],
               final_seeds: Sequence[int]) -> Path:
    from optimlab.experiments.report import compare_table, fmt_value, markdown_table, table_notes

    wd = any(c.weight_decay is not None for c in r.candidates)
    n = len(r.candidates)
    lrs = sorted({c.lr for c in r.candidates})
    how = (f"a log grid of {len(lrs)} lrs" + (" × log-spaced weight decays" if wd else "") if search == "grid"
           else f"{n} scrambled Sobol points (seed {SOBOL_SEED}) over log lr" + (" × log weight decay" if wd else ""))
    lines = [f"# optimlab tune `{config.name}`", "",
             f"Data `{config.dataset_grid[0]}`, model `{config.model_grid[0]}` (width {config.width}), "
             f"{config.epochs} epochs, batch {config.batch_size}"
             + (f", at most {config.max_steps_per_epoch} steps/epoch" if config.max_steps_per_epoch else "") + ".", "",
             f"**Same budget for every optimizer: {n} settings × {len(tune_seeds)} tuning seed(s) "
             f"{list(tune_seeds)}** — {how}, lr in [{lrs[0]:.3g}, {lrs[-1]:.3g}]. Each optimizer's setting is "
             f"chosen by its mean **validation** {r.metric} (final weights; the test split is not used to choose). "
             "A setting with any diverged or failed tuning run loses to every finite one; ties go to the smaller lr. "
             f"The chosen settings are then rerun on the final seeds {list(final_seeds)} (the same for every "
             "optimizer) and compared on the **test** split with paired statistics.", ""]
    overlap = sorted(set(tune_seeds) & set(final_seeds))
    if overlap:
        lines += [f"> Note: seeds {overlap} are used both to tune and to judge.", ""]
    if len(final_seeds) < MIN_FINAL_SEEDS:
        lines += [f"> Note: only {len(final_seeds)} final seed(s); use at least {MIN_FINAL_SEEDS} for the statistics "
                  "to mean much.", ""]
    lines += ["## Chosen settings", ""]
    rows = []
    fresh = fresh_validation(r.final_results, r.metric)
    for opt in config.optimizers:
        b = r.best.get(opt.label)
        given = opt.hparams.get("lr", "registry default")
        if b is None:
            rows.append([opt.label, f"`{opt.name}`", str(given), "— (every setting diverged or failed)", "", "", ""])
        else:
            again = fresh.get(opt.label)
            rows.append([opt.label, f"`{opt.name}`", str(given), f"{b.candidate.lr:.3g}",
                         f"{b.candidate.weight_decay:.3g}" if b.candidate.weight_decay is not None else "(as given)",
                         fmt_value(r.metric, b.mean),
                         f"{fmt_value(r.metric, again[0])} (n={again[1]})" if again else "—"])
    lines += [markdown_table(["optimizer", "registered", "lr given", "chosen lr", "chosen weight decay",
                              f"validation {r.metric}: tuning seeds (chose it)",
                              f"validation {r.metric}: final seeds (fresh)"], rows), "",
              "The tuning seeds' score is the maximum over the candidates and so flatters the winner (the "
              "winner's curse); the same setting's validation score on the final seeds, which played no part in "
              "the choice, shows how much. The final comparison below is conditional on these chosen settings.", ""]
    note = edge_note({lab: (b.candidate if b is not None else None) for lab, b in r.best.items()}, r.candidates)
    if note:
        lines += [f"> {note.replace('widen lr_range', 'widen --lr-min/--lr-max')}", ""]
    lines += ["## Final comparison on the test split (chosen settings)", ""]
    if r.summary is not None and r.final_config is not None:
        fc = r.final_config
        headers, rows = compare_table(r.summary, fc.baseline_label, fc.dataset_grid[0], fc.model_grid[0], "accuracy")
        lines += [markdown_table(headers, rows), ""]
        lines += [f"- {n}" for n in table_notes(r.summary, rows)] + [""]
        if r.metric != "accuracy":
            headers, rows = compare_table(r.summary, fc.baseline_label, fc.dataset_grid[0], fc.model_grid[0], r.metric)
            lines += [markdown_table(headers, rows), ""]
        lines += [f"- {note}" for note in r.summary.notes]
        lines += ["", "Full report with every metric and figure: [final/report.md](final/report.md).", ""]
    else:
        lines += ["No optimizer had a finite setting: nothing to compare.", ""]
    if r.plot is not None:
        lines += ["## lr sensitivity", "", f"![lr sensitivity]({r.plot.name})", ""]
    lines += [f"## Search (validation {r.metric}, mean over tuning seeds)", ""]
    for opt in config.optimizers:
        b = r.best.get(opt.label)
        rows = []
        for s in r.scores.get(opt.label, []):
            state = "ok" if s.ok else (f"{s.n_diverged} diverged" if s.n_diverged else "") + \
                (f" {s.n_failed} failed" if s.n_failed else "")
            row = [f"{s.candidate.lr:.3g}"] + ([f"{s.candidate.weight_decay:.3g}"] if wd else [])
            row += [fmt_value(r.metric, s.mean) if s.values else "—", state.strip(), "**chosen**" if s is b else ""]
            rows.append(row)
        lines += [f"### {opt.label} (`{opt.name}`)", "",
                  markdown_table(["lr"] + (["weight decay"] if wd else []) + [f"val {r.metric}", "runs", ""], rows), ""]
    lines += ["Search runs: `search/runs/`; final runs: `final/runs/`; machine-readable summary: `tune.json`. "
              "Re-running the same command resumes and skips finished runs.", ""]
    r.page.parent.mkdir(parents=True, exist_ok=True)
    r.page.write_text("\n".join(lines), encoding="utf-8")
    return r.page
