"""Judge a paper's claims against a reproduction's runs and write verdict.md.

    write_verdict("runs/reproduce-rsgdm-cifar10-resnet18-cpu")   # -> .../verdict.md

For each claim ("optimizer beats baseline on metric") the page shows the paper's figures, ours
(mean with a 95% t-interval over seeds for both), the paired difference optimizer − baseline over
the seeds both finished without diverging (paired bootstrap 95% CI, paired t and Wilcoxon p, from
optimlab.experiments.stats) and a verdict:

    survives                      the difference lies in the claimed direction and its CI excludes 0
    not supported at this scale   the CI includes 0 (or there are fewer than 2 paired seeds)
    contradicted                  the CI excludes 0 on the other side

The scale and the data actually used head the page, followed by the paper's notes on its own
discrepancies; the sweep's report.md is linked for every metric and figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from optimlab.experiments.results import RunResult
from optimlab.experiments.stats import PERCENT_METRICS, MeanCI, mean_ci, paired_tests
from optimlab.reproduce.catalog import Claim, PaperExperiment, load_paper_experiment

SURVIVES = "survives"
NOT_SUPPORTED = "not supported at this scale"
CONTRADICTED = "contradicted"
VERDICTS = (SURVIVES, NOT_SUPPORTED, CONTRADICTED)
_PERCENT = PERCENT_METRICS | {"train_accuracy"}  # shown in %


def judge(better: str, ci_low: float, ci_high: float) -> str:
    """The verdict on a claim from the paired 95% CI of (optimizer − baseline); better: higher|lower."""
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)) or ci_low <= 0.0 <= ci_high:
        return NOT_SUPPORTED
    above = ci_low > 0.0  # the whole interval is above 0
    return SURVIVES if above == (better == "higher") else CONTRADICTED


@dataclass
class ClaimResult:
    claim: Claim
    paper_optimizer: float | None  # the paper's figure for claim.optimizer (None: not reported)
    paper_baseline: float | None
    optimizer: MeanCI  # ours, over finite runs
    baseline: MeanCI
    n_pairs: int  # seeds where both finished without diverging
    mean_diff: float  # mean over those seeds of optimizer − baseline
    ci_low: float  # paired bootstrap 95% CI
    ci_high: float
    t_p: float
    wilcoxon_p: float
    wins: int  # seeds where the optimizer is better in the claimed direction
    losses: int
    verdict: str
    notes: list[str] = field(default_factory=list)


def run_value(r: RunResult, metric: str) -> float:
    """A finished run's value of a catalogue metric (train_accuracy: the last epoch's)."""
    assert r.history is not None
    if metric == "train_accuracy":
        return float(r.history.train_acc[-1]) if r.history.train_acc else math.nan
    return float(r.history.final.get(metric, math.nan))


def values_by_seed(results: Sequence[RunResult], label: str, metric: str) -> dict[int, float]:
    """seed -> value for the finished, non-diverged runs of `label`."""
    return {r.seed: run_value(r, metric) for r in results if r.label == label and r.done and not r.diverged}


def judge_claim(claim: Claim, results: Sequence[RunResult], reported: dict[str, dict[str, float]]) -> ClaimResult:
    mine = values_by_seed(results, claim.optimizer, claim.metric)
    base = values_by_seed(results, claim.baseline, claim.metric)
    seeds = sorted(set(mine) & set(base))
    a, b = [mine[s] for s in seeds], [base[s] for s in seeds]
    mean, low, high, t_p, w_p, notes = paired_tests(a, b)
    sign = 1.0 if claim.better == "higher" else -1.0
    wins = sum(sign * (x - y) > 0 for x, y in zip(a, b))
    losses = sum(sign * (x - y) < 0 for x, y in zip(a, b))
    for label in (claim.optimizer, claim.baseline):
        runs = [r for r in results if r.label == label]
        bad = [r.seed for r in runs if not r.done or r.diverged]
        if bad:
            notes.append(f"{label}: seed(s) {bad} diverged or failed and are left out")
    verdict = judge(claim.better, low, high)
    if len(seeds) < 2:
        notes.append("fewer than 2 paired seeds: no confidence interval, no verdict beyond 'not supported'")
    return ClaimResult(
        claim=claim, paper_optimizer=reported.get(claim.optimizer, {}).get(claim.metric),
        paper_baseline=reported.get(claim.baseline, {}).get(claim.metric),
        optimizer=mean_ci(list(mine.values())), baseline=mean_ci(list(base.values())), n_pairs=len(seeds),
        mean_diff=mean, ci_low=low, ci_high=high, t_p=t_p, wilcoxon_p=w_p, wins=wins, losses=losses,
        verdict=verdict, notes=notes)


def judge_all(exp: PaperExperiment, results: Sequence[RunResult]) -> list[ClaimResult]:
    return [judge_claim(c, results, exp.paper.reported) for c in exp.paper.claims]


# ----------------------------------------------------------------------------------------------
# formatting


def fmt(metric: str, v: float | None, signed: bool = False) -> str:
    if v is None:
        return "—"
    if not math.isfinite(v):
        return "nan"
    scale, digits, unit = (100.0, 2, " pts" if signed else " %") if metric in _PERCENT else (1.0, 4, "")
    return (f"{v * scale:+.{digits}f}" if signed else f"{v * scale:.{digits}f}") + unit


def fmt_mean_ci(metric: str, c: MeanCI) -> str:
    if c.n == 0:
        return "— (no finished runs)"
    if not math.isfinite(c.low):
        return f"{fmt(metric, c.mean)} (n={c.n}, no CI)"
    return f"{fmt(metric, c.mean)} [{fmt(metric, c.low)}, {fmt(metric, c.high)}] (n={c.n})"


def fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_diff(r: ClaimResult) -> str:
    m = r.claim.metric
    if r.n_pairs == 0:
        return "—"
    ci = "no CI" if not math.isfinite(r.ci_low) else f"[{fmt(m, r.ci_low, True)}, {fmt(m, r.ci_high, True)}]"
    return f"{fmt(m, r.mean_diff, True)} {ci}"


def _paper_setting(exp: PaperExperiment) -> str:
    p = exp.experiment_dict("paper")
    ds = exp.paper.dataset or {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                               "imagefolder": "an image folder"}.get(p["dataset"], p["dataset"])
    return (f"{ds}, {p.get('model')} width {p.get('width', 1.0):g}, {p.get('epochs')} epochs, batch "
            f"{p.get('batch_size')}, schedule {p.get('schedule', 'constant')}")


@dataclass
class TunedClaims:
    """The fair judge's side of a verdict: claims judged on out/tuned/final's runs."""

    claims: list[ClaimResult]
    best: dict[str, dict[str, float] | None]  # label -> chosen {"lr", "weight_decay"}; None: all diverged
    candidates: list[float]  # the lr grid every optimizer searched
    plot: bool  # tuned/lr_sensitivity.png exists
    n_runs: int  # finished search + final runs
    runs_wall_time_s: float  # their training time, summed
    edge: str | None = None  # names optimizers whose chosen lr is an end of the grid


def claims_table(claims: Sequence[ClaimResult]) -> list[str]:
    """The markdown table of judged claims (one row per claim)."""
    lines = ["| claim | metric | paper: optimizer vs baseline | ours: optimizer, mean [95% CI] "
             "| ours: baseline, mean [95% CI] | paired diff [bootstrap 95% CI] | t-test p | Wilcoxon p "
             "| wins/losses | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in claims:
        c, m = r.claim, r.claim.metric
        lines.append(
            f"| {c.optimizer} vs {c.baseline} | {m} ({c.better} is better) | {fmt(m, r.paper_optimizer)} vs "
            f"{fmt(m, r.paper_baseline)} | {fmt_mean_ci(m, r.optimizer)} | {fmt_mean_ci(m, r.baseline)} | "
            f"{fmt_diff(r)} | {fmt_p(r.t_p)} | {fmt_p(r.wilcoxon_p)} | {r.wins}/{r.losses} of {r.n_pairs} | "
            f"**{r.verdict}** |")
    return lines


def _counts(claims: Sequence[ClaimResult]) -> str:
    counts = {v: sum(r.verdict == v for r in claims) for v in VERDICTS}
    return ", ".join(f"{n} {v}" for v, n in counts.items()) + f" (of {len(claims)} claims)"


def render(exp: PaperExperiment, meta: dict[str, Any], claims: Sequence[ClaimResult], command: str,
           tuned: TunedClaims | None = None) -> str:
    """verdict.md's text."""
    scale = meta["scale"]
    paper = exp.paper
    lines = [f"# Reproducing {exp.name}: verdict", ""]
    if scale == "cpu":
        lines += [f"> **SCALE: CPU, NOT THE PAPER'S.** Data actually used: **{meta['description']}**.",
                  f"> The paper ran {_paper_setting(exp)}. These runs test the method's direction on a small",
                  "> budget; they cannot confirm or refute the paper's absolute numbers."]
    else:
        lines += [f"> **SCALE: PAPER.** Data actually used: **{meta['description']}**.",
                  f"> Data folder: `{meta.get('data_dir')}`."]
    paper_ds = exp.experiment_dict("paper")["dataset"]
    if meta.get("dataset") != paper_ds:
        from optimlab.reproduce.run import DATASET_TITLES

        title = exp.paper.dataset or DATASET_TITLES.get(paper_ds, paper_ds)
        lines.append(f"> **The data set differs from the paper's:** {meta.get('dataset_title')} stands in for "
                     f"{title} (no {title} data at this scale), so this tests the method, not the paper's table.")
    if meta.get("overrides"):
        lines.append(f"> **Overridden settings:** {meta['overrides']} (a smoke run; the verdict means little).")
    lines += ["", f"Paper {paper.id}: *{paper.title}* ({paper.source}"
              + (f"; also {', '.join(paper.also)}" if paper.also else "") + ")"
              + (f" — {', '.join(paper.references)}." if paper.references else "."),
              "", "Standard report (every metric, curves, per-seed values): [report.md](report.md)",
              "", "## Claims at the paper's settings", "", *claims_table(claims), ""]
    lines += ["## Claims with each optimizer tuned (the fair judge)", ""]
    if tuned is None:
        budget = exp.tune["budget"]
        lines += [f"Not run. Add `--tune` to give every optimizer the same {budget} lr candidates (log grid over "
                  f"[{exp.tune['lr_range'][0]:g}, {exp.tune['lr_range'][1]:g}]) on the validation split and rerun each "
                  "choice on the same seeds; this section then judges every claim again.", ""]
    else:
        t = meta.get("tune") or {}
        chosen = ", ".join(f"{lab} {('%.3g' % b['lr']) if b else '— (all diverged)'}"
                           for lab, b in tuned.best.items())
        given = ", ".join(f"{o['label']} {o.get('hparams', {}).get('lr', 'default')}"
                          for o in exp.experiment["optimizers"])
        lines += [f"The papers give every optimizer one lr, but equal lrs are not equal steps (`sgdm` moves "
                  f"lr/(1−β) per unit gradient, `sgdm-ema` lr). Here every optimizer got the same "
                  f"{len(tuned.candidates)} lr candidates ({', '.join('%.3g' % c for c in tuned.candidates)}) on "
                  f"tuning seed(s) {t.get('tune_seeds', '?')}, chose by mean validation accuracy, and was rerun at "
                  "its choice on the seeds above (test split, paired).", "",
                  f"Chosen lr: {chosen} (paper: {given}). Search table: [tuned/tune.md](tuned/tune.md).", "",
                  *([f"> {tuned.edge}", ""] if tuned.edge else []),
                  *(["![lr sensitivity](tuned/lr_sensitivity.png)", ""] if tuned.plot else []),
                  *claims_table(tuned.claims), ""]
    lines.append("## Summary")
    lines.append("")
    for i, r in enumerate(claims, 1):
        tail = f"; **{tuned.claims[i - 1].verdict}** tuned" if tuned is not None else ""
        lines.append(f"{i}. {r.claim.text} — **{r.verdict}** at the paper's settings{tail}."
                     + (f" Notes: {'; '.join(r.notes)}." if r.notes else ""))
    lines += ["", "At the paper's settings: " + _counts(claims) + "."]
    if tuned is not None:
        lines.append("Tuned: " + _counts(tuned.claims) + ".")
    lines += [
              "", "## How the verdict is decided", "",
              "The difference is optimizer − baseline on the same seeds (same initial weights and batch order). "
              f"**{SURVIVES}**: the paired bootstrap 95% CI excludes 0 on the claimed side; "
              f"**{NOT_SUPPORTED}**: the CI includes 0; **{CONTRADICTED}**: the CI excludes 0 on the other side. "
              "Diverged runs are left out. With 5 seeds the exact two-sided Wilcoxon p cannot go below 0.0625, "
              "so it is shown but not used; the t-test p is for reference.", "",
              "## The paper's notes and discrepancies", "", paper.notes, "",
              "## Regenerate", "", "```", command, "```",
              f"(training time of the {meta.get('n_runs', '?')} runs at the paper's settings: "
              f"{meta.get('runs_wall_time_s', float('nan')):.0f} s summed over runs"
              + (f"; of the {tuned.n_runs} tuning and rerun runs: {tuned.runs_wall_time_s:.0f} s" if tuned else "")
              + "; finished runs are kept, so a re-run only fills in what is missing)", ""]
    return "\n".join(lines)


