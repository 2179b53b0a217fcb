"""One operations layer: the CLI (beside the running hub) and the admin API act alike.

Each action, whichever face takes it, leaves the same audit row, timeline entry, metric and state; the
running hub notices what the CLI committed to its journal.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from click.testing import CliRunner, Result

from hub.cli import main
from hub.journal import ApplicationFilter
from hub.models import ApplicationState
from hub.operations import Invalid
from hub.testing.harness import RunningHub, base_settings, stop_hub

TOKEN = "formcycle-token-0123456789"
ENV = {
    "FORMCYCLE_TOKEN": TOKEN,
    "OPERATOR_TOKEN": "o-secret-0123456789",
    "VIEWER_TOKEN": "v-secret-0123456789",
}
OPERATOR = {"Authorization": "Bearer o-secret-0123456789"}
VIEWER = {"Authorization": "Bearer v-secret-0123456789"}
SERVER = {
    "listen": "127.0.0.1:0",
    "admin_tokens": [
        {"name": "ops", "token": "${OPERATOR_TOKEN}", "role": "operator"},
        {"name": "dashboard", "token": "${VIEWER_TOKEN}", "role": "viewer"},
    ],
}


def setup(tmp_path: Path, blocked: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]], Path]:
    """Two import folders: `import` for Jagdscheine, `archive` for everything else."""
    folder = tmp_path / "import"
    if blocked:
        folder.write_text("a file where the import folder should be")
    connectors = {
        "formcycle": {"type": "formcycle", "token": "${FORMCYCLE_TOKEN}", "id_field": "vorgang_id"},
        "import": {"type": "filedrop", "path": str(folder), "retry": {"max_attempts": 1}},
        "archive": {"type": "filedrop", "path": str(tmp_path / "archive")},
    }
    routes = [
        {"name": "jagd", "from": "formcycle", "when": {"service": "jagdschein"}, "to": ["import"]},
        {"name": "rest", "from": "formcycle", "to": ["archive"]},
    ]
    config = tmp_path / "aktenhub.yaml"
    settings = base_settings(tmp_path / "hub", connectors, routes)
    config.write_text(yaml.safe_dump({**settings, "server": SERVER}))
    return connectors, routes, config


async def start(hub_factory: Any, tmp_path: Path, blocked: bool = False) -> tuple[RunningHub, Path]:
    connectors, routes, config = setup(tmp_path, blocked)
    return await hub_factory(connectors, routes, env=ENV, server=SERVER), config


async def cli(*args: str) -> Result:
    """The `aktenhub` command, run beside the hub in this process's event loop."""
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=ENV, catch_exceptions=False)


async def submit(running: RunningHub, service: str, ident: str) -> str:
    form = aiohttp.FormData({"vorgang_id": ident, "nachname": "Groß"})
    status, body = await running.post(
        f"/intake/formcycle/{service}", data=form, headers={"X-Aktenhub-Token": TOKEN}
    )
    assert status == 202, body
    return str(body["application_id"])


