"""Admin API roles: viewers see metadata only, admins abandon, every operator action is on the timeline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from click.testing import CliRunner

from hub import ConnectorConfig, hookimpl
from hub.cli import main
from hub.connectors import Connector, DeliveryContext, Intake, Sink, Source
from hub.errors import Permanent
from hub.journal import TaskState, open_journal
from hub.models import Application, ApplicationState, Attachment, Delivery, FileRecord, Party
from hub.testing.fakes import MANIFEST, RecordingSink
from hub.testing.harness import RunningHub, base_settings, stop_hub

TOKENS = {"VIEWER_TOKEN": "v-secret-1", "OPERATOR_TOKEN": "o-secret-2", "ADMIN_TOKEN": "a-secret-3"}
SERVER = {
    "listen": "127.0.0.1:0",
    "admin_tokens": [
        {"name": "dashboard", "token": "${VIEWER_TOKEN}", "role": "viewer"},
        {"name": "ops", "token": "${OPERATOR_TOKEN}", "role": "operator"},
        {"name": "chief", "token": "${ADMIN_TOKEN}", "role": "admin"},
    ],
}
VIEWER = {"Authorization": "Bearer v-secret-1"}
OPERATOR = {"Authorization": "Bearer o-secret-2"}
ADMIN = {"Authorization": "Bearer a-secret-3"}
CONNECTORS: dict[str, Any] = {
    "portal": {"type": "test-personal"},
    "json": {"type": "test-json"},
    "dms": {"type": "test-quoting"},
    "other": {"type": "test-recording", "poison": True},
}
ROUTES = [
    {"name": "personal", "from": "portal", "to": ["dms"]},
    {"name": "plain", "from": "json", "to": ["other"]},
]
# What the hidden personal data looks like; none of it may reach a viewer.
SURNAME, GIVEN, BIRTH, STREET, FILE = (
    "Mustermann",
    "Erika",
    "1964-08-12",
    "Heidestraße 17",
    "Ausweis-Erika.pdf",
)


class PersonalSource(Source[ConnectorConfig]):
    """Takes `{"id": ...}` and makes an application with an applicant and an attachment."""

    kind = "test-personal"
    manifest = MANIFEST

    async def receive(self, request: web.Request, service: str) -> Intake:
        body = await request.json()
        scan = await self.context.blobs.write_bytes(b"%PDF-1.4 scan")
        return Intake(
            Application(
                source=self.name,
                external_id=body["id"],
                service=service,
                applicant=Party.model_validate(
                    {
                        "given_name": GIVEN,
                        "family_name": SURNAME,
                        "birth_date": BIRTH,
                        "address": {"street": STREET, "postal_code": "51373", "city": "Leverkusen"},
                    }
                ),
                form={"geburtsdatum": BIRTH},
                attachments=[
                    Attachment(
                        name=FILE,
                        media_type="application/pdf",
                        size=scan.size,
                        sha256=scan.sha256,
                        blob=scan.ref,
                    )
                ],
            )
        )


class QuotingSink(Sink[ConnectorConfig]):
    """Refuses like real targets do: the message quotes the offending personal data."""

    kind = "test-quoting"
    manifest = MANIFEST

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        person = ctx.application.applicant
        raise Permanent(f"Feld Geburtsdatum {person.birth_date} von {person.family_name} ist ungültig")


class Plugin:
    @hookimpl
    def aktenhub_connector_types(self) -> Sequence[type[Connector]]:
        return [PersonalSource, QuotingSink]


async def start(hub_factory: Any) -> RunningHub:
    running: RunningHub = await hub_factory(
        CONNECTORS, ROUTES, env=TOKENS, server=SERVER, extra_plugins=(Plugin(),)
    )
    return running


async def personal_dead(running: RunningHub, ident: str = "V-1") -> str:
    status, body = await running.post("/intake/portal/wohngeld", json={"id": ident})
    assert status == 202, body
    app_id = str(body["application_id"])
    assert await running.wait_for_state(app_id) == ApplicationState.DEAD
    return app_id


async def plain(running: RunningHub, ident: str, state: ApplicationState) -> str:
    status, body = await running.post("/intake/json/fischereischein", json={"id": ident, "form": {}})
    assert status == 202, body
    app_id = str(body["application_id"])
    assert await running.wait_for_state(app_id) == state
    return app_id


def leaks(body: Any) -> list[str]:
    text = json.dumps(body, ensure_ascii=False)
    return [s for s in (SURNAME, GIVEN, BIRTH, STREET, FILE, "Ausweis") if s in text]


async def test_viewer_sees_metadata_and_error_codes_never_personal_data(hub_factory: Any) -> None:
    running = await start(hub_factory)
    app_id = await personal_dead(running)

    status, listed = await running.get("/api/v1/applications", headers=VIEWER)
    assert status == 200 and leaks(listed) == []
    [row] = listed["applications"]
    assert (row["id"], row["error"], row["error_code"]) == (app_id, "Permanent", "Permanent")

    status, detail = await running.get(f"/api/v1/applications/{app_id}", headers=VIEWER)
    assert status == 200 and leaks(detail) == []
    assert "application" not in detail
    deliver = next(t for t in detail["tasks"] if t["step"] == "deliver")
    assert (deliver["state"], deliver["last_error"], deliver["error_code"]) == (
        "dead",
        "Permanent",
        "Permanent",
    )
    assert all(t["result"] is None for t in detail["tasks"])  # the mapped record names the attachment
    dead = next(e for e in detail["timeline"] if e["type"] == "step.dead")
    assert dead["data"]["error"] == "[redacted]" and dead["data"]["error_code"] == "Permanent"

    # Operators repair failures: they see the detail.
    status, full = await running.get(f"/api/v1/applications/{app_id}", headers=OPERATOR)
    assert status == 200 and {SURNAME, BIRTH, FILE} <= set(leaks(full))
    assert full["error"] == f"Permanent: Feld Geburtsdatum {BIRTH} von {SURNAME} ist ungültig"


async def test_viewer_search_matches_ids_and_file_numbers_not_names(hub_factory: Any) -> None:
    running = await start(hub_factory)
    app_id = await personal_dead(running, "KREIS-4711")

    async def found(q: str, headers: dict[str, str]) -> list[str]:
        status, body = await running.get("/api/v1/applications", params={"q": q}, headers=headers)
        assert status == 200
        return [a["id"] for a in body["applications"]]

    assert await found("mustermann", VIEWER) == []
    assert await found("erika", VIEWER) == []
    assert await found("mustermann", OPERATOR) == [app_id]
    assert await found("kreis-4711", VIEWER) == [app_id]
    assert await found(app_id[-12:], VIEWER) == [app_id]
    assert await found("wohngeld", VIEWER) == [app_id]


@pytest.mark.parametrize(
    "query",
    [
        "limit=-1",
        "limit=0",
        "limit=501",
        "limit=abc",
        "limit=1e2",
        "limit=%205",
        "limit=%2B5",
        "limit=%D9%A5",  # an Arabic-Indic five: int() would take it
        "limit=",
        "limit=1&limit=2",
        "offset=-1",
        "offset=99999999999999999999",
        "offset=1.5",
    ],
)
async def test_limit_and_offset_must_be_in_range(hub_factory: Any, query: str) -> None:
    running = await start(hub_factory)
    status, body = await running.get(f"/api/v1/applications?{query}", headers=VIEWER)
    assert status == 400, body
    name = query.split("=")[0]
    assert f"{name} must be an integer from" in body["error"]


async def test_limit_pages_through_the_list(hub_factory: Any) -> None:
    running = await start(hub_factory)
    ids = {await plain(running, f"p{i}", ApplicationState.DEAD) for i in range(3)}
    pages = []
    for offset in range(4):
        status, body = await running.get(f"/api/v1/applications?limit=1&offset={offset}", headers=VIEWER)
        assert status == 200 and (body["limit"], body["offset"]) == (1, offset)
        pages.append([a["id"] for a in body["applications"]])
    assert [len(p) for p in pages] == [1, 1, 1, 0]
    assert {p[0] for p in pages[:3]} == ids
    status, body = await running.get("/api/v1/applications?limit=500&offset=0", headers=VIEWER)
    assert status == 200 and len(body["applications"]) == 3


async def test_every_api_answer_says_no_store(hub_factory: Any) -> None:
    running = await start(hub_factory)
    app_id = await plain(running, "n1", ApplicationState.DEAD)
    calls = [
        ("GET", "/api/v1/applications", VIEWER, 200),
        ("GET", f"/api/v1/applications/{app_id}", OPERATOR, 200),
        ("GET", "/api/v1/applications", {}, 401),
        ("GET", "/api/v1/applications", {"Authorization": "Bearer nope"}, 401),
        ("POST", "/api/v1/replay", VIEWER, 403),
        ("POST", f"/api/v1/applications/{app_id}/abandon", OPERATOR, 403),
        ("GET", "/api/v1/applications/app_nope", VIEWER, 404),
        ("GET", "/api/v1/nothing-here", VIEWER, 404),
        ("GET", "/api/v1/replay", OPERATOR, 405),
        ("GET", "/api/v1/applications?limit=-1", VIEWER, 400),
    ]
    for method, path, headers, expected in calls:
        async with running.http.request(method, running.url + path, headers=headers) as resp:
            assert resp.status == expected, (method, path)
            assert resp.headers.get("Cache-Control") == "no-store", (method, path, resp.status)
    async with running.http.get(running.url + "/healthz") as resp:
        assert "Cache-Control" not in resp.headers  # only the API answers are marked


async def test_only_admins_abandon_and_abandoned_work_never_runs_again(hub_factory: Any) -> None:
    running = await start(hub_factory)
    app_id = await plain(running, "a1", ApplicationState.DEAD)
    path = f"/api/v1/applications/{app_id}/abandon"

    status, body = await running.post(path, json={"reason": "Antrag zurückgezogen"}, headers=OPERATOR)
    assert status == 403 and "needs role admin" in body["error"]
    for bad in ({}, {"reason": "   "}, {"reason": "x", "extra": 1}, ["reason"], {"reason": "x" * 2001}):
        status, body = await running.post(path, json=bad, headers=ADMIN)
        assert status == 400 and "reason" in body["error"], bad
    status, body = await running.post(path, data=b"\xff", headers=ADMIN)
    assert status == 400

    status, body = await running.post(path, json={"reason": "Antrag zurückgezogen"}, headers=ADMIN)
    assert status == 200, body
    assert (body["state"], body["tasks_ended"], body["already_abandoned"]) == ("abandoned", 1, False)
    assert await running.wait_for_state(app_id) == ApplicationState.ABANDONED
    [deliver] = [t for t in await running.journal.tasks(app_id) if t.step == "deliver"]
    assert deliver.state == TaskState.ABANDONED

    # Neither replay brings it back, even after the target was fixed.
    sink = running.hub.connectors["other"]
    assert isinstance(sink, RecordingSink)
    sink.poison = False
    status, body = await running.post(
        "/api/v1/replay", json={"state": "dead", "reason": "r"}, headers=OPERATOR
    )
    assert (status, body["count"]) == (200, 0)
    status, body = await running.post(
        "/api/v1/replay", json={"ids": [app_id], "reason": "r"}, headers=OPERATOR
    )
    assert (status, body["count"]) == (200, 0)
    status, body = await running.post(f"/api/v1/applications/{app_id}/replay", headers=OPERATOR)
    assert status == 409
    assert await running.journal.next_due() is None
    assert sink.delivered == {}

    # Sent again (e.g. after a timeout): the same answer, nothing recorded twice.
    status, body = await running.post(path, json={"reason": "nochmal"}, headers=ADMIN)
    assert (status, body["already_abandoned"], body["tasks_ended"]) == (200, True, 0)
    events = [e for e in await running.journal.events(app_id) if e.type == "operator.abandoned"]
    assert len(events) == 1
    assert events[0].data == {
        "operator": "chief",
        "reason": "Antrag zurückgezogen",
        "tasks": 1,
        "previous_state": "dead",
    }

    # Viewers see who abandoned it, not the free-text reason.
    status, detail = await running.get(f"/api/v1/applications/{app_id}", headers=VIEWER)
    [seen] = [e for e in detail["timeline"] if e["type"] == "operator.abandoned"]
    assert seen["data"]["operator"] == "chief" and seen["data"]["reason"] == "[redacted]"
    assert seen["at"]
    status, listed = await running.get("/api/v1/applications?state=abandoned", headers=VIEWER)
    assert [a["id"] for a in listed["applications"]] == [app_id]


async def test_abandon_refuses_finished_and_unknown_applications(hub_factory: Any) -> None:
    running = await start(hub_factory)
    sink = running.hub.connectors["other"]
    assert isinstance(sink, RecordingSink)
    sink.poison = False
    done = await plain(running, "c1", ApplicationState.COMPLETED)
    status, body = await running.post(
        f"/api/v1/applications/{done}/abandon", json={"reason": "zu spät"}, headers=ADMIN
    )
    assert status == 409 and "completed" in body["error"]
    assert await running.wait_for_state(done) == ApplicationState.COMPLETED
    status, _ = await running.post(
        "/api/v1/applications/app_nope/abandon", json={"reason": "weg"}, headers=ADMIN
    )
    assert status == 404


async def test_replays_name_the_operator_on_each_timeline(hub_factory: Any) -> None:
    running = await start(hub_factory)
    one, two = [await plain(running, f"r{i}", ApplicationState.DEAD) for i in range(2)]
    status, _ = await running.post(f"/api/v1/applications/{one}/replay", headers=OPERATOR)
    assert status == 200
    assert await running.wait_for_state(one) == ApplicationState.DEAD
    status, body = await running.post("/api/v1/replay", json={"state": "dead", "reason": "r"}, headers=ADMIN)
    assert (status, sorted(body["replayed"])) == (200, sorted([one, two]))
    for app_id, names in ((one, ["ops", "chief"]), (two, ["chief"])):
        replays = [e for e in await running.journal.events(app_id) if e.type == "operator.replayed"]
        assert [e.data["operator"] for e in replays] == names
        assert all(e.data["tasks"] == 1 for e in replays)


async def test_cli_records_the_operator_of_replay_and_abandon(tmp_path: Path, hub_factory: Any) -> None:
    # The CLI loads installed plugins only: a FormCycle source and a filedrop sink that cannot write.
    blocked = tmp_path / "import"
    blocked.write_text("a file where the import directory should be")
    connectors = {
        "formcycle": {"type": "formcycle", "token": "${FORMCYCLE_TOKEN}", "id_field": "vorgang_id"},
        "import": {"type": "filedrop", "path": str(blocked), "retry": {"max_attempts": 1}},
    }
    routes = [{"name": "all-forms", "from": "formcycle", "to": ["import"]}]
    env = {"FORMCYCLE_TOKEN": "formcycle-token-0123456789"}
    running = await hub_factory(connectors, routes, env=env)
    ids = []
    for n in range(2):
        status, body = await running.post(
            "/intake/formcycle/jagdschein",
            data={"vorgang_id": f"V-{n}"},
            headers={"X-Aktenhub-Token": env["FORMCYCLE_TOKEN"]},
        )
        assert status == 202, body
        ids.append(body["application_id"])
        assert await running.wait_for_state(ids[-1]) == ApplicationState.DEAD
    await stop_hub(running)
    config = tmp_path / "aktenhub.yaml"
    config.write_text(yaml.safe_dump(base_settings(tmp_path / "hub", connectors, routes)))

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, [*args, "-c", str(config)], env=env, catch_exceptions=False)

    first, second = ids
    replayed = await asyncio.to_thread(run, "replay", first, "--operator", "m.schmidt")
    assert replayed.exit_code == 0, replayed.output
    abandoned = await asyncio.to_thread(
        run, "abandon", second, "--reason", "Dublette", "--operator", "k.weber"
    )
    assert abandoned.exit_code == 0, abandoned.output
    assert (await asyncio.to_thread(run, "abandon", "app_nope", "--reason", "x")).exit_code == 1
    assert (await asyncio.to_thread(run, "abandon", second, "--reason", " ")).exit_code == 2

    journal = open_journal(str(base_settings(tmp_path / "hub", connectors, routes)["store"]))
    await journal.open()
    try:
        [replay] = [e for e in await journal.events(first) if e.type == "operator.replayed"]
        assert replay.data["operator"] == "m.schmidt"
        [abandon] = [e for e in await journal.events(second) if e.type == "operator.abandoned"]
        assert (abandon.data["operator"], abandon.data["reason"]) == ("k.weber", "Dublette")
        summary = await journal.get_summary(second)
        assert summary is not None and summary.state == ApplicationState.ABANDONED
    finally:
        await journal.close()


async def test_hostile_bodies_and_filters_get_a_clear_400(hub_factory: Any) -> None:
    running = await start(hub_factory)
    app_id = await plain(running, "h1", ApplicationState.DEAD)
    bodies: list[tuple[bytes, int]] = [
        (b"[" * 100_000, 400),  # deeper than the JSON parser's stack
        (b'{"reason": "' + b"x" * 300_000 + b'"}', 413),
        (b"\xff\xfe", 400),
        (b"null", 400),
    ]
    for body, expected in bodies:
        status, answer = await running.post(
            f"/api/v1/applications/{app_id}/abandon", data=body, headers=ADMIN
        )
        assert status == expected and "reason" in answer["error"], body[:20]
        status, answer = await running.post("/api/v1/replay", data=body, headers=OPERATOR)
        assert status == expected, body[:20]
        assert "JSON object" in answer["error"] or "give a filter" in answer["error"]
    too_many = {"ids": [f"app_{i}" for i in range(1001)]}
    status, answer = await running.post("/api/v1/replay", json=too_many, headers=OPERATOR)
    assert status == 400 and "at most 1000" in answer["error"]
    status, answer = await running.get("/api/v1/applications", params={"q": "x" * 201}, headers=VIEWER)
    assert status == 400 and "at most 200 characters" in answer["error"]
    assert await running.wait_for_state(app_id) == ApplicationState.DEAD  # nothing changed
    assert [e.type for e in await running.journal.events(app_id)][-1] == "step.dead"
