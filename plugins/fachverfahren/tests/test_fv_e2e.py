"""End to end through the generic transports: FormCycle → enaio and the Fachverfahren → its answer →
the Akte updated, the decision filed, the applicant told; the Aktenzeichen unchanged; each once.

The Fachverfahren is the `rest` simulator (OAuth2, its signed callback, the decision fetched by URL) or
the `soap` simulator (answers polled with `AntwortenAbholen`, the decision inline, acknowledged with
`AntwortQuittieren`). enaio, the BundID IdP and the ZBP simulators run in-process on loopback; every
outcome is read from outside: the simulators' operator endpoints, the hub's journal and admin API.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_bundid.simulator import IdpSimulator
from hub_enaio.simulator import make_app as enaio_app
from hub_fachverfahren.rest.simulator import DECISION_PDF, SPEC
from hub_fachverfahren.rest.simulator import STATE as REST_STATE
from hub_fachverfahren.rest.simulator import make_app as rest_app
from hub_fachverfahren.soap.simulator import DEFAULT_USERS, PATH, WSDL
from hub_fachverfahren.soap.simulator import STATE as SOAP_STATE
from hub_fachverfahren.soap.simulator import make_app as soap_app
from hub_zbp.keys import generate_author
from hub_zbp.simulator import make_app as zbp_app
from rest_helpers import CALLBACK_SECRET, CLIENT_ID, CLIENT_SECRET, STATUS_MAP

from hub.models import ApplicationState
from hub.testing.harness import RunningHub

MAPPING = Path(__file__).parents[3] / "config" / "mappings" / "jagd-und-fischerei.yaml"
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
PAYLOADS = {
    "rest": """
payloads:
  fv:
    aktenhubId: "{{ id }}"
    leistung: "{{ service }}"
    aktenzeichenEakte: "{{ file_number }}"
    antragsteller: {vorname: "{{ applicant.given_name }}", nachname: "{{ applicant.family_name }}"}
""",
    "soap": """
payloads:
  fv:
    ExterneKennung: "{{ id }}"
    Leistung: "{{ service }}"
    Antragsteller: {Vorname: "{{ applicant.given_name }}", Nachname: "{{ applicant.family_name }}"}
