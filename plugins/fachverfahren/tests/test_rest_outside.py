"""An outside Fachverfahren stand-in, shaped unlike our simulator, reached by configuration only.

Its own OpenAPI file (another path with a path parameter, other field names, a static bearer key, the
case number deep in the answer, another idempotency header), its own callback shape (events in a list,
German status words, the decision inline in base64): the hub is only configured, through YAML.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from hub import AnswerStatus, ApplicationState
from hub.testing import RunningHub

SPEC = """\
openapi: 3.1.0
info: {title: Ausländerwesen Fremdsystem, version: "7.2"}
servers: [{url: "https://abh.vendor.example/rest"}]
components:
  securitySchemes:
    key: {type: http, scheme: bearer}
security: [{key: []}]
paths:
  /mandanten/{mandant}/antraege:
    post:
      operationId: antragAnlegen
      parameters:
        - {name: mandant, in: path, required: true, schema: {type: string, pattern: "^[0-9]{5}$"}}
        - {name: X-Request-Id, in: header, required: true, schema: {type: string}}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [kennung, person]
              additionalProperties: false
              properties:
                kennung: {type: string}
                person:
                  type: object
                  required: [familienname]
                  properties: {familienname: {type: string}, vornamen: {type: string}}
      responses:
        "200":
          description: angelegt
          content:
            application/json:
              schema: {type: object}
"""

CONFIG = """\
connectors:
  json: {type: test-json}
  abh-fv:
    type: rest
    openapi: @SPEC@
    operation: antragAnlegen
    base_url: @BASE_URL@
    auth: {type: bearer, token: "${ABH_KEY}"}
    parameters: {mandant: "05382"}
    idempotency_header: X-Request-Id
    reference: $.ergebnis.vorgangsnummer
    case_number: $.ergebnis.akte.zeichen
    callback: {secret: "${ABH_CALLBACK}", scheme: token}
    answer_fields:
      each: $.ereignisse[*]
      answer_id: $.nr
      reference: $.vorgang
      case_number: $.az
      status: $.zustand
      message: $.hinweis
      decision_content: $.bescheid.daten
      decision_name: $.bescheid.dateiname
      decision_media_type: null
      decision_url: null
    status_map: {IN_PRUEFUNG: in_progress, ENTSCHIEDEN: decided}
"""

MAPPING = """\
payloads:
  abh-fv:
    kennung: "{{ id }}"
    person:
      familienname: "{{ form.nachname }}"
      vornamen: "{{ form.vorname }}"
"""


async def test_outside_stand_in_is_reached_and_heard_by_configuration_only(
    tmp_path: Path, hub_factory: Any
) -> None:
    seen: list[dict[str, Any]] = []

    async def anlegen(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer outside-key-4711":
            return web.json_response({"fehler": "nicht angemeldet"}, status=401)
        seen.append(
            {
                "mandant": request.match_info["mandant"],
                "request_id": request.headers.get("X-Request-Id"),
                "body": await request.json(),
            }
        )
        return web.json_response({"ergebnis": {"vorgangsnummer": "4711-A", "akte": {"zeichen": "ABH 12/26"}}})

    outside = web.Application()
    outside.router.add_post("/rest/mandanten/{mandant}/antraege", anlegen)
    server = TestServer(outside, host="127.0.0.1")
    await server.start_server()
    spec = tmp_path / "fremdsystem.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    mapping = tmp_path / "abh.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    try:
        config = yaml.safe_load(
            CONFIG.replace("@SPEC@", str(spec)).replace("@BASE_URL@", f"http://127.0.0.1:{server.port}/rest")
        )
        routes = [{"name": "abh", "from": "json", "to": ["abh-fv"], "map": str(mapping)}]
        env = {"ABH_KEY": "outside-key-4711", "ABH_CALLBACK": "a-shared-callback-token-1"}
        running: RunningHub = await hub_factory(config["connectors"], routes, env=env)
        status, body = await running.post(
            "/intake/json/aufenthalt", json={"id": "o1", "form": {"nachname": "Öztürk", "vorname": "Ayşe"}}
        )
        assert status == 202
        app_id = body["application_id"]
        assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    finally:
        await server.close()
    (call,) = seen
    assert call["mandant"] == "05382"
    assert call["request_id"] == f"aktenhub-{app_id}-1"
    assert call["body"] == {"kennung": app_id, "person": {"familienname": "Öztürk", "vornamen": "Ayşe"}}
    stored = await running.journal.get_application(app_id)
    assert stored.correlations["abh-fv"] == "4711-A"
    assert stored.correlations["abh-fv.case_number"] == "ABH 12/26"
    assert stored.file_number != "ABH 12/26"

    sink = running.hub.connectors["abh-fv"]
    auth = sink.callback_auth()
    assert auth is not None and auth.scheme == "token"
    pdf = b"%PDF-1.7 Bescheid"
    callback = {
        "ereignisse": [
            {"nr": 1, "vorgang": "4711-A", "az": "ABH 12/26", "zustand": "IN_PRUEFUNG"},
            {
                "nr": 2,
                "vorgang": "4711-A",
                "zustand": "ENTSCHIEDEN",
                "hinweis": "Aufenthaltstitel erteilt",
                "bescheid": {"dateiname": "bescheid.pdf", "daten": base64.b64encode(pdf).decode()},
            },
        ]
    }
    first, second = await sink.callback_answers(json.dumps(callback).encode(), {})
    assert (first.answer_id, first.reference, first.status) == ("1", "4711-A", AnswerStatus.IN_PROGRESS)
    assert first.case_number == "ABH 12/26" and first.decision is None
    assert second.status is AnswerStatus.DECIDED and second.message == "Aufenthaltstitel erteilt"
    assert second.decision is not None and second.decision.name == "bescheid.pdf"
    assert await running.hub.blobs.read_bytes(second.decision.blob) == pdf
