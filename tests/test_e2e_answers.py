"""End to end, into the Fachverfahren and back: the Akte updated, the decision filed, the applicant told.

FormCycle posts an application with a forwarded BundID login; the hub files it into the enaio simulator
and delivers it to the test kit's answering Fachverfahren (`test-answering`). The Fachverfahren then
answers by a signed callback (`POST /callback/fv`): case number, status "decided" and the decision PDF.
The route's `on_answer` has enaio record it (index field `FVAktenzeichen`, the decision as a
`Bescheid` in the Vorgang) and the ZBP notifier tell the applicant (status `COMPLETED`, the decision
attached). The enaio, BundID IdP and ZBP simulators run in-process on loopback; every outcome is read
from outside: the simulators' operator and content endpoints, the hub's journal and admin API.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_bundid.simulator import IdpSimulator
from hub_enaio.simulator import make_app as enaio_app
from hub_zbp.keys import generate_author
from hub_zbp.simulator import make_app as zbp_app

from hub.answers import CallbackAuth
from hub.callbacks import sign_callback
from hub.models import ApplicationState
from hub.testing.harness import RunningHub

MAPPING = Path(__file__).parents[1] / "config" / "mappings" / "jagd-und-fischerei.yaml"
# What the Fachverfahren's answers change in the e-file (templates over `answer` and `application`).
ANSWERS = """
answers:
  akte_fields:
    FVAktenzeichen: "{{ answer.case_number }}"
    Bearbeitungsstand: "{{ 'Bescheid erlassen' if answer.status == 'decided' else 'in Bearbeitung' }}"
  decision:
    type: Bescheid
    fields:
      Titel: "Bescheid {{ answer.case_number }}"
"""
TOKEN = "formcycle-e2e-token-0123456789"
ENAIO_PASSWORD = "enaio-e2e-secret"
CALLBACK_SECRET = "fv-callback-secret-0123456789"
VIEWER_TOKEN = "viewer-e2e-token-0123456789"
VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
DECISION = b"%PDF-1.4\n% Bescheid UA-2026-17\n" + bytes(range(256)) * 64
FAST_RETRY = {"initial_seconds": 0.05, "max_seconds": 0.2, "jitter_seconds": 0.01}


@dataclass
class World:
    running: RunningHub
    idp: IdpSimulator
    enaio: TestServer
    zbp: TestServer

    async def enaio_objects(self, **query: str) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.enaio.make_url("/_sim/objects"), params=query) as r,
        ):
            objects: list[dict[str, Any]] = (await r.json())["objects"]
            return objects

    async def enaio_content(self, object_id: str) -> bytes:
        auth = {"Authorization": aiohttp.encode_basic_auth("aktenhub", ENAIO_PASSWORD)}
        url = self.enaio.make_url(f"/api/dms/objects/{object_id}/contents/file")
        async with aiohttp.ClientSession(headers=auth) as http, http.get(url) as r:
            assert r.status == 200
            return await r.read()

    async def mailbox(self, handle: str) -> dict[str, Any]:
        url = self.zbp.make_url(f"/_sim/mailboxes/{handle}")
        async with aiohttp.ClientSession() as http, http.get(url) as r:
            assert r.status == 200
            box: dict[str, Any] = await r.json()
            return box

    async def submit(self, vorgang_id: str, login: str, service: str = "jagdschein", **fields: str) -> str:
        form = aiohttp.FormData({"vorgang_id": vorgang_id, "bundid_saml_response": login, **fields})
        form.add_field("ausweis", b"%PDF-1.4 Ausweis", filename="Ausweis.pdf", content_type="application/pdf")
        status, body = await self.running.post(
            f"/intake/formcycle/{service}", data=form, headers={"X-Aktenhub-Token": TOKEN}
        )
        assert status == 202, body
        return str(body["application_id"])

    async def callback(self, *answers: dict[str, Any]) -> tuple[int, Any]:
        """The Fachverfahren's signed callback, as it sends it."""
        body = json.dumps({"answers": list(answers)}).encode()
        headers = {
            **sign_callback(CallbackAuth(secret=CALLBACK_SECRET), body, time.time()),
            "Content-Type": "application/json",
        }
        return await self.running.post("/callback/fv", data=body, headers=headers)


