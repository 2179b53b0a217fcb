"""The `aktenhub` command as an operator uses it."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from click.testing import CliRunner, Result

from hub.cli import main
from hub.models import ApplicationState
from hub.testing.harness import base_settings, stop_hub

EXAMPLE = Path(__file__).parents[1] / "config" / "aktenhub.example.yaml"
TOKEN = "formcycle-token-0123456789"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_plugins_lists_kinds_and_standards() -> None:
    result = run("plugins", "--json")
    assert result.exit_code == 0
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["formcycle"]["kinds"] == ["formcycle"]
    assert plugins["formcycle"]["distribution"] == "aktenhub-formcycle"
    # filedrop lives on as the importfolder transport's predecessor, in the fachverfahren plugin
    assert {"filedrop", "importfolder", "xoev"} <= set(plugins["fachverfahren"]["kinds"])
    assert plugins["fachverfahren"]["version"] == "0.1.0"
    assert all(plugins[name]["standards"] for name in ("formcycle", "fachverfahren", "enaio"))


def test_check_example_configuration(tmp_path: Path) -> None:
    env = {
        "FORMCYCLE_TOKEN": TOKEN,
        "FORMSOLUTIONS_KEY": "formsolutions-key-0123456789",
        "AKTENHUB_ADMIN_TOKEN": "admin-token-0123456789",
    }
    cwd = os.getcwd()
    os.chdir(tmp_path)  # the example's relative paths land in the temporary directory
    try:
        result = run("check", "-c", str(EXAMPLE), env=env)
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    assert "configuration valid" in result.output
    assert "formcycle" in result.output and "import" in result.output


def test_check_names_missing_secret() -> None:
    result = CliRunner().invoke(main, ["check", "-c", str(EXAMPLE)], env={"FORMCYCLE_TOKEN": None})
    assert result.exit_code == 2
    assert "aktenhub.example.yaml:" in result.output
    assert "connectors.formcycle.token: environment variable FORMCYCLE_TOKEN is not set" in result.output


async def test_operator_finds_dead_applications_and_replays_them(tmp_path: Path, hub_factory: Any) -> None:
    blocked = tmp_path / "import"
    blocked.write_text("a file where the import directory should be")
    connectors = {
        "formcycle": {"type": "formcycle", "token": "${FORMCYCLE_TOKEN}", "id_field": "vorgang_id"},
        "import": {"type": "filedrop", "path": str(blocked), "retry": {"max_attempts": 1}},
    }
    routes = [{"name": "all-forms", "from": "formcycle", "to": ["import"]}]
    env = {"FORMCYCLE_TOKEN": TOKEN}
    running = await hub_factory(connectors, routes, env=env, subdir="hub")
    ids = []
    for n in range(3):
        form = aiohttp.FormData({"vorgang_id": f"V-{n}", "nachname": "Groß"})
        status, body = await running.post(
            "/intake/formcycle/jagdschein", data=form, headers={"X-Aktenhub-Token": TOKEN}
        )
        assert status == 202, body
        ids.append(body["application_id"])
    for app_id in ids:
        assert await running.wait_for_state(app_id) == ApplicationState.DEAD
    await stop_hub(running)

    config = tmp_path / "aktenhub.yaml"
    config.write_text(yaml.safe_dump(base_settings(tmp_path / "hub", connectors, routes)))
    listed = await asyncio.to_thread(
        run, "applications", "-c", str(config), "--state", "dead", "--json", env=env
    )
    assert listed.exit_code == 0
    assert sorted(a["id"] for a in json.loads(listed.stdout)) == sorted(ids)

    blocked.unlink()  # the operator fixes the cause
    replayed = await asyncio.to_thread(
        run, "replay", "-c", str(config), "--all-dead", "--reason", "import folder fixed", "--yes", env=env
    )
    assert replayed.exit_code == 0
    assert "replayed 3 application(s)" in replayed.output

    again = await hub_factory(connectors, routes, env=env, subdir="hub")
    for app_id in ids:
        assert await again.wait_for_state(app_id) == ApplicationState.COMPLETED
    assert sorted(p.name for p in blocked.iterdir()) == sorted(ids)

    # While a hub runs, the command acts on its journal beside it (as a guest) and says what it found.
    busy = await asyncio.to_thread(run, "replay", "-c", str(config), ids[0], env=env)
    assert busy.exit_code == 1 and "has no dead step" in busy.output
    await stop_hub(again)
    nothing = await asyncio.to_thread(run, "replay", "-c", str(config), ids[0], env=env)
    assert nothing.exit_code == 1
    assert "had no dead step" in nothing.output
