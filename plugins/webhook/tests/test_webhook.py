"""The webhook source on a real hub over loopback, fed as a form server or portal posts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hub_webhook.auth import sign
from hub_webhook.simulator import FormServer, json_body, multipart_body, xml_body
from webhook_helpers import (
    HMAC,
    KEY,
    OLD_KEY,
    PDF,
    TOKEN,
    b64,
    count,
    registration,
    settings,
    stored,
)

from hub import IntakeOutcome
from hub.blobs import BlobStore
from hub.testing import RunningHub, SourceContract
from hub.testing.harness import blob_files, stored_blobs
from hub.testing.hostile import multipart

JSON_TYPE = "application/json"


async def start(hub_factory: Any, **overrides: dict[str, Any]) -> RunningHub:
    running: RunningHub = await hub_factory(**settings(**overrides))
    return running


def signed(body: bytes, key: str = KEY, timestamp: int | None = None) -> dict[str, str]:
    return {"Content-Type": JSON_TYPE, **sign(body, key, HMAC, timestamp)}


def bearer(content_type: str, token: str = TOKEN) -> dict[str, str]:
    return {"Content-Type": content_type, "Authorization": f"Bearer {token}"}


def blobs_kept(running: RunningHub) -> tuple[set[str], list[Path]]:
    """What the hub's blob store holds: every blob (packed or a file) and every other file (temporary)."""
    blobs = running.hub.blobs
    assert isinstance(blobs, BlobStore)
    return stored_blobs(blobs), blob_files(blobs.root)


