"""The results page (docs/results.md): what ran, the page-wide verdicts, one summary table per paper.

    python -m optimlab.reproduce.page results/reproduce-*-cpu --out docs/results.md

Each folder is one made by `optimlab reproduce`. Its claims are judged afresh from its result files
(optimlab.reproduce.judging.judge_folder), its verdict.md is rewritten, and the page links to it (the
per-experiment detail is one click away). The page leads with what ran (the scale, once), then every
claim judged as one page-wide family (optimlab.reproduce.pagewide), then one table per paper whose
every row names the data actually used and every setting that differs from the paper's, the code that
made each experiment's runs, and the method once.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from optimlab.report.display import claim_label
from optimlab.reproduce import provenance
from optimlab.reproduce.catalog import list_paper_experiments, load_paper_experiment
from optimlab.reproduce.judging import ClaimResult, Judged, judge_folder
from optimlab.reproduce.layout import META_FILE
from optimlab.reproduce.pagewide import PageClaims, judge_page
from optimlab.reproduce.verdict import fmt, fmt_diff, fmt_p, write_verdict
from optimlab.reproduce.verdict_notes import method_text
from optimlab.stats import inference

PAPERS = (("000", "Papers 000/001: RSGDM"), ("003", "Paper 003: WGD"), ("004", "Paper 004: TM-SGD"))
INTRO = """\
Made by `bash scripts/results.sh`: `optimlab reproduce NAME --scale cpu` for every experiment in the
catalogue (with `--tune` for some), then `python -m optimlab.reproduce.page`. Finished runs are kept, so
re-judging costs no training. Verdicts re-judged with the code of {judged_by}; the code that made each
experiment's runs is in *Runs and code* below.

**What ran: CPU scale, early training.** Every experiment on this page ran at CPU scale: at most
{steps} steps of {batch} examples per epoch for {epochs} epochs, {minutes} minutes per experiment on 2
cores. The image classifiers reach {accuracy} % test accuracy (mean per optimizer; chance 10 %, or
16.7 % on six classes), where the papers' tables report {paper_acc}. These runs test the **direction of
an effect early in training**, not the papers' converged numbers, and no effect's size is compared with
a paper's. Every summary row names the data actually used and every setting that differs from the
paper's (data, network, width, epochs, steps per epoch, TM-SGD's switch epoch, each arm's lr); a verdict
at such settings is called *at CPU-scale settings*, never *the paper's settings*. The paper scale
(`--scale paper --data-dir DIR`, a CUDA GPU) is what can test the printed numbers.

**Data actually used.** {data_counts}

