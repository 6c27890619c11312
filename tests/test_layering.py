"""The import rules of docs/ARCHITECTURE.md, checked on the package's source.

The document's ```imports block lists, for each package of optimlab, the packages it may import;
this test parses every module (module-level and function-level imports alike), and fails on an
arrow the block does not allow, on an import cycle between modules, and on a private name
(`_x`) imported across packages.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "optimlab"
DOC = REPO / "docs" / "ARCHITECTURE.md"


def allowed_arrows(text: str) -> dict[str, set[str]]:
    block = re.search(r"```imports\n(.*?)```", text, re.S)
    assert block, "docs/ARCHITECTURE.md needs an ```imports block"
    rules: dict[str, set[str]] = {}
    for line in block.group(1).splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        src, _, dst = line.partition("->")
        rules[src.strip()] = {d.strip() for d in dst.split(",") if d.strip()}
    return rules


def module_name(path: Path, root: Path = SRC) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def is_module(name: str, root: Path = SRC) -> bool:
    """Whether the dotted `name` is a module or package under `root` (a file or a folder with __init__)."""
    path = root.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "optimlab"


def imports(path: Path, root: Path = SRC) -> list[tuple[str, list[str]]]:
    """(imported module, names imported from it) for every import of the package in `path`.

    `from pkg import mod` is an import of the module pkg.mod when that module exists (the names that
    are not modules are imports of pkg itself): reading it as an import of pkg hid the cycle
    train.loop <-> train.distributed behind the package's __init__.
    """
    out: list[tuple[str, list[str]]] = []
    base = module_name(path, root)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith(root.name)]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:  # relative import: resolve against this module's package
                pkg = base.split(".")[: len(base.split(".")) - node.level + (path.name == "__init__.py")]
                mod = ".".join([*pkg, mod] if mod else pkg)
            if not mod.startswith(root.name):
                continue
            names = [a.name for a in node.names]
            out += [(f"{mod}.{n}", []) for n in names if is_module(f"{mod}.{n}", root)]
            if attributes := [n for n in names if not is_module(f"{mod}.{n}", root)]:
                out.append((mod, attributes))
    return out


def graph(root: Path = SRC) -> dict[str, list[tuple[str, list[str]]]]:
    return {module_name(p, root): imports(p, root) for p in sorted(root.rglob("*.py"))}


def violations(g: dict[str, list[tuple[str, list[str]]]], rules: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, imps in g.items():
        src = package_of(mod)
        for target, names in imps:
            dst = package_of(target)
            if dst == src or src == "optimlab":
                continue
            if dst in rules.get("*", set()):
                continue
            if src not in rules:
                bad.append(f"{mod}: package {src!r} has no line in the imports block")
            elif dst not in rules[src]:
                bad.append(f"{mod} imports {target} ({src} -> {dst} is not allowed)")
            bad += [f"{mod} imports private {target}.{n} across packages" for n in names if n.startswith("_")]
    return bad


def cycles(g: dict[str, list[tuple[str, list[str]]]]) -> list[list[str]]:
    """Import cycles between modules, a package's __init__ included: a module importing a name from
    its own package's __init__, which imports that module, is a cycle too (one import order breaks)."""
    edges = {m: {t for t, _ in imps if t in g and t != m} for m, imps in g.items()}
    found, state, stack = [], {}, []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(edges.get(m, ())):
            if state.get(t) == 1:
                found.append(stack[stack.index(t) :] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    return found


def test_imports_follow_the_documented_arrows():
    rules = allowed_arrows(DOC.read_text(encoding="utf-8"))
    assert violations(graph(), rules) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_check_catches_a_forbidden_arrow_a_private_name_and_a_cycle():
    rules: dict[str, set[str]] = {"train": {"optim"}, "optim": set()}
    g: dict[str, list[tuple[str, list[str]]]] = {
        "optimlab.train.loop": [
            ("optimlab.optim.registry", ["create_optimizer"]),
            ("optimlab.cli", []),
            ("optimlab.optim._common", ["_check"]),
        ],
        "optimlab.optim.registry": [("optimlab.train.loop", [])],
    }
    bad = violations(g, rules)
    assert any("train -> cli is not allowed" in b for b in bad)
    assert any("private optimlab.optim._common._check" in b for b in bad)
    assert any("optim -> train is not allowed" in b for b in bad)
    found = cycles(g)
    assert len(found) == 1 and set(found[0]) == {"optimlab.optim.registry", "optimlab.train.loop"}


def test_from_package_import_module_is_an_import_of_the_module_and_its_cycle_is_caught(tmp_path):
    """The cycle that hid in optimlab: loop does `from pkg import distributed` at module level,
    distributed does `from pkg import loop` inside a function; a name from the package is its __init__."""
    files = {
        "__init__.py": "",
        "train/__init__.py": "from optimlab.train.loop import fit\n",
        "train/loop.py": "from optimlab.train import distributed as ddp\n\ndef fit():\n    return ddp\n",
        "train/distributed.py": "def launch():\n    from optimlab.train import loop\n    return loop.fit\n",
        "train/config.py": "from optimlab.train import fit, loop\n",
    }
    root = tmp_path / "optimlab"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    g = graph(root)
    assert g["optimlab.train.loop"] == [("optimlab.train.distributed", [])]
    assert g["optimlab.train.config"] == [("optimlab.train.loop", []), ("optimlab.train", ["fit"])]
    found = cycles(g)
    assert [set(c) for c in found] == [{"optimlab.train.loop", "optimlab.train.distributed"}]
    # a module importing a name from its own package's __init__, which imports that module, is a cycle
    (root / "train" / "loop.py").write_text("from optimlab.train import fit\n", encoding="utf-8")
    assert [set(c) for c in cycles(graph(root))] == [{"optimlab.train", "optimlab.train.loop"}]
