"""End to end, the Ausländerbehörde's in-direction against the real targets, across a SIGKILL.

An OZG online service puts XAusländer applications for a residence title into the Ausländerbehörde's XTA
mailbox. The hub (a subprocess: `aktenhub run`, source `type: advis-intake`, the operator's mapping
config/mappings/aufenthaltstitel.yaml) files each into the person's Ausländerakte in enaio and forwards
the message unchanged into ADVIS's mailbox (`type: advis`, message `weiterleitung`); the simulated ADVIS
opens a case and answers; the answer updates the Akte. The hub is killed while the forward cannot be
sent yet (the XTA server refuses sendMessage): after the restart the message reaches ADVIS once, byte
for byte. A second application of the same person lands in the same Akte; a malformed message is held
with its reason and the mailbox keeps flowing. XTA, enaio and ADVIS are simulators in this process; the
schema directory holds the XAusländer TEST FIXTURE (not the official schema) beside the reference ones.
"""

from __future__ import annotations

import json
import shutil
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from hub_advis.inbound_samples import antrag_aufenthaltstitel, portal_metadata
from hub_advis.simulator import make_app as advis_app
from hub_enaio.simulator import STATE as ENAIO_STATE
from hub_enaio.simulator import make_app as enaio_app
from hub_xta.simulator import STATE as XTA_STATE
from hub_xta.simulator import enqueue
from hub_xta.simulator import make_app as xta_app

from hub.testing.processes import HubProcess, hub_settings

ROOT = Path(__file__).parents[1]
MAPPING = ROOT / "config" / "mappings" / "aufenthaltstitel.yaml"
FIXTURE = ROOT / "plugins" / "advis" / "tests" / "fixtures" / "xauslaender-TEST-FIXTURE-not-official"
NS = "urn:aktenhub:test-fixture:xauslaender"
INBOX, HUB, ADVIS = "vbe:abh-posteingang", "vbe:abh-hub", "vbe:advis"
TOKEN = "advis-in-admin-token"
FAST_RETRY = {"initial_seconds": 0.05, "max_seconds": 0.3, "jitter_seconds": 0.01}
FILES: list[tuple[str, bytes | Path, str]] = [
    ("Reisepass.pdf", b"%PDF-1.7 Reisepass\n", "application/pdf"),
    ("foto.jpg", b"\xff\xd8\xff", "image/jpeg"),
]


def write_config(tmp: Path, port: int, schemas: Path, xta: str, enaio: str) -> Path:
    def account(identifier: str) -> dict[str, Any]:
        return {"url": xta, "account": {"identifier": identifier}, "timeout_seconds": 5}

    config = {
        # operator: the test reads a held message's reason text, which viewers do not see
        **hub_settings(tmp, port, TOKEN, "operator"),
        "schemas": str(schemas),
        "connectors": {
            # The OZG messages and ADVIS's answers arrive in separate hub accounts (README: accounts).
            "abh-posteingang": {"type": "advis-intake", "poll_seconds": 0.2, "xta": account(INBOX)},
            "enaio": {
                "type": "enaio",
                "base_url": enaio,
                "username": "aktenhub",
                "password": "enaio-simulator",
                "retry": FAST_RETRY,
            },
            "advis": {
                "type": "advis",
                "recipient": {"identifier": ADVIS},
                "xta": account(HUB),
                "poll_seconds": 0.2,
                "retry": FAST_RETRY,
            },
        },
        "routes": [
            {
                "name": "aufenthaltstitel",
                "from": "abh-posteingang",
                "map": str(MAPPING),
                "to": ["enaio", "advis"],
                "on_answer": {"update_akte": "enaio"},
            }
        ],
    }
    path = tmp / "aktenhub.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


