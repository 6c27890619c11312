"""optimlab: the optimizers of a few recent papers (RSGDM, WGD, TM-SGD), exact and as fast as
torch's own, and a harness that compares optimizers over seeds with honest statistics.

>>> import optimlab
>>> opt = optimlab.create_optimizer("rsgdm", model.parameters(), lr=0.01, beta=0.9)  # doctest: +SKIP

The optimizer API and `optimlab.judge` are re-exported here lazily, so that `optimlab.reference` (pure NumPy) can be
imported without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_OPTIM_EXPORTS = (
    "OptimizerInfo",
    "RSGDM",
    "SGDMEMA",
    "TMSGD",
    "WGD",
    "centralize_gradient",
    "create_optimizer",
    "list_optimizers",
    "start_multistep",
)

__all__ = [*_OPTIM_EXPORTS, "judge", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _OPTIM_EXPORTS:
        return getattr(importlib.import_module("optimlab.optim"), name)
    if name == "judge":  # optimlab.judging.judge: runs made elsewhere, judged by compare's statistics
        return importlib.import_module("optimlab.judging").judge
    raise AttributeError(f"module 'optimlab' has no attribute {name!r}")
