"""`aktenhub migrate-store`: an installation with finished and failed applications moves to new stores and
goes on there: nothing lost, nothing delivered twice.

The new journal is each backend of the contract suite (SQLite, PostgreSQL): the move operators make is
SQLite to PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from click.testing import CliRunner, Result

from hub.cli import main
from hub.models import ApplicationState
from hub.testing.harness import base_settings, stop_hub
from hub.testing.journal_backends import JournalBackend, PostgresBackend
from hub.testing.journal_contract import journal_backend  # noqa: F401 - the fixture, once per backend

TOKEN = "formcycle-token-0123456789"
ENV = {"FORMCYCLE_TOKEN": TOKEN}


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=ENV, catch_exceptions=False)


async def test_an_installation_moves_and_goes_on_where_it_stopped(
    tmp_path: Path,
    hub_factory: Any,
    journal_backend: JournalBackend,  # noqa: F811
) -> None:
    folder = tmp_path / "import"
    connectors = {
        "formcycle": {"type": "formcycle", "token": "${FORMCYCLE_TOKEN}", "id_field": "vorgang_id"},
        "import": {"type": "filedrop", "path": str(folder), "retry": {"max_attempts": 1}},
    }
    routes = [{"name": "all-forms", "from": "formcycle", "to": ["import"]}]
    old = await hub_factory(connectors, routes, env=ENV, subdir="old")

    async def submit(n: int, hub: Any) -> str:
        form = aiohttp.FormData({"vorgang_id": f"V-{n}", "nachname": "Groß"})
        form.add_field("anlage", f"Anlage {n}".encode() * 1000, filename=f"anlage-{n}.pdf")
        status, body = await hub.post(
            "/intake/formcycle/jagdschein", data=form, headers={"X-Aktenhub-Token": TOKEN}
        )
        assert status == 202, body
        return str(body["application_id"])

    filed = [await submit(n, old) for n in range(2)]
    for app_id in filed:
        assert await old.wait_for_state(app_id) == ApplicationState.COMPLETED
    folder.rename(tmp_path / "import-away")
    folder.write_text("a file where the import folder should be")
    failed = [await submit(n, old) for n in range(2, 4)]
    for app_id in failed:
        assert await old.wait_for_state(app_id) == ApplicationState.DEAD
    await stop_hub(old)

    await journal_backend.fresh()
    new_store = (
        journal_backend.url
        if isinstance(journal_backend, PostgresBackend)
        else f"sqlite:///{tmp_path / 'new' / 'journal.db'}"
    )
    old_config, new_config = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old_config.write_text(yaml.safe_dump(base_settings(tmp_path / "old", connectors, routes)))
    settings = base_settings(tmp_path / "new", connectors, routes) | {"store": new_store}
    new_config.write_text(yaml.safe_dump(settings))

    moved = await asyncio.to_thread(run, "migrate-store", "-c", str(old_config), "--to", str(new_config))
    assert moved.exit_code == 0, moved.output
    assert "moved: 4 applications" in moved.output
    again = await asyncio.to_thread(run, "migrate-store", "-c", str(old_config), "--to", str(new_config))
    assert again.exit_code == 1 and "holds applications already" in again.output

    folder.unlink()  # the operator fixes the cause, and starts the hub on the new stores
    (tmp_path / "import-away").rename(folder)
    new = await hub_factory(connectors, routes, env=ENV, subdir="new", store=new_store)
    for app_id in filed:
        assert await new.wait_for_state(app_id) == ApplicationState.COMPLETED
    replayed = await asyncio.to_thread(
        run, "replay", "-c", str(new_config), "--all-dead", "--reason", "Ordner zurück", "--yes"
    )
    assert replayed.exit_code == 0 and "replayed 2 application(s)" in replayed.output
    for app_id in failed:
        assert await new.wait_for_state(app_id) == ApplicationState.COMPLETED
    # every application delivered once, with its file as it was sent
    assert sorted(p.name for p in folder.iterdir()) == sorted(filed + failed)
    later = await submit(9, new)
    assert await new.wait_for_state(later) == ApplicationState.COMPLETED
    assert os.path.isdir(folder / later)
