"""Hostile uploads against the xdomea DMS import simulator, sent as raw bytes.

Bad credentials, broken multipart framing, ZIPs that are no ZIPs, zip bombs, path traversal, nested,
encrypted or corrupt entries, XXE and billion laughs in the message: each is a 4xx with
``{"status", "message"}`` naming the problem, never a 500 or a hang; nothing is imported, no upload stays
on disk, and the simulator then imports a valid package.
"""

from __future__ import annotations

import io
import json
import struct
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_xdomea_simulator import Package, package  # noqa: F401 (the fixture)
from xdomea_helpers import PASSWORD, USER, Simulator, StartSimulator

from hub.testing.hostile import Case, basic, exchange, multipart, nested_json, request

IMPORT = "/xdomea/import"
AUTH = ("Authorization", basic(USER, PASSWORD))
B = "xdomeaB0undary"
FORM = ("Content-Type", f"multipart/form-data; boundary={B}")
MAX_ZIP = 256 * 1024  # the test simulator's limit: a zip bomb need not be large to exceed it


def zip_of(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", compression) as archive:
        warnings.simplefilter("ignore")  # duplicate names are what some cases want
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def entries(p: Package, **extra: bytes) -> dict[str, bytes]:
    return {p.message_name: p.xml, **p.files, **extra}


def file_part(
    content: bytes, name: str = "file", filename: str = "upload.zip"
) -> tuple[list[tuple[str, str]], bytes]:
    headers = [
        ("Content-Disposition", f'form-data; name="{name}"; filename="{filename}"'),
        ("Content-Type", "application/zip"),
    ]
    return headers, content


def upload(body: bytes, *headers: tuple[str, str]) -> bytes:
    return request("POST", IMPORT, [AUTH, *(headers or (FORM,))], body)


def upload_zip(data: bytes) -> bytes:
    return upload(multipart(B, file_part(data)))


def patched(data: bytes, offset_in_header: int, value: bytes) -> bytes:
    """`data` with a field of every local and central header changed (ZIP internals, as an attacker)."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", offset_in_header), (b"PK\x01\x02", offset_in_header + 2)):
        start = out.find(signature)
        while start != -1:
            out[start + offset : start + offset + len(value)] = value
            start = out.find(signature, start + 4)
    return bytes(out)


def with_message(p: Package, xml: bytes) -> bytes:
    return upload_zip(zip_of({**entries(p), p.message_name: xml}))


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<x:FVDaten.SGOAblegen.0605 xmlns:x="urn:xoev-de:xdomea:schema:3.0.0">&xxe;</x:FVDaten.SGOAblegen.0605>
"""
LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]>\n<lolz>&lol9;</lolz>\n"
)
EXTERNAL_DTD = b'<?xml version="1.0"?>\n<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd">\n<x/>\n'


@dataclass(frozen=True)
class Hostile:
    """A case whose request is built from a valid package."""

    id: str
    build: Callable[[Package], bytes]
    status: int | tuple[int, ...]


def auth_cases() -> list[Hostile]:
    def with_auth(value: str | bytes) -> Callable[[Package], bytes]:
        return lambda p: request(
            "POST", IMPORT, [("Authorization", value), FORM], multipart(B, file_part(p.zip()))
        )

    return [
        Hostile(
            "auth-missing", lambda p: request("POST", IMPORT, [FORM], multipart(B, file_part(p.zip()))), 401
        ),
        Hostile("auth-bad-base64", with_auth("Basic !!not*base64!!"), 401),
        Hostile("auth-empty-user", with_auth(basic("", PASSWORD)), 401),
        Hostile("auth-non-utf8-user", with_auth(basic(b"\xff\xfe", PASSWORD)), 401),
        Hostile("auth-wrong-password", with_auth(basic(USER, "nope")), 401),
        Hostile("auth-bearer", with_auth("Bearer " + PASSWORD), 401),
        Hostile("auth-raw-latin1-header", with_auth(b"Basic \xe4\xf6\xfc"), 401),
    ]


