"""pytest runs the code blocks of README.md and docs/*.md that are marked runnable (Sybil).

A fenced ```python or ```bash block runs when the line `<!-- runnable -->` (invisible on GitHub
and on the site) stands just before it, a blank line between them allowed; every other block is
only shown. The blocks of one page run in order, in one fresh temporary folder: Python blocks
share one namespace, and bash blocks run under `bash -euo pipefail` with this checkout's
`optimlab` (the venv's console script first on PATH, this checkout's src/ first on PYTHONPATH).
Mark only commands that finish in seconds; bash blocks carry the `slow` marker (each starts
`optimlab`, which imports torch). `pyproject.toml`'s testpaths makes a plain `pytest` collect these
pages.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from sybil import Document, Example, Region, Sybil
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

ROOT = Path(__file__).resolve().parent
RUNNABLE = re.compile(r"<!--\s*runnable\s*-->\s*\Z")
BASH_TIMEOUT_S = 300


def run_bash(example: Example) -> str | None:
    """Run a bash block in the page's folder; the failure message is the block's output."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", str(example.parsed)],
        cwd=example.namespace["docs_folder"],
        env=env,
        capture_output=True,
        text=True,
        timeout=BASH_TIMEOUT_S,
    )
    if done.returncode != 0:
        return (
            f"bash block exited {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
        )
    return None


class RunnableBlockParser:
    """Regions for the fenced python / bash blocks that follow a `<!-- runnable -->` line."""

    evaluators = {"python": PythonEvaluator(), "bash": run_bash}

    def __init__(self) -> None:
        self.lexer = FencedCodeBlockLexer("python|bash")

    def __call__(self, document: Document) -> Iterable[Region]:
        for region in self.lexer(document):
            if not RUNNABLE.search(document.text[: region.start]):
                continue
            region.parsed = region.lexemes["source"]
            region.evaluator = self.evaluators[region.lexemes["language"]]
            yield region


def enter_folder(namespace: dict[str, Any]) -> None:
    namespace["docs_cwd_before"] = os.getcwd()
    namespace["docs_folder"] = tempfile.mkdtemp(prefix="optimlab-docs-")
    os.chdir(namespace["docs_folder"])


def leave_folder(namespace: dict[str, Any]) -> None:
    os.chdir(namespace["docs_cwd_before"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        example = getattr(item, "example", None)
        if isinstance(example, Example) and example.region.evaluator is run_bash:
            item.add_marker(pytest.mark.slow)


pytest_collect_file = Sybil(
    parsers=[RunnableBlockParser()],
    patterns=["README.md", "docs/*.md"],
    setup=enter_folder,
    teardown=leave_folder,
).pytest()
