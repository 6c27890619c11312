"""Judge a paper's claims against a reproduction's runs (rendering is optimlab.reproduce.verdict).

    exp, meta, claims, tuned = judge_folder("runs/reproduce-rsgdm-cifar10-resnet18-cpu")

One experiment's claims are one family: optimlab.stats.inference.judge_family decides all of
them at once (paired t over the seeds both arms attempted, a failed run counted at the worst value
either arm reached; one weighted Holm over the family's direction, "smaller than claimed" and
equivalence tests; MIN_SEEDS). "Smaller than claimed" and the seeds the paper's difference needs
compare our effect's size with the paper's, so they are computed only where the runs are on the
paper's scale (claim_runs.scale_mismatch: data set, network, width, epochs; a design rule, fixed
before looking); elsewhere the page says why they are absent. Per claim this module adds each
arm's failure rate with an exact 95% interval, an exact McNemar test of the failures between the
arms, whether leaving the failed seeds out would change the verdict, and the sign-flip permutation
p where it would give another verdict than the t-test. A folder judged with --until-decided takes
its decisions from sequential.json, where each look's decisions were made at that look's share of
alpha.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optimlab.experiments import looks
from optimlab.experiments.results import RunResult
from optimlab.reproduce import provenance
from optimlab.reproduce.catalog import Claim, PaperExperiment, load_paper_experiment
from optimlab.reproduce.claim_runs import Arms, oriented, sample_notes, scale_mismatch, values_by_seed
from optimlab.reproduce.layout import TUNED_DIR, read_meta
from optimlab.stats import inference, permutation
from optimlab.stats.margins import margin_for
from optimlab.stats.summary import MeanCI, Rate, failure_rate, mcnemar_exact_p, mean_ci, paired_notes


@dataclass
class ClaimResult:
    claim: Claim
    paper_optimizer: float | None  # the paper's figure for claim.optimizer (None: not reported)
    paper_baseline: float | None
    optimizer: MeanCI  # ours, over finite runs
    baseline: MeanCI
    n_pairs: int  # seeds both arms attempted: the test's seeds (a failed run counted at the worst value)
    mean_diff: float  # mean over those seeds of optimizer − baseline
    ci_low: float  # paired Student-t 95% CI of mean_diff (unadjusted)
    ci_high: float
    t_p: float  # paired t-test, two-sided, raw
    holm_p: float  # t_p adjusted by the family's weighted Holm (every test of the experiment's claims)
    verdict: str  # one of inference.VERDICTS
    mde: float  # |difference| detectable with 80% power at these seeds and the sd's upper bound (claim's units)
    seeds_needed: int | None  # paired seeds that would detect the paper's own difference (None: not computed)
    wins: int  # seeds where the optimizer is better in the claimed direction
    losses: int
    failures: tuple[Rate, Rate]  # (optimizer, baseline): diverged or errored among attempted runs
    failure_p: float  # exact McNemar p of failures between the arms (1.0: no discordant seed)
    sensitivity: str | None = None  # set when leaving the failed seeds out would change the verdict
    decided_at: int | None = None  # sequential runs: the seed count of the look that decided it
    notes: list[str] = field(default_factory=list)
    margin: float = math.nan  # the equivalence margin tested (NaN: none)
    magnitude_absent: str | None = None  # why the paper's difference is not compared with ours (None: it is)
    small_holm_p: float = math.nan  # adjusted p of "difference >= the paper's" (NaN: not tested)
    equiv_holm_p: float = math.nan  # adjusted TOST p of "|difference| >= margin" (NaN: no margin)
    sign_flip_p: float = math.nan  # the distribution-free companion of t_p
    companion: str | None = None  # set when the sign-flip test would give another verdict
    direction_p: float = math.nan  # the two-sided p that decided the direction (t, or sign-flip with a failure)
    differences: list[float] = field(default_factory=list)  # oriented per-seed differences the tests used

    @property
    def paper_diff(self) -> float | None:
        if self.paper_optimizer is None or self.paper_baseline is None:
            return None
        return self.paper_optimizer - self.paper_baseline


def judge_claims(
    claims: Sequence[Claim],
    results: Sequence[RunResult],
    reported: dict[str, dict[str, float]],
    alpha: float = inference.ALPHA,
    min_seeds: int = inference.MIN_SEEDS,
    other_code: Sequence[str] = (),
    magnitude_absent: str | None = None,
) -> list[ClaimResult]:
    """Judge `claims` as one family (one weighted Holm over all their tests) from the runs in
    `results`. other_code: labels whose paper figures came from code that is not the paper's rule,
    so "smaller than claimed" is not tested against them. magnitude_absent: why no claim's size is
    compared with the paper's (the runs are not on the paper's scale); None compares them."""
    if not claims:
        return []
    arms = [Arms.of(c, results) for c in claims]
    deltas = np.array([_paper_delta(c, reported, other_code, magnitude_absent) for c in claims])
    margins = np.array([c.margin if c.margin is not None else margin_for(c.metric) for c in claims])
    d = inference.family_array([a.differences(oriented(c)) for c, a in zip(claims, arms)])
    failed = np.array([a.has_failures for a in arms])
    p_dir = permutation.direction_p(d, failed)
    j = inference.judge_family(d, deltas, alpha, min_seeds, margin=margins, p_direction=p_dir)
    flip = permutation.direction_p(d, np.ones(d.shape[0], dtype=bool))  # every claim's sign-flip p
    other_p = np.where(failed, j.stats.p_two, flip)  # the test that did not decide, as a companion
    companion = inference.judge_family(d, deltas, alpha, min_seeds, margin=margins, p_direction=other_p)
    out = []
    for i, (c, arm) in enumerate(zip(claims, arms)):
        r = _claim_result(c, arm, reported, j, i, deltas[i], len(claims))
        r.margin, r.magnitude_absent, r.sign_flip_p = float(margins[i]), magnitude_absent, float(flip[i])
        r.direction_p, r.differences = float(p_dir[i]), [float(v) for v in d[i] if np.isfinite(v)]
        r.notes += sample_notes(c, arm, d[i], min_seeds)
        if failed[i]:
            r.notes.append(
                f"decided by the sign-flip permutation test (p {flip[i]:.3g}): failed runs at the worst value make "
                "the differences spiky, where the t-test runs over its level"
            )
        other = inference.VERDICTS[companion.code[i]]
        if other != r.verdict:
            r.companion = (
                f"the paired t-test gives p {r.t_p:.3g} against the sign-flip test's {flip[i]:.3g}, and the "
                f"verdict '{other}'"
                if failed[i]
                else f"the sign-flip permutation test (distribution-free for symmetric differences) gives p "
                f"{flip[i]:.3g} against the t-test's {r.t_p:.3g}, and the verdict '{other}'"
            )
        out.append(r)
    _failure_sensitivity(out, claims, arms, d, deltas, margins, alpha, min_seeds)
    return out


def _paper_delta(
    c: Claim, reported: dict[str, dict[str, float]], other_code: Sequence[str], magnitude_absent: str | None
) -> float:
    """The paper's difference in the claimed direction, where "smaller than claimed" is tested (else NaN)."""
    po, pb = reported.get(c.optimizer, {}).get(c.metric), reported.get(c.baseline, {}).get(c.metric)
    if po is None or pb is None or c.optimizer in other_code or magnitude_absent is not None:
        return math.nan
    return oriented(c) * (po - pb)


