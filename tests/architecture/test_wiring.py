"""The kiosk is wired in one place (kiosk_ui/compose.py): parts get collaborators through their
constructors, never by one part setting attributes on another or reaching into its privates."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.architecture.test_imports import REPO

# The kiosk's parts as the code names them; ``self.<part>`` is a collaborator handed in. (paho's
# client is not one: its callbacks are set as attributes, which is paho's API.)
PARTS = {"app", "runtime", "agent", "supervisor", "devices", "backend", "fleet"}


def wiring_sources() -> list[Path]:
    # Screens are Kivy widgets that set their own children's properties, which is how Kivy works.
    return [p for p in sorted((REPO / "kiosk_ui").rglob("*.py")) if "screens" not in p.parts]


def reaches_into_a_part(target: ast.expr) -> bool:
    """``app.x = ...``, ``runtime.agent.x = ...``, ``self.agent.x = ...``: setting state on a part."""
    if not isinstance(target, ast.Attribute):
        return False
    base = target.value
    if isinstance(base, ast.Name):
        return base.id in PARTS
    if isinstance(base, ast.Attribute):
        return base.attr in PARTS or reaches_into_a_part(base)
    return False


def violations(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        found += [f"{node.lineno}: sets {ast.unparse(t)}" for t in targets if reaches_into_a_part(t)]
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append(f"{node.lineno}: reaches into {ast.unparse(node)}")
    return found


def test_no_part_sets_attributes_on_another_or_reads_its_privates():
    found = {str(p.relative_to(REPO)): v for p in wiring_sources()
             if (v := violations(ast.parse(p.read_text(encoding="utf-8"))))}
    assert not found, f"wire parts through constructors in kiosk_ui/compose.py instead: {found}"


def test_the_check_catches_what_the_old_wiring_did():
    old = ast.parse("runtime.agent.device_status = f\napp.runtime = runtime\nself.agent.client.on_connect = g\n"
                    "t = self.agent._topic('x')\nself.vm.online = True\nscreen.entered = ''\n")
    assert violations(old) == ["1: sets runtime.agent.device_status", "2: sets app.runtime",
                               "3: sets self.agent.client.on_connect", "4: reaches into self.agent._topic"]


def test_kiosk_app_is_a_module_level_class():
    tree = ast.parse((REPO / "kiosk_ui" / "app.py").read_text(encoding="utf-8"))
    top = {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)}
    assert "KioskApp" in top and "__getattr__" not in top