@asynccontextmanager
async def started_world(
    tmp_path: Path,
    hub_factory: Any,
    schema_dir: Path,
    fv: dict[str, Any] | None = None,
    *,
    env: dict[str, str] | None = None,
    mapping_extra: str = "",
    mapping_base: str | None = None,
    route_extra: dict[str, Any] | None = None,
    fv_name: str = "fv",
    routes: list[dict[str, Any]] | None = None,
    **hub: Any,
) -> AsyncIterator[World]:
    """The simulators and the hub; `fv` the Fachverfahren's connector named `fv_name` (default: the
    answering fake); `env` adds to the hub's environment, `mapping_extra` to the mapping file (e.g.
    `payloads.fv`), `mapping_base` replaces the Jagdschein mapping it extends, `route_extra` adds route
    settings; `routes` replace the Jagdschein route."""
    idp = IdpSimulator(
        schema_dir, sp_entity_id="https://aktenhub.example/sp", acs_url="https://formulare.example/bundid/acs"
    )
    metadata = tmp_path / "idp-metadata.xml"
    idp.write_metadata(metadata)
    mapping = tmp_path / "jagd-mit-antworten.yaml"
    base = MAPPING.read_text("utf-8") if mapping_base is None else mapping_base
    mapping.write_text(base + ANSWERS + mapping_extra, "utf-8")
    author = generate_author()
    enaio = TestServer(enaio_app(users={"aktenhub": ENAIO_PASSWORD}), host="127.0.0.1")
    zbp = TestServer(zbp_app(), host="127.0.0.1")
    await enaio.start_server()
    await zbp.start_server()
    connectors = {
        "formcycle": {
            "type": "formcycle",
            "token": "${FORMCYCLE_TOKEN}",
            "id_field": "vorgang_id",
            "applicant_fields": {"given_name": "vorname", "family_name": "nachname"},
            "header_fields": {"X-BundID-SAML-Response": "bundid_saml_response"},
        },
        "bundid": {
            "type": "bundid",
            "mode": "saml",
            "idp_metadata": str(metadata),
            "sp_entity_id": idp.sp_entity_id,
            "acs_url": idp.acs_url,
        },
        "enaio": {
            "type": "enaio",
            "base_url": str(enaio.make_url("")).rstrip("/"),
            "username": "aktenhub",
            "password": "${ENAIO_PASSWORD}",
            "retry": FAST_RETRY,
        },
        fv_name: fv or {"type": "test-answering", "callback_secret": CALLBACK_SECRET, "retry": FAST_RETRY},
        "postfach": {
            "type": "zbp",
            "base_url": str(zbp.make_url("")).rstrip("/"),
            "author_key": author.key_pem,
            "author_certificate": author.certificate_pem,
            "sender_name": "Rhein-Sieg-Kreis",
            "retry": FAST_RETRY,
        },
    }
    routes = routes or [
        {
            "name": "jagd",
            "from": "formcycle",
            "identity": {"via": "bundid", "min_level": "substantiell"},
            "map": str(mapping),
            "to": ["enaio", "fv"],
            "notify": ["postfach"],
            "on_answer": {"update_akte": "enaio", "notify": ["postfach"], "decision": "both"},
            **(route_extra or {}),
        }
    ]
    env = {
        "FORMCYCLE_TOKEN": TOKEN,
        "ENAIO_PASSWORD": ENAIO_PASSWORD,
        "VIEWER_TOKEN": VIEWER_TOKEN,
        **(env or {}),
    }
    server = {
        "listen": "127.0.0.1:0",
        "admin_tokens": [{"name": "auskunft", "token": "${VIEWER_TOKEN}", "role": "viewer"}],
    }
    running = await hub_factory(connectors, routes, env=env, server=server, **hub)
    try:
        yield World(running, idp, enaio, zbp)
    finally:
        await zbp.close()
        await enaio.close()


@pytest_asyncio.fixture
async def world(tmp_path: Path, hub_factory: Any, schema_dir: Path) -> AsyncIterator[World]:
    async with started_world(tmp_path, hub_factory, schema_dir) as started:
        yield started


def decided(application_id: str) -> dict[str, Any]:
    return {
        "answer_id": "K3-2026-17/bescheid",
        "application_id": application_id,
        "status": "decided",
        "case_number": "UA-2026-17",
        "message": "Ihr Jagdschein ist erteilt. Den Bescheid finden Sie im Anhang.",
        "decision": {
            "name": "Bescheid UA-2026-17.pdf",
            "media_type": "application/pdf",
            "content_base64": base64.b64encode(DECISION).decode(),
        },
    }