def _claim_result(
    c: Claim,
    arm: Arms,
    reported: dict[str, dict[str, float]],
    j: inference.FamilyJudgement,
    i: int,
    delta: float,
    m: int,
) -> ClaimResult:
    sign = oriented(c)
    x = j.stats.mean[i]  # oriented
    od = arm.differences(sign)  # oriented differences, failed seeds at the worst value
    raw = [sign * v for v in od]
    n = len(raw)
    lo, hi = sign * j.stats.low[i], sign * j.stats.high[i]
    sd = inference.sd_upper(float(j.stats.sd[i]), n)
    return ClaimResult(
        claim=c,
        paper_optimizer=reported.get(c.optimizer, {}).get(c.metric),
        paper_baseline=reported.get(c.baseline, {}).get(c.metric),
        optimizer=mean_ci(list(arm.mine.values())),
        baseline=mean_ci(list(arm.base.values())),
        n_pairs=n,
        mean_diff=float(sign * x) if n else math.nan,
        ci_low=float(min(lo, hi)),
        ci_high=float(max(lo, hi)),
        t_p=float(j.stats.p_two[i]),
        holm_p=float(j.p_two_adj[i]),
        verdict=inference.VERDICTS[j.code[i]],
        mde=inference.mde(sd, n, m, j.alpha),
        seeds_needed=inference.seeds_needed(delta, sd, m, j.alpha) if math.isfinite(delta) else None,
        wins=sum(v > 0 for v in od),
        losses=sum(v < 0 for v in od),
        failures=(
            failure_rate(len(arm.fail_mine), len(set(arm.mine) | arm.fail_mine)),
            failure_rate(len(arm.fail_base), len(set(arm.base) | arm.fail_base)),
        ),
        failure_p=mcnemar_exact_p(len(arm.fail_mine - arm.fail_base), len(arm.fail_base - arm.fail_mine)),
        notes=paired_notes(raw),
        small_holm_p=float(j.p_small_adj[i]),
        equiv_holm_p=float(j.p_equiv_adj[i]),
    )