def http_cases() -> list[Hostile]:
    return [
        Hostile(
            "method-put",
            lambda p: request("PUT", IMPORT, [AUTH, FORM], multipart(B, file_part(p.zip()))),
            405,
        ),
        Hostile("method-delete", lambda p: request("DELETE", IMPORT, [AUTH]), 405),
        Hostile("path-unknown", lambda p: request("POST", "/xdomea/export", [AUTH, FORM], b""), 404),
        Hostile(
            "path-answer-traversal",
            lambda p: request("GET", "/xdomea/answers/..%2F..%2Fetc%2Fpasswd", [AUTH]),
            404,
        ),
        Hostile("ctype-raw-zip", lambda p: upload(p.zip(), ("Content-Type", "application/zip")), 415),
        Hostile("ctype-json", lambda p: upload(b"{}", ("Content-Type", "application/json")), 415),
        Hostile("ctype-missing", lambda p: request("POST", IMPORT, [AUTH], p.zip()), 415),
        Hostile(
            "frame-bad-chunk",
            lambda p: request("POST", IMPORT, [AUTH, FORM, ("Transfer-Encoding", "chunked")], b"zz\r\n"),
            400,
        ),
        Hostile(
            "frame-huge-header",
            lambda p: request("GET", IMPORT, [AUTH, ("X-Big", "a" * 200_000)]),
            (400, 431),
        ),
    ]


def multipart_cases() -> list[Hostile]:
    field = ([("Content-Disposition", 'form-data; name="note"')], b"hello")
    huge = (
        [("Content-Disposition", 'form-data; name="file"; filename="a.zip"'), ("X-Pad", "a" * 200_000)],
        b"PK",
    )
    nested = (
        [("Content-Disposition", 'form-data; name="file"'), ("Content-Type", "multipart/mixed; boundary=x")],
        b"--x\r\n\r\nx\r\n--x--\r\n",
    )
    return [
        Hostile(
            "mp-no-boundary",
            lambda p: upload(multipart(B, file_part(p.zip())), ("Content-Type", "multipart/form-data")),
            400,
        ),
        Hostile("mp-unterminated", lambda p: upload(multipart(B, file_part(p.zip()), end=False)), 400),
        Hostile("mp-no-delimiters", lambda p: upload(b"no multipart here"), 400),
        Hostile("mp-empty", lambda p: upload(b""), 400),
        Hostile("mp-no-file-part", lambda p: upload(multipart(B, field)), 400),
        Hostile(
            "mp-two-files",
            lambda p: upload(multipart(B, file_part(p.zip()), file_part(p.zip(), "second"))),
            400,
        ),
        Hostile("mp-huge-part-header", lambda p: upload(multipart(B, huge)), (400, 413)),
        Hostile("mp-nested", lambda p: upload(multipart(B, nested)), 400),
        Hostile(
            "mp-traversal-filename",
            lambda p: upload(multipart(B, field, file_part(b"not a zip", filename="../../etc/cron.d/x"))),
            422,
        ),
    ]


