"""Judge a paper's claims against a reproduction's runs (rendering is optimlab.reproduce.verdict).

    exp, meta, claims, tuned = judge_folder("runs/reproduce-rsgdm-cifar10-resnet18-cpu")

One experiment's claims are one family: optimlab.stats.inference.judge_family decides all of
them at once (paired t, Holm over the claims, four verdicts, MIN_SEEDS). Per claim this module adds
what the page must say about failed runs: each arm's failure rate with an exact 95% interval, an
exact McNemar test of the failures between the arms, and whether leaving the failed seeds out could
change the verdict (they are counted at the worst value either arm reached and the family judged
again). A folder judged with --until-decided takes its decisions from sequential.json, where each
look's decisions were made at that look's share of alpha.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from optimlab.experiments import looks
from optimlab.experiments.results import RunResult
from optimlab.reproduce.catalog import Claim, PaperExperiment, load_paper_experiment
from optimlab.reproduce.layout import TUNED_DIR, read_meta
from optimlab.stats import inference
from optimlab.stats.summary import MeanCI, Rate, failure_rate, mcnemar_exact_p, mean_ci, paired_notes

SKEW_WARN = 1.0  # |sample skewness| of the differences above which the page warns (t-test error can exceed its level)


@dataclass
class ClaimResult:
    claim: Claim
    paper_optimizer: float | None  # the paper's figure for claim.optimizer (None: not reported)
    paper_baseline: float | None
    optimizer: MeanCI  # ours, over finite runs
    baseline: MeanCI
    n_pairs: int  # seeds where both finished without diverging
    mean_diff: float  # mean over those seeds of optimizer − baseline
    ci_low: float  # paired Student-t 95% CI of mean_diff (unadjusted)
    ci_high: float
    t_p: float  # paired t-test, two-sided, raw
    holm_p: float  # t_p Holm-adjusted over the experiment's claims
    verdict: str  # one of inference.VERDICTS
    mde: float  # |difference| detectable with 80% power at these seeds and spread (claim's units)
    seeds_needed: int | None  # paired seeds that would detect the paper's own difference (None: no figure)
    wins: int  # seeds where the optimizer is better in the claimed direction
    losses: int
    failures: tuple[Rate, Rate]  # (optimizer, baseline): diverged or errored among attempted runs
    failure_p: float  # exact McNemar p of failures between the arms (1.0: no discordant seed)
    sensitivity: str | None = None  # set when counting the failed seeds would change the verdict
    decided_at: int | None = None  # sequential runs: the seed count of the look that decided it
    notes: list[str] = field(default_factory=list)

    @property
    def paper_diff(self) -> float | None:
        if self.paper_optimizer is None or self.paper_baseline is None:
            return None
        return self.paper_optimizer - self.paper_baseline


def run_value(r: RunResult, metric: str) -> float:
    """A finished run's value of a catalogue metric (train_accuracy: the last epoch's)."""
    assert r.history is not None
    if metric == "train_accuracy":
        return float(r.history.train_acc[-1]) if r.history.train_acc else math.nan
    return float(r.history.final.get(metric, math.nan))


def values_by_seed(results: Sequence[RunResult], label: str, metric: str) -> dict[int, float]:
    """seed -> value for the finished, non-diverged runs of `label`."""
    return {r.seed: run_value(r, metric) for r in results if r.label == label and r.done and not r.diverged}


def _failed_seeds(results: Sequence[RunResult], label: str) -> set[int]:
    return {r.seed for r in results if r.label == label and (not r.done or r.diverged)}


def _attempted(results: Sequence[RunResult], label: str) -> int:
    return sum(r.label == label for r in results)


def _oriented(claim: Claim) -> float:
    return 1.0 if claim.better == "higher" else -1.0


def judge_claims(
    claims: Sequence[Claim],
    results: Sequence[RunResult],
    reported: dict[str, dict[str, float]],
    alpha: float = inference.ALPHA,
    min_seeds: int = inference.MIN_SEEDS,
    other_code: Sequence[str] = (),
) -> list[ClaimResult]:
    """Judge `claims` as one family (Holm over them) from the runs in `results`. other_code: labels
    whose paper figures came from code that is not the paper's rule, so "smaller than claimed" is
    not tested against them."""
    if not claims:
        return []
    pairs, deltas = [], []
    for c in claims:
        mine, base = values_by_seed(results, c.optimizer, c.metric), values_by_seed(results, c.baseline, c.metric)
        seeds = sorted(set(mine) & set(base))
        pairs.append((mine, base, seeds))
        po, pb = reported.get(c.optimizer, {}).get(c.metric), reported.get(c.baseline, {}).get(c.metric)
        if po is not None and pb is not None and c.optimizer not in other_code:
            deltas.append(_oriented(c) * (po - pb))
        else:
            deltas.append(math.nan)
    d = inference.family_array(
        [[_oriented(c) * (mine[s] - base[s]) for s in seeds] for c, (mine, base, seeds) in zip(claims, pairs)]
    )
    failed = [(_failed_seeds(results, c.optimizer), _failed_seeds(results, c.baseline)) for c in claims]
    j = inference.judge_family(d, np.asarray(deltas), alpha, min_seeds)
    out = []
    for i, (c, (mine, base, seeds)) in enumerate(zip(claims, pairs)):
        sign = _oriented(c)
        raw = [mine[s] - base[s] for s in seeds]
        lo, hi = sign * j.stats.low[i], sign * j.stats.high[i]
        sd = float(j.stats.sd[i])
        notes = paired_notes(raw)
        fail_opt, fail_base = failed[i]
        for label, bad in ((c.optimizer, fail_opt), (c.baseline, fail_base)):
            if bad:
                notes.append(f"{label}: seed(s) {sorted(bad)} diverged or failed and are left out")
        if len(raw) >= min_seeds and not inference.is_tied(raw):
            skew = float(stats.skew(raw, bias=False))
            if abs(skew) > SKEW_WARN:
                notes.append(
                    f"the per-seed differences are skewed (sample skewness {skew:+.2f}): the t-test's error "
                    "rate can exceed its level for skewed differences (README: statistics)"
                )
        out.append(
            ClaimResult(
                claim=c,
                paper_optimizer=reported.get(c.optimizer, {}).get(c.metric),
                paper_baseline=reported.get(c.baseline, {}).get(c.metric),
                optimizer=mean_ci(list(mine.values())),
                baseline=mean_ci(list(base.values())),
                n_pairs=len(seeds),
                mean_diff=float(np.mean(raw)) if raw else math.nan,
                ci_low=float(min(lo, hi)),
                ci_high=float(max(lo, hi)),
                t_p=float(j.stats.p_two[i]),
                holm_p=float(j.p_two_adj[i]),
                verdict=inference.VERDICTS[j.code[i]],
                mde=inference.mde(sd, len(seeds), len(claims), alpha),
                seeds_needed=inference.seeds_needed(deltas[i], sd, len(claims), alpha),
                wins=sum(sign * x > 0 for x in raw),
                losses=sum(sign * x < 0 for x in raw),
                failures=(
                    failure_rate(len(fail_opt), _attempted(results, c.optimizer)),
                    failure_rate(len(fail_base), _attempted(results, c.baseline)),
                ),
                failure_p=mcnemar_exact_p(len(fail_opt - fail_base), len(fail_base - fail_opt)),
                notes=notes,
            )
        )
    _failure_sensitivity(out, claims, pairs, failed, d, np.asarray(deltas), alpha, min_seeds)
    return out


def _failure_sensitivity(
    out: list[ClaimResult],
    claims: Sequence[Claim],
    pairs: Sequence[tuple[dict[int, float], dict[int, float], list[int]]],
    failed: Sequence[tuple[set[int], set[int]]],
    d: np.ndarray,
    deltas: np.ndarray,
    alpha: float,
    min_seeds: int,
) -> None:
    """Count each failed seed at the worst value either arm reached and judge the family again; say
    so on each claim whose verdict that changes."""
    for i, c in enumerate(claims):
        sign = _oriented(c)
        mine, base, _ = pairs[i]
        fail_opt, fail_base = failed[i]
        seeds = sorted((set(mine) | fail_opt) & (set(base) | fail_base))
        if not (fail_opt | fail_base) & set(seeds) or not (mine or base):
            continue
        worst = min(sign * v for v in [*mine.values(), *base.values()])  # oriented: lower is worse
        a = [worst if s in fail_opt else sign * mine[s] for s in seeds]
        b = [worst if s in fail_base else sign * base[s] for s in seeds]
        trial = inference.family_array(
            [[x - y for x, y in zip(a, b)] if k == i else list(d[k][np.isfinite(d[k])]) for k in range(len(claims))]
        )
        verdict = inference.VERDICTS[inference.judge_family(trial, deltas, alpha, min_seeds).code[i]]
        if verdict != out[i].verdict:
            shown = sign * worst
            out[i].sensitivity = (
                f"leaving out the failed seed(s) matters: counting each as the worst value either arm "
                f"reached ({shown:.4g}) gives '{verdict}' instead"
            )


def judge_all(
    exp: PaperExperiment,
    results: Sequence[RunResult],
    alpha: float = inference.ALPHA,
    min_seeds: int = inference.MIN_SEEDS,
) -> list[ClaimResult]:
    """The experiment's claims as one family, each with the catalogue's note on the authors' code."""
    out = judge_claims(
        exp.paper.claims, results, exp.paper.reported, alpha, min_seeds, other_code=tuple(exp.paper.code_arms)
    )
    for r in out:
        note = exp.paper.code_notes.get(r.claim.optimizer)
        if note:
            r.notes.insert(0, note)
        if r.claim.optimizer in exp.paper.code_arms:
            r.notes.append(
                "the paper's figure came from the authors' code, not this rule, so 'smaller than claimed' "
                "is not tested against it"
            )
    return out