async def test_answer_updates_the_akte_files_the_decision_and_tells_the_applicant_once(world: World) -> None:
    login = world.idp.response("U04", means="eID")
    handle = world.idp.mailbox("U04")
    app_id = await world.submit("FC-ANS-1", login, vorname="Johanna", nachname="Kleinschmidt")
    assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED
    filed = await world.running.journal.get_application(app_id)
    assert filed is not None and filed.file_number
    aktenzeichen = filed.file_number
    (akte,) = await world.enaio_objects(type="Personenakte")
    assert akte["fields"]["Aktenzeichen"] == aktenzeichen and "FVAktenzeichen" not in akte["fields"]

    status, body = await world.callback(decided(app_id))
    assert status == 200, body
    assert body["answers"] == [
        {"answer_id": "K3-2026-17/bescheid", "application_id": app_id, "duplicate": False}
    ]
    assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED

    # enaio: the Akte's index data updated, the Aktenzeichen and the other fields kept ...
    (updated,) = await world.enaio_objects(type="Personenakte")
    assert updated["fields"] == {
        **akte["fields"],
        "FVAktenzeichen": "UA-2026-17",
        "Bearbeitungsstand": "Bescheid erlassen",
    }
    assert updated["updates"] == 1
    # ... and the decision filed into the application's Vorgang, its content as sent.
    (vorgang,) = await world.enaio_objects(type="Vorgang")
    (bescheid,) = await world.enaio_objects(type="Bescheid")
    assert bescheid["parentId"] == vorgang["id"]
    assert bescheid["fields"]["Titel"] == "Bescheid UA-2026-17"
    assert bescheid["content"]["sha256"] == hashlib.sha256(DECISION).hexdigest()
    assert await world.enaio_content(bescheid["id"]) == DECISION

    # The applicant: RECEIVED at filing, COMPLETED now, and the decision as a signed attachment.
    box = await world.mailbox(handle)
    assert [s["payload"]["status"] for s in box["status_updates"]] == ["RECEIVED", "COMPLETED"]
    assert box["status_updates"][1]["payload"]["statusDetails"]["de"].startswith("Bescheid erlassen")
    receipt, decision = box["messages"]
    assert "attachments" not in receipt["payload"]
    assert decision["payload"]["attachments"] == [
        {
            "filename": "Bescheid UA-2026-17.pdf",
            "sha512sum": hashlib.sha512(DECISION).hexdigest(),
            "contentLength": len(DECISION),
        }
    ]
    assert decision["attachments"][0]["sha256"] == hashlib.sha256(DECISION).hexdigest()
    assert "Ihr Jagdschein ist erteilt." in decision["payload"]["content"]
    assert decision["payload"]["reference"] == aktenzeichen

    # The hub: the Aktenzeichen unchanged, the case number and the decision's id as correlations.
    app = await world.running.journal.get_application(app_id)
    assert app is not None and app.file_number == aktenzeichen
    assert app.correlations["fv.case_number"] == "UA-2026-17"
    assert bescheid["id"] in [v for k, v in app.correlations.items() if k.startswith("enaio.answer-")]
    events = Counter(e.type for e in await world.running.journal.events(app_id))
    assert (events["answer.received"], events["answer.filed"]) == (1, 1)
    # ... so the application is found by the ids the answer's targets gave: the decision in enaio, the
    # Fachverfahren's case number, the ZBP's id of the message carrying the decision.
    for q in (bescheid["id"], "UA-2026-17", decision["id"]):
        status, found = await world.running.get("/api/v1/applications", params={"q": q}, headers=VIEWER)
        assert status == 200 and [a["id"] for a in found["applications"]] == [app_id], (q, found)

    # The same answer again (the Fachverfahren did not see our 200): a repeat, nothing twice.
    status, body = await world.callback(decided(app_id))
    assert status == 200 and body["answers"][0]["duplicate"] is True
    assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED
    assert len(await world.enaio_objects(type="Bescheid")) == 1
    assert (await world.enaio_objects(type="Personenakte"))[0]["updates"] == 1
    box = await world.mailbox(handle)
    assert (len(box["status_updates"]), len(box["messages"])) == (2, 2)
    events = Counter(e.type for e in await world.running.journal.events(app_id))
    assert (events["answer.received"], events["answer.filed"]) == (1, 1)
    app = await world.running.journal.get_application(app_id)
    assert app is not None and app.file_number == aktenzeichen
