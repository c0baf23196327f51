"""The layering between top-level packages: read once from docs/architecture.md, enforced here.

The allowed edges are the Mermaid diagram in docs/architecture.md (the only place they are
written). This test parses every product source file with ``ast`` -- module-level and
function-local imports alike, plus ``importlib.import_module`` with a literal name -- and fails on
an edge the diagram does not draw or on any cycle between top-level packages.
"""

from __future__ import annotations

import ast
import configparser
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "architecture.md"


def read_layering(text: str) -> dict[str, set[str]]:
    """The package -> allowed imports table drawn by the first ``mermaid`` block of ``text``."""
    block = re.search(r"```mermaid\n(.*?)```", text, re.S)
    if block is None:
        raise ValueError("docs/architecture.md has no ```mermaid block")
    allowed: dict[str, set[str]] = {}
    for raw in block.group(1).splitlines():
        line = raw.strip()
        if not line or line.startswith(("flowchart", "graph", "%%")):
            continue
        edge = re.fullmatch(r"(\w+)\s*-->\s*(\w+)", line)
        node = re.fullmatch(r"\w+", line)
        if edge:
            allowed.setdefault(edge.group(1), set()).add(edge.group(2))
            allowed.setdefault(edge.group(2), set())
        elif node:
            allowed.setdefault(line, set())
        else:
            raise ValueError(f"docs/architecture.md: cannot read the diagram line {line!r}")
    return allowed


def imported_modules(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """Every absolute module name ``tree`` imports, wherever the import statement sits."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value, node.lineno


def import_graph(packages: set[str]) -> dict[tuple[str, str], list[str]]:
    """(importer, imported) top-level package pairs -> the ``file:line`` places that make them."""
    edges: dict[tuple[str, str], list[str]] = {}
    for package in sorted(packages):
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for module, line in imported_modules(tree):
                top = module.split(".")[0]
                if top in packages and top != package:
                    place = f"{path.relative_to(REPO)}:{line}"
                    edges.setdefault((package, top), []).append(place)
    return edges


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None when it has none."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def product_packages() -> set[str]:
    """The top-level packages setup.cfg ships (``include = name*`` lines)."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = cfg["options.packages.find"]["include"].split()
    return {line.rstrip("*") for line in lines}


@pytest.fixture(scope="module")
def allowed() -> dict[str, set[str]]:
    return read_layering(DOC.read_text(encoding="utf-8"))


def test_the_diagram_covers_every_shipped_package(allowed):
    assert set(allowed) == product_packages(), (
        "docs/architecture.md must draw exactly the packages setup.cfg ships: "
        f"missing {sorted(product_packages() - set(allowed))}, extra {sorted(set(allowed) - product_packages())}"
    )


def test_the_allowed_layering_has_no_cycle(allowed):
    assert find_cycle(allowed) is None, f"the diagram itself draws a cycle: {find_cycle(allowed)}"


def test_no_import_crosses_the_layering(allowed):
    edges = import_graph(set(allowed))
    forbidden = {
        f"{a} -> {b}": places for (a, b), places in edges.items() if b not in allowed[a]
    }
    assert not forbidden, f"imports the diagram in docs/architecture.md does not allow: {forbidden}"


def test_no_cycle_between_top_level_packages(allowed):
    graph: dict[str, set[str]] = {}
    for a, b in import_graph(set(allowed)):
        graph.setdefault(a, set()).add(b)
    assert find_cycle(graph) is None, f"import cycle between packages: {find_cycle(graph)}"


# The checker itself must be able to fail: these run it on small inputs with known answers.


def test_the_checker_sees_function_local_and_dynamic_imports():
    tree = ast.parse(
        "def f():\n    import controller.store\n    from kiosk_ui import app\n"
        "    importlib.import_module('provisioning.cli')\nfrom . import sibling\n"
    )
    assert [m for m, _ in imported_modules(tree)] == ["controller.store", "kiosk_ui", "provisioning.cli"]


def test_the_checker_finds_a_cycle_and_reads_a_diagram():
    layering = read_layering("```mermaid\nflowchart TD\n    a --> b\n    b --> c\n    d\n```\n")
    assert layering == {"a": {"b"}, "b": {"c"}, "c": set(), "d": set()}
    assert find_cycle(layering) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    with pytest.raises(ValueError, match="cannot read"):
        read_layering("```mermaid\n    a -> b\n```\n")
