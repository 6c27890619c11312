"""Render a reproduction's verdict.md from its judged claims (optimlab.reproduce.judging).

    write_verdict("runs/reproduce-rsgdm-cifar10-resnet18-cpu")   # -> .../verdict.md

For each claim ("optimizer beats baseline on metric") the page shows the paper's figures, ours
(mean with a 95% t-interval over seeds for both), the paired difference optimizer − baseline over
the seeds both arms ran, a failed run counted at the worst value either arm reached (paired
Student-t 95% CI, raw and Holm-adjusted p), each arm's failure rate, and one of the verdicts of
optimlab.stats.inference: survives (or survives, but smaller than claimed, showing the paper's
rejected size), contradicted, equivalent (within ±m), smaller than claimed, inconclusive (with the
minimum detectable effect and, on the paper's scale, the seeds that would detect the paper's
difference), or inconclusive: too few seeds. Under the table: why sizes are not compared with the
paper's (runs off its scale), failed runs that could change a verdict, and claims where the
sign-flip permutation test disagrees with the t-test.

The scale and the data actually used head the page, followed by the paper's notes on its own
discrepancies; the sweep's report.md is linked for every metric and figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optimlab.report.display import DATASET_TITLES, claim_label, fmt_ci, fmt_interval, fmt_p, fmt_rate, fmt_value
from optimlab.reproduce.catalog import PaperExperiment
from optimlab.reproduce.judging import ClaimResult, Judged, TunedClaims, judge_folder
from optimlab.reproduce.provenance import judge_name, setting_lines, stand_in_title
from optimlab.reproduce.verdict_notes import companion_lines, magnitude_absent_lines, method_text, sequential_text
from optimlab.stats.inference import (
    EQUIVALENT,
    INCONCLUSIVE,
    SMALLER,
    SURVIVES,
    SURVIVES_SMALLER,
    TOO_FEW,
    VERDICTS,
)
from optimlab.stats.summary import MeanCI

__all__ = [
    "render",
    "write_verdict",
    "claims_table",
    "fmt",
    "fmt_mean_ci",
    "fmt_p",
    "fmt_diff",
    "counts_text",
]


# ----------------------------------------------------------------------------------------------
# formatting


def fmt(metric: str, v: float | None, signed: bool = False) -> str:
    """A metric value with its unit (" %" / " pts"), as every verdict page shows it."""
    return fmt_value(metric, v, signed, unit=True)


def fmt_mean_ci(metric: str, c: MeanCI) -> str:
    return fmt_ci(metric, c, unit=True, show_n=True)


def fmt_diff(r: ClaimResult) -> str:
    m = r.claim.metric
    if r.n_pairs == 0:
        return "—"
    return f"{fmt(m, r.mean_diff, True)} {fmt_interval(m, r.ci_low, r.ci_high, unit=True)}"


def _paper_setting(exp: PaperExperiment) -> str:
    p = exp.experiment_dict("paper")
    ds = exp.paper.dataset or {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagefolder": "an image folder"}.get(
        p["dataset"], p["dataset"]
    )
    model = exp.paper.model or f"{p.get('model')} width {p.get('width', 1.0):g}"
    return (
        f"{ds}, {model}, {p.get('epochs')} epochs, batch "
        f"{p.get('batch_size')}, schedule {p.get('schedule', 'constant')}"
    )


def null_result_text(r: ClaimResult) -> str:
    """What an inconclusive verdict could have detected: the MDE, and the seeds the paper's effect needs
    (only where the paper's difference was compared with ours: on the paper's scale)."""
    m = r.claim.metric
    if r.verdict not in (INCONCLUSIVE, TOO_FEW) or not math.isfinite(r.mde):
        return ""
    text = f"MDE {fmt(m, r.mde).replace(' %', ' pts')}"
    if math.isfinite(r.small_holm_p) and r.paper_diff is not None:
        text += f"; paper's {fmt(m, abs(r.paper_diff), True).lstrip('+')} needs " + (
            f"{r.seeds_needed} seeds" if r.seeds_needed is not None else "more than 100,000 seeds"
        )
    return text


def verdict_text(r: ClaimResult) -> str:
    """The verdict cell: the verdict, with the margin of 'equivalent' and the paper's rejected size."""
    m = r.claim.metric
    if r.verdict == EQUIVALENT:
        margin = fmt(m, r.margin).replace(" %", " pts")
        return f"**{EQUIVALENT} (within ±{margin})** (two one-sided tests, p Holm {fmt_p(r.equiv_holm_p)})"
    if r.verdict == SURVIVES_SMALLER and r.paper_diff is not None:
        paper = fmt(m, r.paper_diff, True).replace(" %", " pts")
        return (
            f"**{SURVIVES}**, but **smaller than claimed** (the paper's {paper} is rejected, "
            f"p Holm {fmt_p(r.small_holm_p)})"
        )
    if r.verdict == SMALLER:
        return f"**{SMALLER}** (p Holm {fmt_p(r.small_holm_p)})"
    return f"**{r.verdict}**"


