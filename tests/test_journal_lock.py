"""One hub per SQLite journal: a second process refuses to start and leaves the first one's leases alone."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from click.testing import CliRunner, Result

from hub.cli import main
from hub.journal import JournalInUse, SqliteJournal, TaskSpec, TaskState
from hub.models import Application
from hub.testing.harness import base_settings, start_hub, stop_hub
from hub.testing.processes import hub_command

TOKEN = "formcycle-token-0123456789"
CONNECTORS = {
    "formcycle": {"type": "formcycle", "token": "${FORMCYCLE_TOKEN}", "id_field": "vorgang_id"},
    "import": {"type": "filedrop", "path": "import"},
}
ROUTES = [{"name": "all-forms", "from": "formcycle", "to": ["import"]}]

pytestmark = pytest.mark.timeout(120)


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"FORMCYCLE_TOKEN": TOKEN}, catch_exceptions=False)


async def test_a_second_journal_on_the_same_file_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    first = SqliteJournal(tmp_path / "journal.db")
    await first.open()
    try:
        app = Application(source="test", external_id="e-1", service="jagdschein", route="r")
        await first.intake(app, [], [TaskSpec("map")])
        (leased,) = await first.claim("first", 1, 300, {})
        second = SqliteJournal(tmp_path / "journal.db")
        with pytest.raises(JournalInUse, match=f"in use by process {os.getpid()}") as refused:
            await second.open()
        assert refused.value.path == str(tmp_path / "journal.db")
        with pytest.raises(RuntimeError, match="not open"):
            await second.recover()
        (task,) = await first.tasks(app.id)
        assert (task.state, task.lease_token) == (TaskState.LEASED, leased.lease_token)
    finally:
        await first.close()
    reopened = SqliteJournal(tmp_path / "journal.db")  # closing gave the journal free again
    await reopened.open()
    assert await reopened.recover() == 1
    await reopened.close()


async def test_a_second_hub_refuses_to_start_and_the_first_keeps_its_lease(tmp_path: Path) -> None:
    settings = base_settings(tmp_path / "hub", CONNECTORS, ROUTES)
    settings["connectors"]["import"]["path"] = str(tmp_path / "import")
    running = await start_hub(settings, env={"FORMCYCLE_TOKEN": TOKEN}, workers=False)
    try:
        form = aiohttp.FormData({"vorgang_id": "V-1", "nachname": "Groß"})
        status, body = await running.post(
            "/intake/formcycle/jagdschein", data=form, headers={"X-Aktenhub-Token": TOKEN}
        )
        assert status == 202, body
        app_id = body["application_id"]
        (leased,) = await running.journal.claim("first-hub", 1, 300, {})
        before = await running.journal.tasks(app_id)

        config = tmp_path / "second.yaml"
        second: dict[str, Any] = {**settings, "server": {"listen": "127.0.0.1:0"}}
        config.write_text(yaml.safe_dump(second), encoding="utf-8")
        proc = await asyncio.to_thread(
            subprocess.run,
            hub_command(config),
            capture_output=True,
            text=True,
            env={**os.environ, "FORMCYCLE_TOKEN": TOKEN},
            timeout=60,
        )
        assert proc.returncode == 1, proc.stdout + proc.stderr
        message = " ".join(proc.stderr.split())
        journal = tmp_path / "hub" / "journal.db"
        assert f"cannot start: journal {journal} is in use by process {os.getpid()}" in message
        assert "Traceback" not in proc.stderr
        assert await running.journal.tasks(app_id) == before
        assert before[0].lease_token == leased.lease_token and before[0].state == TaskState.LEASED

        # Operators' commands work beside the running hub (as the journal's guest: no lock taken, no
        # lease released); they respect the hub's leases like its own API does.
        listed = await asyncio.to_thread(_cli, "applications", "-c", str(config), "--json")
        assert listed.exit_code == 0 and app_id in listed.output
        replay = await asyncio.to_thread(_cli, "replay", "-c", str(config), "--all-dead", "--reason", "t")
        assert replay.exit_code == 0 and "this affects 0 application(s)" in replay.output
        abandon = await asyncio.to_thread(_cli, "abandon", "-c", str(config), app_id, "--reason", "test")
        assert abandon.exit_code == 1
        assert f"a step of application {app_id} is running now" in abandon.output
        assert await running.journal.tasks(app_id) == before
        assert await running.journal.operator_actions() == []
    finally:
        await stop_hub(running)
