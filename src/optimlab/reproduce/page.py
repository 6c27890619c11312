"""One page with every reproduction's verdict (docs/results.md), a table of all claims on top.

    python -m optimlab.reproduce.page results/reproduce-*-cpu --out docs/results.md

Each folder is one made by `optimlab reproduce`. The claims are judged afresh from the folders'
result files (optimlab.reproduce.verdict.judge_folder), so the page and the verdict.md files agree.
Below the table, each folder's verdict.md follows with its headings moved down one level; links
into a run folder become links relative to the page (results/ is committed) and the lr-sensitivity
plots are copied next to the page (img/results/<name>-<scale>-lr.png) so they show.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from optimlab.report.display import claim_label
from optimlab.reproduce.judging import ClaimResult, Judged, judge_folder
from optimlab.reproduce.layout import META_FILE
from optimlab.reproduce.run import cpu_stand_in
from optimlab.reproduce.verdict import fmt, fmt_diff, fmt_mean_ci, fmt_p, write_verdict
from optimlab.stats import inference

IMG_DIR = Path("img") / "results"  # relative to the page
INTRO = """\
Made by `bash scripts/results.sh`: `optimlab reproduce NAME --scale cpu` for every experiment in the
catalogue (with `--tune` for some), then `python -m optimlab.reproduce.page`. Anyone can regenerate it;
finished runs are kept, so an interrupted regeneration resumes.

