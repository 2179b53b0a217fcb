"""Hostile bodies and broken configurations: refused with a clear answer, nothing stored, still serving."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hub_webhook.auth import sign
from hub_webhook.simulator import json_body, xml_body
from webhook_helpers import HMAC, KEY, TOKEN, count, registration, settings

from hub.blobs import BlobStore
from hub.errors import ConfigError
from hub.testing import RunningHub
from hub.testing.harness import blob_files, stored_blobs
from hub.testing.hostile import nested_json

SECRET = "${FS_KEY}"
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Antrag xmlns="urn:aktenhub:demo:formserver" transactionId="x">&x;</Antrag>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE l [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>
<Antrag xmlns="urn:aktenhub:demo:formserver" transactionId="x">&c;</Antrag>"""


def deep_xml(depth: int) -> bytes:
    return (
        b'<Antrag xmlns="urn:aktenhub:demo:formserver" transactionId="deep">'
        + b"<a>" * depth
        + b"x"
        + b"</a>" * depth
        + b"</Antrag>"
    )


async def start(hub_factory: Any, **overrides: dict[str, Any]) -> RunningHub:
    running: RunningHub = await hub_factory(**settings(**overrides))
    return running


def blobs_kept(running: RunningHub) -> tuple[set[str], list[Path]]:
    """What the hub's blob store holds: every blob (packed or a file) and every other file (temporary)."""
    blobs = running.hub.blobs
    assert isinstance(blobs, BlobStore)
    return stored_blobs(blobs), blob_files(blobs.root)


XML_CASES = [
    ("xxe", XXE, 400),
    ("entity-expansion", LAUGHS, 400),
    ("deep-nesting", deep_xml(40), 400),
    ("not-well-formed", b"<Antrag", 400),
    ("latin1-declared-utf8", '<?xml version="1.0" encoding="UTF-8"?><A>Gro\xdf</A>'.encode("latin-1"), 400),
]


async def test_hostile_xml_refused_and_the_hub_keeps_serving(hub_factory: Any) -> None:
    running = await start(hub_factory, portal={"max_json_size": "64KiB"})
    headers = {"Content-Type": "application/xml", "Authorization": f"Bearer {TOKEN}"}
    before = blobs_kept(running)
    for name, body, expected in [*XML_CASES, ("oversize", b"<A>" + b"x" * 70_000 + b"</A>", 413)]:
        status, answer = await running.post("/intake/portal/hundeanmeldung", data=body, headers=headers)
        assert status == expected, (name, answer)
        assert "passwd" not in json.dumps(answer)
    assert await count(running) == 0 and blobs_kept(running) == before
    status, answer = await running.post(
        "/intake/portal/hundeanmeldung", data=xml_body(registration(files={})), headers=headers
    )
    assert status == 202, answer


async def test_hostile_json_refused(hub_factory: Any, tmp_path: Path) -> None:
    running = await start(hub_factory)
    cases = [
        ("deep", nested_json(100), 400),
        ("duplicate-member", b'{"transactionId": "a", "transactionId": "b"}', 400),
        ("nan", b'{"transactionId": "a", "n": NaN}', 400),
        ("not-utf8", '{"transactionId": "Gro\xdf"}'.encode("latin-1"), 400),
        ("lone-surrogate", b'{"transactionId": "\\ud800"}', 400),
        ("nul-in-value", b'{"transactionId": "a\\u0000b"}', 400),
    ]
    for name, body, expected in cases:
        headers = {"Content-Type": "application/json", **sign(body, KEY, HMAC)}
        status, answer = await running.post("/intake/fs/hundeanmeldung", data=body, headers=headers)
        assert status == expected, (name, answer)
    body = json_body(registration())
    headers = {"Content-Type": "application/json; charset=iso-8859-1", **sign(body, KEY, HMAC)}
    status, _ = await running.post("/intake/fs/hundeanmeldung", data=body, headers=headers)
    assert status == 415
    headers = {"Content-Type": "text/plain", **sign(body, KEY, HMAC)}
    status, answer = await running.post("/intake/fs/hundeanmeldung", data=body, headers=headers)
    assert status == 415 and "application/json" in answer["error"]
    assert await count(running) == 0


async def test_broken_multipart_refused(hub_factory: Any) -> None:
    running = await start(hub_factory)
    auth = {"X-Api-Key": TOKEN}
    part = b'--B\r\nContent-Disposition: form-data; name="antragsnummer"\r\n\r\nP-1\r\n'
    file_part = (
        b'--B\r\nContent-Disposition: form-data; name="f"; filename="a.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n%PDF-1.4 x\r\n"
    )
    before = blobs_kept(running)
    for name, body, content_type in [
        ("other-boundary", part + b"--B--\r\n", "multipart/form-data; boundary=C"),
        ("no-boundary", part + b"--B--\r\n", "multipart/form-data"),
        ("truncated", part + file_part, "multipart/form-data; boundary=B"),
        ("two-boundaries", part + b"--B--\r\n", "multipart/form-data; boundary=B; boundary=C"),
    ]:
        status, answer = await running.post(
            "/intake/form/hundeanmeldung", data=body, headers={**auth, "Content-Type": content_type}
        )
        assert status == 400, (name, answer)
    assert await count(running) == 0 and blobs_kept(running) == before


@pytest.mark.parametrize(
    ("connector", "change", "where"),
    [
        ("fs", {"external_id": "$.transactionId[["}, "connectors.fs.external_id"),
        ("fs", {"applicant": {"given_name": "$..[?"}}, "connectors.fs.applicant"),
        ("portal", {"external_id": "/a:Antrag/@transactionId]"}, "connectors.portal.external_id"),
        ("portal", {"fields": {"hund": "/x:Antrag/x:Hund"}}, "connectors.portal.fields"),
        ("portal", {"json_schema": "schema.json"}, "connectors.portal"),
        (
            "fs",
            {"auth": {"hmac": {"signed": "{body}.{timestamp}", "secrets": ["${FS_KEY}"]}}},
            "connectors.fs.auth",
        ),
        (
            "fs",
            {"auth": {"token": {"secrets": ["${FS_KEY}"]}, "hmac": {"secrets": ["${FS_KEY}"]}}},
            "connectors.fs.auth",
        ),
        ("form", {"auth": {"token": {"secrets": ["kurz"]}}}, "connectors.form.auth"),
        ("form", {"attachments": {"each": "a", "name": "b", "content": "c"}}, "connectors.form.attachments"),
    ],
)
async def test_configuration_errors_name_the_setting(
    hub_factory: Any, connector: str, change: dict[str, Any], where: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        await start(hub_factory, **{connector: change})
    assert re.search(rf"<test>:\d+: {re.escape(where)}", str(caught.value))  # file, line and setting
    assert "kurz" not in str(caught.value)
