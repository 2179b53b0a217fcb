"""The public API plugins import: built from leaf modules, every name and hook documented."""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import hub
from hub import hookspecs

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs" / "plugin-api.md"
HEAVY = ("hub.config", "jinja2", "pluggy")
# The modules `hub/__init__.py` is built from, and what plugins import directly.
LEAVES = (
    "hub",
    "hub.answers",
    "hub.blobs",
    "hub.connectors",
    "hub.errors",
    "hub.held",
    "hub.localservers",
    "hub.models",
    "hub.outbound",
    "hub.rejections",
    "hub.resubmission",
    "hub.scenarios",
    "hub.schemas",
    "hub.secret",
)


def loaded_after(code: str) -> list[str]:
    """Which of the heavy modules a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return list(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("module", LEAVES)
def test_a_leaf_module_loads_no_configuration_jinja_or_pluggy(module: str) -> None:
    assert loaded_after(f"import {module}") == []


def test_every_public_name_but_the_hook_marker_comes_from_leaf_modules() -> None:
    names = [n for n in hub.__all__ if n != "hookimpl"]
    assert loaded_after(f"import hub\nfor n in {names!r}: getattr(hub, n)") == []
    assert loaded_after("from hub import hookimpl") == ["pluggy"]


def hooks() -> set[str]:
    return {
        name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("aktenhub_")
    }


def documented() -> set[str]:
    return set(re.findall(r"^\| `([A-Za-z_][A-Za-z0-9_]*)` \|", DOCS.read_text(encoding="utf-8"), re.M))


def test_every_public_name_and_hook_is_documented_and_nothing_else() -> None:
    expected = set(hub.__all__) | hooks()
    assert sorted(expected - documented()) == [], "undocumented in docs/plugin-api.md"
    assert sorted(documented() - expected) == [], "documented in docs/plugin-api.md, but not public"
    assert len(hub.__all__) == len(set(hub.__all__))


def _defining_modules() -> dict[str, str]:
    """Public name -> the module `hub/__init__.py` takes it from."""
    found = {}
    for node in ast.walk(ast.parse((ROOT / "hub" / "__init__.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.update({alias.name: node.module for alias in node.names})
    return found


def _has_attribute_docstring(module: str, name: str) -> bool:
    """Whether `name = ...` in `module` is followed by a string (its docstring, as Sphinx reads it)."""
    path = ROOT / (module.replace(".", "/") + ".py")
    body = ast.parse(path.read_text(encoding="utf-8")).body
    for node, following in itertools.pairwise(body):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
    return False


def test_every_public_name_and_hook_has_a_docstring() -> None:
    modules = _defining_modules()
    missing = []
    for name in sorted(hub.__all__):
        obj = getattr(hub, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if not (vars(obj).get("__doc__") if inspect.isclass(obj) else obj.__doc__):
                missing.append(name)
        elif not _has_attribute_docstring(modules[name], name):
            missing.append(name)
    missing += [h for h in sorted(hooks()) if not getattr(hookspecs, h).__doc__]
    assert missing == []


# What plugin packages may import from the core besides `hub` itself (docs/plugin-api.md says so).
TOOLKIT = frozenset(
    {
        "hub",
        "hub.formdata.applicant",
        "hub.formdata.charsets",
        "hub.formdata.jsonbody",
        "hub.formdata.limits",
        "hub.formdata.multipart",
        "hub.formdata.submission",
        "hub.jsonpaths",
        "hub.localservers",
        "hub.outbound",
        "hub.schemas",
        "hub.simulation",
        "hub.soap",
        "hub.xml",
    }
)


def test_plugins_import_only_the_public_api_and_the_toolkit_modules() -> None:
    """Built-in plugins and the template are written as a third party would: nothing behind the API."""
    packages = sorted(ROOT.glob("plugins/*/hub_*")) + sorted(ROOT.glob("contrib/*/hub_*"))
    assert packages
    found: dict[str, set[str]] = {}
    for path in itertools.chain.from_iterable(p.rglob("*.py") for p in packages):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if (name == "hub" or name.startswith("hub.")) and name not in TOOLKIT:
                    found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert found == {}
    documented = DOCS.read_text(encoding="utf-8")
    assert all(f"`{module}`" in documented for module in TOOLKIT - {"hub"})
