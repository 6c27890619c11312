"""The decisions of a sequential run: compare's comparisons at one look, and how a report states them.

A look tests every optimizer against the baseline at its share alpha_k of the family-wise alpha
(optimlab.stats.inference.obf_spending over plan_looks); a decision made at a look is final.
optimlab.experiments.looks runs the looks and keeps their record.
"""

from __future__ import annotations

from typing import Any

from optimlab.stats.summary import DECISIONS, summarize

__all__ = ["comparison_key", "compare_decisions", "apply_to_summary", "plan_text"]


def comparison_key(label: str, dataset: str, model: str) -> str:
    return f"{label}|{dataset}|{model}"


def compare_decisions(
    results: list[Any],
    baseline: str,
    alpha: float,
    metric: str = "accuracy",
    lower_is_better: bool = False,
    margins: dict[str, float] | None = None,
) -> dict[str, str]:
    """{comparison key: inference verdict} for every optimizer against the baseline, Holm at alpha
    (margins: equivalence margins per metric, as summarize takes them)."""
    back = {v: k for k, v in DECISIONS.items()}
    lower = {metric} if lower_is_better else ()
    s = summarize(results, baseline, metrics=(metric,), alpha=alpha, lower_is_better=lower, margins=margins)
    return {comparison_key(p.label, p.dataset, p.model): back[p.decision] for p in s.paired}


def apply_to_summary(summary: Any, record: dict[str, Any], metric: str = "accuracy") -> None:
    """Replace the fixed-n decisions on `metric` by the sequential ones (with the look that made them)."""
    decided = record.get("decisions", {})
    for p in summary.paired:
        if p.metric != metric:
            continue
        hit = decided.get(comparison_key(p.label, p.dataset, p.model))
        if hit is not None:
            p.decision = f"{DECISIONS[hit['verdict']]} (at {hit['look']} seeds)"
        elif p.decision in ("better", "worse"):
            p.decision = DECISIONS["inconclusive"]  # decisive at fixed n only: not at any look's share of alpha


def plan_text(record: dict[str, Any]) -> str:
    """One sentence for a report: the planned looks, their shares of alpha, where it stopped and why."""
    shares = ", ".join(f"{n}: {a:.4f}" for n, a in zip(record["looks"], record["alphas"]))
    return (
        f"Seeds were added until decided (`--until-decided`): planned looks at {record['looks']} seeds, each "
        f"tested at its share of α = 0.05 (O'Brien-Fleming-type spending; seeds: share) {shares}; stopped at "
        f"{record['stopped_at']} seeds ({record['reason']}). A decision made at a look is final."
    )