**Two judges.** *At CPU-scale settings*, every optimizer gets the lr in its row (the paper's, unless the
row says otherwise). *Tuned* (`--tune`), every optimizer gets the same lr grid, chooses on the validation
split, and is rerun at its choice on the same seeds: the fair comparison, since one lr buys different
step sizes under different conventions (`sgdm` heavy ball vs `sgdm-ema`, Adam's normalised steps).
"""


def _rel(folder: Path, page: Path) -> str:
    return Path(os.path.relpath(folder / "verdict.md", page.parent)).as_posix()


def paper_figures(exp_reported: dict[str, dict[str, float]], r: ClaimResult) -> str:
    """The paper's difference for the claim; where it printed the claim's arms on another metric only
    (e.g. Inception FID where we judge classifier-feature FID), that figure, named as such."""
    c = r.claim
    if r.paper_diff is not None:
        return fmt(c.metric, r.paper_diff, signed=True)
    mine, base = exp_reported.get(c.optimizer, {}), exp_reported.get(c.baseline, {})
    other = next((m for m in mine if m in base), None)
    if other is None:
        return "— (not printed)"
    return (
        f"{fmt(other, mine[other] - base[other], signed=True)} ({mine[other]:g} vs {base[other]:g}, "
        f"{claim_label(other)} as printed; not comparable with ours)"
    )


def _verdict_cell(r: ClaimResult | None, judge: str) -> str:
    if r is None:
        return "not run"
    return f"{fmt_diff(r)}, p {fmt_p(r.direction_p)} / Holm {fmt_p(r.holm_p)} **{r.verdict}** at {judge}"


def _experiment_cell(folder: Path, page: Path, exp_name: str, meta: dict, repeats: dict[str, str]) -> str:
    cell = f"[{exp_name}]({_rel(folder, page)})"
    if meta.get("stand_in"):
        cell += f": {meta['stand_in']}"
    if exp_name in repeats:
        cell += f"; repeats {repeats[exp_name]} on other seeds (not new evidence)"
    return cell


def _what_ran(meta: dict) -> str:
    """The data actually used (in bold), then every other setting that differs from the paper's."""
    devs = list(meta.get("deviations", []))
    data = next((d for d in devs if d.startswith("data: ")), f"data: {provenance.data_used(meta)}, the paper's")
    return "; ".join([f"**{data}**", *(d for d in devs if d != data)])


def paper_table(
    rows: Sequence[tuple[Path, Judged]], page: Path, pagewide: dict[int, str], repeats: dict[str, str]
) -> list[str]:
    """One paper's summary table: one row per claim (and per authors'-code claim)."""
    lines = [
        "| experiment | what ran: data actually used; every difference from the paper | claim | paper: difference "
        "| ours: paired diff [t 95% CI], p / Holm in the experiment, verdict | page-wide Holm "
        "| tuned: paired diff, verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for folder, (exp, meta, claims, tuned) in rows:
        exp_cell = _experiment_cell(folder, page, exp.name, meta, repeats)
        judge = meta.get("judge_name", provenance.judge_name(meta))
        code = [(c, r) for c, r in meta.get("code_claims", [])]
        for i, r in enumerate([*claims, *[r for _, r in code]]):
            if r is None:
                continue
            main = i < len(claims)
            t = tuned.claims[i] if tuned is not None and main else None
            same = tuned is not None and main and tuned.same_as_paper[i]
            tuned_cell = (
                "same runs (tuning chose these settings)"
                if same
                else (f"{fmt_diff(t)} **{t.verdict}**" if t is not None else "not run")
            )
            what = f"{r.claim.optimizer} vs {r.claim.baseline}, {claim_label(r.claim.metric)}"
            if not main:
                what += " (the authors' published code)"
            lines.append(
                f"| {exp_cell} | {_what_ran(meta)} | {what} | {paper_figures(exp.paper.reported, r)} "
                f"| {_verdict_cell(r, judge)} | *{pagewide.get(id(r), '—')}* | {tuned_cell} |"
            )
    return lines


def _span(values: Sequence[float], spec: str = "{:.0f}") -> str:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "?"
    lo, hi = spec.format(min(finite)), spec.format(max(finite))
    return lo if lo == hi else f"{lo}-{hi}"


def _papers_accuracy() -> str:
    """The lowest and highest test accuracy the catalogue's papers print, with where the lowest is."""
    found = []
    for name in list_paper_experiments():
        exp = load_paper_experiment(name)
        found += [(v, exp) for f in exp.paper.reported.values() for m, v in f.items() if m == "accuracy"]
    if not found:
        return "no accuracy"
    (lo, lo_exp), (hi, _) = min(found, key=lambda x: x[0]), max(found, key=lambda x: x[0])
    where = f"{lo_exp.paper.id} {lo_exp.paper.references[0] if lo_exp.paper.references else lo_exp.name}"
    return f"{100 * lo:.2f} % ({where}) to {100 * hi:.2f} %"


def repeated_designs(judged: Sequence[Judged]) -> dict[str, str]:
    """experiment -> the experiment whose runs it repeats on other seeds (the same configuration but
    name and seeds); the one on its paper's own data (or first by name) is the original."""
    by_design: dict[str, list[tuple[bool, str]]] = {}
    for exp, meta, _, _ in judged:
        if meta.get("design"):
            by_design.setdefault(meta["design"], []).append((bool(meta.get("stand_in")), exp.name))
    out = {}
    for group in by_design.values():
        first = min(group)[1]
        out.update({name: first for _, name in group if name != first})
    return out


def data_counts(judged: Sequence[Judged], page: PageClaims, repeats: dict[str, str]) -> str:
    """How many of the page's claims are about which data actually used."""
    by_exp = {exp.name: (exp, meta) for exp, meta, _, _ in judged}
    groups: dict[str, list[str]] = {}
    for c in page.claims:
        exp, meta = by_exp[c.experiment]
        used = meta.get("dataset_title", meta.get("dataset"))
        own = "a subset of the paper's data" if "subset" in str(used) else "the paper's data"
        key = f"{used} standing in for {provenance.paper_data(exp)}" if meta.get("stand_in") else f"{used} ({own})"
        groups.setdefault(key, []).append(c.experiment)
    parts = [f"{len(names)} on the {key} ({', '.join(sorted(set(names)))})" for key, names in groups.items()]
    text = f"Of the page's {len(page.claims)} claims: " + "; ".join(parts) + "."
    if any(m.get("stand_in") for _, m in by_exp.values()):
        text += (
            " A claim on a stand-in is evidence about the method on the stand-in's data, not about the paper's "
            "data set: the experiments named for CIFAR-100 or Animals-10 ran on the CIFAR-10 subset and are no "
            "evidence about CIFAR-100 or Animals-10; the tables list them after the runs on the paper's data."
        )
    for name, first in sorted(repeats.items()):
        text += f" {name} at CPU scale repeats {first} on other seeds (the same configuration): not new evidence."
    return text


def pagewide_text(judged: Sequence[Judged], page: PageClaims) -> list[str]:
    """The page-wide verdicts first, then the per-experiment families' counts."""
    a, m = inference.ALPHA, len(page.claims)
    kinds = {k: sum(c.judge == k for c in page.claims) for k in ("main", "tuned", "authors' code")}
    named = "; ".join(
        f"{c.experiment}: {c.result.claim.optimizer} vs {c.result.claim.baseline} ({c.result.claim.metric}"
        + (", tuned" if c.judge == "tuned" else "")
        + f"), {c.page_verdict}, Holm p {fmt_p(c.page_p)}"
        for c in page.survivors
    )
    per_exp: dict[str, int] = {}
    for c in page.claims:
        per_exp[c.result.verdict] = per_exp.get(c.result.verdict, 0) + 1
    p = np.array([c.result.direction_p for c in page.claims])

    def say(counts: dict[str, int]) -> str:
        return ", ".join(f"{n} {v}" for v, n in counts.items())

    return [
        "## Every claim at once",
        "",
        f"This page judges **{m} claims** ({kinds['main']} at each experiment's CPU-scale settings, "
        f"{kinds['tuned']} tuned, {kinds['authors' + chr(39) + ' code']} on the authors'-code arms) in {len(judged)} "
        f"experiments. Judged as **one family over the whole page** (the same per-seed differences and "
        f"direction p-values, one step-down Holm at {a:.0%}, so the chance of any false decisive verdict "
        f"anywhere on the page is at most {a:.0%}): **{len(page.survivors)} of {m} survive**"
        + (f" — {named}." if named else ".")
        + f" Page-wide verdicts: {say(page.counts())}.",
        "",
        f"Within each experiment (Holm over that experiment's claims; the verdicts in the tables): "
        f"{say(dict(sorted(per_exp.items())))}. Those hold their {a:.0%} only one experiment at a time. "
        f"Benjamini-Hochberg at a {a:.0%} false discovery rate over the {m} direction p-values finds "
        f"{inference.benjamini_hochberg_count(p, a)}.",
        "",
    ]


def provenance_lines(rows: Sequence[tuple[Path, Judged]], page: Path) -> list[str]:
    lines = ["## Runs and code", ""]
    for folder, (exp, meta, _, tuned) in rows:
        n_tuned = f" + {tuned.n_runs} tuning runs" if tuned else ""
        lines.append(
            f"- [{exp.name}]({_rel(folder, page)}) (`{folder.as_posix()}/verdict.md`): {meta.get('n_runs')} runs"
            f"{n_tuned}, {meta.get('seeds')} seeds; {meta.get('runs_made_by', 'code not recorded')}."
        )
    return [*lines, ""]


def write_results_page(
    folders: Sequence[str | Path], out: str | Path, intro: str = INTRO, write_verdicts: bool = True
) -> Path:
    """Judge every folder, rewrite its verdict.md (unless write_verdicts is False), and write the page."""
    paths = [Path(f) for f in folders]
    if not paths:
        raise ValueError("write_results_page: no reproduction folders given")
    page = Path(out)
    judged = [judge_folder(f) for f in paths]
    for folder, j in zip(paths, judged):
        j[1]["stand_in"] = provenance.stand_in_title(j[0], j[1])
        if write_verdicts:
            write_verdict(folder, j)
    repeats = repeated_designs(judged)
    pc = judge_page(judged)
    pagewide = {id(c.result): c.page_verdict for c in pc.claims}
    metas = [m for _, m, _, _ in judged]
    image = [m for m in metas if m.get("num_classes") and m.get("dataset") in ("cifar10", "cifar100")]
    budget = [m.get("budget", {}) for m in metas]
    ranges = {
        "judged_by": provenance.code_version(),
        "steps": _span([b.get("steps") or math.nan for b in budget]),
        "batch": _span([b.get("batch") or math.nan for b in budget]),
        "epochs": _span([b.get("epochs") or math.nan for b in budget]),
        "minutes": _span([m.get("sweep_wall_time_s", math.nan) / 60 for m in metas]),
        "accuracy": _span([100 * v for m in image for v in m["accuracy_means"].values()]),
        "paper_acc": _papers_accuracy(),
        "data_counts": data_counts(judged, pc, repeats),
    }
    lines = ["# Reproductions: verdicts on the papers' claims", "", intro.strip().format(**ranges), ""]
    lines += pagewide_text(judged, pc)
    rows = list(zip(paths, judged))
    for paper_id, title in PAPERS:
        mine = [(f, j) for f, j in rows if j[0].paper.id == paper_id]
        mine.sort(key=lambda fj: (bool(fj[1][1].get("stand_in")), fj[1][0].name))  # stand-in runs last
        if not mine:
            continue
        lines += [f"## {title}", ""]
        if any(j[1].get("arm_kinds") for _, j in mine):
            lines += [_wgd_arms_text(mine), "", provenance.EQ11_NOTE, ""]
        lines += [*paper_table(mine, page, pagewide, repeats), ""]
    lines += provenance_lines(rows, page)
    lines += _coverage(judged)
    lines += ["## How the verdicts are decided", "", *method_text(None), ""]
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return page


def _wgd_arms_text(rows: Sequence[tuple[Path, Judged]]) -> str:
    kinds: dict[str, str] = {}
    for _, (_, meta, _, _) in rows:
        kinds.update(meta.get("arm_kinds") or {})
    return "**Which WGD each arm is:** " + "; ".join(f"`{lab}`: {what}" for lab, what in kinds.items()) + "."


def _coverage(judged: Sequence[Judged]) -> list[str]:
    shown = {exp.name for exp, _, _, _ in judged}
    missing = [n for n in list_paper_experiments() if n not in shown]
    untuned = sorted(exp.name for exp, _, _, tuned in judged if tuned is None)
    lines = []
    if missing:
        lines += [
            f"**Not on this page yet** ({len(missing)} of {len(missing) + len(shown)} catalogue experiments): "
            f"{', '.join(missing)}. `bash scripts/results.sh` resumes (finished runs are kept in `results/`).",
            "",
        ]
    if untuned:
        lines += [f"No tuned judge yet: {', '.join(untuned)}.", ""]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m optimlab.reproduce.page", description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="folders made by optimlab reproduce")
    p.add_argument("--out", type=Path, default=Path("docs/results.md"), help="the page (default docs/results.md)")
    p.add_argument("--intro", type=Path, help="a markdown file whose text goes under the title (default: what ran)")
    args = p.parse_args(argv)
    intro = args.intro.read_text(encoding="utf-8") if args.intro else INTRO
    # A folder whose reproduction has not finished yet (its runs are kept so it resumes) has no
    # META_FILE: leave it off the page, which then names the experiment as still to run.
    unfinished = [f for f in args.folders if f.is_dir() and not (f / META_FILE).is_file()]
    for folder in unfinished:
        print(f"skipped (reproduction not finished, no {META_FILE}): {folder}", file=sys.stderr)
    folders = [f for f in args.folders if f not in unfinished]
    if not folders:
        p.error("none of the folders holds a finished reproduction")
    print(write_results_page(folders, args.out, intro))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
