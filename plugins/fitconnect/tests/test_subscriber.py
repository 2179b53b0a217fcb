"""The FIT-Connect subscriber against the simulator: taken, filed, accepted once with the right tags;
rejected with the right problem for what cannot be taken; never rejected for the hub's own trouble."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hub_fitconnect.sender import SenderFaults
from hub_fitconnect.source import FitConnectSource
from hub_fitconnect.wire import (
    CALLBACK_NEW_SUBMISSIONS,
    PROBLEM_ENCRYPTION_ISSUE,
    PROBLEM_HASH_MISMATCH,
    PROBLEM_SCHEMA_VIOLATION,
    PROBLEM_SERVICE_MISMATCH,
    SubmissionForPickup,
)
from subscriber_helpers import (
    DATA_SCHEMA,
    MIETBESCHEINIGUNG,
    OTHER_SERVICE,
    SOURCE,
    WOHNGELD,
    WOHNGELDANTRAG,
    FitConnect,
    signed_callback,
)
from subscriber_helpers import world as world  # the fixture

from hub import ApplicationState, HeldState
from hub.journal import ApplicationFilter
from hub.testing.harness import RunningHub, base_settings, start_hub, stop_hub


async def hub_for(
    fc: FitConnect, tmp: Path, *, workers: bool = False, schemas: str | None = None, **settings: Any
) -> RunningHub:
    """A hub taking our destination's submissions into a drop folder.

    Without workers it schedules no poll either: the test polls (or calls back) when it means to.
    """
    (tmp / "drop").mkdir(exist_ok=True)
    connectors = {
        SOURCE: fc.connector(**settings),
        "wohngeld-fachverfahren": {"type": "filedrop", "path": str(tmp / "drop")},
    }
    routes = [
        {
            "name": "wohngeld",
            "from": SOURCE,
            "when": {"service": "wohngeld"},
            "to": ["wohngeld-fachverfahren"],
        }
    ]
    config = base_settings(tmp, connectors, routes)
    if schemas is not None:
        config["schemas"] = schemas
    return await start_hub(config, env=fc.env(), workers=workers)


@pytest_asyncio.fixture
async def running(world: FitConnect, tmp_path: Path) -> AsyncIterator[RunningHub]:
    hub = await hub_for(world, tmp_path)
    try:
        yield hub
    finally:
        await stop_hub(hub)


def source(running: RunningHub) -> FitConnectSource:
    found = running.hub.sources()[SOURCE]
    assert isinstance(found, FitConnectSource)
    return found


async def applications(running: RunningHub) -> list[Any]:
    found = await running.journal.list_applications(ApplicationFilter(), limit=100)
    return [a for a in found if a.source == SOURCE]


async def test_submission_is_filed_and_accepted_once_with_its_tags(
    world: FitConnect,
    tmp_path: Path,
) -> None:
    running = await hub_for(world, tmp_path, workers=True)
    try:
        await filed_and_accepted_once(world, running, tmp_path)
    finally:
        await stop_hub(running)


async def filed_and_accepted_once(world: FitConnect, running: RunningHub, tmp_path: Path) -> None:
    sent = await world.send(attachments=2)
    assert await running.hub.poll(SOURCE)

    view = await world.view(sent.submission_id)
    assert view["status"] == "accepted"
    accepts = await world.accepts(sent.submission_id)
    assert len(accepts) == 1
    claims = accepts[0]
    assert claims["iss"] == world.destination_id
    assert claims["txn"] == f"case:{sent.case_id}"
    tags = next(iter(claims["events"].values()))["authenticationTags"]
    assert tags == sent.tags.model_dump(exclude_none=True)
    assert await world.rejects(sent.submission_id) == []

    [summary] = await applications(running)
    app = await running.journal.get_application(summary.id)
    assert app is not None
    assert app.external_id == sent.submission_id
    assert app.service == "wohngeld"
    assert app.form == WOHNGELDANTRAG
    assert app.correlations["fitconnect.case"] == sent.case_id
    assert app.correlations["fitconnect.destination"] == world.destination_id
    assert sorted(a.name for a in app.attachments) == ["Mietbescheinigung-0.pdf", "Mietbescheinigung-1.pdf"]
    content = await running.hub.blobs.read_bytes(app.attachments[0].blob)
    assert content in (MIETBESCHEINIGUNG + b"\x00", MIETBESCHEINIGUNG + b"\x01")
    assert app.original is not None
    original = await running.hub.blobs.read_bytes(app.original.blob)
    assert json.loads(original) == WOHNGELDANTRAG

    assert await running.wait_for_state(app.id) == ApplicationState.COMPLETED
    drops = [p for p in (tmp_path / "drop").iterdir() if p.is_dir()]
    assert len(drops) == 1

    # a second poll finds nothing to take: accepted submissions leave the pickup list
    assert await running.hub.poll(SOURCE)
    assert len(await applications(running)) == 1
    assert len(await world.accepts(sent.submission_id)) == 1


async def test_callback_brings_the_submission_in(world: FitConnect, running: RunningHub) -> None:
    await world.set_callback(f"{running.url}/intake/{SOURCE}/callback")
    sent = await world.send()

    async def accepted() -> bool:
        return (await world.view(sent.submission_id))["status"] == "accepted"

    await running.wait_for(accepted, 20, "the callback's submission to be accepted")
    assert len(await world.accepts(sent.submission_id)) == 1
    assert len(await applications(running)) == 1
    delivered = [c for c in world.state.callbacks if c.status is not None]
    assert delivered and all(c.status == 200 for c in delivered)


def callback_body(fc: FitConnect, submission_id: str, case_id: str) -> bytes:
    item = {"destinationId": fc.destination_id, "submissionId": submission_id, "caseId": case_id}
    return json.dumps({"type": CALLBACK_NEW_SUBMISSIONS, "submissions": [item]}).encode()


@pytest.mark.parametrize(
    "tamper", ["wrong-hmac", "stale-timestamp", "changed-body", "future-timestamp", "no-headers"]
)
async def test_a_callback_that_does_not_check_out_is_refused_and_takes_nothing(
    world: FitConnect,
    running: RunningHub,
    tamper: str,
) -> None:
    sent = await world.send()
    body = callback_body(world, sent.submission_id, sent.case_id)
    now = int(time.time())
    headers = signed_callback(body, now)
    if tamper == "wrong-hmac":
        headers = signed_callback(body, now, secret="not-the-secret-of-this-destination-at-all")
    elif tamper == "stale-timestamp":
        headers = signed_callback(body, now - 301)
    elif tamper == "future-timestamp":
        headers = signed_callback(body, now + 600)
    elif tamper == "changed-body":
        body = body.replace(b'"submissions"', b'"submissions" ')
    elif tamper == "no-headers":
        headers = {"Content-Type": "application/json"}

    status, answer = await running.post(f"/intake/{SOURCE}/callback", data=body, headers=headers)

    assert status == 401, answer
    assert await applications(running) == []
    view = await world.view(sent.submission_id)
    assert view["status"] == "submitted"
    assert view["fetched"] is None  # not even fetched


async def test_a_valid_callback_is_answered_200(world: FitConnect, running: RunningHub) -> None:
    sent = await world.send()
    body = callback_body(world, sent.submission_id, sent.case_id)
    status, _ = await running.post(
        f"/intake/{SOURCE}/callback", data=body, headers=signed_callback(body, int(time.time()))
    )
    assert status == 200

    async def accepted() -> bool:
        return (await world.view(sent.submission_id))["status"] == "accepted"

    await running.wait_for(accepted, 20, "the submission to be accepted")


@pytest.mark.parametrize(
    ("case", "problem", "instance"),
    [
        ("unknown-kid", PROBLEM_ENCRYPTION_ISSUE, "metadata"),
        ("corrupt-data", PROBLEM_ENCRYPTION_ISSUE, "data"),
        ("data-hash", PROBLEM_HASH_MISMATCH, "data"),
        ("attachment-hash", PROBLEM_HASH_MISMATCH, "attachment"),
        ("unknown-service", PROBLEM_SERVICE_MISMATCH, "submission"),
    ],
)
async def test_what_cannot_be_taken_is_rejected_once_with_its_problem(
    world: FitConnect,
    running: RunningHub,
    tmp_path: Path,
    case: str,
    problem: str,
    instance: str,
) -> None:
    faults = {
        "unknown-kid": SenderFaults(metadata_kid="a-key-the-destination-never-had"),
        "corrupt-data": SenderFaults(corrupt_data=True),
        "data-hash": SenderFaults(wrong_data_hash=True),
        "attachment-hash": SenderFaults(wrong_attachment_hash=True),
    }.get(case, SenderFaults())
    sent = await world.send(faults=faults, service=OTHER_SERVICE if case == "unknown-service" else WOHNGELD)

    await running.hub.poll(SOURCE)

    assert (await world.view(sent.submission_id))["status"] == "rejected"
    [reject] = await world.rejects(sent.submission_id)
    [found] = next(iter(reject["events"].values()))["problems"]
    assert found["type"] == problem
    assert found["instance"].startswith(instance)
    assert await world.accepts(sent.submission_id) == []
    assert await applications(running) == []
    assert not any((tmp_path / "drop").iterdir())
    [held] = (await running.hub.journal.held_lookup(SOURCE, (sent.submission_id,))).values()
    assert held.state == HeldState.REJECTED
    assert held.reason_code == problem.rsplit("/", 1)[-1]

    # the next poll leaves it alone: one reject, ever
    await running.hub.poll(SOURCE)
    assert len(await world.rejects(sent.submission_id)) == 1


async def test_a_failing_e_file_is_retried_never_rejected(world: FitConnect, tmp_path: Path) -> None:
    connectors = {
        SOURCE: world.connector(),
        # Enaio is down: nothing listens there
        "enaio": {
            "type": "enaio",
            "base_url": "http://127.0.0.1:9",
            "username": "aktenhub",
            "password": "x",
            "retry": {"max_attempts": 5, "initial_seconds": 0.05, "max_seconds": 0.1, "jitter_seconds": 0},
        },
    }
    mapping = Path(__file__).parents[3] / "config" / "mappings" / "wohngeld.yaml"
    (tmp_path / "drop").mkdir()
    connectors["wohngeld-fachverfahren"] = {"type": "filedrop", "path": str(tmp_path / "drop")}
    routes = [
        {"name": "wohngeld", "from": SOURCE, "map": str(mapping), "to": ["enaio", "wohngeld-fachverfahren"]}
    ]
    running = await start_hub(base_settings(tmp_path, connectors, routes), env=world.env())
    try:
        sent = await world.send()
        await running.hub.poll(SOURCE)
        [app] = await applications(running)

        async def retried() -> bool:
            tasks = await running.journal.tasks(app.id)
            return any(t.target == "enaio" and t.attempts >= 2 for t in tasks)

        await running.wait_for(retried, 20, "the Enaio delivery to be retried")
        assert (await world.view(sent.submission_id))["status"] == "accepted"
        assert await world.rejects(sent.submission_id) == []
        assert len(await world.accepts(sent.submission_id)) == 1
    finally:
        await stop_hub(running)


async def test_a_409_on_a_repeated_accept_is_success_when_the_log_shows_ours(
    world: FitConnect,
    running: RunningHub,
) -> None:
    """Two takers (a callback here, the poll in another process) meet: the later accept gets a 409."""
    sent = await world.send()
    item = SubmissionForPickup(
        destinationId=world.destination_id, submissionId=sent.submission_id, caseId=sent.case_id
    )
    first = source(running)
    # another hub process's source: same configuration and journal, its own lock
    second = FitConnectSource(first.config, first.context)
    await world.faults(hold_events_next=1)
    held = asyncio.create_task(first.take(item, running.hub.intake))

    async def holding() -> bool:
        return world.state.held == 1

    await running.wait_for(holding, 20, "the first accept to be held")
    assert await second.take(item, running.hub.intake) == 0  # a duplicate intake, accepted (204)
    assert len(await world.accepts(sent.submission_id)) == 1
    world.state.release_held()
    assert await held == 1  # its accept: 409, and the log shows our accept: success
    assert len(await world.accepts(sent.submission_id)) == 1
    assert len(await applications(running)) == 1
    assert await running.hub.journal.held_lookup(SOURCE, (sent.submission_id,)) == {}


async def test_an_uncheckable_submission_waits_is_never_rejected_and_is_reported_overdue(
    world: FitConnect, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Metadata of a schema version not installed here: not the sender's fault, so no reject; it waits
    (retried, then quarantined for an operator), and counts as overdue once past the warning age."""
    running = await hub_for(world, tmp_path, unaccepted_warning_after="PT0S")
    try:
        sent = await world.sender.send(
            world.destination_id,
            WOHNGELD,
            data=json.dumps(WOHNGELDANTRAG).encode(),
            data_schema_uri="https://schema.fitko.de/fim/s00000000009_1.0.0.schema.json",
            metadata_version="9.9.9",
        )
        with caplog.at_level("INFO"):
            await running.hub.poll(SOURCE)
        [held] = (await running.hub.journal.held_lookup(SOURCE, (sent.submission_id,))).values()
        assert held.state == HeldState.RETRYING
        assert held.reason_code == "undecidable"
        assert "9.9.9" in held.reason

        await running.hub.poll(SOURCE)  # the last try allowed (max_fetches 2): quarantined, still upstream
        [held] = (await running.hub.journal.held_lookup(SOURCE, (sent.submission_id,))).values()
        assert held.state == HeldState.QUARANTINED
        view = await world.view(sent.submission_id)
        assert view["status"] == "submitted"
        assert await world.rejects(sent.submission_id) == []
        assert await applications(running) == []

        status, metrics = await running.get("/metrics")
        assert status == 200
        assert f'aktenhub_source_overdue{{source="{SOURCE}"}} 1.0' in metrics
        warnings = [r for r in caplog.records if "not accepted for" in r.getMessage()]
        assert len(warnings) == 1  # once, not at every poll
        assert warnings[0].levelname == "WARNING"
        assert sent.submission_id in warnings[0].getMessage()
        assert "Petrović" not in caplog.text  # ids and age only
    finally:
        await stop_hub(running)