def _failure_sensitivity(
    out: list[ClaimResult],
    claims: Sequence[Claim],
    arms: Sequence[Arms],
    d: np.ndarray,
    deltas: np.ndarray,
    margins: np.ndarray,
    alpha: float,
    min_seeds: int,
) -> None:
    """Judge the family again with each claim's failed seeds left out (the old rule); say so on each
    claim whose verdict that changes."""
    for i, (c, arm) in enumerate(zip(claims, arms)):
        if not (arm.fail_mine | arm.fail_base) & set(arm.seeds):
            continue
        rows = [list(row[np.isfinite(row)]) for row in d]
        rows[i] = arm.differences(oriented(c), failures=False)
        trial_d = inference.family_array(rows)
        flips = np.array([a.has_failures and k != i for k, a in enumerate(arms)])
        p_dir = permutation.direction_p(trial_d, flips)
        trial = inference.judge_family(trial_d, deltas, alpha, min_seeds, margin=margins, p_direction=p_dir)
        verdict = inference.VERDICTS[trial.code[i]]
        if verdict != out[i].verdict:
            out[i].sensitivity = (
                f"counting failed seeds matters: with them left out (only seeds both arms finished) the verdict "
                f"would be '{verdict}'"
            )


def judge_all(
    exp: PaperExperiment,
    results: Sequence[RunResult],
    alpha: float = inference.ALPHA,
    min_seeds: int = inference.MIN_SEEDS,
) -> list[ClaimResult]:
    """The experiment's claims as one family, each with the catalogue's note on the authors' code."""
    out = judge_claims(
        exp.paper.claims,
        results,
        exp.paper.reported,
        alpha,
        min_seeds,
        other_code=tuple(exp.paper.code_arms),
        magnitude_absent=scale_mismatch(exp, results),
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
            c.margin,
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
    judged = {
        (c.optimizer, c.metric): r
        for c, r in zip(ran, judge_claims(ran, results, reported, magnitude_absent=scale_mismatch(exp, results)))
    }
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
    meta["deviations"] = provenance.deviations(exp, config, meta)
    meta["judge_name"] = provenance.judge_name(meta)
    meta["runs_made_by"] = provenance.runs_made_by(out, meta)
    meta["arm_kinds"] = provenance.arm_kinds(config)
    meta["budget"] = {"epochs": config.epochs, "steps": config.max_steps_per_epoch, "batch": config.batch_size}
    meta["design"] = json.dumps({**config.to_dict(), "name": None, "seeds": None}, sort_keys=True, default=str)
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
