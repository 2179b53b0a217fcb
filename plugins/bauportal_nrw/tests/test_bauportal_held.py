"""Messages the hub cannot take: answered (a 0200 for another authority, an XBau message of another type)
or held for an operator (not XBau, another standard)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
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
from hub_bauportal_nrw.portal import make_app as portal_app
from hub_bauportal_nrw.samples import sample_bauantrag, sample_ruecknahme
from hub_bauportal_nrw.xbau import XBAU, XBAUK, Behoerde, load_schemas, parse_bytes
from hub_xta.simulator import enqueue
from lxml import etree
from test_bauportal_schematron import valid_xbau

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
    # As an operator: the tests read senders and reason texts, which viewers do not see.
    status, body = await running.get("/api/v1/held-messages", params=query, headers=bearer("OPERATOR_TOKEN"))
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
    # Another standard by its XTA metadata (xdomea): held without being downloaded.
    other_type = antrag_metadata(
        message_type="vorgang.vorgangUebergeben.0501", payload_schema="urn:xoev-de:xdomea:schema:3.0.0"
    )
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


async def test_xbau_message_of_another_type_is_answered_with_1100_closed_and_recorded_rejected(
    start_xta: StartXta,
    start_enaio: StartEnaio,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    hub_factory: Any,
) -> None:
    xta, enaio = await start_xta(), await start_enaio()
    withdrawn = bauantrag().antrag
    invalid = _without(sample_ruecknahme(withdrawn), "bezug")  # its head still readable
    not_xbau = b'<?xml version="1.0"?><antrag xmlns="urn:example:kein-xbau"><x>1</x></antrag>'
    portal = TestServer(portal_app(xta_url=xta.url), host="127.0.0.1")
    await portal.start_server()
    try:
        base = f"http://127.0.0.1:{portal.port}/sim"
        body = {"nachricht_uuid": withdrawn.identity.uuid, "referenz": withdrawn.referenz}
        async with http.post(f"{base}/ruecknahme", json=body) as resp:
            assert resp.status == 201
            ruecknahme = (await resp.json())["xta_message_id"]
        sent_raw = {}
        for name, xml, schema in (("invalid", invalid, XBAUK), ("not_xbau", not_xbau, XBAU)):
            kind = (
                "prozessnachrichten.ruecknahme.1130"
                if name == "invalid"
                else "baugenehmigung.formellePruefung.0201"
            )
            query = {"type": kind, "schema": schema}
            async with http.post(f"{base}/nachricht", params=query, data=xml) as resp:
                assert resp.status == 201
                sent_raw[name] = (await resp.json())["xta_message_id"]
    finally:
        await portal.close()
    valid = await send(http, xta, bauantrag())  # behind them: filed
    running = await start(hub_factory, xta.url, enaio.url, schema_dir)

    answered = {ruecknahme, sent_raw["invalid"]}
    rejected = await running.wait_for(
        lambda: _when(held_list(running, state="rejected"), 2), what="two rejected records"
    )
    await running.wait_for(lambda: len(xta.state.sent) >= 4, what="two 1100s, the 1120 and the 1121")
    [quarantined] = await held_list(running, state="quarantined")

    assert {h["message_id"] for h in rejected} == answered
    assert all(h["reason_code"] == "unsupported_message_type" and h["sender"] == PORTAL_XTA for h in rejected)
    assert all(h["application_id"] for h in rejected)
    assert quarantined["message_id"] == sent_raw["not_xbau"] and quarantined["reason_code"] == "not_xbau"
    assert quarantined["sender"] == PORTAL_XTA

    # Exactly one 1100 to each answered message, valid against the XSD and the official Schematron.
    rueckweisungen = [m for m in xta.state.sent if m.metadata.message_type.endswith(".1100")]
    assert sorted(m.metadata.in_reply_to[0] for m in rueckweisungen) == sorted(answered)
    codes = {}
    for message in rueckweisungen:
        assert message.metadata.reader.identifier == PORTAL_XTA
        root = valid_xbau(schema_dir, message.message.path.read_bytes())
        # Back to the refused message's author, which travels inside it.
        original = parse_bytes(
            base64.b64decode(root.findtext("rueckweisungDaten/nachricht") or ""), limit=10**6
        )
        author = original.findtext("nachrichtenkopf.g2g/autor/kennung")
        assert author and root.findtext("nachrichtenkopf.g2g/leser/kennung") == author
        assert root.findtext(f"rueckweisungDaten/idNachricht/{{{_BN}}}nachrichtentyp/code") == "1130"
        codes[message.metadata.in_reply_to[0]] = root.findtext(
            "rueckweisungDaten/rueckweisungsgrund/grund/code"
        )
        text = " ".join(t.text or "" for t in root.iter("fehlertext"))
        assert (
            ("nicht verarbeitet" in text)
            if codes[message.metadata.in_reply_to[0]] == "S001"
            else ("nicht schemakonform" in text)
        )
    assert codes == {ruecknahme: "S001", sent_raw["invalid"]: "X001"}

    # Closed: the answered ones and the 0200; the unreadable one waits for an operator.
    assert sorted(c.message_id for c in xta.state.closed) == sorted([*answered, valid])
    assert list(xta.state.mailbox(AUTHORITY_XTA)) == [sent_raw["not_xbau"]]
    summaries = await running.journal.list_applications(ApplicationFilter())
    states = sorted(s.state for s in summaries)
    assert states == sorted(
        [ApplicationState.REJECTED, ApplicationState.REJECTED, ApplicationState.COMPLETED]
    )
    assert enaio.state.objects  # the 0200 behind them was filed

    status, metrics = await running.get("/metrics")
    assert status == 200
    assert (
        'aktenhub_inbound_held{reason="unsupported_message_type",source="bauportal",state="rejected"} 2.0'
        in metrics
    )
    assert 'aktenhub_inbound_held{reason="not_xbau",source="bauportal",state="quarantined"} 1.0' in metrics


_BN = "http://xoev.de/schemata/basisnachricht/g2g/1_1"


def _without(xml: bytes, child: str) -> bytes:
    """The message without one of its root's (unqualified) children: invalid against the XSD."""
    root = parse_bytes(xml, limit=1_000_000)
    element = root.find(child)
    assert element is not None
    root.remove(element)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


async def _when(found: Any, count: int) -> list[dict[str, Any]] | None:
    held: list[dict[str, Any]] = await found
    return held if len(held) == count else None
