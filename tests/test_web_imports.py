"""The web package has no import circle, and every blueprint is registered by the app factory alone."""

from __future__ import annotations

import ast
import subprocess
import sys

from flask import Blueprint

from footfall.server.web import BLUEPRINTS, create_app
from tests.conftest import ROOT

WEB = ROOT / "server" / "web"


def module_name(path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = ["footfall", *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    paths = [*WEB.glob("*.py"), ROOT / "server" / "audit.py"]
    return {module_name(p): ast.parse(p.read_text()) for p in paths}


def imports_of(tree: ast.Module, known: set[str]) -> set[str]:
    """Every module of `known` this one imports, at the top or inside a function (a late import hides a circle
    but does not break it). `from package import name` imports the submodule when there is one."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                for alias in node.names
            ]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_web_package_and_the_audit_log_import_without_a_circle():
    trees = modules()
    known = set(trees)
    graph = {name: imports_of(tree, known) - {name} for name, tree in trees.items()}
    assert "footfall.server.web.audit" in graph["footfall.server.web.auth"]  # the graph sees imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])
    assert not any(n.startswith("footfall.server.web") for n in graph["footfall.server.audit"])


def test_each_web_module_imports_first_in_a_fresh_interpreter():
    """With a circle, importing the wrong module first fails (or works only thanks to import order)."""
    names = sorted(n for n in modules() if n != "footfall.server.web.serve")
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    for name in names:
        result = subprocess.run(
            [sys.executable, "-c", code, name], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{name}: {result.stderr[-2000:]}"


def test_every_blueprint_is_registered_by_the_app_factory(site, store):
    declared = set()
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Blueprint":
                declared.add(name)
            if isinstance(node, ast.Attribute) and node.attr == "register_blueprint":
                assert name == "footfall.server.web", f"{name} registers a blueprint: only create_app may"
    assert {b.import_name for b in BLUEPRINTS} == declared  # no blueprint left out of BLUEPRINTS
    assert all(isinstance(b, Blueprint) for b in BLUEPRINTS)
    app = create_app(site, store)
    assert set(app.blueprints) == {b.name for b in BLUEPRINTS}
    rules = {rule.rule: rule.endpoint for rule in app.url_map.iter_rules()}
    assert (rules["/admin/audit"], rules["/api/v1/audit"]) == ("audit.page_audit", "audit.api_audit")