def code_claims(exp: PaperExperiment) -> list[Claim]:
    """Each claim whose optimizer has an arm running the authors' published code, restated for that arm."""
    return [
        Claim(
            f"{c.text} — as the authors' published code runs it ({exp.paper.code_arms[c.optimizer]})",
            c.metric,
            c.better,
            exp.paper.code_arms[c.optimizer],
            c.baseline,
        )
        for c in exp.paper.claims
        if c.optimizer in exp.paper.code_arms
    ]


def judge_code_claims(exp: PaperExperiment, results: Sequence[RunResult]) -> list[ClaimResult | None]:
    """code_claims judged as their own family on the code arms' runs, against the paper's figures
    (which that code produced); None for a claim whose arm has no finished run (the folder predates
    the arm: re-running reproduce adds only those runs)."""
    claims = code_claims(exp)
    ran = [c for c in claims if any(r.label == c.optimizer and r.done for r in results)]
    reported = dict(exp.paper.reported)
    for label, arm in exp.paper.code_arms.items():
        if label in reported:
            reported[arm] = reported[label]
    judged = {(c.optimizer, c.metric): r for c, r in zip(ran, judge_claims(ran, results, reported))}
    return [judged.get((c.optimizer, c.metric)) for c in claims]


def judge_claim(
    claim: Claim,
    results: Sequence[RunResult],
    reported: dict[str, dict[str, float]],
    min_seeds: int = inference.MIN_SEEDS,
) -> ClaimResult:
    """One claim judged alone (a family of one)."""
    return judge_claims([claim], results, reported, min_seeds=min_seeds)[0]