async def test_the_v2_paths_take_and_accept_alike(world: FitConnect, tmp_path: Path) -> None:
    running = await hub_for(world, tmp_path, api_version="v2")
    try:
        sent = await world.send()
        await running.hub.poll(SOURCE)
        assert (await world.view(sent.submission_id))["status"] == "accepted"
        assert len(await world.accepts(sent.submission_id)) == 1
        assert [a.external_id for a in await applications(running)] == [sent.submission_id]
    finally:
        await stop_hub(running)


async def test_data_invalid_against_its_installed_schema_is_rejected(
    world: FitConnect, tmp_path: Path, schema_dir: Path
) -> None:
    """With the service's data schema installed in the schema directory, data that violates it is rejected
    (schema-violation, naming the place, never the value); without it (the other tests) it is taken."""
    schemas = tmp_path / "schemas"
    (schemas / "fit-connect").mkdir(parents=True)
    metadata_schema = schema_dir / "fit-connect" / "metadata.schema.v1.0.0.json"
    (schemas / "fit-connect" / metadata_schema.name).write_bytes(metadata_schema.read_bytes())
    wohngeld_schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": DATA_SCHEMA,
        "type": "object",
        "required": ["antragsart", "antragsteller"],
        "properties": {"antragsart": {"enum": ["Erstantrag", "Weiterleistungsantrag"]}},
    }
    (schemas / "fit-connect" / "wohngeld.schema.json").write_text(json.dumps(wohngeld_schema))
    running = await hub_for(world, tmp_path, schemas=str(schemas))
    try:
        valid = await world.send()
        invalid = await world.sender.send(
            world.destination_id,
            WOHNGELD,
            data=json.dumps({**WOHNGELDANTRAG, "antragsart": "Mieterhöhung Petrović"}).encode(),
            data_schema_uri=DATA_SCHEMA,
        )
        await running.hub.poll(SOURCE)
        assert (await world.view(valid.submission_id))["status"] == "accepted"
        [reject] = await world.rejects(invalid.submission_id)
        [problem] = next(iter(reject["events"].values()))["problems"]
        assert problem["type"] == PROBLEM_SCHEMA_VIOLATION
        assert problem["instance"] == "data"
        assert "antragsart" in problem["detail"] and "Petrović" not in problem["detail"]
        assert [a.external_id for a in await applications(running)] == [valid.submission_id]
    finally:
        await stop_hub(running)