async def post(running: RunningHub, connector: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    return await running.post(f"/intake/{connector}/hundeanmeldung", data=body, headers=headers)


class TestWebhookContract(SourceContract):
    """The contract every source passes, spoken as a form server posting signed JSON."""

    @pytest.fixture
    async def source_hub(self, hub_factory: Any) -> RunningHub:
        return await start(hub_factory)

    async def submit(self, running: RunningHub, n: int) -> IntakeOutcome:
        body = json_body(registration(n))
        status, answer = await post(running, "fs", body, signed(body))
        assert status in (200, 202), answer
        return IntakeOutcome(application_id=answer["application_id"], duplicate=answer["duplicate"])

    async def submit_malformed(self, running: RunningHub) -> int:
        body = b'{"transactionId": "x", "service": '
        status, _ = await post(running, "fs", body, signed(body))
        return status


# -- each content type, end to end into the journal ------------------------------------------------


async def test_signed_json_lands_with_applicant_fields_and_decoded_attachments(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = json_body(registration())
    status, answer = await post(running, "fs", body, signed(body))
    assert status == 202, answer
    app = await stored(running, answer)
    assert (app.source, app.external_id, app.service) == ("fs", "010040-test0001", "hundeanmeldung")
    assert (app.applicant.given_name, app.applicant.family_name, app.applicant.birth_date) == (
        "Jürgen",
        "Groß",
        "11.01.1971",
    )
    assert app.applicant.address is not None and app.applicant.address.city == "Recklinghausen"
    assert app.form == {"hund_name": "Bello", "chipnummer": "276098100000001"}
    [attachment] = app.attachments
    assert (attachment.name, attachment.media_type, attachment.size) == (
        "Haftpflicht.pdf",
        "application/pdf",
        len(PDF),
    )
    assert await running.hub.blobs.read_bytes(attachment.blob) == PDF
    assert app.original is not None and app.original.media_type == JSON_TYPE
    assert await running.hub.blobs.read_bytes(app.original.blob) == body  # kept exactly as sent
    await running.wait_for_state(answer["application_id"])


async def test_json_without_fields_keeps_the_document_but_not_the_base64(hub_factory: Any) -> None:
    running = await start(hub_factory, fs={"fields": {}})
    body = json_body(registration())
    status, answer = await post(running, "fs", body, signed(body))
    assert status == 202, answer
    app = await stored(running, answer)
    assert app.form["data"]["hund"]["rasse"] == "Labrador"
    assert app.form["attachments"] == [{"filename": "Haftpflicht.pdf", "mimeType": "application/pdf"}]


async def test_xml_body_read_by_xpath_with_inline_attachments(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = xml_body(registration())
    status, answer = await post(running, "portal", body, bearer("application/xml"))
    assert status == 202, answer
    app = await stored(running, answer)
    assert (app.external_id, app.applicant.given_name, app.applicant.family_name) == (
        "010040-test0001",
        "Jürgen",
        "Groß",
    )
    assert app.form["Antrag"]["Hund"]["chipnummer"] == "276098100000001"
    assert app.form["Antrag"]["Anlagen"]["Anlage"] == ""  # the base64 is in the blob store, not the form
    [attachment] = app.attachments
    assert await running.hub.blobs.read_bytes(attachment.blob) == PDF
    assert app.original is not None and await running.hub.blobs.read_bytes(app.original.blob) == body


async def test_multipart_with_an_xml_data_part_streams_its_files(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body, content_type = multipart_body(registration(), b"%PDF-1.4 form\n%%EOF\n")
    status, answer = await post(running, "portal", body, bearer(content_type))
    assert status == 202, answer
    app = await stored(running, answer)
    assert app.applicant.family_name == "Groß"
    assert sorted((a.field, a.name) for a in app.attachments) == [
        ("anlage", "Haftpflicht.pdf"),
        ("pdf", "010040-test0001.pdf"),
    ]
    assert app.original is not None
    original = json.loads(await running.hub.blobs.read_bytes(app.original.blob))
    assert original["format"] == "aktenhub.webhook.submission/1"
    assert {a["field"] for a in original["attachments"]} == {"xml", "pdf", "anlage"}


async def test_form_fields_by_name_multipart_and_urlencoded(hub_factory: Any) -> None:
    running = await start(hub_factory)
    headers = {"X-Api-Key": TOKEN}
    data = aiohttp.FormData()
    data.add_field("antragsnummer", "P-1")
    data.add_field("vorname", "Ayşe")
    data.add_field("nachname", "Çelik")
    data.add_field("nachweis", PDF, filename="nachweis.pdf", content_type="application/pdf")
    status, answer = await running.post("/intake/form/hundeanmeldung", data=data, headers=headers)
    assert status == 202, answer
    app = await stored(running, answer)
    assert (app.external_id, app.applicant.given_name, app.form["nachname"]) == ("P-1", "Ayşe", "Çelik")
    assert [a.name for a in app.attachments] == ["nachweis.pdf"]
    status, answer = await running.post(
        "/intake/form/hundeanmeldung", data={"antragsnummer": "P-2", "vorname": "Theo"}, headers=headers
    )
    assert status == 202, answer
    assert (await stored(running, answer)).applicant.given_name == "Theo"


async def test_service_from_the_body_and_unrouted_services_refused(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = json_body(registration(service="katzenanmeldung"))
    status, answer = await post(running, "fs", body, signed(body))
    assert status == 422 and "katzenanmeldung" in answer["error"]
    assert await count(running) == 0


# -- re-sends --------------------------------------------------------------------------------------


async def test_resend_is_the_same_application_and_changed_content_is_refused(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = json_body(registration())
    status, first = await post(running, "fs", body, signed(body))
    assert status == 202
    status, again = await post(running, "fs", body, signed(body))
    assert (status, again["application_id"], again["duplicate"]) == (200, first["application_id"], True)
    changed = json_body(registration(dog_name="Rex"))
    status, conflict = await post(running, "fs", changed, signed(changed))
    assert status == 409 and conflict["application_id"] == first["application_id"]
    assert await count(running) == 1


async def test_changed_resend_as_revision_when_configured(hub_factory: Any) -> None:
    running = await start(hub_factory, fs={"on_changed_resend": "revision"})
    body = json_body(registration())
    _, first = await post(running, "fs", body, signed(body))
    await running.wait_for_state(first["application_id"])
    changed = json_body(registration(dog_name="Rex"))
    status, revised = await post(running, "fs", changed, signed(changed))
    assert (status, revised["application_id"], revised["revision"]) == (202, first["application_id"], 2)
    assert (await stored(running, revised)).form["hund_name"] == "Rex"


# -- authentication --------------------------------------------------------------------------------


async def test_hmac_refusals_store_nothing_and_a_rotated_key_is_taken(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = json_body(registration())
    before = blobs_kept(running)
    stale = int(time.time()) - 301
    tampered = body.replace(b"Bello", b"Hasso")
    for headers in (
        {"Content-Type": JSON_TYPE},  # unsigned
        signed(body, key="someone-elses-key-0123456789"),
        signed(body, timestamp=stale),  # replayed later
        {**signed(body), "X-Signature": "sha256=zz"},  # not hex
        {**signed(body), "X-Signature": signed(body)["X-Signature"][len("sha256=") :]},  # no prefix
    ):
        status, answer = await post(running, "fs", body, headers)
        assert status == 401, answer
    status, answer = await post(running, "fs", tampered, signed(body))  # body changed after signing
    assert status == 401 and "does not match" in answer["error"]
    assert await count(running) == 0 and blobs_kept(running) == before
    status, answer = await post(running, "fs", body, signed(body, key=OLD_KEY))
    assert status == 202, answer


async def test_signed_multipart_refused_leaves_no_files(hub_factory: Any) -> None:
    hmac_auth = {"hmac": {"header": "X-Hub-Signature-256", "prefix": "sha256=", "secrets": ["${FS_KEY}"]}}
    running = await start(hub_factory, portal={"auth": hmac_auth})
    body, content_type = multipart_body(registration(), PDF)
    before = blobs_kept(running)
    server = FormServer(
        running.http, running.url + "/intake/portal/hundeanmeldung", "wrong-key-0123456789abcdef"
    )
    server.hmac = HMAC.model_copy(
        update={"header": "X-Hub-Signature-256", "timestamp_header": None, "signed": "{body}"}
    )
    status, answer = await server.post(body, content_type)
    assert status == 401, answer
    assert await count(running) == 0 and blobs_kept(running) == before
    # Not written and removed again: never committed, since the signature is checked first.
    metrics = (await running.get("/metrics"))[1]
    assert 'aktenhub_orphan_blobs_removed_total{cause="intake"} 0.0' in metrics
    server.key = KEY
    status, answer = await server.post(body, content_type)
    assert status == 202, answer


async def test_token_refusals(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = xml_body(registration())
    for headers in (
        {"Content-Type": "application/xml"},
        bearer("application/xml", token="not-the-token-0123456789"),
        {"Content-Type": "application/xml", "Authorization": f"Basic {TOKEN}"},
    ):
        status, answer = await post(running, "portal", body, headers)
        assert status == 401, answer
    assert await count(running) == 0


# -- validation ------------------------------------------------------------------------------------


async def test_json_schema_refusal_names_paths_not_values(hub_factory: Any, tmp_path: Path) -> None:
    schema = tmp_path / "hund.schema.json"
    schema.write_text(
        json.dumps(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["transactionId", "data"],
                "properties": {
                    "data": {
                        "type": "object",
                        "required": ["hund"],
                        "properties": {"hund": {"properties": {"chipnummer": {"pattern": "^[0-9]{15}$"}}}},
                    }
                },
            }
        )
    )
    running = await start(hub_factory, fs={"json_schema": str(schema)})
    body = json_body(registration(chip="GEHEIM-Müller"))
    status, answer = await post(running, "fs", body, signed(body))
    assert status == 422, answer
    assert "$.data.hund.chipnummer" in answer["error"] and "pattern" in answer["error"]
    assert "GEHEIM" not in answer["error"]
    assert await count(running) == 0
    body = json_body(registration())
    status, answer = await post(running, "fs", body, signed(body))
    assert status == 202, answer


XSD = """<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:aktenhub:demo:formserver"
           xmlns="urn:aktenhub:demo:formserver" elementFormDefault="qualified">
  <xs:element name="Antrag">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Antragsteller"><xs:complexType><xs:sequence>
          <xs:any processContents="skip" minOccurs="0" maxOccurs="unbounded"/></xs:sequence></xs:complexType>
        </xs:element>
        <xs:element name="Hund"><xs:complexType><xs:sequence>
          <xs:element name="name" type="xs:string"/><xs:element name="rasse" type="xs:string"/>
          <xs:element name="chipnummer" type="xs:integer"/><xs:element name="haltungSeit" type="xs:string"/>
        </xs:sequence></xs:complexType></xs:element>
        <xs:element name="Anlagen" minOccurs="0"><xs:complexType><xs:sequence>
          <xs:any processContents="skip" minOccurs="0" maxOccurs="unbounded"/></xs:sequence></xs:complexType>
        </xs:element>
      </xs:sequence>
      <xs:attribute name="transactionId" type="xs:string" use="required"/>
      <xs:attribute name="service" type="xs:string"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""


async def test_xsd_refusal_names_lines_not_values(hub_factory: Any, tmp_path: Path) -> None:
    (tmp_path / "antrag.xsd").write_text(XSD)
    running = await start(hub_factory, portal={"xsd": str(tmp_path / "antrag.xsd")})
    body = xml_body(registration(chip="GEHEIM-Müller"))
    status, answer = await post(running, "portal", body, bearer("application/xml"))
    assert status == 422, answer
    assert "chipnummer" in answer["error"] and "GEHEIM" not in answer["error"]
    assert await count(running) == 0
    status, answer = await post(running, "portal", xml_body(registration()), bearer("application/xml"))
    assert status == 202, answer


async def test_missing_external_id_is_refused(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = json.dumps({"service": "hundeanmeldung", "data": {}, "attachments": []}).encode()
    status, answer = await post(running, "fs", body, signed(body))
    assert status == 422 and "$.transactionId" in answer["error"]
    body = json.dumps({"transactionId": ["a", "b"], "attachments": []}).encode()
    status, answer = await post(running, "fs", body, signed(body))
    assert status == 422 and "more than one" in answer["error"]
    assert await count(running) == 0


async def test_bad_base64_attachment_is_refused_and_nothing_stored(hub_factory: Any) -> None:
    running = await start(hub_factory)
    document = json.loads(json_body(registration()))
    document["attachments"].append({"filename": "b.pdf", "content": "###", "mimeType": "application/pdf"})
    body = json.dumps(document).encode()
    before = blobs_kept(running)
    status, answer = await post(running, "fs", body, signed(body))
    assert status == 400 and "attachment 2" in answer["error"]
    assert await count(running) == 0 and blobs_kept(running) == before
    assert b64(b"x")  # the helper stays in use for the hostile tests


async def test_journal_unavailable_is_503_and_the_resend_is_taken(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = json_body(registration())
    await running.hub.journal.close()  # the journal's database went away
    try:
        status, answer = await post(running, "fs", body, signed(body))
        assert status == 503 and "send it again later" in answer["error"], answer
    finally:
        await running.hub.journal.open()
    status, answer = await post(running, "fs", body, signed(body))  # the form server's retry
    assert status == 202, answer
    assert await count(running) == 1


async def test_multipart_with_a_json_text_part_and_signed(hub_factory: Any) -> None:
    running = await start(hub_factory, fs={"data_part": "json"})
    body = multipart(
        "jsonB0undary",
        (
            [("Content-Disposition", 'form-data; name="json"'), ("Content-Type", JSON_TYPE)],
            json_body(registration(files={})),
        ),
        (
            [
                ("Content-Disposition", 'form-data; name="anlage"; filename="Impfpass.pdf"'),
                ("Content-Type", "application/pdf"),
            ],
            PDF,
        ),
    )
    headers = {"Content-Type": "multipart/form-data; boundary=jsonB0undary", **sign(body, KEY, HMAC)}
    status, answer = await post(running, "fs", body, headers)
    assert status == 202, answer
    app = await stored(running, answer)
    assert (app.external_id, app.form["hund_name"]) == ("010040-test0001", "Bello")
    assert [(a.field, a.name, a.size) for a in app.attachments] == [("anlage", "Impfpass.pdf", len(PDF))]