def reproduce_command(meta: dict[str, Any], out_dir: Path) -> str:
    parts = ["optimlab reproduce", meta["name"], "--scale", meta["scale"]]
    if meta["scale"] == "paper" and meta.get("data_dir"):
        parts += ["--data-dir", str(meta["data_dir"])]
    if meta.get("seeds") is not None:
        parts += ["--seeds", str(meta["seeds"])]
    if meta.get("tune"):
        parts += ["--tune", "--tune-budget", str(meta["tune"]["budget"])]
    parts += ["--out", str(out_dir)]
    return " ".join(parts)


def judge_folder(out_dir: str | Path) -> tuple[PaperExperiment, dict[str, Any], list[ClaimResult], TunedClaims | None]:
    """Everything a verdict shows, from a folder made by optimlab reproduce: the experiment, its
    reproduce.json (plus run counts), the claims judged at the paper's settings, and tuned (or None)."""
    from optimlab.experiments.report import load_experiment
    from optimlab.reproduce.run import read_meta

    out = Path(out_dir)
    meta = read_meta(out)
    exp = load_paper_experiment(meta["name"])
    config, results = load_experiment(out)
    meta.setdefault("seeds", len(config.seeds))
    meta["n_runs"] = sum(r.done for r in results)
    meta["runs_wall_time_s"] = sum(r.wall_time_s for r in results if r.done and math.isfinite(r.wall_time_s))
    meta["accuracy_means"] = {o.label: mean_ci(list(values_by_seed(results, o.label, "accuracy").values())).mean
                              for o in config.optimizers}  # test accuracy per optimizer (nan: no finished run)
    return exp, meta, judge_all(exp, results), read_tuned(exp, out)


