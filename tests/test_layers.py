"""The ground floor stands on its own: every module of footfall/ (contract, config, link, outbox, edge runtime, the
`footfall` command) imports in a fresh interpreter without pulling in an app, and no module anywhere imports an app
by its bare folder name."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from importlib import metadata

import pytest

from tests.conftest import ROOT

APPS = ("server", "kiosk", "counter", "demo")
CORE_MODULES = sorted(f"footfall.{p.stem}" for p in (ROOT / "footfall").glob("*.py") if p.stem != "__init__")

# Import one module in a fresh interpreter and list the app modules it loaded.
PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
apps = tuple(json.loads(sys.argv[2]))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in apps or m.startswith(tuple("footfall." + a for a in apps)))))
"""


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_no_app(module):
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module, json.dumps(APPS)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_core_module_list_is_the_whole_core():
    assert {"footfall.cli", "footfall.edge", "footfall.link", "footfall.outbox", "footfall.messages"} <= set(
        CORE_MODULES
    )


def bare_app_imports(path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in APPS]
    return found


def test_no_module_imports_an_app_by_its_bare_name():
    files = [p for d in ("footfall", *APPS, "tests", "bench") for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 50
    assert [hit for path in files for hit in bare_app_imports(path)] == []


def third_party_imports(path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {
        n for n in names if n not in sys.stdlib_module_names and n not in ("footfall", "tests", "__future__")
    }


def test_every_import_of_the_apps_is_a_declared_dependency():
    """Each third-party module the installed code imports comes from a distribution pyproject.toml declares."""
    declared = {
        re.split(r"[<>=!\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in metadata.requires("footfall") or []
    }
    providers = metadata.packages_distributions()
    imported = {
        name: path.relative_to(ROOT)
        for d in ("footfall", *APPS)
        for path in (ROOT / d).rglob("*.py")
        for name in third_party_imports(path)
    }
    undeclared = {}
    for name, where in imported.items():
        dists = {d.lower().replace("_", "-") for d in providers.get(name, [name])}
        if not dists & declared:
            undeclared[name] = str(where)
    assert undeclared == {}
    assert {"markupsafe", "picamera2", "zxing-cpp"} <= declared