async def metric(running: RunningHub, name: str, labels: str) -> float | None:
    status, text = await running.get("/metrics")
    assert status == 200
    found = re.search(rf"^{name}\{{{labels}\}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


async def deliver_attempts(running: RunningHub, app_id: str) -> int:
    return sum(t.attempts for t in await running.journal.tasks(app_id) if t.step == "deliver")


async def test_pause_by_cli_beside_the_hub_and_resume_by_api_leave_the_same_trail(
    tmp_path: Path, hub_factory: Any
) -> None:
    running, config = await start(hub_factory, tmp_path)
    assert await metric(running, "aktenhub_target_paused", 'target="import"') == 0
    assert await metric(running, "aktenhub_operator_actions_total", 'action="paused"') == 0

    refused = await cli("targets", "pause", "import", "-c", str(config), "--reason", "  ")
    assert refused.exit_code == 2 and "needs a reason" in refused.output
    unknown = await cli("targets", "pause", "nowhere", "-c", str(config), "--reason", "x")
    assert unknown.exit_code == 1 and "no target 'nowhere'" in unknown.output
    paused = await cli(
        "targets", "pause", "import", "-c", str(config), "--reason", "Wartung", "--operator", "alice"
    )
    assert paused.exit_code == 0, paused.output
    assert "import is paused" in paused.output and "by alice" in paused.output

    # The running hub holds the journal; it learns of the pause at its next poll.
    def paused_in_hub() -> bool:
        return any(s.target == "import" and s.paused for s in running.hub.bus.gate.status())

    await running.wait_for(paused_in_hub, what="the hub to see the pause")
    status, body = await running.get("/api/v1/targets", headers=OPERATOR)
    assert status == 200
    by_name = {t["target"]: t for t in body["targets"]}
    assert by_name["archive"]["paused"] is None
    assert by_name["import"]["paused"]["operator"] == "alice"
    assert by_name["import"]["paused"]["reason"] == "Wartung"
    assert await metric(running, "aktenhub_target_paused", 'target="import"') == 1
    status, body = await running.get("/api/v1/targets", headers=VIEWER)
    [seen] = [t for t in body["targets"] if t["target"] == "import"]
    assert (
        seen["paused"]["operator"] == "alice" and "reason" not in seen["paused"]
    )  # free text: operators only
    status, _ = await running.post("/api/v1/targets/import/resume", headers=VIEWER)
    assert status == 403
    status, _ = await running.get("/api/v1/audit", headers=VIEWER)
    assert status == 403

    # A Jagdschein waits untried while a later application to the other target passes it.
    waiting = await submit(running, "jagdschein", "J-1")
    await running.wait_for(
        lambda: _deliver_pending(running, waiting), what="the Jagdschein's delivery to be due"
    )
    passing = await submit(running, "angelschein", "A-1")
    assert await running.wait_for_state(passing) == ApplicationState.COMPLETED
    assert await deliver_attempts(running, waiting) == 0
    assert (await running.journal.get_summary(waiting)).state == ApplicationState.PROCESSING
    assert not (tmp_path / "import" / waiting).exists()

    status, body = await running.post(
        "/api/v1/targets/import/resume", json={"reason": "fertig"}, headers=OPERATOR
    )
    assert status == 200 and body["was_paused"]["operator"] == "alice"
    assert await running.wait_for_state(waiting) == ApplicationState.COMPLETED
    assert await deliver_attempts(running, waiting) == 1
    assert [p.name for p in (tmp_path / "import").iterdir()] == [waiting]

    assert await metric(running, "aktenhub_target_paused", 'target="import"') == 0
    assert await metric(running, "aktenhub_operator_actions_total", 'action="paused"') == 1
    assert await metric(running, "aktenhub_operator_actions_total", 'action="resumed"') == 1
    status, body = await running.get("/api/v1/audit", headers=OPERATOR)
    trail = [(a["operator"], a["action"], a["subject"], a["reason"]) for a in body["actions"]]
    assert trail == [("ops", "resumed", "import", "fertig"), ("alice", "paused", "import", "Wartung")]
    listed = await cli("audit", "-c", str(config), "--json")
    assert listed.exit_code == 0, listed.output
    assert [a["id"] for a in json.loads(listed.stdout)] == [a["id"] for a in body["actions"]]


async def _deliver_pending(running: RunningHub, app_id: str) -> bool:
    return any(t.step == "deliver" and t.state == "pending" for t in await running.journal.tasks(app_id))


async def test_a_pause_survives_a_restart_and_the_cli_resumes_it(tmp_path: Path, hub_factory: Any) -> None:
    running, config = await start(hub_factory, tmp_path)
    status, body = await running.post("/api/v1/targets/import/pause", json={}, headers=OPERATOR)
    assert status == 400 and "reason" in body["error"]
    status, body = await running.post(
        "/api/v1/targets/import/pause", json={"reason": "Umzug des Servers"}, headers=OPERATOR
    )
    assert status == 200 and body["paused"]["operator"] == "ops"
    status, again = await running.post(
        "/api/v1/targets/import/pause", json={"reason": "nochmal"}, headers=OPERATOR
    )
    assert status == 200 and again["paused"] == body["paused"]  # the first pause stays
    await stop_hub(running)

    connectors, routes, _ = setup(tmp_path)
    again_running = await hub_factory(connectors, routes, env=ENV, server=SERVER)
    status, body = await again_running.get("/api/v1/targets", headers=OPERATOR)
    [target] = [t for t in body["targets"] if t["target"] == "import"]
    assert target["paused"]["reason"] == "Umzug des Servers"
    waiting = await submit(again_running, "jagdschein", "J-2")
    await again_running.wait_for(lambda: _deliver_pending(again_running, waiting), what="due delivery")
    passing = await submit(again_running, "angelschein", "A-2")
    assert await again_running.wait_for_state(passing) == ApplicationState.COMPLETED
    assert await deliver_attempts(again_running, waiting) == 0

    resumed = await cli("targets", "resume", "import", "-c", str(config), "--operator", "bob")
    assert resumed.exit_code == 0 and "import resumed" in resumed.output
    assert await again_running.wait_for_state(waiting) == ApplicationState.COMPLETED
    listed = await cli("targets", "list", "-c", str(config), "--json")
    assert {t["target"]: t["paused"] for t in json.loads(listed.stdout)} == {"archive": None, "import": None}
    trail = await again_running.journal.operator_actions()
    assert [(a.operator, a.action) for a in trail] == [("bob", "resumed"), ("ops", "paused")]


async def test_replay_by_cli_beside_the_hub_and_by_api_leave_the_same_trail(
    tmp_path: Path, hub_factory: Any
) -> None:
    running, config = await start(hub_factory, tmp_path, blocked=True)
    ids = [await submit(running, "jagdschein", f"J-{n}") for n in range(4)]
    for app_id in ids:
        assert await running.wait_for_state(app_id) == ApplicationState.DEAD

    preview = await cli("replay", "-c", str(config), "--all-dead", "--route", "jagd", "--dry-run")
    assert (
        preview.exit_code == 0 and "this affects 4 application(s) (state=dead route=jagd)" in preview.output
    )
    # Dead steps of one target only, as the console's dead letters select them.
    by_target = await cli("replay", "-c", str(config), "--all-dead", "--target", "import", "--dry-run")
    assert by_target.exit_code == 0 and "4 application(s) (state=dead target=import)" in by_target.output
    other = await cli("replay", "-c", str(config), "--all-dead", "--target", "archive", "--dry-run")
    assert other.exit_code == 0 and "this affects 0 application(s)" in other.output
    no_reason = await cli("replay", "-c", str(config), "--all-dead", "--yes")
    assert no_reason.exit_code == 2 and "needs a reason" in no_reason.output
    status, body = await running.post(
        "/api/v1/replay", json={"state": "dead", "dry_run": True}, headers=OPERATOR
    )
    assert (status, body["count"]) == (200, 4)
    for app_id in ids:  # neither preview nor refusal changed anything
        assert (await running.journal.get_summary(app_id)).state == ApplicationState.DEAD
    assert await running.journal.operator_actions() == []

    (tmp_path / "import").unlink()  # the operator fixes the cause
    by_cli = await cli(
        "replay", "-c", str(config), ids[0], "--reason", "Ordner repariert", "--operator", "alice"
    )
    assert by_cli.exit_code == 0, by_cli.output
    status, body = await running.post(
        f"/api/v1/applications/{ids[1]}/replay", json={"reason": "Ordner repariert"}, headers=OPERATOR
    )
    assert status == 200 and body["replayed"] == [ids[1]]
    for app_id in ids[:2]:
        assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    timeline = {}
    for app_id, who in ((ids[0], "alice"), (ids[1], "ops")):
        [event] = [e for e in await running.journal.events(app_id) if e.type == "operator.replayed"]
        assert event.data == {"operator": who, "reason": "Ordner repariert", "tasks": 1}
        timeline[who] = event
    bulk = await cli(
        "replay",
        "-c",
        str(config),
        "--all-dead",
        "--reason",
        "Rest nach Reparatur",
        "--yes",
        "--operator",
        "carol",
    )
    assert bulk.exit_code == 0 and "this affects 2 application(s)" in bulk.output
    assert "replayed 2 application(s)" in bulk.output
    for app_id in ids[2:]:
        assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    assert sorted(p.name for p in (tmp_path / "import").iterdir()) == sorted(ids)

    trail = await running.journal.operator_actions()
    assert [(a.operator, a.action, a.subject, a.count, a.reason) for a in trail] == [
        ("carol", "replayed", "state=dead", 2, "Rest nach Reparatur"),
        ("ops", "replayed", ids[1], 1, "Ordner repariert"),
        ("alice", "replayed", ids[0], 1, "Ordner repariert"),
    ]
    assert await metric(running, "aktenhub_operator_actions_total", 'action="replayed"') == 4
    nothing = await cli("replay", "-c", str(config), ids[0])
    assert nothing.exit_code == 1 and "had no dead step" in nothing.output

    # Found by the id its source gave it, and shown with the same timeline, through either face.
    status, body = await running.get("/api/v1/applications", params={"find": "J-0"}, headers=OPERATOR)
    assert [a["id"] for a in body["applications"]] == [ids[0]]
    found = await cli("applications", "-c", str(config), "--find", "J-0", "--json")
    assert [a["id"] for a in json.loads(found.stdout)] == [ids[0]]
    shown = await cli("show", "-c", str(config), ids[0], "--json")
    status, detail = await running.get(f"/api/v1/applications/{ids[0]}", headers=OPERATOR)
    assert json.loads(shown.stdout)["timeline"] == detail["timeline"]
    assert "operator.replayed" in [e["type"] for e in detail["timeline"]]


async def test_abandon_by_cli_beside_the_hub_names_the_operator(tmp_path: Path, hub_factory: Any) -> None:
    running, config = await start(hub_factory, tmp_path, blocked=True)
    app_id = await submit(running, "jagdschein", "J-9")
    assert await running.wait_for_state(app_id) == ApplicationState.DEAD
    unknown = await cli("abandon", "-c", str(config), "app_nope", "--reason", "weg")
    assert unknown.exit_code == 1 and "no application app_nope" in unknown.output
    done = await cli("abandon", "-c", str(config), app_id, "--reason", "zurückgezogen", "--operator", "alice")
    assert done.exit_code == 0 and f"abandoned {app_id}; 1 open step(s) ended" in done.output
    assert await running.wait_for_state(app_id) == ApplicationState.ABANDONED
    [event] = [e for e in await running.journal.events(app_id) if e.type == "operator.abandoned"]
    assert event.data == {
        "operator": "alice",
        "reason": "zurückgezogen",
        "tasks": 1,
        "previous_state": "dead",
    }
    assert await metric(running, "aktenhub_operator_actions_total", 'action="abandoned"') == 1


async def test_a_day_of_receipt_is_a_filter_a_bulk_replay_can_be_limited_to(
    tmp_path: Path, hub_factory: Any
) -> None:
    running, _ = await start(hub_factory, tmp_path, blocked=True)
    app_id = await submit(running, "jagdschein", "FC-DAY-1")
    assert await running.wait_for_state(app_id) == ApplicationState.DEAD
    received = (await running.journal.get_summary(app_id)).received_at
    operations = running.hub.operations

    that_day = ApplicationFilter(received_from=received - timedelta(hours=1), received_until=received)
    assert (await operations.replay_preview(that_day)).count == 0  # until: before, not at
    that_day = replace(that_day, received_until=received + timedelta(seconds=1))
    preview = await operations.replay_preview(that_day)
    assert preview.count == 1 and preview.filter.startswith("received_from=")
    assert await operations.replay_bulk(that_day, "ops", "Ordner wieder da") == [app_id]
    with pytest.raises(Invalid):  # no filter at all is still refused, not "everything"
        await operations.replay_preview(ApplicationFilter())


async def test_the_cli_abandons_every_dead_application_of_a_target_after_counting(
    tmp_path: Path, hub_factory: Any
) -> None:
    running, config = await start(hub_factory, tmp_path, blocked=True)
    ids = [await submit(running, "jagdschein", f"J-{n}") for n in range(2)]
    for app_id in ids:
        assert await running.wait_for_state(app_id) == ApplicationState.DEAD
    neither = await cli("abandon", "-c", str(config))
    assert neither.exit_code == 2 and "an application id or --all-dead" in neither.output
    counted = await cli("abandon", "-c", str(config), "--all-dead", "--target", "import", "--dry-run")
    assert counted.exit_code == 0 and "this affects 2 application(s)" in counted.output
    no_reason = await cli("abandon", "-c", str(config), "--all-dead", "--yes")
    assert no_reason.exit_code == 2 and "needs a reason" in no_reason.output
    for app_id in ids:  # counting and refusing changed nothing
        assert (await running.journal.get_summary(app_id)).state == ApplicationState.DEAD

    done = await cli(
        "abandon", "-c", str(config), "--all-dead", "--target", "import", "--reason", "doppelt", "--yes"
    )
    assert done.exit_code == 0 and "abandoned 2 application(s)" in done.output, done.output
    for app_id in ids:
        assert (await running.journal.get_summary(app_id)).state == ApplicationState.ABANDONED
    [row] = await running.journal.operator_actions()
    assert (row.action, row.count, row.reason) == ("abandoned", 2, "doppelt")
