"""The kept original without spent credentials: each body format loses those fields and nothing else."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_from_bytes

from hub_formcycle.source import FormCycleSource
from test_bodies import JSON_BODY, URLENCODED, post_json
from test_formcycle import AUTH, PDF, formdata, send, start, stored

from hub import OriginalSubmission
from hub.testing import RunningHub

SAML = "PHNhbWxwOlJlc3BvbnNlIHhtbG5zOnNhbWxwPSJ1cm46b2FzaXM6bmFtZXM6dGM6U0FNTDoyLjA6cHJvdG9jb2wiPg=="


async def redacted(running: RunningHub, answer: Any, *fields: str) -> bytes | None:
    app = await stored(running, answer)
    assert app.original is not None
    source = running.hub.connectors["formcycle"]
    assert isinstance(source, FormCycleSource)
    return await source.redact_original(app.original, fields)


def escaped(text: str, encoding: str) -> str:
    return quote_from_bytes(text.encode(encoding))


async def test_urlencoded_every_occurrence_goes_and_every_other_byte_stays(hub_factory: Any) -> None:
    running = await start(hub_factory)
    # windows-1252 as `_charset_` says, a credential name outside ASCII, sent twice, and a similar name
    name = "anmeldung_bestätigung"
    kept = [
        b"_charset_=windows-1252",
        b"vorgang_id=fc-red-1",
        f"betreff={escaped('Gebühr 12 €', 'cp1252')}".encode(),
        f"{escaped(name + '_hinweis', 'cp1252')}=bleibt".encode(),
    ]
    spent = f"{escaped(name, 'cp1252')}={SAML.replace('=', '%3D')}".encode()
    body = b"&".join([kept[0], spent, *kept[1:3], spent, kept[3]])
    status, answer = await send(running, body, headers={**AUTH, "Content-Type": URLENCODED})
    assert status == 202, answer
    assert await redacted(running, answer, name) == b"&".join(kept)


async def test_canonical_json_of_a_multipart_post_loses_the_field_only(hub_factory: Any) -> None:
    running = await start(hub_factory)
    data = formdata(
        [("vorgang_id", "fc-red-2"), ("bundid_saml_response", SAML), ("betreff", "Jagdschein")],
        [("ausweis", "ausweis.pdf", PDF, "application/pdf")],
    )
    status, answer = await send(running, data)
    assert status == 202, answer
    app = await stored(running, answer)
    assert app.original is not None
    before = json.loads(await running.hub.blobs.read_bytes(app.original.blob))
    content = await redacted(running, answer, "bundid_saml_response")
    assert content is not None and SAML.encode() not in content
    after = json.loads(content)
    del before["fields"]["bundid_saml_response"]
    assert after == before  # attachments, service, format and the other fields as they were


async def test_json_body_keeps_its_structure_without_the_credential(hub_factory: Any) -> None:
    running = await start(hub_factory, body="json")
    status, answer = await post_json(running, {**JSON_BODY, "vorgang_id": "fc-red-3", "saml": SAML})
    assert status == 202, answer
    content = await redacted(running, answer, "saml")
    assert content is not None and SAML.encode() not in content
    fields = json.loads(content)["fields"]
    assert fields == {k: v for k, v in JSON_BODY.items() if k != "attachments"} | {"vorgang_id": "fc-red-3"}


async def test_an_original_without_the_field_comes_back_unchanged(hub_factory: Any) -> None:
    running = await start(hub_factory)
    status, answer = await send(running, formdata([("vorgang_id", "fc-red-4")], multipart=False))
    assert status == 202, answer
    app = await stored(running, answer)
    assert app.original is not None
    assert await redacted(running, answer, "bundid_saml_response") == await running.hub.blobs.read_bytes(
        app.original.blob
    )


async def test_an_original_in_a_format_it_did_not_write_is_not_redacted(hub_factory: Any) -> None:
    running = await start(hub_factory)
    source = running.hub.connectors["formcycle"]
    assert isinstance(source, FormCycleSource)
    blob = await running.hub.blobs.write_bytes(b"<antrag><saml>" + SAML.encode() + b"</saml></antrag>")
    foreign = OriginalSubmission(
        media_type="application/xml", blob=blob.ref, size=blob.size, sha256=blob.sha256
    )
    assert await source.redact_original(foreign, ["saml"]) is None  # the core then never files it
