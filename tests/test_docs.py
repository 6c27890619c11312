"""The README and the documentation pages stay true: links, commands, the generated optimizer table.

The runnable code blocks themselves run through conftest.py (Sybil); `mkdocs build --strict` (CI)
checks the site's links and the API reference. These tests cover what neither does: the README's
relative links (the README is not a page of the site), every `optimlab ...` command shown in a bash
block parses with the real argument parser (a renamed flag fails here, without running anything),
and the optimizer table that docs/hooks/optimizer_table.py generates.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import shlex
import types
from pathlib import Path

import pytest

import optimlab
from optimlab.cli import build_parser
from optimlab.cli.common import UsageError

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# written by hand; docs/results.md and docs/studies/*.md are generated and not checked here
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
# folders other branches add (empty this set once they are merged): until then a missing one is not an error
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def load_hook():
    spec = importlib.util.spec_from_file_location("optimizer_table", ROOT / "docs" / "hooks" / "optimizer_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shown_commands(page: Path) -> list[str]:
    """Every `optimlab ...` command line of the page's bash blocks, continuation lines joined, comments cut."""
    commands = []
    for language, body in FENCE.findall(page.read_text(encoding="utf-8")):
        if language not in ("bash", "sh", "console"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("optimlab ") and "..." not in line:
                commands.append(line)
    return commands


def test_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; details belong on the docs site"


def test_readme_links_resolve() -> None:
    missing = []
    for target in LINK.findall(README.read_text(encoding="utf-8")):
        if "://" in target or target.startswith("mailto:"):
            continue
        if not (ROOT / target).exists():
            missing.append(target)
    assert not missing, f"README.md links to missing files: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_shown_commands_parse(page: Path) -> None:
    parser = build_parser()
    bad = []
    for command in shown_commands(page):
        try:
            parser.parse_args(shlex.split(command)[1:])
        except (UsageError, SystemExit) as e:
            bad.append(f"{command!r}: {e}")
    assert not bad, f"{page.name} shows commands the CLI refuses:\n" + "\n".join(bad)


def test_some_commands_are_checked() -> None:
    """The command check above sees the pages' commands (a broken extraction would pass it vacuously)."""
    assert len(shown_commands(ROOT / "docs" / "getting-started.md")) >= 5
    assert any(c.startswith("optimlab reproduce") for c in shown_commands(README))


def test_optimizer_table_lists_every_builtin_name() -> None:
    hook = load_hook()
    table = hook.optimizer_table()
    rows = [line for line in table.splitlines()[2:] if line.startswith("| `")]
    names = [row.split("`")[1] for row in rows]
    assert names == [info.name for info in optimlab.list_optimizers() if info.origin in hook.BUILTIN_ORIGINS]
    assert {"sgd", "sgdm-ema", "rsgdm", "tmsgd", "wgd-sgdm", "wgd-nadam-published", "apollo"} <= set(names)
    assert "| `rsgdm` | " in table and "beta=0.9" in table


def test_optimizer_table_leaves_out_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = load_hook()
    builtin = optimlab.list_optimizers()
    plugin = dataclasses.replace(builtin[0], name="my-plugin-opt", origin="plugin")
    monkeypatch.setattr(optimlab, "list_optimizers", lambda: [*builtin, plugin])
    assert "my-plugin-opt" not in hook.optimizer_table()
    assert "`sgd`" in hook.optimizer_table()


def test_generated_pages_lose_links_out_of_the_site() -> None:
    """results.md links to run files under results/ (outside docs/): the site shows their paths instead."""
    hook = load_hook()
    text = "report: [`results/x/report.md`](../results/x/report.md); [Speed](speed.md)"

    def page(uri: str) -> types.SimpleNamespace:
        return types.SimpleNamespace(file=types.SimpleNamespace(src_uri=uri))

    assert hook.on_page_markdown(text, page("results.md")) == "report: `results/x/report.md`; [Speed](speed.md)"
    assert hook.on_page_markdown(text, page("getting-started.md")) == text  # hand-written pages keep the check


def test_optimizer_page_holds_the_marker() -> None:
    assert load_hook().MARKER in (ROOT / "docs" / "optimizers.md").read_text(encoding="utf-8")
