"""Every claim of the results page as one family: the page-wide verdicts.

    page = judge_page(judged)      # PageClaims: every claim on the page, its page-wide verdict
    page.survivors                 # the claims that survive Holm over the whole page

Each experiment's verdicts hold their error rate within the experiment; a page of ~60 claims read at
once needs the family to be the page. judge_page puts every claim the page shows — each experiment's
claims at its catalogue settings, its tuned claims (not those whose tuned runs are the same runs) and
the claims judged on the authors'-code arms — into one call of optimlab.stats.inference.judge_family,
from the same per-seed differences and the same direction p-values (the sign-flip test's where a run
failed) the experiments used, with the same planned size tests: one step-down Holm over the page at
ALPHA, so the chance of any false decisive verdict anywhere on the page is at most ALPHA.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optimlab.reproduce.claim_runs import oriented
from optimlab.reproduce.judging import ClaimResult, Judged
from optimlab.stats import inference

__all__ = ["PageClaim", "PageClaims", "judge_page", "page_claims"]


@dataclass
class PageClaim:
    experiment: str
    judge: str  # "main" | "tuned" | "authors' code"
    result: ClaimResult
    page_verdict: str = inference.INCONCLUSIVE
    page_p: float = math.nan  # the direction p adjusted over the whole page


@dataclass
class PageClaims:
    claims: list[PageClaim]

    @property
    def survivors(self) -> list[PageClaim]:
        return [c for c in self.claims if c.page_verdict in (inference.SURVIVES, inference.SURVIVES_SMALLER)]

    def counts(self) -> dict[str, int]:
        """Page-wide verdict -> number of claims, in VERDICTS order, zeros left out."""
        found = [c.page_verdict for c in self.claims]
        return {v: found.count(v) for v in inference.VERDICTS if v in found}


def page_claims(judged: Sequence[Judged]) -> list[PageClaim]:
    """Every claim the page shows, once: main, tuned (unless the same runs) and authors'-code claims."""
    out = []
    for exp, meta, claims, tuned in judged:
        out += [PageClaim(exp.name, "main", r) for r in claims]
        out += [PageClaim(exp.name, "authors' code", r) for _, r in meta.get("code_claims", []) if r is not None]
        if tuned is not None:
            out += [PageClaim(exp.name, "tuned", r) for r, same in zip(tuned.claims, tuned.same_as_paper) if not same]
    return out


def judge_page(judged: Sequence[Judged], alpha: float = inference.ALPHA) -> PageClaims:
    """Judge every claim of the page as one family (see the module text)."""
    claims = page_claims(judged)
    if not claims:
        return PageClaims([])
    rs = [c.result for c in claims]
    d = inference.family_array([r.differences for r in rs])
    # a size test is planned page-wide exactly where it was planned in the claim's experiment
    delta = np.array(
        [
            oriented(r.claim) * r.paper_diff if r.paper_diff is not None and math.isfinite(r.small_holm_p) else math.nan
            for r in rs
        ]
    )
    margin = np.array([r.margin for r in rs])
    p_dir = np.array([r.direction_p for r in rs])
    j = inference.judge_family(d, delta, alpha, margin=margin, p_direction=p_dir)
    for i, c in enumerate(claims):
        c.page_verdict, c.page_p = inference.VERDICTS[j.code[i]], float(j.p_two_adj[i])
    return PageClaims(claims)