Judged = tuple[PaperExperiment, dict[str, Any], list[ClaimResult], TunedClaims | None]  # judge_folder's result


def write_verdict(out_dir: str | Path, judged: Judged | None = None) -> Path:
    """Judge every claim from out_dir's result files and reproduce.json (or take `judged`, what
    judge_folder(out_dir) returned); write out_dir/verdict.md."""
    out = Path(out_dir)
    exp, meta, claims, tuned = judged if judged is not None else judge_folder(out)
    text = render(exp, meta, claims, reproduce_command(meta, out), tuned)
    path = out / "verdict.md"
    path.write_text(text, encoding="utf-8")
    return path


def read_tuned(exp: PaperExperiment, out: Path) -> TunedClaims | None:
    """The tuned side from out/tuned (tune.json and the final sweep); None when --tune never ran there."""
    import json

    from optimlab.experiments.report import load_experiment
    from optimlab.reproduce.run import TUNED_DIR

    folder = out / TUNED_DIR
    if not (folder / "tune.json").is_file():
        return None
    info = json.loads((folder / "tune.json").read_text(encoding="utf-8"))
    results = load_experiment(folder / "final")[1] if (folder / "final").is_dir() else []
    search = load_experiment(folder / "search")[1] if (folder / "search").is_dir() else []
    done = [r for r in [*search, *results] if r.done and math.isfinite(r.wall_time_s)]
    from optimlab.tune.search import Candidate, edge_note

    grid = [Candidate(c["lr"]) for c in info["candidates"]]
    edge = edge_note({lab: Candidate(b["lr"]) if b else None for lab, b in info["best"].items()}, grid)
    return TunedClaims(claims=judge_all(exp, results), best=info["best"], edge=edge,
                       candidates=sorted({c["lr"] for c in info["candidates"]}),
                       plot=(folder / "lr_sensitivity.png").is_file(), n_runs=len(done),
                       runs_wall_time_s=sum(r.wall_time_s for r in done))