# ----------------------------------------------------------------------------------------------
# folders


@dataclass
class TunedClaims:
    """The fair judge's side of a verdict: claims judged on out/tuned/final's runs."""

    claims: list[ClaimResult]
    best: dict[str, dict[str, float] | None]  # label -> chosen {"lr", "weight_decay"}; None: all diverged
    candidates: list[float]  # the lr grid every optimizer searched
    plot: bool  # tuned/lr_sensitivity.png exists
    n_runs: int  # finished search + final runs
    runs_wall_time_s: float  # their training time, summed
    tune_seeds: list[int]  # the search's seeds
    same_as_paper: list[bool]  # per claim: both arms chose the paper's settings, so the runs are the same runs
    edge: str | None = None  # names optimizers whose chosen lr is an end of the grid


Judged = tuple[PaperExperiment, dict[str, Any], list[ClaimResult], "TunedClaims | None"]  # judge_folder's result


def judge_folder(out_dir: str | Path) -> Judged:
    """Everything a verdict shows, from a folder made by optimlab reproduce: the experiment, its
    reproduce.json (plus run counts), the claims judged at the paper's settings, and tuned (or None)."""
    from optimlab.experiments.results import load_experiment

    out = Path(out_dir)
    meta = read_meta(out)
    exp = load_paper_experiment(meta["name"])
    config, results = load_experiment(out)
    meta.setdefault("seeds", len(config.seeds))
    meta["n_runs"] = sum(r.done for r in results)
    meta["runs_wall_time_s"] = sum(r.wall_time_s for r in results if r.done and math.isfinite(r.wall_time_s))
    meta["accuracy_means"] = {
        o.label: mean_ci(list(values_by_seed(results, o.label, "accuracy").values())).mean for o in config.optimizers
    }  # test accuracy per optimizer (nan: no finished run)
    claims = judge_all(exp, results)
    meta["code_claims"] = list(zip(code_claims(exp), judge_code_claims(exp, results)))
    seq = looks.read_sequential(out)
    if seq is not None:
        apply_sequential(claims, seq)
        meta["sequential"] = seq
    meta["earlier_looks"] = looks.earlier_looks(out, len(config.seeds))
    return exp, meta, claims, read_tuned(exp, out, results)