async def test_xauslaender_message_to_the_auslaenderakte_and_advis_and_back_exactly_once_across_a_kill(
    tmp_path: Path, schema_dir: Path, reserved_port: Callable[[], int]
) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(schema_dir, schemas)
    shutil.copytree(FIXTURE, schemas / "xauslaender" / "1.21.1")
    xta = TestServer(xta_app(schemas=schemas, data_dir=tmp_path / "xta"), host="127.0.0.1")
    enaio = TestServer(enaio_app(), host="127.0.0.1")
    await xta.start_server()
    await enaio.start_server()
    xta_url = str(xta.make_url("")).rstrip("/")
    advis = TestClient(TestServer(advis_app(xta_url, ADVIS, schemas, tmp_path / "advis"), host="127.0.0.1"))
    await advis.start_server()
    xta_state, enaio_state = xta.app[XTA_STATE], enaio.app[ENAIO_STATE]
    port = reserved_port()
    config = write_config(tmp_path, port, schemas, xta_url, str(enaio.make_url("")).rstrip("/"))
    admin = {"Authorization": f"Bearer {TOKEN}"}

    def objects(internal: str) -> list[Any]:
        return [o for o in enaio_state.objects.values() if o.type.internal == internal]

    def forwarded() -> list[Any]:
        return [m for m in xta_state.sent if m.metadata.reader.identifier == ADVIS]

    def until(condition: Callable[[], bool]) -> Callable[[], Any]:
        async def probe() -> bool | None:
            return condition() or None

        return probe

    first_uuid, second_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    first = antrag_aufenthaltstitel(NS, first_uuid, anlagen=("Reisepass.pdf", "foto.jpg"))
    async with aiohttp.ClientSession() as http:

        async def send(content: bytes) -> str:
            answer = await enqueue(
                http, xta_url, INBOX, metadata=portal_metadata(NS), message=content, attachments=FILES
            )
            return str(answer["message_id"])

        async def faults(**knobs: Any) -> None:
            async with http.post(f"{xta_url}/_sim/faults", json=knobs) as resp:
                assert resp.status == 200

        async def hub_json(path: str) -> Any:
            async with http.get(f"http://127.0.0.1:{port}{path}", headers=admin) as resp:
                return await resp.json() if resp.status == 200 else None

        first_xta = await send(first)
        await faults(fail_operations=["sendMessage"])  # the forward to ADVIS cannot be sent yet
        hub = HubProcess(config, tmp_path, f"http://127.0.0.1:{port}")
        hub.start()
        try:
            # Filed into enaio, the message closed, the forward's XTA id reserved and its send refused:
            await hub.until(until(lambda: len(objects("XAuslaenderNachricht")) == 1), "the Ausländerakte", 90)
            await hub.until(until(lambda: xta_state.was_closed(first_xta)), "the intake's close")
            await hub.until(until(lambda: xta_state.requests["sendMessage"] >= 1), "a refused send")
            await hub.kill()
            assert hub.proc is not None and hub.proc.returncode == -signal.SIGKILL
            assert forwarded() == []

            await faults(fail_operations=[])
            hub.start()
            await hub.until(until(lambda: len(forwarded()) == 1), "the forward to ADVIS", 90)
            (sent,) = forwarded()
            # ADVIS gets the message as the OZG service sent it, byte for byte, with its attachments.
            assert sent.message.path.read_bytes() == first
            assert [(a.filename, a.path.read_bytes(), a.content_type) for a in sent.attachments] == FILES
            assert (sent.metadata.message_type, sent.metadata.payload_schema) == (
                "ozg.antragAufenthaltstitel",
                NS,
            )
            assert sent.metadata.author.identifier == HUB

            # ADVIS opens a case and answers the hub; the answer lands on the Akte.
            opened = await (await advis.post("/control/receive")).json()
            assert opened == {"opened": [first_uuid], "refused": []}
            (akte,) = objects("Auslaenderakte")
            await hub.until(
                until(lambda: bool(akte.fields.get("FVAktenzeichen"))), "ADVIS's case number on the Akte"
            )
            assert akte.fields["Bearbeitungsstand"] == "Eingegangen in ADVIS"
            assert (akte.fields["Familienname"], akte.fields["Vorname"]) == ("Kovalenko", "Oksana")

            # A malformed message ahead of the same person's second application: held, the mailbox flows.
            broken = await send(b"<xa:ozg.antragAufenthaltstitel xmlns:xa='" + NS.encode() + b"'/>")
            second_xta = await send(antrag_aufenthaltstitel(NS, second_uuid, antragsnummer="OZG-AT-2"))
            await hub.until(until(lambda: len(forwarded()) == 2), "the second forward")
            await hub.until(until(lambda: len(objects("XAuslaenderNachricht")) == 2), "the second Vorgang")

            async def held_message() -> Any:
                found = await hub_json("/api/v1/held-messages?source=abh-posteingang")
                rows = [r for r in (found or {}).get("held_messages", []) if r["message_id"] == broken]
                return rows[0] if rows else None

            held = await hub.until(held_message, "the held message")
            opened = await (await advis.post("/control/receive")).json()
            assert opened == {"opened": [second_uuid], "refused": []}
            await hub.until(until(lambda: akte.updates >= 2), "the second answer")

            async def both_completed() -> Any:
                body = await hub_json("/api/v1/applications")
                states = sorted(a["state"] for a in (body or {}).get("applications", []))
                return body if states == ["completed", "completed"] else None

            apps = await hub.until(both_completed, "both completed")
        finally:
            await hub.stop()
            await advis.close()
            await enaio.close()
            await xta.close()

    assert held["reason_code"] == "invalid_message" and "does not meet" in held["reason"]
    assert not xta_state.was_closed(broken) and xta_state.was_closed(second_xta)
    # exactly once: one Akte for the person, a Vorgang and one message copy per application, two forwards
    assert len(objects("Auslaenderakte")) == 1 and len(objects("ABHVorgang")) == 2
    assert len(objects("XAuslaenderNachricht")) == 2 and len(forwarded()) == 2
    assert sorted(a["state"] for a in apps["applications"]) == ["completed", "completed"]
    assert [c.message_id for c in xta_state.closed].count(first_xta) == 1
