"""The statistics of optimlab's verdicts: NumPy and SciPy only (no torch, no runner, no matplotlib).

    from optimlab.stats import summarize, judge_family
    summary = summarize(records, baseline="sgdm")  # records: anything shaped like stats.RunRecord

- inference.py: the verdict rule (paired Student-t, one Holm budget over a family's direction and size
                tests, failures at the worst value, the decisions, MDE, looks, the sign-flip companion)
- margins.py:   equivalence margins per metric (the "equivalent (within ±m)" verdict)
- permutation.py: the sign-flip permutation test (claims with failed runs; the pages' companion)
- summary.py:   per-optimizer means ± CI, failure rates, paired comparisons with a baseline
- sequential.py: compare's decisions at one planned look, and the sentence a report says of them
- metrics.py:   which metrics exist, which way is better, their ranges and titles
"""

from __future__ import annotations

from optimlab.stats.inference import ALPHA, MIN_SEEDS, judge_family, plan_looks
from optimlab.stats.summary import DECISIONS, RunRecord, Summary, failure_rate, mean_ci, summarize

__all__ = [
    "ALPHA",
    "MIN_SEEDS",
    "DECISIONS",
    "RunRecord",
    "Summary",
    "failure_rate",
    "judge_family",
    "mean_ci",
    "plan_looks",
    "summarize",
]
