"""The kept original without a spent credential: removed where its path points, the rest kept."""

from __future__ import annotations

import json
from typing import Any

from hub_webhook.auth import sign
from hub_webhook.simulator import json_body, xml_body
from hub_webhook.source import WebhookSource
from webhook_helpers import HMAC, KEY, NS, TOKEN, registration, settings, stored

from hub.testing import RunningHub

SAML = "PHNhbWxwOlJlc3BvbnNlIHhtbG5zOnNhbWxwPSJ1cm46b2FzaXM6bmFtZXM6dGM6U0FNTDoyLjA6cHJvdG9jb2wiPg=="


async def redacted(running: RunningHub, connector: str, answer: Any, *fields: str) -> bytes | None:
    app = await stored(running, answer)
    assert app.original is not None
    source = running.hub.connectors[connector]
    assert isinstance(source, WebhookSource)
    return await source.redact_original(app.original, fields)


async def test_json_body_loses_the_member_its_field_path_selects(hub_factory: Any) -> None:
    fields = {"hund_name": "$.data.hund.name", "saml": "$.login.samlResponse"}
    running: RunningHub = await hub_factory(**settings(fs={"fields": fields}))
    document = json.loads(json_body(registration(files={})))
    document["login"] = {"samlResponse": SAML, "means": "eID"}
    body = json.dumps(document).encode()
    status, answer = await running.post(
        "/intake/fs/hundeanmeldung",
        data=body,
        headers={"Content-Type": "application/json", **sign(body, KEY, HMAC)},
    )
    assert status == 202, answer
    assert (await stored(running, answer)).form["saml"] == SAML
    content = await redacted(running, "fs", answer, "saml")
    assert content is not None and SAML.encode() not in content
    del document["login"]["samlResponse"]
    assert json.loads(content) == document  # everything else as sent
    assert await redacted(running, "fs", answer, "not-there") == body  # nothing to remove: unchanged


async def test_xml_body_loses_the_element_and_an_attribute_path_stays_marked(hub_factory: Any) -> None:
    fields = {"saml": "/a:Antrag/a:Antragsteller/a:Origin", "id": "/a:Antrag/@transactionId"}
    running: RunningHub = await hub_factory(**settings(portal={"fields": fields}))
    body = xml_body(registration(files={}))
    headers = {"Content-Type": "application/xml", "Authorization": f"Bearer {TOKEN}"}
    status, answer = await running.post("/intake/portal/hundeanmeldung", data=body, headers=headers)
    assert status == 202, answer
    content = await redacted(running, "portal", answer, "saml")
    assert content is not None and b"BUNDID" not in content and b"Recklinghausen" in content
    assert NS["a"].encode() in content
    assert await redacted(running, "portal", answer, "id") is None  # an attribute cannot be removed