async def test_a_service_no_route_takes_waits_for_the_operator_and_is_not_rejected(
    world: FitConnect, tmp_path: Path
) -> None:
    running = await hub_for(world, tmp_path, services=[{"service": "wohngeld-alt", "leika": WOHNGELD}])
    try:
        sent = await world.send()
        await running.hub.poll(SOURCE)
        [held] = (await running.hub.journal.held_lookup(SOURCE, (sent.submission_id,))).values()
        assert held.state == HeldState.RETRYING
        assert held.reason_code == "undecidable"
        assert "no route takes service 'wohngeld-alt'" in held.reason
        assert (await world.view(sent.submission_id))["status"] == "submitted"
        assert await applications(running) == []
    finally:
        await stop_hub(running)


def test_the_simulator_writes_what_a_hub_configuration_needs(tmp_path: Path) -> None:
    """The demo builds the hub's configuration from these files before any request is made."""
    from hub_fitconnect.simulator import STATE, make_app

    app = make_app(default_destination=True, secrets_dir=str(tmp_path), key_size=2048)
    [destination] = app[STATE].destinations
    assert (tmp_path / "destination-id").read_text() == destination
    clients = {c.client_id: c for c in app[STATE].clients.values()}
    subscriber = clients[(tmp_path / "subscriber-client-id").read_text()]
    assert subscriber.secret == (tmp_path / "subscriber-client-secret").read_text()
    assert subscriber.scopes == {f"subscribe:destination:{destination}"}
    assert (tmp_path / "sender-client-id").read_text() in clients