**Read the scale first.** At CPU scale every image-classification experiment runs the paper's optimizers and
hyperparameters, but on the real 5,085-image CIFAR-10 subset in `shared/data` (all ten classes stand
in for CIFAR-100, the six animal classes for Animals-10), with networks at 1/8 width trained for 2-8
short epochs: {minutes} minutes per experiment on this machine instead of days on a GPU. The networks
reach {accuracy} % test accuracy at the papers' learning rates (mean over seeds per optimizer; chance:
10 %, or 16.7 % on six classes), where the papers' reached 45-95 %. The paper scale (`--scale paper
--data-dir DIR`, a CUDA GPU) is what can test the printed numbers.{other_tasks}

**Paper 004's key-point, image-generation and segmentation tasks run on stand-ins** (named in their sections):
key points on `mnist-keypoints` — real mnist-5k digits with *synthetic* targets (the ink centroid and
the extreme ink points under a fixed random placement), not faces; its SGD, TM-SGD and SGD-M run at
lr 0.1 instead of the paper's 1e-2, which at this budget leaves SGD at the mean predictor. Image
generation on mnist-5k digits, not sneakers, scored by **FID (classifier features)**: the Fréchet
distance over a small digit classifier's features, not Inception FID, so no number there is
comparable with the paper's. Segmentation runs on `mnist-segmentation` — real mnist-5k digits composited
on synthetic textured 32×32 backgrounds, the mask the digit's pixels — not VOC2007 scenes, with an
LR-ASPP head on a ResNet-18 at 1/8 width and learning rates raised from the paper's 1e-4 (at 1e-4 no
optimizer left the all-background predictor there).

**Read the verdicts as decisions with stated error rates.** Each experiment's claims are one family:
paired t-tests over {seeds} seeds, Holm-adjusted, so within an experiment the chance of any false
*survives* or *contradicted* is at most 5 %. *Inconclusive* means these runs cannot tell the claimed
difference from noise — not that it is false; its row gives the smallest difference the runs could
have detected (MDE, 80 % power) and the seeds the paper's own difference would need. *Smaller than
claimed* means the paper's printed gain lies above what the runs allow.

**Two judges.** *At the paper's settings*, every optimizer gets the lr the paper used. *Tuned*
(`--tune`), every optimizer gets the same lr grid, chooses on the validation split, and is rerun at
its choice on the same seeds; this is the fair comparison, since one lr buys different step sizes
under different conventions (`sgdm` heavy ball vs `sgdm-ema`, Adam's normalised steps).
"""


def _paper_diff(r: ClaimResult) -> str:
    if r.paper_optimizer is None or r.paper_baseline is None:
        return "— (no figures)"
    return fmt(r.claim.metric, r.paper_optimizer - r.paper_baseline, signed=True)


def _cell(r: ClaimResult | None, same: bool = False) -> str:
    if r is None:
        return "not run"
    if same:
        return "same runs (tuning chose the paper's settings)"
    return f"{fmt_diff(r)}, p {fmt_p(r.t_p)} / Holm {fmt_p(r.holm_p)} **{r.verdict}**"


def summary_table(judged: Sequence[Judged]) -> tuple[list[str], dict[str, int], float, dict[str, str]]:
    """The markdown rows of the claims table, verdict counts (paper settings, then 'tuned: ...'),
    the training time of every run in the folders (s, summed over runs), and the ranges the intro
    quotes: {"minutes": sweep wall time per folder, "accuracy": mean test accuracy per optimizer}."""
    accs: list[float] = []
    minutes: list[float] = []
    other: dict[str, str] = {}  # experiment name -> its data, for the experiments run on a stand-in
    other_minutes: list[float] = []
    seeds: list[int] = []
    lines = [
        "| experiment | claim | ours: the baseline at the paper's settings, mean [95% CI] | paper: difference "
        "| ours at the paper's settings: paired diff [t 95% CI], p raw / Holm, verdict | MDE at the paper's "
        "settings (seeds the paper's difference needs) | ours tuned: paired diff [t 95% CI], p, verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    counts: dict[str, int] = {}
    seconds = 0.0
    for exp, meta, claims, tuned in judged:
        seconds += meta["runs_wall_time_s"] + (tuned.runs_wall_time_s if tuned else 0.0)
        if cpu_stand_in(exp) is None:  # on (a subset of) the paper's own data: the intro quotes its ranges
            minutes.append(meta.get("sweep_wall_time_s", math.nan) / 60)
            accs += [100 * v for v in meta["accuracy_means"].values()]
        else:
            other_minutes.append(meta.get("sweep_wall_time_s", math.nan) / 60)
            other[exp.name] = f"{meta.get('dataset_title', meta.get('dataset'))} for {exp.paper.dataset or exp.name}"
        seeds.append(int(meta.get("seeds", 0)))
        for i, r in enumerate(claims):
            t = tuned.claims[i] if tuned is not None else None
            same = tuned is not None and tuned.same_as_paper[i]
            mde = fmt(r.claim.metric, r.mde).replace(" %", " pts") if np.isfinite(r.mde) else "—"
            need = f" ({r.seeds_needed})" if r.seeds_needed is not None else ""
            lines.append(
                f"| [{exp.name}](#{_anchor(exp.name)}) | {r.claim.optimizer} vs {r.claim.baseline}, "
                f"{claim_label(r.claim.metric)} | {r.claim.baseline} {fmt_mean_ci(r.claim.metric, r.baseline)} | "
                f"{_paper_diff(r)} | {_cell(r)} | {mde}{need} | {_cell(t, same)} |"
            )
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
            if t is not None and not same:
                counts[f"tuned: {t.verdict}"] = counts.get(f"tuned: {t.verdict}", 0) + 1
    ranges = {
        "other_tasks": (
            " The other tasks run on real stand-in data sets from `shared/data` ("
            + "; ".join(f"{name}: {what}" for name, what in other.items())
            + f"), small models and few epochs, {_span(other_minutes, '{:.0f}')} minutes per experiment; "
            "their numbers are not comparable with the papers' (each section says how the stand-in differs)."
            if other
            else ""
        ),
        "minutes": _span(minutes, "{:.0f}"),
        "accuracy": _span(accs, "{:.0f}"),
        "seeds": _span([float(s) for s in seeds], "{:.0f}"),
    }
    return lines, counts, seconds, ranges


def coverage_text(judged: Sequence[Judged]) -> list[str]:
    """Which catalogue experiments this page leaves out (not yet run under these rules), and which lack
    the tuned judge, so a reader never mistakes a partial page for the whole catalogue."""
    from optimlab.reproduce.catalog import list_paper_experiments

    shown = {exp.name for exp, _, _, _ in judged}
    missing = [n for n in list_paper_experiments() if n not in shown]
    untuned = sorted(exp.name for exp, _, _, tuned in judged if tuned is None)
    lines = []
    if missing:
        lines += [
            f"**Not on this page yet** ({len(missing)} of {len(missing) + len(shown)} catalogue experiments): "
            f"{', '.join(missing)}. Their runs under these rules are still to be made; `bash scripts/results.sh` "
            "resumes (finished runs are kept in `results/`).",
            "",
        ]
    if untuned:
        lines += [f"Judged at the paper's settings only (no tuned judge yet): {', '.join(untuned)}.", ""]
    return lines


def multiplicity_text(judged: Sequence[Judged]) -> list[str]:
    """The page-level statement: what many claims at once mean for the counts above."""
    claims = [r for _, _, cs, _ in judged for r in cs]
    m = len(claims)
    p = np.array([r.t_p for r in claims], dtype=float)
    bh = inference.benjamini_hochberg_count(p, inference.ALPHA)
    holm_all = int(np.sum(inference.holm(p) < inference.ALPHA))
    a = inference.ALPHA
    return [
        "**Many claims at once.** "
        f"This page judges {m} claims at the paper's settings in {len(judged)} experiments. Holm within each "
        f"experiment bounds the chance of any false decisive verdict in that experiment by {a:.0%}. If no "
        f"optimizer differed from its baseline at all, each claim would *survive* with probability at most "
        f"{a / 2:g}, so at most {a / 2 * m:.2f} of the {m} would be expected to survive by chance. Across the "
        f"whole page, Benjamini-Hochberg at a {a:.0%} false discovery rate over the {m} raw two-sided p-values "
        f"finds {bh} difference(s); Holm over all {m} at once (the strictest reading) finds {holm_all}."
    ]


def _span(values: list[float], spec: str) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "?"
    lo, hi = spec.format(min(finite)), spec.format(max(finite))
    return lo if lo == hi else f"{lo}-{hi}"


def _anchor(name: str) -> str:
    """GitHub's anchor for the section heading 'Reproducing <name>: verdict'."""
    return re.sub(r"[^a-z0-9 -]", "", f"reproducing {name}: verdict".lower()).replace(" ", "-")


def embed(folder: Path, page: Path, judged: Judged | None = None) -> str:
    """folder's verdict.md (rewritten from its result files, or from `judged`) ready to sit inside the page."""
    text = write_verdict(folder, judged).read_text(encoding="utf-8")
    shown = folder.as_posix()
    plot = folder / "tuned" / "lr_sensitivity.png"
    if plot.is_file():
        target = page.parent / IMG_DIR / f"{folder.name.removeprefix('reproduce-')}-lr.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plot, target)
        text = text.replace("(tuned/lr_sensitivity.png)", f"({(IMG_DIR / target.name).as_posix()})")

    def link(m: re.Match[str]) -> str:  # run folders live in results/ (committed): link them from the page
        rel = Path(os.path.relpath(folder / m.group(2), page.parent))
        return f"[`{shown}/{m.group(2)}`]({rel.as_posix()})"

    text = re.sub(r"\[([^\]]+)\]\(((?:tuned/)?[\w./-]+\.md)\)", link, text)
    return "\n".join("#" + ln if ln.startswith("#") else ln for ln in text.splitlines())


def write_results_page(folders: Sequence[str | Path], out: str | Path, intro: str = INTRO) -> Path:
    """Write the page: title, intro, the claims table with counts and compute time, then every verdict."""
    paths = [Path(f) for f in folders]
    if not paths:
        raise ValueError("write_results_page: no reproduction folders given")
    page = Path(out)
    judged = [judge_folder(f) for f in paths]  # once per folder: the table and the sections share it
    rows, counts, seconds, ranges = summary_table(judged)
    plain = {k: v for k, v in counts.items() if not k.startswith("tuned: ")}
    tuned = {k.removeprefix("tuned: "): v for k, v in counts.items() if k.startswith("tuned: ")}

    def say(c: dict[str, int]) -> str:
        return ", ".join(f"{n} {v}" for v, n in sorted(c.items())) or "none"

    lines = [
        "# Reproductions: verdicts on the papers' claims",
        "",
        intro.strip().format(**ranges),
        "",
        "## All claims",
        "",
        "Paired difference = optimizer − baseline over the same seeds (percentage points for accuracy), "
        "with its paired Student-t 95% interval, the paired t-test p raw and Holm-adjusted within the "
        "experiment, and the verdict. Each experiment's section below has the full table (both means "
        "with CIs, wins/losses, failure rates).",
        "",
        *rows,
        "",
        f"At the paper's settings: {say(plain)} (of {sum(plain.values())} claims). "
        + (
            f"Tuned: {say(tuned)} (of {sum(tuned.values())} claims judged tuned, not counting those whose "
            f"tuned runs are the paper-settings runs). "
            if tuned
            else ""
        )
        + f"Training time of every run on this page: {seconds / 60:.0f} min summed over runs.",
        "",
        *multiplicity_text(judged),
        "",
        *coverage_text(judged),
    ]
    for folder, j in zip(paths, judged):
        lines += [embed(folder, page, j), ""]
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return page


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m optimlab.reproduce.page", description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="folders made by optimlab reproduce")
    p.add_argument("--out", type=Path, default=Path("docs/results.md"), help="the page (default docs/results.md)")
    p.add_argument(
        "--intro",
        type=Path,
        help="a markdown file whose text goes under the title (default: what CPU-scale verdicts mean)",
    )
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
