"""Fair step-size tuning: the same search budget for every optimizer, chosen on validation,
judged on paired test seeds.

    from optimlab.tune import tune
    result = tune(config, "runs/tune-default", budget=8, search="grid")   # -> tune.md, lr_sensitivity.png

`tune` and friends are imported lazily (they pull in torch through the sweep).
"""

from __future__ import annotations

import importlib
from typing import Any

_SEARCH = "optimlab.tune.search"
__all__ = ["tune", "TuneResult", "TuneError", "Candidate", "CandidateScore", "make_candidates", "SEARCHES"]


def __getattr__(name: str) -> Any:
    module = importlib.import_module(_SEARCH)
    if name in module.__all__:
        return getattr(module, name)
    raise AttributeError(f"module 'optimlab.tune' has no attribute {name!r}")
