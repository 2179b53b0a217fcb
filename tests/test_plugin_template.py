"""The plugin template, copied and renamed by `hub.testing.newplugin`, passes the contract suites as it is."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.plugins import load_plugins
from hub.testing.newplugin import PluginNames, main, new_plugin

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "contrib" / "plugin-template"


@pytest.fixture
def importable(tmp_path: Path) -> Iterator[Path]:
    """A folder on sys.path for the copy; its modules are forgotten afterwards."""
    before = set(sys.modules)
    sys.path.insert(0, str(tmp_path / "plugins" / "umwelt_fv"))
    yield tmp_path
    sys.path.remove(str(tmp_path / "plugins" / "umwelt_fv"))
    for name in set(sys.modules) - before:
        if name.startswith("hub_umwelt_fv"):
            del sys.modules[name]


def test_names_follow_the_built_in_plugins() -> None:
    assert PluginNames.of("bauportal-nrw") == PluginNames(
        "bauportal_nrw", "bauportal-nrw", "hub_bauportal_nrw", "BauportalNrw"
    )
    assert PluginNames.of("k3").package == "hub_k3"
    for bad in ("K3", "3k", "k3/../x", "hub", "", "k3-"):
        with pytest.raises(ValueError, match="no plugin name"):
            PluginNames.of(bad)


def test_copied_and_renamed_template_passes_the_contract_suites(importable: Path) -> None:
    target = new_plugin("umwelt-fv", importable / "plugins", TEMPLATE)

    assert sorted(p.name for p in target.iterdir()) == [
        "README.md",
        "hub_umwelt_fv",
        "pyproject.toml",
        "tests",
    ]
    assert (target / "tests" / "test_umwelt_fv.py").is_file()
    leftovers = [
        f"{path.relative_to(target)}: {old}"
        for path in target.rglob("*")
        if path.is_file()
        for old in (
            "fachverfahren_example",
            "fachverfahren-example",
            "ExampleFachverfahren",
            "Drop this comment",
        )
        if old in path.read_text(encoding="utf-8")
    ]
    assert leftovers == []
    project = tomllib.loads((target / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == "aktenhub-umwelt-fv"
    assert project["project"]["entry-points"]["aktenhub"] == {"umwelt-fv": "hub_umwelt_fv.plugin"}
    assert project["tool"]["setuptools"]["packages"] == ["hub_umwelt_fv"]

    # Registered with the hub as its entry point would: the renamed kind, simulator and scenario-free plugin.
    plugin = importlib.import_module("hub_umwelt_fv.plugin")
    plugins = load_plugins([plugin], entry_points=False)
    assert plugins.connector_type("umwelt-fv").__name__ == "UmweltFvSink"
    assert "umwelt-fv" in plugins.simulators()

    # Its own tests (the sink contract, answers, end to end through a hub) pass without any edit.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    args = ["-m", "pytest", "-v", "-p", "no:cacheprovider", "-c", str(REPO / "pyproject.toml")]
    run = subprocess.run(
        [sys.executable, *args, "--rootdir", str(target), str(target / "tests")],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    for contract in ("test_deliver_twice_one_result", "test_faults_classified[validation]"):
        assert f"TestUmweltFvContract::{contract} PASSED" in run.stdout
    for contract in ("test_answer_twice_changes_nothing_twice", "test_acknowledged_only_after_stored"):
        assert f"TestUmweltFvAnswers::{contract} PASSED" in run.stdout
    lint = subprocess.run(
        [
            *(sys.executable, "-m", "ruff", "check", "--config", str(REPO / "pyproject.toml")),
            # the project's rules for plugin tests, which match paths inside the project only
            *("--config", f'lint.extend-per-file-ignores = {{"{target}/tests/**" = ["S", "ASYNC"]}}'),
            str(target),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout


def test_the_command_refuses_a_bad_name_or_an_existing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["K3", "--into", str(tmp_path), "--template", str(TEMPLATE)]) == 2
    assert "no plugin name" in capsys.readouterr().err
    assert main(["k3", "--into", str(tmp_path), "--template", str(TEMPLATE)]) == 0
    assert (tmp_path / "k3" / "hub_k3" / "sink.py").is_file()
    assert main(["k3", "--into", str(tmp_path), "--template", str(TEMPLATE)]) == 2
    assert "exists already" in capsys.readouterr().err
