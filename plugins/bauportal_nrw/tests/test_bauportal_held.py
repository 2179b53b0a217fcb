"""Messages the hub cannot take: answered (a 0200 for another authority) or held for an operator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from bauportal_helpers import (
    AUTHORITY_XTA,
    HUB_OPTIONS,
    PORTAL,
    PORTAL_XTA,
    ROUTES,
    StartEnaio,
    StartXta,
    antrag_metadata,
    bauantrag,
    hub_connectors,
    send,
)
from hub_bauportal_nrw.samples import sample_bauantrag
from hub_bauportal_nrw.xbau import Behoerde, load_schemas, parse_bytes
from hub_xta.simulator import enqueue

from hub import ApplicationState
from hub.journal import ApplicationFilter
from hub.testing.harness import RunningHub

TOKENS = {
    "VIEWER_TOKEN": "viewer-secret-1",
    "OPERATOR_TOKEN": "operator-secret-1",
    "ADMIN_TOKEN": "admin-secret-1",
}
SERVER = {
    "listen": "127.0.0.1:0",
    "admin_tokens": [
        {"name": "dashboard", "token": "${VIEWER_TOKEN}", "role": "viewer"},
        {"name": "schichtdienst", "token": "${OPERATOR_TOKEN}", "role": "operator"},
        {"name": "leitung", "token": "${ADMIN_TOKEN}", "role": "admin"},
    ],
}


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


async def start(hub_factory: Any, xta_url: str, enaio_url: str, schema_dir: Path) -> RunningHub:
    options = {**HUB_OPTIONS, "env": {**HUB_OPTIONS["env"], **TOKENS}}
    running: RunningHub = await hub_factory(
        hub_connectors(xta_url, enaio_url, poll_seconds=0.2),
        ROUTES,
        schemas=str(schema_dir),
        server=SERVER,
        **options,
    )
    return running


async def held_list(running: RunningHub, **query: str) -> list[dict[str, Any]]:
    status, body = await running.get("/api/v1/held-messages", params=query, headers=bearer("VIEWER_TOKEN"))
    assert status == 200, body
    found: list[dict[str, Any]] = body["held_messages"]
    return found


async def test_bauantrag_for_another_authority_is_answered_with_1100_and_not_filed(
    start_xta: StartXta,
    start_enaio: StartEnaio,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    hub_factory: Any,
) -> None:
    xta, enaio = await start_xta(), await start_enaio()
    elsewhere = Behoerde(kennung="vbe:053150000", name="Stadt Köln, Bauaufsicht")
    plan = sample_bauantrag(autor=PORTAL, leser=elsewhere)
    message_id = await send(http, xta, plan)
    running = await start(hub_factory, xta.url, enaio.url, schema_dir)

    await running.wait_for(lambda: xta.state.sent, what="the 1100")
    [held] = await running.wait_for(lambda: held_list(running, state="rejected"), what="the rejected record")
    assert held["message_id"] == message_id and held["reason_code"] == "foreign_authority"
    assert held["sender"] == PORTAL_XTA and "vbe:053150000" in held["reason"]
    [summary] = await running.journal.list_applications(ApplicationFilter())
    assert summary.state == ApplicationState.REJECTED and held["application_id"] == summary.id

    [sent] = xta.state.sent
    assert sent.metadata.message_type == "prozessnachrichten.rueckweisung.G2G.1100"
    assert sent.metadata.reader.identifier == PORTAL_XTA and sent.metadata.in_reply_to == (message_id,)
    root = parse_bytes(sent.message.path.read_bytes(), limit=10_000_000)
    assert load_schemas(schema_dir).errors(root) == []
    assert root.findtext("nachrichtenkopf.g2g/leser/kennung") == PORTAL.kennung
    assert "vbe:053150000" in " ".join(t.text or "" for t in root.iter("fehlertext"))
    assert enaio.state.objects == {}  # not filed
    assert [c.message_id for c in xta.state.closed] == [message_id]
    assert xta.state.mailbox(AUTHORITY_XTA) == {}


async def test_other_messages_are_held_counted_and_closed_or_kept_by_operators(
    start_xta: StartXta,
    start_enaio: StartEnaio,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    hub_factory: Any,
) -> None:
    xta, enaio = await start_xta(), await start_enaio()
    other_type = antrag_metadata(message_type="baugenehmigung.nachreichung.0201")
    first = await enqueue(http, xta.url, AUTHORITY_XTA, metadata=other_type, message=b"<x/>")
    second = await enqueue(http, xta.url, AUTHORITY_XTA, metadata=other_type, message=b"<y/>")
    valid = await send(http, xta, bauantrag())
    running = await start(hub_factory, xta.url, enaio.url, schema_dir)

    await running.wait_for(lambda: [c for c in xta.state.closed if c.message_id == valid], what="the 0200")
    held = await running.wait_for(
        lambda: _when_two(held_list(running, state="quarantined")), what="two quarantined messages"
    )
    by_message = {h["message_id"]: h for h in held}
    assert set(by_message) == {first["message_id"], second["message_id"]}
    assert all(h["reason_code"] == "message_type" and h["sender"] == PORTAL_XTA for h in held)
    assert all(xta.state.mailbox(AUTHORITY_XTA)[m].fetches == 0 for m in by_message)  # never downloaded

    status, metrics = await running.get("/metrics")
    assert status == 200
    quarantined = 'aktenhub_inbound_held{reason="message_type",source="bauportal",state="quarantined"} 2.0'
    assert quarantined in metrics

    closing = by_message[first["message_id"]]["id"]
    path = f"/api/v1/held-messages/{closing}"
    assert (await running.post(path + "/close", headers=bearer("OPERATOR_TOKEN")))[0] == 403
    status, body = await running.post(path + "/close", headers=bearer("ADMIN_TOKEN"))
    assert status == 200 and body["state"] == "closed" and body["decided_by"] == "leitung"
    assert body["decided_at"] is not None
    assert (await running.post(path + "/close", headers=bearer("ADMIN_TOKEN")))[0] == 200  # idempotent
    assert [c.message_id for c in xta.state.closed].count(first["message_id"]) == 1
    assert first["message_id"] not in xta.state.mailbox(AUTHORITY_XTA)
    assert (await running.post(path + "/keep", headers=bearer("OPERATOR_TOKEN")))[0] == 409

    keeping = by_message[second["message_id"]]["id"]
    path = f"/api/v1/held-messages/{keeping}"
    status, body = await running.post(path + "/keep", headers=bearer("OPERATOR_TOKEN"))
    assert status == 200 and body["state"] == "kept" and body["decided_by"] == "schichtdienst"
    assert second["message_id"] in xta.state.mailbox(AUTHORITY_XTA)  # kept upstream
    status, body = await running.get(f"/api/v1/held-messages/{keeping}", headers=bearer("VIEWER_TOKEN"))
    assert status == 200 and body["state"] == "kept"
    assert (await running.get("/api/v1/held-messages/999999", headers=bearer("VIEWER_TOKEN")))[0] == 404
    for query in ({"state": "verschollen"}, {"limit": "0"}, {"offset": "-1"}):
        status, body = await running.get(
            "/api/v1/held-messages", params=query, headers=bearer("VIEWER_TOKEN")
        )
        assert status == 400 and body["error"], query
    assert (await running.get("/api/v1/held-messages"))[0] == 401

    status, metrics = await running.get("/metrics")
    assert 'aktenhub_inbound_held{reason="message_type",source="bauportal",state="closed"} 1.0' in metrics
    assert 'aktenhub_inbound_held{reason="message_type",source="bauportal",state="kept"} 1.0' in metrics
    assert 'state="quarantined"' not in metrics
    assert xta.state.mailbox(AUTHORITY_XTA)[second["message_id"]].fetches == 0


async def _when_two(found: Any) -> list[dict[str, Any]] | None:
    held: list[dict[str, Any]] = await found
    return held if len(held) == 2 else None
