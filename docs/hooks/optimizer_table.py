"""MkDocs hooks: the optimizer table generated from the registry, and repository links on generated pages.

- docs/optimizers.md holds the marker line `<!-- optimizer-table -->`; at build time it becomes a
  Markdown table of the built-in optimizers from `optimlab.list_optimizers()` (names registered by
  optimlab itself, not by a plugin), so the table cannot drift from the registry.
- The generated pages (docs/results.md, docs/studies/*.md, written by `python -m
  optimlab.reproduce.page` and `optimlab study`) link to run files under results/, outside the
  site; there such a link becomes its text (the file's path in the repository) instead of a broken
  link. Every other page keeps `mkdocs build --strict`'s link check.
"""

from __future__ import annotations

import re
from typing import Any

MARKER = "<!-- optimizer-table -->"
# who implements a built-in name; anything else (a plugin's entry point) is left out of the table
BUILTIN_ORIGINS = ("optimlab", "torch", "published-code", "pytorch_optimizer")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _defaults(defaults: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in defaults.items())


def optimizer_table() -> str:
    """The Markdown table of every built-in optimizer name, in registry order."""
    import optimlab  # imported here: mkdocs loads the hook before anything needs torch

    rows = [
        "| name | what it is | momentum convention | paper / source | origin | defaults |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for info in optimlab.list_optimizers():
        if info.origin not in BUILTIN_ORIGINS:
            continue
        cells = [f"`{info.name}`", info.summary, info.convention, info.paper, info.origin, _defaults(info.defaults)]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


GENERATED_PAGES = re.compile(r"^(results\.md|studies/.+\.md)$")
OUTSIDE_LINK = re.compile(r"\[([^\]]+)\]\(\.\./[^)\s]+\)")


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if GENERATED_PAGES.match(page.file.src_uri):
        markdown = OUTSIDE_LINK.sub(r"\1", markdown)
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, optimizer_table())
    return markdown