def apply_sequential(claims: list[ClaimResult], seq: dict[str, Any]) -> None:
    """Replace fixed-n verdicts by the sequential decisions (a claim undecided at every look keeps the
    final look's non-decisive verdict)."""
    decided = {int(k): v for k, v in seq.get("decisions", {}).items()}
    for i, r in enumerate(claims):
        if i in decided:
            r.verdict, r.decided_at = decided[i]["verdict"], decided[i]["look"]
        elif r.verdict in inference.DECISIVE:  # decisive at fixed n but not at any look's share of alpha
            r.verdict = inference.INCONCLUSIVE


def read_tuned(exp: PaperExperiment, out: Path, paper_runs: Sequence[RunResult] = ()) -> TunedClaims | None:
    """The tuned side from out/tuned (tune.json and the final sweep); None when --tune never ran there."""
    from optimlab.experiments.results import load_experiment
    from optimlab.experiments.sweep import normalized_config
    from optimlab.tune.candidates import Candidate, edge_note

    folder = out / TUNED_DIR
    if not (folder / "tune.json").is_file():
        return None
    info = json.loads((folder / "tune.json").read_text(encoding="utf-8"))
    results = load_experiment(folder / "final")[1] if (folder / "final").is_dir() else []
    search = load_experiment(folder / "search")[1] if (folder / "search").is_dir() else []
    done = [r for r in [*search, *results] if r.done and math.isfinite(r.wall_time_s)]
    grid = [Candidate(c["lr"]) for c in info["candidates"]]
    edge = edge_note({lab: Candidate(b["lr"]) if b else None for lab, b in info["best"].items()}, grid)
    paper_cfg = {(r.label, r.seed): normalized_config(r.config) for r in paper_runs}
    tuned_cfg = {(r.label, r.seed): normalized_config(r.config) for r in results}

    def same(label: str) -> bool:
        keys = [k for k in tuned_cfg if k[0] == label]
        return bool(keys) and all(paper_cfg.get(k) == tuned_cfg[k] for k in keys)

    return TunedClaims(
        claims=judge_all(exp, results),
        best=info["best"],
        edge=edge,
        candidates=sorted({c["lr"] for c in info["candidates"]}),
        plot=(folder / "lr_sensitivity.png").is_file(),
        n_runs=len(done),
        runs_wall_time_s=sum(r.wall_time_s for r in done),
        tune_seeds=list(info.get("tune_seeds", [])),
        same_as_paper=[same(c.optimizer) and same(c.baseline) for c in exp.paper.claims],
    )