def zip_cases() -> list[Hostile]:
    def stored_corrupt(p: Package) -> bytes:
        data = bytearray(zip_of(entries(p), zipfile.ZIP_STORED))
        position = data.find(b"%PDF")  # a primary file's content, stored as is
        data[position] ^= 0xFF
        return upload_zip(bytes(data))

    return [
        Hostile("zip-not-a-zip", lambda p: upload_zip(b"%PDF-1.4 not a zip"), 422),
        Hostile("zip-empty-file", lambda p: upload_zip(b""), 422),
        Hostile("zip-truncated", lambda p: upload_zip(p.zip()[: len(p.zip()) // 2]), 422),
        Hostile(
            "zip-bomb",
            lambda p: upload_zip(zip_of(entries(p, **{"bomb.pdf": b"\0" * (4 * MAX_ZIP + 1)}))),
            413,
        ),
        Hostile("zip-too-many-entries", lambda p: upload_zip(zip_of({f"f{i}": b"" for i in range(60)})), 413),
        Hostile("zip-traversal", lambda p: upload_zip(zip_of(entries(p, **{"../../etc/passwd": b"x"}))), 422),
        Hostile("zip-absolute", lambda p: upload_zip(zip_of(entries(p, **{"/etc/passwd": b"x"}))), 422),
        Hostile("zip-backslash", lambda p: upload_zip(zip_of(entries(p, **{"..\\..\\win.ini": b"x"}))), 422),
        Hostile("zip-drive-letter", lambda p: upload_zip(zip_of(entries(p, **{"C:/boot.ini": b"x"}))), 422),
        Hostile("zip-nested-zip", lambda p: upload_zip(zip_of({"inner.zip": p.zip()})), 422),
        Hostile("zip-nested-extra", lambda p: upload_zip(zip_of(entries(p, **{"inner.zip": p.zip()}))), 422),
        Hostile("zip-crc-mismatch", stored_corrupt, 422),
        Hostile(
            "zip-encrypted-flag",
            lambda p: upload_zip(patched(zip_of(entries(p)), 6, struct.pack("<H", 1))),
            422,
        ),
        Hostile(
            "zip-unknown-compression",
            lambda p: upload_zip(patched(zip_of(entries(p)), 8, struct.pack("<H", 99))),
            422,
        ),
        Hostile("zip-duplicate-names", duplicate_zip, 422),
    ]


def duplicate_zip(p: Package) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore")
        for name, data in entries(p).items():
            archive.writestr(name, data)
        archive.writestr(p.message_name, p.xml)
    return upload_zip(buffer.getvalue())


def xml_cases() -> list[Hostile]:
    return [
        Hostile("xml-xxe", lambda p: with_message(p, XXE), 422),
        Hostile("xml-billion-laughs", lambda p: with_message(p, LAUGHS), 422),
        Hostile("xml-external-dtd", lambda p: with_message(p, EXTERNAL_DTD), 422),
        Hostile("xml-deep-nesting", lambda p: with_message(p, b"<a>" * 100_000 + b"</a>" * 100_000), 422),
        Hostile(
            "xml-not-utf8",
            lambda p: with_message(p, b'<?xml version="1.0" encoding="UTF-8"?><x>\xff\xfe</x>'),
            422,
        ),
        Hostile("xml-json-instead", lambda p: with_message(p, nested_json(1000)), 422),
        Hostile("xml-empty", lambda p: with_message(p, b""), 422),
    ]


CASES = [*auth_cases(), *http_cases(), *multipart_cases(), *zip_cases(), *xml_cases()]


def test_enough_cases() -> None:
    assert len(CASES) >= 20 and len({c.id for c in CASES}) == len(CASES)


def kept(dms: Simulator) -> set[Path]:
    return set(dms.state.content_dir.iterdir())


@pytest.mark.parametrize("hostile", CASES, ids=[c.id for c in CASES])
async def test_hostile_upload(
    start_simulator: StartSimulator,
    package: Package,  # noqa: F811 (the fixture imported above)
    hostile: Hostile,
) -> None:
    dms = await start_simulator(max_zip_bytes=MAX_ZIP, max_entries=50)
    case = Case(hostile.id, hostile.build(package), hostile.status)
    answer = await exchange(dms.url, case.raw)
    assert answer is not None, "the simulator closed the connection without an answer"
    assert case.expects(answer.status), (answer.status, answer.body[:500])
    if not case.id.startswith("frame-"):
        assert answer.headers.get("content-type", "").startswith("application/json"), answer
        body = answer.json()
        assert body["status"] == answer.status and body["message"], body
        assert "Traceback" not in body["message"] and "root:" not in body["message"], body
    assert dms.state.imports == {} and dms.state.history == []
    assert kept(dms) == set(), "an upload was left on disk"
    valid = await exchange(dms.url, upload_zip(package.zip()))
    assert valid is not None and valid.status == 201, valid
    assert list(dms.state.imports) == [package.pid.lower()]


def test_laughs_is_a_billion_laughs() -> None:
    assert LAUGHS.count(b"<!ENTITY") == 10 and json.loads(nested_json(3)) == [[[]]]