def claims_table(claims: Sequence[ClaimResult]) -> list[str]:
    """The markdown table of judged claims (one row per claim)."""
    lines = [
        "| claim | metric | paper: optimizer vs baseline | ours: optimizer, mean [95% CI] "
        "| ours: baseline, mean [95% CI] | paired diff [t 95% CI] | p (paired t) | p Holm | wins/losses "
        "| failed: optimizer, baseline [exact 95% CI] | verdict | what a null could detect |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in claims:
        c, m = r.claim, r.claim.metric
        failed = f"{fmt_rate(r.failures[0])}, {fmt_rate(r.failures[1])}"
        if r.failures[0].k or r.failures[1].k:
            failed += f" (McNemar p {fmt_p(r.failure_p)})"
        at = f" (decided at {r.decided_at} seeds)" if r.decided_at is not None else ""
        lines.append(
            f"| {c.optimizer} vs {c.baseline} | {claim_label(m)} ({c.better} is better) | {fmt(m, r.paper_optimizer)} vs "
            f"{fmt(m, r.paper_baseline)} | {fmt_mean_ci(m, r.optimizer)} | {fmt_mean_ci(m, r.baseline)} | "
            f"{fmt_diff(r)} | {fmt_p(r.t_p)} | {fmt_p(r.holm_p)} | {r.wins}/{r.losses} of {r.n_pairs} | {failed} | "
            f"{verdict_text(r)}{at} | {null_result_text(r) or '—'} |"
        )
    return lines


def counts_text(claims: Sequence[ClaimResult], skip: Sequence[bool] = ()) -> str:
    """'N survives, ...' over the claims not skipped (skip[i]: claim i is not counted)."""
    kept = [r for i, r in enumerate(claims) if not (i < len(skip) and skip[i])]
    counts = {v: sum(r.verdict == v for r in kept) for v in VERDICTS}
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n) + f" (of {len(kept)} claims)"


def render(
    exp: PaperExperiment,
    meta: dict[str, Any],
    claims: Sequence[ClaimResult],
    command: str,
    tuned: TunedClaims | None = None,
) -> str:
    """verdict.md's text."""
    name = judge_name(meta)
    stand_in = stand_in_title(exp, meta)
    lines = [f"# Reproducing {exp.name}: verdict", "", *([f"**{stand_in}.**", ""] if stand_in else [])]
    lines += [*_scale_banner(exp, meta), *setting_lines(meta)]
    lines += [*_paper_line(exp), f"## Claims at {name}", ""]
    if meta.get("sequential"):
        lines += sequential_text(meta["sequential"])
    lines += [*claims_table(claims), "", *magnitude_absent_lines(claims)]
    lines += _code_claims_section(exp, meta)
    sens = [
        f"- {r.claim.optimizer} vs {r.claim.baseline} ({r.claim.metric}): {r.sensitivity}."
        for r in claims
        if r.sensitivity
    ]
    if sens:
        lines += ["**Failed runs that could change a verdict:**", "", *sens, ""]
    lines += companion_lines(claims)
    lines += ["## Claims with each optimizer tuned (the fair judge)", ""]
    lines += _untuned_text(exp) if tuned is None else _tuned_section(exp, tuned)
    lines += _summary_section(claims, tuned, name)
    lines += _closing_sections(exp, meta, claims, command, tuned)
    return "\n".join(lines)