async def test_metadata_of_an_uninstalled_version_is_taken_when_the_schema_is_not_required(
    world: FitConnect, tmp_path: Path
) -> None:
    running = await hub_for(world, tmp_path, metadata_schema_required=False)
    try:
        sent = await world.sender.send(
            world.destination_id,
            WOHNGELD,
            data=json.dumps(WOHNGELDANTRAG).encode(),
            data_schema_uri=DATA_SCHEMA,
            metadata_version="2.1.0",
        )
        await running.hub.poll(SOURCE)
        assert (await world.view(sent.submission_id))["status"] == "accepted"
        assert [a.external_id for a in await applications(running)] == [sent.submission_id]
    finally:
        await stop_hub(running)


async def test_an_operator_closing_a_quarantined_submission_rejects_it_upstream(
    world: FitConnect, tmp_path: Path
) -> None:
    running = await hub_for(world, tmp_path)
    try:
        sent = await world.sender.send(
            world.destination_id, WOHNGELD, data=b"{}", data_schema_uri=DATA_SCHEMA, metadata_version="9.9.9"
        )
        await running.hub.poll(SOURCE)
        await running.hub.poll(SOURCE)  # the last try allowed: quarantined
        [held] = (await running.hub.journal.held_lookup(SOURCE, (sent.submission_id,))).values()
        assert held.state == HeldState.QUARANTINED

        closed = await running.hub.operations.decide_held(held.id, "close", "test-operator")
        assert closed.state == HeldState.CLOSED
        [reject] = await world.rejects(sent.submission_id)
        [problem] = next(iter(reject["events"].values()))["problems"]
        assert problem["type"].endswith("/technical-error")
        assert await world.accepts(sent.submission_id) == []
    finally:
        await stop_hub(running)


async def test_check_reaches_the_api_with_the_configured_client(world: FitConnect, tmp_path: Path) -> None:
    running = await hub_for(world, tmp_path)
    try:
        assert (await source(running).check()).ok
        world.state.clients[world.client_id].secret = "not-the-secret-any-more"
        other = FitConnectSource(source(running).config, source(running).context)
        result = await other.check()
        assert not result.ok
        assert "401" in result.message or "invalid_client" in result.message
    finally:
        await stop_hub(running)
