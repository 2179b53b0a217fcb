"""Hostile input over HTTP, as an outside attacker sends it: every case gets a clear answer, changes nothing.

One hub serves the whole module; each case is sent as raw bytes over a loopback socket (the framing
cases need that) and must be answered with the expected status and a JSON body whose ``error`` says what
is wrong: no 500, no traceback. A refused request adds no application, no blob, no temporary file; an
accepted one (the documented 2xx) adds exactly one application, stored in a safe form. After every case
the hub still takes a valid submission, and nothing it logged at INFO or above carries personal data or
a traceback.
"""

from __future__ import annotations

import gzip
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from hub import ConnectorConfig, IntakeFunc, Manifest, Source, WebhookRoute
from hub.blobs.local import LAYOUT_MARKER
from hub.blobs.pack import PACK_FILE
from hub.hookspecs import hookimpl
from hub.journal import ApplicationFilter
from hub.testing import fakes
from hub.testing.harness import RunningHub, base_settings, start_hub, stop_hub, stored_blobs
from hub.testing.hostile import Answer, exchange_all

pytestmark = pytest.mark.asyncio(loop_scope="module")

TOKEN = "fc-hostile-token-0123456789abcdef"
ENV = {"FORMCYCLE_TOKEN": TOKEN, "VIEWER": "v-hostile-1", "OPERATOR": "o-hostile-2", "ADMIN": "a-hostile-3"}
VIEWER = "Bearer v-hostile-1"
OPERATOR = "Bearer o-hostile-2"
ADMIN = "Bearer a-hostile-3"
SURNAME = "Mustermann-Geheim"  # personal data in the submissions; it must never reach a log line
MAX_BODY = 1024 * 1024
MAX_HEADER = 16 * 1024
B = "hostileB0undary"
INTAKE = "/intake/formcycle/jagdschein"
JSON_INTAKE = "/intake/fcjson/jagdschein"


@dataclass(frozen=True)
class Case:
    """A hostile request and what the hub must answer."""

    id: str
    raw: bytes
    status: int | tuple[int, ...]
    accepted: bool = False  # the documented 2xx: one application is stored
    check: str | None = None  # a named extra check on the stored application
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- builders


def request(
    method: str,
    path: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    *,
    length: bool = True,
    version: str = "HTTP/1.1",
) -> bytes:
    """Raw request bytes; a Content-Length unless `length` is False; the connection closes after it."""
    lines = [f"{method} {path} {version}", "Host: hub.test", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers or []]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def intake_head(content_type: str = f"multipart/form-data; boundary={B}") -> list[tuple[str, str]]:
    return [("X-Aktenhub-Token", TOKEN), ("Content-Type", content_type)]


def part(disposition: bytes, content: bytes, *extra: bytes, boundary: str = B) -> bytes:
    headers = b"".join(h + b"\r\n" for h in extra)
    return (
        f"--{boundary}\r\n".encode()
        + b"Content-Disposition: "
        + disposition
        + b"\r\n"
        + headers
        + b"\r\n"
        + content
        + b"\r\n"
    )


def field_part(name: str, value: str) -> bytes:
    return part(f'form-data; name="{name}"'.encode(), value.encode())


def base_fields() -> bytes:
    return field_part("vorgang_id", f"hostile-{uuid.uuid4()}") + field_part("nachname", SURNAME)


def multipart(*parts: bytes, boundary: str = B, close: bool = True) -> bytes:
    return b"".join(parts) + (f"--{boundary}--\r\n".encode() if close else b"")


def mp_case(
    id: str, *parts: bytes, status: int | tuple[int, ...], accepted: bool = False, check: str | None = None
) -> Case:
    body = multipart(base_fields(), *parts)
    return Case(id, request("POST", INTAKE, intake_head(), body), status, accepted, check)


def form_case(id: str, body: bytes, status: int | tuple[int, ...], accepted: bool = False) -> Case:
    head = intake_head("application/x-www-form-urlencoded")
    return Case(id, request("POST", INTAKE, head, body), status, accepted)


def json_case(id: str, body: bytes, status: int | tuple[int, ...], accepted: bool = False) -> Case:
    head = intake_head("application/json")
    return Case(id, request("POST", JSON_INTAKE, head, body), status, accepted)


def admin_case(
    id: str,
    method: str,
    path: str,
    status: int | tuple[int, ...],
    token: str | None = VIEWER,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
) -> Case:
    auth = [("Authorization", token)] if token else []
    ctype = [("Content-Type", "application/json")] if body else []
    return Case(id, request(method, path, auth + ctype + (headers or []), body), status)


def file_part(name: str, filename: bytes, content: bytes = b"%PDF-1.4\n") -> bytes:
    return part(b'form-data; name="' + name.encode() + b'"; filename="' + filename + b'"', content)


# ------------------------------------------------------------------------------------------------- cases