def _scale_banner(exp: PaperExperiment, meta: dict[str, Any]) -> list[str]:
    """The quoted lines heading the page: the scale, the data actually used, and every way these runs
    differ from the paper's or the catalogue's."""
    if meta["scale"] == "cpu":
        lines = [
            f"> **SCALE: CPU, NOT THE PAPER'S.** Data actually used: **{meta['description']}**.",
            f"> The paper ran {_paper_setting(exp)}. These runs test the method's direction on a small",
            "> budget; they cannot confirm or refute the paper's absolute numbers.",
        ]
    else:
        lines = [
            f"> **SCALE: PAPER.** Data actually used: **{meta['description']}**.",
            f"> Data folder: `{meta.get('data_dir')}`.",
        ]
    paper_ds = exp.experiment_dict("paper")["dataset"]
    if meta.get("dataset") != paper_ds:
        title = exp.paper.dataset or DATASET_TITLES.get(paper_ds, paper_ds)
        lines.append(
            f"> **The data set differs from the paper's:** {meta.get('dataset_title')} stands in for "
            f"{title} (no {title} data at this scale), so this tests the method, not the paper's table."
        )
    if meta.get("overrides"):
        lines.append(
            f"> **Settings changed from the catalogue's:** {meta['overrides']} (`--set` or overrides); the "
            "verdict is about these runs, not the catalogue's."
        )
    if meta.get("earlier_looks"):
        lines.append(
            f"> **Earlier looks:** statistics of this folder were already computed at "
            f"{meta['earlier_looks']} seeds. These fixed-n verdicts ignore that, so a false *survives* is "
            "more likely than the 2.5 % they state; use `--until-decided` to add seeds validly."
        )
    return lines


def _paper_line(exp: PaperExperiment) -> list[str]:
    paper = exp.paper
    return [
        "",
        f"Paper {paper.id}: *{paper.title}* ({paper.source}"
        + (f"; also {', '.join(paper.also)}" if paper.also else "")
        + ")"
        + (f" — {', '.join(paper.references)}." if paper.references else "."),
        "",
        "Standard report (every metric, curves, per-seed values): [report.md](report.md)",
        "",
    ]


def _code_claims_section(exp: PaperExperiment, meta: dict[str, Any]) -> list[str]:
    """The claims judged again on the arms that run the authors' published code (none: no section)."""
    code = meta.get("code_claims") or []
    if not code:
        return []
    lines = [
        "### As the authors' published code runs it",
        "",
        f"{exp.paper.code}",
        "",
        "Where the published code is not the paper's rule, the claim is judged again on an arm that runs "
        "that code (its own Holm family). A claim whose arm has no runs yet shows *not run*: re-running "
        "`optimlab reproduce` adds only those runs.",
        "",
    ]
    ran = [r for _, r in code if r is not None]
    lines += [*claims_table(ran), ""] if ran else []
    lines += [f"- {c.optimizer} vs {c.baseline} ({c.metric}): not run" for c, r in code if r is None]
    return [*lines, ""]


def _untuned_text(exp: PaperExperiment) -> list[str]:
    budget = exp.tune["budget"]
    return [
        f"Not run. Add `--tune` to give every optimizer the same {budget} lr candidates (log grid over "
        f"[{exp.tune['lr_range'][0]:g}, {exp.tune['lr_range'][1]:g}]) on the validation split and rerun each "
        "choice on the same seeds; this section then judges every claim again.",
        "",
    ]


