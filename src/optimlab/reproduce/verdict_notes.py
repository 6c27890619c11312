"""The fixed text of a verdict page: how the verdict is decided, and the notes under its claims table.

optimlab.reproduce.verdict renders the page; the rule itself is optimlab.stats.inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optimlab.reproduce.judging import ClaimResult
from optimlab.stats import inference
from optimlab.stats.inference import CONTRADICTED, EQUIVALENT, INCONCLUSIVE, SMALLER, SURVIVES, TOO_FEW

__all__ = ["method_text", "sequential_text", "magnitude_absent_lines", "companion_lines"]


def method_text(m: int | None) -> list[str]:
    """How the verdict is decided, with this family's size m (None: said of every experiment's family)."""
    a = inference.ALPHA
    family = f"This experiment's {m} claim(s) are" if m is not None else "Each experiment's claims are"
    strictest = f"{a:g}/{m}" if m is not None else f"{a:g}/m for m claims"
    return [
        f"The difference is optimizer − baseline on the same seeds (same initial weights and batch order), over "
        f"the seeds both arms ran; a failed run (diverged or raised) counts at the worst value either arm reached, "
        f"so failures are judged, not dropped (such a claim's no-difference test is the sign-flip permutation "
        "test, exact for the symmetric differences equal arms give; the t-test runs over its level on those "
        f"spiky differences). {family} one family with one α budget: "
        "each claim's paired t-test of no difference (two-sided) and, where planned, its size tests "
        '("difference ≥ the paper\'s", "|difference| ≥ the margin") are adjusted by one step-down Holm procedure '
        "in which a claim's size tests share half its weight and count as alternatives to its no-difference test "
        "(they can never be true together), so the chance of any false decisive verdict here is at most "
        f"{a:.0%} and the no-difference tests keep Holm's levels ({strictest} at the strictest step).",
        "",
        f"- **{SURVIVES}**: the adjusted p < {a:g} and the difference is in the claimed direction.",
        f"- **{SURVIVES}, but smaller than claimed**: the same, and a one-sided t-test also rejects "
        '"difference ≥ the paper\'s difference" (adjusted p < ' + f"{a:g}).",
        f"- **{CONTRADICTED}**: the adjusted p < {a:g} in the other direction.",
        f'- **{EQUIVALENT} (within ±m)**: neither, and two one-sided t-tests reject "|difference| ≥ m" at the '
        "claim's margin m (defaults per metric: optimlab.stats.margins; a catalogue claim may set `margin`).",
        f'- **{SMALLER}**: none of these, and the one-sided test rejects "difference ≥ the paper\'s difference": '
        "the paper's gain lies above what these runs allow.",
        f"- **{INCONCLUSIVE}**: none of these. *What a null could detect* gives the MDE — the true difference "
        "these seeds detect with 80% power at the strictest Holm step, with the sd taken at its one-sided "
        f"{inference.SD_CONFIDENCE:.0%} upper confidence bound (the sample sd itself would leave the real power "
        "below 80% more than half the time) — and how many seeds the paper's own difference would need "
        f"(never fewer than {inference.MIN_SEEDS}).",
        f"- **{TOO_FEW}**: fewer than {inference.MIN_SEEDS} paired seeds; never decisive.",
        "",
        "*Smaller than claimed* and the seeds the paper's difference needs compare our effect's size with the "
        "paper's, so they are computed only when the runs are on the paper's scale (its data set, network, width "
        "and epochs): a difference at another accuracy level or on stand-in data says nothing about the paper's.",
        "",
        "The interval shown is the unadjusted paired Student-t 95% interval. Ties (all differences equal) have no "
        "t statistic and are never decisive. Each arm's failure rate has an exact (Clopper-Pearson) 95% interval, "
        "the failures are compared between the arms with an exact McNemar test on the seeds where only one arm "
        "failed, and a note says when leaving the failed seeds out would change the verdict. The sign-flip "
        "permutation test (exact for differences symmetric about 0) is named where it would give another "
        "verdict than the t-test. Under skewed differences the t-test's false verdicts point away from the long "
        "tail and mostly come from samples that do not look skewed. Method and measured error rates: "
        "docs/statistics.md; code: optimlab.stats.inference.",
    ]


def sequential_text(seq: dict[str, Any]) -> list[str]:
    looks = seq.get("looks", [])
    shares = ", ".join(f"{n}: {a:.4f}" for n, a in zip(looks, seq.get("alphas", [])))
    return [
        f"**Seeds added until decided** (`--until-decided`): looks at {looks} seeds, each at its share of "
        f"α = {inference.ALPHA} (O'Brien-Fleming-type spending; seeds: share) {shares}; stopped after "
        f"{seq.get('stopped_at', '?')} seeds ({seq.get('reason', '')}). A verdict decided at a look is final; "
        "p-values shown are the fixed-n ones at the last look, for reference.",
        "",
    ]


def magnitude_absent_lines(claims: Sequence[ClaimResult]) -> list[str]:
    """Why no claim's size is compared with the paper's, when the paper printed figures to compare."""
    why = next((r.magnitude_absent for r in claims if r.magnitude_absent), None)
    if why is None or not any(r.paper_diff is not None for r in claims):
        return []
    return [
        f"> **Sizes not compared with the paper's** (*{SMALLER}*, seeds the paper's difference needs): these runs "
        f"are not on the paper's scale ({why}), so our difference and the paper's are differences of different "
        "things. The direction and equivalence verdicts stand.",
        "",
    ]


def companion_lines(claims: Sequence[ClaimResult]) -> list[str]:
    """Claims where the distribution-free sign-flip test would give another verdict than the t-test."""
    rows = [
        f"- {r.claim.optimizer} vs {r.claim.baseline} ({r.claim.metric}): {r.companion}." for r in claims if r.companion
    ]
    return ["**Where the t-test and a distribution-free test disagree:**", "", *rows, ""] if rows else []
