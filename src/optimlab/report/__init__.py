"""Reports of an experiment folder: report.md with its tables (markdown.py), PNG figures (plots.py,
matplotlib Agg) and the number formats every page shares (display.py).

    write_report("runs/compare-default")  # -> runs/compare-default/report.md + PNGs

`write_report` is imported lazily (it pulls in matplotlib only when figures are drawn).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["write_report", "compare_table"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("optimlab.report.markdown"), name)
    raise AttributeError(f"module 'optimlab.report' has no attribute {name!r}")