def _tuned_section(exp: PaperExperiment, tuned: TunedClaims) -> list[str]:
    """What tuning chose, against the paper's lrs, and the claims judged again at those choices."""
    chosen = ", ".join(
        f"{lab} {('{:.3g}'.format(b['lr'])) if b else '— (all diverged)'}" for lab, b in tuned.best.items()
    )
    given = ", ".join(f"{o['label']} {o.get('hparams', {}).get('lr', 'default')}" for o in exp.experiment["optimizers"])
    same = [f"{r.claim.optimizer} vs {r.claim.baseline}" for r, s in zip(tuned.claims, tuned.same_as_paper) if s]
    return [
        f"The papers give every optimizer one lr, but equal lrs are not equal steps (`sgdm` moves "
        f"lr/(1−β) per unit gradient, `sgdm-ema` lr). Here every optimizer got the same "
        f"{len(tuned.candidates)} lr candidates ({', '.join(f'{c:.3g}' for c in tuned.candidates)}) on "
        f"tuning seeds {tuned.tune_seeds or '?'} (apart from the judged seeds), chose by mean validation "
        "accuracy, and was rerun at its choice on the seeds above (test split, paired). These verdicts "
        "are **conditional on the chosen settings**: the choice itself is not part of the test.",
        "",
        f"Chosen lr: {chosen} (paper: {given}). Search table, with each choice's validation accuracy "
        "re-estimated on the judged seeds: [tuned/tune.md](tuned/tune.md).",
        "",
        *([f"> {tuned.edge}", ""] if tuned.edge else []),
        *(
            [
                f"> Tuning chose the paper's own settings for both arms of {', '.join(same)}: those tuned "
                "runs are the same runs as above, so their tuned verdict repeats the one above and is not "
                "counted again.",
                "",
            ]
            if same
            else []
        ),
        *(["![lr sensitivity](tuned/lr_sensitivity.png)", ""] if tuned.plot else []),
        *claims_table(tuned.claims),
        "",
    ]


def _summary_section(claims: Sequence[ClaimResult], tuned: TunedClaims | None, name: str) -> list[str]:
    """One numbered line per claim with its verdicts, then the counts of each verdict."""
    lines = ["## Summary", ""]
    for i, r in enumerate(claims, 1):
        tail = ""
        if tuned is not None:
            tail = f"; **{tuned.claims[i - 1].verdict}** tuned" + (" (same runs)" if tuned.same_as_paper[i - 1] else "")
        notes = [*r.notes, *([r.sensitivity] if r.sensitivity else []), *([r.companion] if r.companion else [])]
        lines.append(
            f"{i}. {r.claim.text} — {verdict_text(r)} at {name}{tail}."
            + (f" Notes: {'; '.join(notes)}." if notes else "")
        )
    lines += ["", f"At {name}: " + counts_text(claims) + "."]
    if tuned is not None:
        lines.append(
            "Tuned: " + counts_text(tuned.claims, tuned.same_as_paper) + ", not counting claims whose "
            "tuned runs are the runs above."
        )
    return lines


def _closing_sections(
    exp: PaperExperiment,
    meta: dict[str, Any],
    claims: Sequence[ClaimResult],
    command: str,
    tuned: TunedClaims | None,
) -> list[str]:
    """How the verdict is decided, the paper's own notes, and the command that regenerates the page."""
    return [
        "",
        "## How the verdict is decided",
        "",
        *method_text(len(claims)),
        "",
        "## The paper's notes and discrepancies",
        "",
        exp.paper.notes,
        "",
        "## Regenerate",
        "",
        "```",
        command,
        "```",
        f"(training time of the {meta.get('n_runs', '?')} runs at {judge_name(meta)}: "
        f"{meta.get('runs_wall_time_s', float('nan')):.0f} s summed over runs"
        + (f"; of the {tuned.n_runs} tuning and rerun runs: {tuned.runs_wall_time_s:.0f} s" if tuned else "")
        + "; finished runs are kept, so a re-run only fills in what is missing)",
        "",
    ]


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


def write_verdict(out_dir: str | Path, judged: Judged | None = None) -> Path:
    """Judge every claim from out_dir's result files and reproduce.json (or take `judged`, what
    judge_folder(out_dir) returned); write out_dir/verdict.md."""
    out = Path(out_dir)
    exp, meta, claims, tuned = judged if judged is not None else judge_folder(out)
    text = render(exp, meta, claims, reproduce_command(meta, out), tuned)
    path = out / "verdict.md"
    path.write_text(text, encoding="utf-8")
    return path