""",
}
TOKEN = "formcycle-e2e-token-0123456789"
ENAIO_PASSWORD = "enaio-e2e-secret"
VIEWER_TOKEN = "viewer-e2e-token-0123456789"
VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
FAST_RETRY = {"initial_seconds": 0.05, "max_seconds": 0.2, "jitter_seconds": 0.01}


@dataclass
class World:
    running: RunningHub
    idp: IdpSimulator
    enaio: TestServer
    zbp: TestServer
    fv: TestServer
    transport: str

    async def get(self, server: TestServer, path: str, **query: str) -> Any:
        async with aiohttp.ClientSession() as http, http.get(server.make_url(path), params=query) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def post(self, server: TestServer, path: str, order: dict[str, Any]) -> Any:
        async with aiohttp.ClientSession() as http, http.post(server.make_url(path), json=order) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def submit(self, vorgang_id: str, login: str, **fields: str) -> str:
        form = aiohttp.FormData({"vorgang_id": vorgang_id, "bundid_saml_response": login, **fields})
        form.add_field("ausweis", b"%PDF-1.4 Ausweis", filename="Ausweis.pdf", content_type="application/pdf")
        status, body = await self.running.post(
            "/intake/formcycle/jagdschein", data=form, headers={"X-Aktenhub-Token": TOKEN}
        )
        assert status == 202, body
        return str(body["application_id"])

    async def decide(self, application_id: str, answer: str) -> None:
        """The Fachverfahren decides the case (the same `answer` again: the same answer re-sent)."""
        order = {"status": "BESCHIEDEN", "message": "Ihr Jagdschein ist erteilt.", "bescheid": True}
        if self.transport == "rest":
            (case,) = [
                c for c in self.fv.app[REST_STATE].cases.values() if c.request["aktenhubId"] == application_id
            ]
            sent = await self.post(
                self.fv, f"/_sim/vorgaenge/{case.id}/status", {**order, "event_id": answer}
            )
            assert sent["hub_status"] == 200, sent
        else:
            await self.post(
                self.fv, f"/_sim/vorgaenge/{application_id}/status", {**order, "answer_id": answer}
            )

    def acknowledged(self, answer: str) -> int:
        """How often the Fachverfahren learned the hub took the answer."""
        if self.transport == "rest":
            return sum(1 for s, e in self.fv.app[REST_STATE].callbacks if s == 200 and e["eventId"] == answer)
        return self.fv.app[SOAP_STATE].acknowledged[answer]

    def case_number(self, application_id: str) -> str:
        if self.transport == "rest":
            (case,) = [
                c for c in self.fv.app[REST_STATE].cases.values() if c.request["aktenhubId"] == application_id
            ]
            return case.aktenzeichen
        return self.fv.app[SOAP_STATE].cases[application_id]["Aktenzeichen"]


def fv_settings(transport: str, fv: TestServer) -> dict[str, Any]:
    base = str(fv.make_url("")).rstrip("/")
    if transport == "rest":
        return {
            "type": "rest",
            "openapi": str(SPEC),
            "operation": "createCase",
            "base_url": f"{base}/api",
            "auth": {
                "type": "oauth2",
                "token_url": f"{base}/oauth/token",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
            "case_number": "$.aktenzeichen",
            "reference": "$.id",
            "callback": {"secret": CALLBACK_SECRET},
            "status_map": STATUS_MAP,
            "retry": FAST_RETRY,
        }
    user, password = next(iter(DEFAULT_USERS.items()))
    return {
        "type": "soap",
        "wsdl": str(WSDL),
        "operation": "VorgangAnlegen",
        "endpoint": base + PATH,
        "auth": {"type": "basic", "username": user, "password": password},
        "case_number": "$.Aktenzeichen",
        "reference": "$.VorgangsId",
        "answers": {
            "operation": "AntwortenAbholen",
            "acknowledge": "AntwortQuittieren",
            "parameter": "AntwortId",
            "interval": 0.1,
        },
        "answer_fields": {
            "each": "$[*]",
            "answer_id": "$.AntwortId",
            "reference": "$.VorgangsId",
            "case_number": "$.Aktenzeichen",
            "status": "$.Status",
            "message": "$.Hinweis",
            "decision_content": "$.Bescheid.Inhalt",
            "decision_name": "$.Bescheid.Dateiname",
            "decision_url": None,
            "decision_media_type": None,
        },
        "status_map": STATUS_MAP,
        "retry": FAST_RETRY,
    }


StartWorld = Callable[[str], Awaitable[World]]


@pytest_asyncio.fixture
async def world(tmp_path: Path, hub_factory: Any, schema_dir: Path, request: Any) -> AsyncIterator[World]:
    transport: str = request.param
    idp = IdpSimulator(
        schema_dir, sp_entity_id="https://aktenhub.example/sp", acs_url="https://formulare.example/bundid/acs"
    )
    metadata = tmp_path / "idp-metadata.xml"
    idp.write_metadata(metadata)
    mapping = tmp_path / "jagd-mit-fachverfahren.yaml"
    mapping.write_text(MAPPING.read_text("utf-8") + ANSWERS + PAYLOADS[transport], "utf-8")
    author = generate_author()
    enaio = TestServer(enaio_app(users={"aktenhub": ENAIO_PASSWORD}), host="127.0.0.1")
    zbp = TestServer(zbp_app(), host="127.0.0.1")
    fv = TestServer(rest_app() if transport == "rest" else soap_app(), host="127.0.0.1")
    for server in (enaio, zbp, fv):
        await server.start_server()
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
        "fv": fv_settings(transport, fv),
        "postfach": {
            "type": "zbp",
            "base_url": str(zbp.make_url("")).rstrip("/"),
            "author_key": author.key_pem,
            "author_certificate": author.certificate_pem,
            "sender_name": "Rhein-Sieg-Kreis",
            "retry": FAST_RETRY,
        },
    }
    routes = [
        {
            "name": "jagd",
            "from": "formcycle",
            "identity": {"via": "bundid", "min_level": "substantiell"},
            "map": str(mapping),
            "to": ["enaio", "fv"],
            "notify": ["postfach"],
            "on_answer": {"update_akte": "enaio", "notify": ["postfach"], "decision": "both"},
        }
    ]
    env = {"FORMCYCLE_TOKEN": TOKEN, "ENAIO_PASSWORD": ENAIO_PASSWORD, "VIEWER_TOKEN": VIEWER_TOKEN}
    server = {
        "listen": "127.0.0.1:0",
        "admin_tokens": [{"name": "auskunft", "token": "${VIEWER_TOKEN}", "role": "viewer"}],
    }
    running = await hub_factory(connectors, routes, env=env, server=server)
    if transport == "rest":
        fv.app[REST_STATE].callback_url = f"{running.url}/callback/fv"
        fv.app[REST_STATE].callback_secret = CALLBACK_SECRET
    yield World(running, idp, enaio, zbp, fv, transport)
    for server in (fv, zbp, enaio):
        await server.close()


@pytest.mark.parametrize("world", ["rest", "soap"], indirect=True)
async def test_fachverfahren_answer_updates_the_akte_files_the_decision_and_tells_the_applicant_once(
    world: World,
) -> None:
    login = world.idp.response("U04", means="eID")
    handle = world.idp.mailbox("U04")
    app_id = await world.submit("FC-FV-1", login, vorname="Johanna", nachname="Kleinschmidt")
    assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED
    filed = await world.running.journal.get_application(app_id)
    assert filed is not None and filed.file_number
    aktenzeichen = filed.file_number
    case_number = world.case_number(app_id)
    assert filed.correlations["fv.case_number"] == case_number != aktenzeichen
    (akte,) = (await world.get(world.enaio, "/_sim/objects", type="Personenakte"))["objects"]

    await world.decide(app_id, "answer-1")

    async def told() -> bool:
        box = await world.get(world.zbp, f"/_sim/mailboxes/{handle}")
        return len(box["status_updates"]) == 2 and world.acknowledged("answer-1") == 1

    await world.running.wait_for(told, what="the applicant told and the answer acknowledged")
    assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED

    # enaio: the Akte's index data updated, the Aktenzeichen kept; the decision filed into the Vorgang.
    (updated,) = (await world.get(world.enaio, "/_sim/objects", type="Personenakte"))["objects"]
    assert updated["fields"] == {
        **akte["fields"],
        "FVAktenzeichen": case_number,
        "Bearbeitungsstand": "Bescheid erlassen",
    }
    (vorgang,) = (await world.get(world.enaio, "/_sim/objects", type="Vorgang"))["objects"]
    (bescheid,) = (await world.get(world.enaio, "/_sim/objects", type="Bescheid"))["objects"]
    assert bescheid["parentId"] == vorgang["id"]
    assert bescheid["content"]["sha256"] == hashlib.sha256(DECISION_PDF).hexdigest()

    # The applicant: RECEIVED at filing, COMPLETED now, the decision attached.
    box = await world.get(world.zbp, f"/_sim/mailboxes/{handle}")
    assert [s["payload"]["status"] for s in box["status_updates"]] == ["RECEIVED", "COMPLETED"]
    decision = box["messages"][-1]
    assert decision["attachments"][0]["sha256"] == hashlib.sha256(DECISION_PDF).hexdigest()

    # The same answer given again (the system did not see our acknowledgement): nothing twice.
    await world.decide(app_id, "answer-1")
    await world.running.wait_for(lambda: world.acknowledged("answer-1") == 2, what="the repeat acknowledged")
    assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED
    app = await world.running.journal.get_application(app_id)
    assert app is not None and app.file_number == aktenzeichen
    events = Counter(e.type for e in await world.running.journal.events(app_id))
    assert (events["answer.received"], events["answer.filed"]) == (1, 1)
    assert len((await world.get(world.enaio, "/_sim/objects", type="Bescheid"))["objects"]) == 1
    box = await world.get(world.zbp, f"/_sim/mailboxes/{handle}")
    assert [s["payload"]["status"] for s in box["status_updates"]] == ["RECEIVED", "COMPLETED"]
    # The Fachverfahren's case number finds the application.
    status, found = await world.running.get("/api/v1/applications", params={"q": case_number}, headers=VIEWER)
    assert status == 200 and [a["id"] for a in found["applications"]] == [app_id]
