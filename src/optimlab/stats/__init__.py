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

import importlib
from typing import Any

# imported on first use, so that reading stats.metrics or stats.margins (the CLI's parser, the config)
# loads no SciPy
_LAZY = {
    "ALPHA": "optimlab.stats.inference",
    "MIN_SEEDS": "optimlab.stats.inference",
    "judge_family": "optimlab.stats.inference",
    "plan_looks": "optimlab.stats.inference",
    "DECISIONS": "optimlab.stats.summary",
    "RunRecord": "optimlab.stats.summary",
    "Summary": "optimlab.stats.summary",
    "failure_rate": "optimlab.stats.summary",
    "mean_ci": "optimlab.stats.summary",
    "summarize": "optimlab.stats.summary",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'optimlab.stats' has no attribute {name!r}")