def multipart_cases() -> list[Case]:
    ok = base_fields()
    return [
        Case("mp-no-boundary", request("POST", INTAKE, intake_head("multipart/form-data"), ok), 400),
        Case(
            "mp-empty-boundary",
            request("POST", INTAKE, intake_head("multipart/form-data; boundary="), ok),
            400,
        ),
        Case(
            "mp-boundary-71-chars",
            request("POST", INTAKE, intake_head("multipart/form-data; boundary=" + "b" * 71), ok),
            400,
        ),
        Case(
            "mp-boundary-mismatch",
            request("POST", INTAKE, intake_head("multipart/form-data; boundary=other"), multipart(ok)),
            400,
        ),
        Case(
            "mp-duplicate-boundary-param",
            request(
                "POST", INTAKE, intake_head(f"multipart/form-data; boundary=zzz; boundary={B}"), multipart(ok)
            ),
            400,
        ),
        Case("mp-empty-body", request("POST", INTAKE, intake_head(), b""), 400),
        Case("mp-garbage-body", request("POST", INTAKE, intake_head(), b"\x00\xff garbage \r\n" * 50), 400),
        Case(
            "mp-only-closing-boundary", request("POST", INTAKE, intake_head(), f"--{B}--\r\n".encode()), 400
        ),
        Case(
            "mp-unterminated-text-part",
            request("POST", INTAKE, intake_head(), multipart(ok, close=False)),
            400,
        ),
        Case(
            "mp-unterminated-file-part",
            request(
                "POST",
                INTAKE,
                intake_head(),
                ok
                + b"--"
                + B.encode()
                + b'\r\nContent-Disposition: form-data; name="f"; filename="a.pdf"\r\n\r\n%PDF',
            ),
            400,
        ),
        Case(
            "mp-part-without-header-end",
            request("POST", INTAKE, intake_head(), ok + f"--{B}\r\nContent-Disposition: form-data".encode()),
            400,
        ),
        mp_case(
            "mp-huge-part-header", part(b'form-data; name="x"', b"1", b"X-Pad: " + b"a" * 20000), status=400
        ),
        mp_case(
            "mp-many-part-headers",
            part(b'form-data; name="x"', b"1", *[f"X-H{i}: v".encode() for i in range(3000)]),
            status=400,
        ),
        mp_case("mp-thousands-of-text-parts", *[field_part(f"f{i}", "v") for i in range(3000)], status=413),
        mp_case(
            "mp-thousands-of-file-parts", *[file_part(f"f{i}", b"a.pdf") for i in range(600)], status=413
        ),
        mp_case(
            "mp-nested-multipart-file",
            part(
                b'form-data; name="anlagen"; filename="nested.bin"',
                b'--inner\r\nContent-Disposition: file; filename="../../x"\r\n\r\nA\r\n--inner--',
                b"Content-Type: multipart/mixed; boundary=inner",
            ),
            status=202,
            accepted=True,
            check="safe-filenames",
        ),
        mp_case(
            "mp-name-with-nul", part(b'form-data; name="a\x00b"', b"v"), status=(202, 400), accepted=True
        ),
        mp_case("mp-name-with-cr-lf", part(b'form-data; name="a\r\nX-Evil: 1"', b"v"), status=400),
        mp_case(
            "mp-name-path-traversal",
            part(b'form-data; name="../../etc/passwd"', b"v"),
            status=202,
            accepted=True,
        ),
        mp_case(
            "mp-filename-path-traversal",
            file_part("anlage", b"../../../../etc/passwd"),
            status=202,
            accepted=True,
            check="safe-filenames",
        ),
        mp_case(
            "mp-filename-windows-traversal",
            file_part("anlage", b"..\\..\\windows\\system32\\evil.dll"),
            status=202,
            accepted=True,
            check="safe-filenames",
        ),
        mp_case(
            "mp-filename-absolute",
            file_part("anlage", b"/etc/shadow"),
            status=202,
            accepted=True,
            check="safe-filenames",
        ),
        mp_case(
            "mp-filename-control-chars",
            file_part("anlage", b"a\x01b\x07c\x1b[31m.pdf"),
            status=202,
            accepted=True,
            check="safe-filenames",
        ),
        mp_case(
            "mp-filename-rtl-override",
            file_part("anlage", "rechnung\u202efdp.exe".encode()),
            status=202,
            accepted=True,
            check="safe-filenames",
        ),
        mp_case(
            "mp-filename-percent-encoded-traversal",
            file_part("anlage", b"%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
            status=202,
            accepted=True,
            check="safe-filenames",
        ),
        mp_case(
            "mp-filename-10k-chars",
            file_part("anlage", b"a" * 10000 + b".pdf"),
            status=(202, 400),
            accepted=True,
            check="safe-filenames",
        ),
        mp_case("mp-name-10k-chars", part(b'form-data; name="' + b"n" * 10000 + b'"', b"v"), status=400),
        mp_case("mp-name-invalid-utf8", part(b'form-data; name="\xff\xfe\xc3"', b"v"), status=400),
        mp_case(
            "mp-filename-invalid-utf8",
            file_part("anlage", b"\xff\xfe\xc3.pdf"),
            status=202,
            accepted=True,
            check="safe-filenames",
        ),
        mp_case("mp-value-invalid-utf8", part(b'form-data; name="v"', b"\xff\xfe\xc3"), status=400),
        mp_case(
            "mp-missing-content-disposition",
            f"--{B}\r\nContent-Type: text/plain\r\n\r\nv\r\n".encode(),
            status=400,
        ),
        mp_case("mp-disposition-attachment", part(b'attachment; name="x"', b"v"), status=400),
        mp_case("mp-disposition-without-name", part(b"form-data", b"v"), status=400),
        mp_case("mp-empty-name", part(b'form-data; name=""', b"v"), status=400),
        mp_case(
            "mp-zero-length-file",
            file_part("anlage", b"leer.pdf", b""),
            status=202,
            accepted=True,
            check="safe-filenames",
        ),
        mp_case(
            "mp-content-type-lie",
            part(
                b'form-data; name="anlage"; filename="foto.png"',
                b"MZ\x90\x00 this is not a png",
                b"Content-Type: image/png",
            ),
            status=202,
            accepted=True,
        ),
        mp_case(
            "mp-content-type-garbage",
            part(b'form-data; name="anlage"; filename="a.pdf"', b"%PDF", b"Content-Type: \x01\x02;;;=="),
            status=202,
            accepted=True,
        ),
        mp_case(
            "mp-transfer-encoding-base64",
            part(b'form-data; name="x"', b"dmFsdWU=", b"Content-Transfer-Encoding: base64"),
            status=400,
        ),
        mp_case(
            "mp-part-charset-unknown",
            part(b'form-data; name="x"', b"v", b"Content-Type: text/plain; charset=x-evil"),
            status=415,
        ),
        Case(
            "mp-body-charset-unknown",
            request(
                "POST",
                INTAKE,
                intake_head(f"multipart/form-data; boundary={B}; charset=ebcdic-evil"),
                multipart(ok),
            ),
            415,
        ),
        mp_case("mp-charset-field-unknown", field_part("_charset_", "x-no-such-charset"), status=415),
        mp_case("mp-id-field-twice", field_part("vorgang_id", "again"), status=400),
        Case(
            "mp-id-field-control-chars",
            request(
                "POST",
                INTAKE,
                intake_head(),
                multipart(field_part("vorgang_id", "id\x1b[2J\x07"), field_part("nachname", SURNAME)),
            ),
            400,
        ),
        Case(
            "mp-id-field-300-chars",
            request("POST", INTAKE, intake_head(), multipart(field_part("vorgang_id", "i" * 300))),
            400,
        ),
        mp_case("mp-field-over-max-field-size", field_part("big", "x" * (70 * 1024)), status=413),
        Case(
            "mp-preamble-and-epilogue-junk",
            request(
                "POST", INTAKE, intake_head(), b"junk before\r\n" + multipart(base_fields()) + b"junk after"
            ),
            (202, 400),
            accepted=True,
        ),
        mp_case(
            "mp-header-without-colon",
            f"--{B}\r\nContent-Disposition form-data name=x\r\n\r\nv\r\n".encode(),
            status=400,
        ),
        mp_case(
            "mp-header-folding",
            f'--{B}\r\nContent-Disposition: form-data;\r\n name="x"\r\n\r\nv\r\n'.encode(),
            status=400,
        ),
    ]


class _Ident:
    """A fresh `vorgang_id=...&nachname=...` each time it is read (each case is its own submission)."""

    def __add__(self, other: bytes) -> bytes:
        return bytes(self) + other

    def __bytes__(self) -> bytes:
        return f"vorgang_id=hostile-{uuid.uuid4()}&nachname={SURNAME}".encode()


def content_type_cases() -> list[Case]:
    multipart_body = multipart(base_fields())
    json_body = json.dumps({"vorgang_id": str(uuid.uuid4()), "nachname": SURNAME}).encode()
    token = [("X-Aktenhub-Token", TOKEN)]
    return [
        Case("ctype-missing", request("POST", INTAKE, token, multipart_body), 415),
        Case("ctype-empty", request("POST", INTAKE, [*token, ("Content-Type", "")], multipart_body), 415),
        Case("ctype-urlencoded-but-multipart", form_case("x", multipart_body, 400).raw, 400),
        Case(
            "ctype-multipart-but-json",
            request("POST", INTAKE, intake_head(), json_body),
            400,
        ),
        Case(
            "ctype-json-on-form-connector",
            request("POST", INTAKE, intake_head("application/json"), json_body),
            415,
        ),
        Case("ctype-text-plain", request("POST", INTAKE, intake_head("text/plain"), b"a=b"), 415),
        Case("ctype-xml", request("POST", INTAKE, intake_head("application/xml"), b"<a/>"), 415),
        Case("ctype-garbage", request("POST", INTAKE, intake_head(";;;=\x01"), multipart_body), (400, 415)),
        Case(
            "ctype-two-headers",
            request(
                "POST",
                INTAKE,
                [*intake_head(), ("Content-Type", "application/x-www-form-urlencoded")],
                multipart_body,
            ),
            400,
        ),
    ]


def urlencoded_cases() -> list[Case]:
    ident = _Ident()
    return [
        form_case("form-percent-truncated-end", ident + b"&a=%", 202, accepted=True),
        form_case("form-percent-one-digit", ident + b"&a=%4", 202, accepted=True),
        form_case("form-percent-not-hex", ident + b"&a=%zz%g0", 202, accepted=True),
        form_case("form-percent-in-name", ident + b"&%=v", 202, accepted=True),
        form_case("form-huge-key", ident + b"&" + b"k" * 200_000 + b"=v", 400),
        form_case("form-huge-value", ident + b"&k=" + b"v" * 200_000, 413),
        form_case("form-100k-fields", b"&".join(b"f%d=v" % i for i in range(100_000)), 413),
        form_case("form-100k-empty-pairs", b"&" * 100_000 + bytes(ident), 202, accepted=True),
        form_case("form-plus-and-nul-value", ident + b"&a=b+c%00d", 400),
        form_case("form-nul-in-name", ident + b"&a%00b=v", 400),
        form_case("form-control-chars-value", ident + b"&a=%1b%5b2J%07", 400),
        form_case("form-invalid-utf8-value", ident + b"&a=%ff%fe", 400),
        form_case("form-invalid-utf8-name", ident + b"&%ff%fe=v", 400),
        form_case("form-empty-name", ident + b"&=v", 400),
        form_case("form-only-ampersands", b"&&&&", 400),
        form_case("form-empty-body", b"", 400),
        form_case("form-raw-binary", b"\x00\x01\x02\xff" * 100, 400),
        form_case("form-charset-field-unknown", ident + b"&_charset_=x-evil", 415),
        Case(
            "form-declared-charset-unknown",
            request(
                "POST", INTAKE, intake_head("application/x-www-form-urlencoded; charset=x-evil"), bytes(ident)
            ),
            415,
        ),
        form_case("form-id-twice", ident + b"&vorgang_id=second", 400),
        form_case("form-id-empty-and-no-other", b"vorgang_id=", 202, accepted=True),
        form_case("form-semicolon-separators", f"vorgang_id={uuid.uuid4()};x=1".encode(), 202, accepted=True),
    ]


def json_cases() -> list[Case]:
    def doc(**extra: Any) -> bytes:
        return json.dumps({"vorgang_id": f"hostile-{uuid.uuid4()}", "nachname": SURNAME, **extra}).encode()

    class Ok:
        """A fresh document without its closing brace, to append raw members."""

        def __add__(self, other: bytes) -> bytes:
            return doc()[:-1] + other

    ok = Ok()
    return [
        json_case("json-deep-nesting-array", ok + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
        json_case(
            "json-deep-nesting-object", ok + b', "x": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}", 400
        ),
        json_case("json-nesting-unbalanced", ok + b', "x": ' + b"[" * 100_000 + b"}", 400),
        json_case("json-huge-exponent", ok + b', "x": 1e999999}', 400),
        json_case("json-huge-integer", ok + b', "x": ' + b"9" * 100_000 + b"}", (400, 413)),
        json_case("json-nan", ok + b', "x": NaN}', 400),
        json_case("json-infinity", ok + b', "x": -Infinity}', 400),
        json_case("json-duplicate-keys", ok + b', "nachname": "Other"}', 400),
        json_case("json-duplicate-id", ok + b', "vorgang_id": "other"}', 400),
        json_case("json-top-level-array", b'[{"a": 1}]', 400),
        json_case("json-top-level-string", b'"just a string"', 400),
        json_case("json-top-level-null", b"null", 400),
        json_case("json-empty-object", b"{}", 400),
        json_case("json-empty-body", b"", 400),
        json_case("json-truncated", doc()[:-1], 400),
        json_case("json-trailing-garbage", doc() + b" trailing", 400),
        json_case("json-two-documents", doc() + doc(), 400),
        json_case("json-invalid-utf8", ok + b', "x": "\xff\xfe"}', 400),
        json_case("json-lone-surrogate", ok + b', "x": "\\ud800"}', 400),
        json_case("json-utf16-body", doc().decode().encode("utf-16"), 400),
        json_case("json-id-object", doc(vorgang_id={"$ne": None}), 400),
        json_case("json-id-list", doc(vorgang_id=["a", "b"]), 400),
        json_case("json-id-bool", doc(vorgang_id=True), 400),
        json_case("json-attachments-not-list", doc(attachments="x"), 400),
        json_case("json-attachment-not-object", doc(attachments=[1, 2]), 400),
        json_case("json-attachment-content-number", doc(attachments=[{"name": "a.pdf", "content": 5}]), 400),
        json_case(
            "json-attachment-base64-garbage",
            doc(attachments=[{"name": "a.pdf", "content": "@@@!!!***"}]),
            400,
        ),
        json_case(
            "json-attachment-base64-padding",
            doc(attachments=[{"name": "a.pdf", "content": "QUJD="}]),
            (202, 400),
            accepted=True,
        ),
        json_case(
            "json-attachment-unknown-key", doc(attachments=[{"name": "a", "content": "", "x": 1}]), 400
        ),
        json_case("json-attachment-missing-name", doc(attachments=[{"content": "QUJD"}]), 400),
        json_case(
            "json-attachment-traversal-name",
            doc(attachments=[{"name": "../../etc/passwd", "content": "QUJD"}]),
            202,
            accepted=True,
        ),
        json_case("json-nul-in-key", ok + b', "a\\u0000b": 1}', 400),
        json_case("json-nul-in-value", ok + b', "a": "x\\u0000y"}', 400),
        json_case("json-key-10k-chars", ok + b', "' + b"k" * 10000 + b'": 1}', 400),
        json_case("json-over-max-json-size", ok + b', "x": "' + b"a" * (MAX_BODY // 2) + b'"}', 413),
        Case(
            "json-latin1-charset",
            request("POST", JSON_INTAKE, intake_head("application/json; charset=latin1"), doc()),
            415,
        ),
        Case(
            "json-xml-body-with-json-type",
            request("POST", JSON_INTAKE, intake_head("application/json"), b"<?xml version='1.0'?><a/>"),
            400,
        ),
        Case(
            "json-wrong-content-type",
            request("POST", JSON_INTAKE, intake_head("text/plain"), doc()),
            415,
        ),
    ]


def framing_cases() -> list[Case]:
    body = multipart(base_fields())
    head = intake_head()
    return (
        [
            Case(
                "cl-and-te-chunked",
                request("POST", INTAKE, [*head, ("Transfer-Encoding", "chunked")], b"0\r\n\r\n"),
                400,
            ),
            Case(
                "cl-negative", request("POST", INTAKE, [*head, ("Content-Length", "-1")], length=False), 400
            ),
            Case(
                "cl-overflowing",
                request("POST", INTAKE, [*head, ("Content-Length", "9" * 40)], length=False),
                (400, 413),
            ),
            Case(
                "cl-not-a-number",
                request("POST", INTAKE, [*head, ("Content-Length", "abc")], length=False),
                400,
            ),
            Case(
                "cl-plus-sign", request("POST", INTAKE, [*head, ("Content-Length", "+5")], length=False), 400
            ),
            Case("cl-hex", request("POST", INTAKE, [*head, ("Content-Length", "0x10")], length=False), 400),
            Case(
                "cl-two-different",
                request(
                    "POST", INTAKE, [*head, ("Content-Length", "5"), ("Content-Length", "6")], length=False
                ),
                400,
            ),
            Case(
                "cl-comma-list",
                request("POST", INTAKE, [*head, ("Content-Length", "5, 6")], length=False),
                400,
            ),
            Case(
                "cl-over-max-body",
                request("POST", INTAKE, [*head, ("Content-Length", str(MAX_BODY * 10))], length=False),
                413,
            ),
            Case(
                "cl-shorter-than-body",
                request("POST", INTAKE, [*head, ("Content-Length", "10")], body, length=False),
                400,
            ),
            Case(
                "te-bad-chunk-size",
                request(
                    "POST",
                    INTAKE,
                    [*head, ("Transfer-Encoding", "chunked")],
                    b"zz\r\nabc\r\n0\r\n\r\n",
                    length=False,
                ),
                400,
            ),
            Case(
                "te-overflowing-chunk-size",
                request(
                    "POST",
                    INTAKE,
                    [*head, ("Transfer-Encoding", "chunked")],
                    b"f" * 40 + b"\r\nabc\r\n0\r\n\r\n",
                    length=False,
                ),
                (400, 413),
            ),
            Case(
                "te-negative-chunk-size",
                request(
                    "POST",
                    INTAKE,
                    [*head, ("Transfer-Encoding", "chunked")],
                    b"-5\r\nabc\r\n0\r\n\r\n",
                    length=False,
                ),
                400,
            ),
            Case(
                "te-chunk-without-crlf",
                request(
                    "POST",
                    INTAKE,
                    [*head, ("Transfer-Encoding", "chunked")],
                    b"3\r\nabcdef0\r\n\r\n",
                    length=False,
                ),
                400,
            ),
            Case(
                "te-unknown-coding",
                request(
                    "POST", INTAKE, [*head, ("Transfer-Encoding", "gzip, chunked, xyz")], body, length=False
                ),
                (400, 501),
            ),
            Case(
                "te-chunked-not-last",
                request(
                    "POST", INTAKE, [*head, ("Transfer-Encoding", "chunked, identity")], body, length=False
                ),
                (400, 501),
            ),
            Case(
                "te-obfuscated-xchunked",
                request("POST", INTAKE, [*head, ("Transfer-Encoding", "xchunked")], body, length=False),
                (400, 501),
            ),
            Case(
                "te-space-before-colon",
                request(
                    "POST", INTAKE, [*head, ("Transfer-Encoding ", "chunked")], b"0\r\n\r\n", length=False
                ),
                400,
            ),
            Case(
                "te-in-http10",
                request(
                    "POST",
                    INTAKE,
                    [*head, ("Transfer-Encoding", "chunked")],
                    b"0\r\n\r\n",
                    length=False,
                    version="HTTP/1.0",
                ),
                400,
            ),
            Case(
                "smuggle-cl-te-second-request",
                request(
                    "POST",
                    INTAKE,
                    [*head, ("Content-Length", "44"), ("Transfer-Encoding", "chunked")],
                    b"0\r\n\r\nGET /api/v1/applications HTTP/1.1\r\nHost: x\r\n\r\n",
                    length=False,
                ),
                400,
            ),
            Case(
                "smuggle-te-with-tab",
                request("POST", INTAKE, [*head, ("Transfer-Encoding", "\tchunked")], b"0\r\n\r\n"),
                400,
            ),
            Case(
                "header-without-colon",
                b"POST "
                + INTAKE.encode()
                + b" HTTP/1.1\r\nHost: x\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n",
                400,
            ),
            Case(
                "header-with-nul",
                b"POST "
                + INTAKE.encode()
                + b" HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n",
                400,
            ),
            Case(
                "header-bare-lf",
                b"POST " + INTAKE.encode() + b" HTTP/1.1\nHost: x\nContent-Length: 0\n\n",
                (400, 401),
            ),
            Case(
                "header-obs-fold",
                b"POST "
                + INTAKE.encode()
                + b" HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\nContent-Length: 0\r\n\r\n",
                400,
            ),
            Case(
                "header-500-headers",
                request("POST", INTAKE, [(f"X-H{i}", "v") for i in range(500)], b""),
                (400, 431),
            ),
            Case(
                "header-value-too-long",
                request("GET", "/healthz", [("X-Big", "a" * (MAX_HEADER + 10))]),
                (400, 431),
            ),
            Case(
                "header-name-too-long",
                request("GET", "/healthz", [("X" * (MAX_HEADER + 10), "a")]),
                (400, 431),
            ),
            Case("request-line-too-long", request("GET", "/healthz?" + "a" * (MAX_HEADER + 10)), (400, 414)),
            Case(
                "request-line-garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello\r\n\r\n", 400
            ),
            Case("request-line-http09-style", b"GET /healthz\r\n\r\n", (200, 400)),
            Case("request-line-bad-version", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", (400, 505)),
            Case("request-line-http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", (400, 505)),
            Case("request-line-lowercase-method", request("post", INTAKE, intake_head(), body), (400, 405)),
            Case("request-line-garbage-method", request("P@ST", INTAKE, intake_head(), body), 400),
            Case("request-line-absolute-uri-evil-host", request("GET", "http://evil.example/healthz"), 200),
            Case("request-line-asterisk", request("OPTIONS", "*"), (400, 404, 405)),
            Case("request-line-space-in-path", b"GET /heal thz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            Case(
                "http10-post-without-length",
                request("POST", INTAKE, head, b"", length=False, version="HTTP/1.0"),
                400,
            ),
            Case(
                "expect-100-continue-oversize",
                request(
                    "POST",
                    INTAKE,
                    [*head, ("Expect", "100-continue"), ("Content-Length", str(MAX_BODY * 10))],
                    length=False,
                ),
                413,
                extra={"no_continue": True},
            ),
            Case(
                "expect-100-continue-wrong-token",
                request(
                    "POST",
                    INTAKE,
                    [("X-Aktenhub-Token", "wrong"), ("Expect", "100-continue"), ("Content-Length", "100")],
                    length=False,
                ),
                401,
            ),
            Case(
                "expect-unknown",
                request("POST", INTAKE, [*head, ("Expect", "200-ok")], body),
                417,
            ),
            Case(
                "content-encoding-gzip-lie",
                request("POST", INTAKE, [*head, ("Content-Encoding", "gzip")], body),
                415,
            ),
            Case(
                "content-encoding-unknown",
                request("POST", INTAKE, [*head, ("Content-Encoding", "br2")], body),
                415,
            ),
            Case(
                "content-encoding-gzip-bomb",
                request(
                    "POST",
                    INTAKE,
                    [*head, ("Content-Encoding", "gzip")],
                    gzip.compress(b"\0" * 20 * MAX_BODY),
                ),
                415,
            ),
        ]
        + [
            Case(
                f"method-{m.lower()}-on-intake",
                request(m, INTAKE, head, body if m in ("PUT", "PATCH") else b""),
                405,
            )
            for m in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE")
        ]
        + [
            Case(
                "method-connect",
                b"CONNECT hub.test:443 HTTP/1.1\r\nHost: hub.test:443\r\n\r\n",
                (400, 404, 405),
            )
        ]
    )


def path_cases() -> list[Case]:
    body = multipart(base_fields())

    def post(path: str, status: int | tuple[int, ...]) -> Case:
        return Case(f"path-{path[:40]}", request("POST", path, intake_head(), body), status)

    return [
        post("/intake/formcycle/", 404),
        post("/intake/formcycle", 404),
        post("/intake/", 404),
        post("/intake/formcycle/jagd%2Fschein", 400),
        post("/intake/formcycle/%2e%2e", 400),
        post("/intake/formcycle/..", (400, 404)),
        post("/intake/formcycle/../../api/v1/replay", (400, 401, 404)),
        post("/intake/formcycle/%2e%2e%2f%2e%2e%2fapi%2fv1%2freplay", 400),
        post("/intake/formcycle/j%C3%A4gdschein", 400),
        post("/intake/formcycle/" + "s" * 5000, 400),
        post("/intake/formcycle/jagd%00schein", 400),
        post("/intake/formcycle/jagd%0d%0aschein", 400),
        post("/intake/formcycle/.hidden", 400),
        post("/intake/formcycle/-dash", 400),
        post("/intake/formcycle/unrouted-service", 404),
        post("/intake/nosuch/jagdschein", 404),
        post("/intake/FORMCYCLE/jagdschein", 404),
        post("/intake/rec/jagdschein", 404),
        post("/intake/f%C3%B6rm/jagdschein", 404),
        post("/intake/formcycle/jagdschein/extra", 404),
        post("//intake/formcycle/jagdschein", 404),
        post("/intake/formcycle/jagdschein%20", 400),
        post("/nosuchpath", 404),
        post("/api/v2/applications", 404),
        post("/%ff%fe", 404),
    ]


def auth_cases() -> list[Case]:
    body = multipart(base_fields())
    ctype = ("Content-Type", f"multipart/form-data; boundary={B}")
    return [
        Case("auth-intake-missing-token", request("POST", INTAKE, [ctype], body), 401),
        Case(
            "auth-intake-wrong-token",
            request("POST", INTAKE, [ctype, ("X-Aktenhub-Token", "wrong")], body),
            401,
        ),
        Case(
            "auth-intake-empty-token", request("POST", INTAKE, [ctype, ("X-Aktenhub-Token", "")], body), 401
        ),
        Case(
            "auth-intake-token-prefix",
            request("POST", INTAKE, [ctype, ("X-Aktenhub-Token", TOKEN[:-1])], body),
            401,
        ),
        Case(
            "auth-intake-token-with-suffix",
            request("POST", INTAKE, [ctype, ("X-Aktenhub-Token", TOKEN + "x")], body),
            401,
        ),
        Case(
            "auth-intake-token-non-ascii",
            request("POST", INTAKE, [ctype, ("X-Aktenhub-Token", "t\xf6ken\xff")], body),
            401,
        ),
        Case(
            "auth-intake-duplicated-token-right-first",
            request(
                "POST", INTAKE, [ctype, ("X-Aktenhub-Token", TOKEN), ("X-Aktenhub-Token", "wrong")], body
            ),
            (400, 401),
        ),
        Case(
            "auth-intake-duplicated-token-wrong-first",
            request(
                "POST", INTAKE, [ctype, ("X-Aktenhub-Token", "wrong"), ("X-Aktenhub-Token", TOKEN)], body
            ),
            (400, 401),
        ),
        Case(
            "auth-intake-duplicated-token-both-right",
            request("POST", INTAKE, [ctype, ("X-Aktenhub-Token", TOKEN), ("X-Aktenhub-Token", TOKEN)], body),
            (400, 401),
        ),
        Case("auth-intake-token-in-query", request("POST", f"{INTAKE}?token={TOKEN}", [ctype], body), 401),
        Case(
            "auth-intake-token-as-bearer",
            request("POST", INTAKE, [ctype, ("Authorization", f"Bearer {TOKEN}")], body),
            401,
        ),
        Case(
            "auth-intake-admin-token-instead",
            request("POST", INTAKE, [ctype, ("X-Aktenhub-Token", ADMIN.split()[1])], body),
            401,
        ),
        admin_case("auth-admin-missing", "GET", "/api/v1/applications", 401, token=None),
        admin_case("auth-admin-wrong", "GET", "/api/v1/applications", 401, token="Bearer nope"),
        admin_case("auth-admin-empty-bearer", "GET", "/api/v1/applications", 401, token="Bearer "),
        admin_case("auth-admin-basic-scheme", "GET", "/api/v1/applications", 401, token="Basic YTpi"),
        admin_case("auth-admin-no-scheme", "GET", "/api/v1/applications", 401, token=ADMIN.split()[1]),
        admin_case(
            "auth-admin-token-in-query",
            "GET",
            "/api/v1/applications?access_token=" + ADMIN.split()[1],
            401,
            token=None,
        ),
        admin_case(
            "auth-admin-duplicated-viewer-then-admin",
            "POST",
            "/api/v1/replay",
            (400, 401),
            token=VIEWER,
            body=b'{"state": "dead"}',
            headers=[("Authorization", ADMIN)],
        ),
        admin_case(
            "auth-admin-duplicated-wrong-then-admin",
            "GET",
            "/api/v1/applications",
            (400, 401),
            token="Bearer nope",
            headers=[("Authorization", ADMIN)],
        ),
        admin_case(
            "auth-admin-token-with-nul", "GET", "/api/v1/applications", (400, 401), token="Bearer a\x01b"
        ),
        admin_case("auth-admin-intake-token", "GET", "/api/v1/applications", 401, token=f"Bearer {TOKEN}"),
    ]


def admin_cases() -> list[Case]:
    apps = "/api/v1/applications"
    held = "/api/v1/held-messages"
    cases = [
        admin_case("admin-viewer-abandon", "POST", f"{apps}/x/abandon", 403, body=b'{"reason": "r"}'),
        admin_case(
            "admin-operator-abandon",
            "POST",
            f"{apps}/x/abandon",
            403,
            token=OPERATOR,
            body=b'{"reason": "r"}',
        ),
        admin_case("admin-viewer-replay", "POST", f"{apps}/x/replay", 403),
        admin_case("admin-viewer-bulk-replay", "POST", "/api/v1/replay", 403, body=b'{"state": "dead"}'),
        admin_case("admin-viewer-held-close", "POST", f"{held}/1/close", 403),
        admin_case("admin-operator-held-close", "POST", f"{held}/1/close", 403, token=OPERATOR),
        admin_case("admin-viewer-held-keep", "POST", f"{held}/1/keep", 403),
        admin_case(
            "admin-viewer-role-header",
            "POST",
            "/api/v1/replay",
            403,
            headers=[("X-Role", "admin")],
            body=b"{}",
        ),
        admin_case("admin-viewer-fields-application", "GET", f"{apps}?fields=application", 400),
        admin_case("admin-viewer-sort-by-name", "GET", f"{apps}?sort=applicant.family_name", 400),
        admin_case("admin-viewer-role-param", "GET", f"{apps}?role=admin", 400),
        admin_case("admin-get-with-fields", "GET", f"{apps}/x?fields=application", (400, 404)),
        admin_case(
            "admin-bulk-replay-bad-json", "POST", "/api/v1/replay", 400, token=OPERATOR, body=b"{not json"
        ),
        admin_case("admin-bulk-replay-array", "POST", "/api/v1/replay", 400, token=OPERATOR, body=b"[1,2]"),
        admin_case(
            "admin-bulk-replay-empty-object", "POST", "/api/v1/replay", 400, token=OPERATOR, body=b"{}"
        ),
        admin_case("admin-bulk-replay-no-body", "POST", "/api/v1/replay", 400, token=OPERATOR),
        admin_case(
            "admin-bulk-replay-unknown-key",
            "POST",
            "/api/v1/replay",
            400,
            token=OPERATOR,
            body=b'{"all": true}',
        ),
        admin_case(
            "admin-bulk-replay-bad-state",
            "POST",
            "/api/v1/replay",
            400,
            token=OPERATOR,
            body=b'{"state": "x"}',
        ),
        admin_case(
            "admin-bulk-replay-ids-number", "POST", "/api/v1/replay", 400, token=OPERATOR, body=b'{"ids": 5}'
        ),
        admin_case(
            "admin-bulk-replay-ids-mixed",
            "POST",
            "/api/v1/replay",
            400,
            token=OPERATOR,
            body=b'{"ids": ["a", 1]}',
        ),
        admin_case(
            "admin-bulk-replay-too-many-ids",
            "POST",
            "/api/v1/replay",
            400,
            token=OPERATOR,
            body=json.dumps({"ids": [str(i) for i in range(1001)]}).encode(),
        ),
        admin_case(
            "admin-bulk-replay-q-object",
            "POST",
            "/api/v1/replay",
            400,
            token=OPERATOR,
            body=b'{"q": {"$gt": ""}}',
        ),
        admin_case(
            "admin-bulk-replay-deep-json",
            "POST",
            "/api/v1/replay",
            400,
            token=OPERATOR,
            body=b"[" * 100_000 + b"]" * 100_000,
        ),
        admin_case(
            "admin-bulk-replay-huge-body",
            "POST",
            "/api/v1/replay",
            413,
            token=OPERATOR,
            body=b'{"q": "' + b"a" * (300 * 1024) + b'"}',
        ),
        admin_case(
            "admin-bulk-replay-invalid-utf8",
            "POST",
            "/api/v1/replay",
            400,
            token=OPERATOR,
            body=b'{"q": "\xff"}',
        ),
        admin_case(
            "admin-bulk-replay-duplicate-keys",
            "POST",
            "/api/v1/replay",
            400,
            token=OPERATOR,
            body=b'{"state": "dead", "state": "completed"}',
        ),
        admin_case(
            "admin-abandon-unknown-id",
            "POST",
            f"{apps}/nope/abandon",
            404,
            token=ADMIN,
            body=b'{"reason": "r"}',
        ),
        admin_case("admin-replay-unknown-id", "POST", f"{apps}/nope/replay", 404, token=OPERATOR),
        admin_case("admin-delete-applications", "DELETE", apps, 405, token=ADMIN),
        admin_case("admin-put-application", "PUT", f"{apps}/x", 405, token=ADMIN, body=b"{}"),
        admin_case("admin-get-replay", "GET", "/api/v1/replay", 405, token=ADMIN),
        admin_case("admin-get-abandon", "GET", f"{apps}/x/abandon", 405, token=ADMIN),
        admin_case("admin-patch-held", "PATCH", f"{held}/1", 405, token=ADMIN, body=b"{}"),
        admin_case("admin-unknown-endpoint", "GET", "/api/v1/users", 404, token=ADMIN),
        admin_case("admin-unknown-version", "GET", "/api/v0/applications", 404, token=ADMIN),
        admin_case("admin-trailing-slash", "GET", f"{apps}/", 404, token=ADMIN),
        admin_case("admin-held-id-letters", "GET", f"{held}/abc", 404),
        admin_case("admin-held-id-negative", "GET", f"{held}/-1", 404),
        admin_case("admin-held-id-overflow", "GET", f"{held}/" + "9" * 30, 404),
        admin_case("admin-held-id-unicode-digits", "GET", f"{held}/%D9%A5", 404),
        admin_case("admin-held-id-unknown", "GET", f"{held}/424242", 404),
        admin_case("admin-held-keep-unknown", "POST", f"{held}/424242/keep", 404, token=OPERATOR),
        admin_case("admin-held-close-unknown", "POST", f"{held}/424242/close", 404, token=ADMIN),
        admin_case("admin-held-close-letters", "POST", f"{held}/x/close", 404, token=ADMIN),
        admin_case("admin-held-bad-state", "GET", f"{held}?state=bogus", 400),
        admin_case("admin-held-unknown-param", "GET", f"{held}?sort=payload", 400),
        admin_case("admin-held-limit-zero", "GET", f"{held}?limit=0", 400),
        admin_case("admin-held-offset-negative", "GET", f"{held}?offset=-1", 400),
        admin_case("admin-held-source-long", "GET", f"{held}?source=" + "s" * 1000, 400),
    ]
    for value in (
        "0",
        "-1",
        "501",
        "abc",
        "1e3",
        "%205",
        "%2B5",
        "%D9%A5",
        "99999999999999999999",
        "",
        "1.5",
    ):
        cases.append(admin_case(f"admin-limit-{value or 'empty'}", "GET", f"{apps}?limit={value}", 400))
    for value in ("-1", "1000000001", "x", "1e9", "%00"):
        cases.append(admin_case(f"admin-offset-{value}", "GET", f"{apps}?offset={value}", 400))
    cases += [
        admin_case("admin-limit-twice", "GET", f"{apps}?limit=1&limit=2", 400),
        admin_case("admin-bad-state", "GET", f"{apps}?state=bogus", 400),
        admin_case("admin-state-twice", "GET", f"{apps}?state=dead&state=completed", 400),
        admin_case("admin-q-too-long", "GET", f"{apps}?q=" + "q" * 201, 400),
        admin_case("admin-ids-too-many", "GET", f"{apps}?ids=" + ",".join(str(i) for i in range(1001)), 400),
        admin_case(
            "admin-expect-unknown", "POST", "/api/v1/replay", 417, token=OPERATOR, headers=[("Expect", "x")]
        ),
        admin_case("admin-get-unknown-id", "GET", f"{apps}/does-not-exist", 404),
        admin_case("admin-get-sql-id", "GET", f"{apps}/x'%20OR%20'1'='1", 404),
        admin_case("admin-get-traversal-id", "GET", f"{apps}/..%2F..%2Fetc%2Fpasswd", 404),
        admin_case("admin-get-nul-id", "GET", f"{apps}/a%00b", 404),
        admin_case("admin-get-long-id", "GET", f"{apps}/" + "i" * 5000, 404),
        admin_case("admin-abandon-bad-json", "POST", f"{apps}/x/abandon", (400, 404), token=ADMIN, body=b"{"),
    ]
    return cases


def probe_cases() -> list[Case]:
    cases = []
    for path in ("/healthz", "/readyz", "/metrics"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            cases.append(Case(f"probe-{method.lower()}{path}", request(method, path, body=b"x"), 405))
        cases.append(Case(f"probe-query{path}", request("GET", path + "?name[]=x&%ff=%00"), 200))
        cases.append(Case(f"probe-head{path}", request("HEAD", path), 200))
        cases.append(Case(f"probe-body-on-get{path}", request("GET", path, body=b"x" * 1000), 200))
    cases.append(Case("probe-expect-unknown", request("GET", "/healthz", [("Expect", "x")]), 417))
    cases.append(Case("probe-unknown-path", request("GET", "/console"), 404))
    cases.append(Case("probe-favicon", request("GET", "/favicon.ico"), 404))
    cases.append(Case("probe-env-file", request("GET", "/../../.env"), 404))
    return cases


CASES = (
    multipart_cases()
    + content_type_cases()
    + urlencoded_cases()
    + json_cases()
    + framing_cases()
    + path_cases()
    + auth_cases()
    + admin_cases()
    + probe_cases()
)


# ------------------------------------------------------------------------------------------------ the hub


class BuggySource(Source[ConnectorConfig]):
    """Serves ``POST /intake/<name>/crash``, which fails the way a bug does (not a refusal)."""

    kind = "test-buggy"
    manifest = Manifest(name="buggy", version="1")

    def routes(self, intake: IntakeFunc) -> list[WebhookRoute]:
        async def crash(request: web.Request) -> web.StreamResponse:
            await request.content.read()
            raise KeyError("a bug in a source")

        return [WebhookRoute("POST", "crash", crash)]


class BuggyPlugin:
    @hookimpl
    def aktenhub_connector_types(self) -> list[type[Source]]:
        return [BuggySource]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningHub]:
    """One hub for every case: FormCycle (form bodies), FormCycle (JSON bodies), admin tokens."""
    tmp = tmp_path_factory.mktemp("hostile")
    limits = {"max_fields": 200, "max_field_size": 64 * 1024, "max_form_size": 256 * 1024, "max_files": 20}
    connectors = {
        "formcycle": {
            "type": "formcycle",
            "token": "${FORMCYCLE_TOKEN}",
            "id_field": "vorgang_id",
            "applicant_fields": {"family_name": "nachname"},
            **limits,
        },
        "fcjson": {
            "type": "formcycle",
            "token": "${FORMCYCLE_TOKEN}",
            "id_field": "vorgang_id",
            "body": "json",
            "max_json_size": MAX_BODY // 4,
            "applicant_fields": {"family_name": "nachname"},
            **limits,
        },
        "rec": {"type": "test-recording"},
        "buggy": {"type": "test-buggy"},
    }
    routes = [
        {"name": "fc", "from": "formcycle", "when": {"service": "jagdschein"}, "to": ["rec"]},
        {"name": "fcjson", "from": "fcjson", "when": {"service": "jagdschein"}, "to": ["rec"]},
        {"name": "buggy", "from": "buggy", "to": ["rec"]},
    ]
    settings = base_settings(tmp, connectors, routes)
    settings["server"] = {
        "listen": "127.0.0.1:0",
        "max_body": MAX_BODY,
        "max_header": MAX_HEADER,
        "body_timeout": 5,
        "admin_tokens": [
            {"name": "dash", "token": "${VIEWER}", "role": "viewer"},
            {"name": "ops", "token": "${OPERATOR}", "role": "operator"},
            {"name": "chief", "token": "${ADMIN}", "role": "admin"},
        ],
    }
    hub = await start_hub(settings, extra_plugins=(fakes, BuggyPlugin()), env=ENV)
    yield hub
    await stop_hub(hub)


def left_of(hub: RunningHub) -> tuple[set[Path], set[str]]:
    """Every file under the blob store and the journal's directory (temporary ones included), and every
    blob stored: small ones are rows of the store's pack, whose database files are always there."""
    roots = {hub.hub.blobs.root, Path(str(hub.hub.config.hub.store).removeprefix("sqlite:///")).parent}
    files = {
        p
        for root in roots
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(("journal.db", PACK_FILE)) and p.name != LAYOUT_MARKER
    }
    return files, stored_blobs(hub.hub.blobs)


async def application_ids(hub: RunningHub) -> set[str]:
    return {a.id for a in await hub.journal.list_applications(ApplicationFilter(), limit=100_000)}


async def exchange(hub: RunningHub, raw: bytes, answers: int = 1) -> tuple[list[Answer], bytes]:
    """Send `raw` over a fresh connection; read until `answers` final answers (or the hub closes)."""
    return await exchange_all(hub.url, raw, finals=answers)


async def submit_valid(hub: RunningHub) -> None:
    """A valid submission is still taken in."""
    body = multipart(base_fields(), file_part("anlage", b"antrag.pdf"))
    answers, _ = await exchange(hub, request("POST", INTAKE, intake_head(), body))
    assert [a.status for a in answers] == [202], answers


def assert_clear_error(answer: Answer) -> None:
    assert answer.headers.get("content-type", "").startswith("application/json"), (
        answer.headers,
        answer.body,
    )
    document = answer.json()
    assert isinstance(document, dict) and isinstance(document.get("error"), str), document
    assert len(document["error"]) > 10, document
    assert "Traceback" not in document["error"], document


def assert_logs_clean(records: list[logging.LogRecord]) -> None:
    for record in records:
        if record.levelno < logging.INFO:
            continue
        text = record.getMessage()
        assert SURNAME not in text, text
        assert TOKEN not in text and "hostile-3" not in text, text
        assert record.exc_info is None, f"traceback logged for a client error: {text}"
        assert record.levelno < logging.ERROR, f"ERROR logged for a client error: {text}"


async def assert_safe_filenames(hub: RunningHub, app_id: str) -> None:
    document = await hub.journal.get_application(app_id)
    assert document is not None
    for attachment in document.attachments:
        name = attachment.name
        assert "/" not in name and "\\" not in name and not name.startswith("."), name
        assert name.isprintable() and "\u202e" not in name and len(name) <= 255, name


# ------------------------------------------------------------------------------------------------- tests


@pytest.mark.asyncio(loop_scope="module")
async def test_at_least_150_cases() -> None:
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_hostile_request(running: RunningHub, case: Case, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    before_apps, before_left = await application_ids(running), left_of(running)

    answers, received = await exchange(running, case.raw)

    assert answers, f"no answer at all: {received[:300]!r}"
    interim = [a for a in answers if 100 <= a.status < 200]
    final = [a for a in answers if a.status >= 200]
    if case.extra.get("no_continue"):
        assert not interim, "100 Continue promised for a request that is refused anyway"
    assert final, answers
    answer = final[0]
    expected = case.status if isinstance(case.status, tuple) else (case.status,)
    assert answer.status in expected, (answer.status, answer.body[:500])
    assert b"Traceback" not in received
    after_apps = await application_ids(running)
    if answer.status >= 400:
        assert_clear_error(answer)
        assert after_apps == before_apps, "a refused request stored an application"
        assert left_of(running) == before_left, "a refused request left a file or a blob behind"
    elif case.accepted:
        assert answer.status == 202, answer
        added = after_apps - before_apps
        assert len(added) == 1 and answer.json()["application_id"] in added, answer
        if case.check == "safe-filenames":
            await assert_safe_filenames(running, added.pop())
    elif case.raw.startswith(b"HEAD"):
        assert after_apps == before_apps
    else:
        assert after_apps == before_apps, "a probe stored an application"
        assert answer.headers.get("content-type", "").split(";")[0] in ("application/json", "text/plain")

    await submit_valid(running)
    assert_logs_clean(caplog.records)


async def test_pipelined_requests_are_answered_in_order(running: RunningHub) -> None:
    body = multipart(base_fields())
    first = request("POST", INTAKE, intake_head(), body).replace(b"Connection: close\r\n", b"")
    second = request("GET", "/healthz")
    answers, _ = await exchange(running, first + second, answers=2)
    assert [a.status for a in answers] == [202, 200]


async def test_refusal_in_a_pipeline_does_not_smuggle_the_next_request(running: RunningHub) -> None:
    before = await application_ids(running)
    smuggled = request("POST", INTAKE, intake_head(), multipart(base_fields()))
    first = request("POST", INTAKE, [("Content-Type", f"multipart/form-data; boundary={B}")], b"x").replace(
        b"Connection: close\r\n", b""
    )
    answers, _ = await exchange(running, first + smuggled, answers=2)
    assert [a.status for a in answers][:1] == [401]
    assert len(answers) <= 2
    assert len(await application_ids(running)) - len(before) == len(answers) - 1


async def test_viewer_cannot_find_personal_data_by_search(running: RunningHub) -> None:
    await submit_valid(running)
    for who, expect_rows in ((VIEWER, False), (OPERATOR, True)):
        answers, _ = await exchange(
            running, request("GET", f"/api/v1/applications?q={SURNAME}", [("Authorization", who)])
        )
        assert answers[0].status == 200
        rows = answers[0].json()["applications"]
        assert bool(rows) is expect_rows, who
        if who == VIEWER:
            assert SURNAME.encode() not in answers[0].body


async def test_a_bug_is_a_json_500_without_traceback_and_the_hub_keeps_serving(
    running: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    before = await application_ids(running), left_of(running)
    answers, received = await exchange(running, request("POST", "/intake/buggy/crash", body=b"x" * 1000))
    assert [a.status for a in answers] == [500]
    assert answers[0].json() == {"error": "internal error: the request was not processed"}
    assert b"Traceback" not in received and b"KeyError" not in received
    # The hub's own fault is the operator's alarm: logged at ERROR, with its traceback.
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
    assert (await application_ids(running), left_of(running)) == before
    await submit_valid(running)


async def test_expect_continue_on_a_source_route_is_promised_and_answered(running: RunningHub) -> None:
    head = request("POST", "/intake/buggy/crash", [("Expect", "100-continue")], b"x" * 10)
    answers, _ = await exchange(running, head)
    assert [a.status for a in answers] == [100, 500]
