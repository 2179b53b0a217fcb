"""Hostile requests against the enaio simulator's DMS Service and OSRest faces, sent as raw bytes.

Each is answered as enaio's Spring services answer: a 4xx in their JSON error shape (timestamp, status,
error, message, path), or, for a request the HTTP layer cannot even read, a plain 400. Never a 500, never
a hang; nothing is stored (no object, no staged file), and the simulator then serves a valid request.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import pytest
from enaio_helpers import PASSWORD, USER, Enaio, StartEnaio
from hub_enaio.simulator import TRAY

from hub.testing.hostile import Answer, Case, basic, exchange, multipart, nested_json, request

AUTH = ("Authorization", basic(USER, PASSWORD))
B = "enaioB0undary"
FORM = ("Content-Type", f"multipart/form-data; boundary={B}")
JSON = ("Content-Type", "application/json")
DMS = "/api/dms/objects"
OSREST = "/osrest/api/documents"
FOLDER = {"Aktenzeichen": {"value": "32-1"}, "Nachname": {"value": "Groß"}, "Leistung": {"value": "Jagd"}}


def insert_json(**properties: object) -> bytes:
    """A DMS insert of one Personenakte, with extra or replaced properties."""
    props = {"system:objectTypeId": {"value": "Personenakte"}, **FOLDER, **properties}
    return json.dumps({"objects": [{"properties": props}]}).encode()


def document_json(cid: str = "cid_doc1") -> bytes:
    props = {"system:objectTypeId": {"value": "Anlage"}, "system:parentId": {"value": TRAY}}
    return json.dumps({"objects": [{"properties": props, "contentStreams": [{"cid": cid}]}]}).encode()


def data_part(content: bytes, name: str = "data") -> tuple[list[tuple[str, str]], bytes]:
    return [
        ("Content-Disposition", f'form-data; name="{name}"'),
        ("Content-Type", "application/json"),
    ], content


def file_part(name: str = "cid_doc1", content_id: str = "cid_doc1") -> tuple[list[tuple[str, str]], bytes]:
    headers = [
        ("Content-Disposition", f'form-data; name="{name}"; filename="a.pdf"'),
        ("Content-Type", "application/pdf"),
        ("Content-ID", content_id),
    ]
    return headers, b"%PDF-1.4 hostile\n"


def post(target: str, body: bytes, *headers: tuple[str, str], auth: bool = True) -> bytes:
    return request("POST", target, [*([AUTH] if auth else []), *headers], body)


def get(target: str, *headers: tuple[str, str]) -> bytes:
    return request("GET", target, [AUTH, *headers])


def auth_cases() -> list[Case]:
    def with_auth(value: str | bytes) -> bytes:
        return request("GET", "/api/dms/info/native", [("Authorization", value)])

    return [
        Case("auth-missing", request("GET", "/api/dms/info/native"), 401),
        Case("auth-bad-base64", with_auth("Basic !!not*base64!!"), 401),
        Case("auth-no-colon", with_auth("Basic " + basic(USER)[6:-4]), 401),
        Case("auth-empty-user", with_auth(basic("", PASSWORD)), 401),
        Case("auth-non-utf8-user", with_auth(basic(b"\xff\xfe", PASSWORD)), 401),
        Case("auth-non-utf8-password", with_auth(basic(USER, b"\xc3\x28")), 401),
        Case("auth-wrong-password", with_auth(basic(USER, "nope")), 401),
        Case("auth-bearer", with_auth("Bearer " + PASSWORD), 401),
        Case("auth-scheme-only", with_auth("Basic"), 401),
        Case("auth-raw-latin1-header", with_auth(b"Basic \xe4\xf6\xfc"), 401),
        Case(
            "auth-unknown-session",
            request("GET", "/api/dms/info/native", [("Cookie", "JSESSIONID=forged")]),
            401,
        ),
        Case("auth-on-insert", post(DMS, insert_json(), JSON, auth=False), 401),
    ]


def method_cases() -> list[Case]:
    return [
        Case("method-delete-object", request("DELETE", DMS + "/1", [AUTH]), 405),
        Case("method-put-objects", request("PUT", DMS, [AUTH, JSON], insert_json()), 405),
        Case("method-get-insert", get(DMS), 405),
        Case("method-patch-osrest", request("PATCH", OSREST + "/insert/0", [AUTH]), 405),
        Case("path-unknown", get("/api/dms/nothing"), 404),
        Case("path-traversal", get("/api/dms/../../etc/passwd"), 404),
        Case("path-encoded-traversal", get(DMS + "/..%2F..%2Fetc%2Fpasswd/contents/file"), 404),
    ]


def content_type_cases() -> list[Case]:
    return [
        Case("ctype-text", post(DMS, insert_json(), ("Content-Type", "text/plain")), 415),
        Case("ctype-missing", post(DMS, insert_json()), 415),
        Case("ctype-xml", post(DMS, b"<objects/>", ("Content-Type", "application/xml")), 415),
        Case(
            "ctype-form-no-boundary", post(DMS, insert_json(), ("Content-Type", "multipart/form-data")), 400
        ),
        Case("ctype-osrest-json", post(OSREST + "/insert/0", b'{"objectTypeId": "1"}', JSON), 415),
        Case(
            "ctype-urlencoded",
            post(DMS, b"objects=1", ("Content-Type", "application/x-www-form-urlencoded")),
            415,
        ),
    ]


def json_cases() -> list[Case]:
    return [
        Case("json-truncated", post(DMS, b'{"objects": [', JSON), 400),
        Case("json-deep-nesting", post(DMS, nested_json(100_000), JSON), 400),
        Case("json-deep-nesting-search", post(DMS + "/search", nested_json(100_000), JSON), 400),
        Case("json-deep-nesting-osrest", post(OSREST + "/search", nested_json(100_000), JSON), 400),
        Case("json-array", post(DMS, b"[]", JSON), 400),
        Case("json-not-utf8", post(DMS, b'{"objects": "\xff\xfe"}', JSON), 400),
        Case("json-nan", post(DMS, b'{"objects": NaN}', JSON), 400),
        Case("json-huge", post(DMS, b'{"objects": "' + b"a" * (2 * 1024**2) + b'"}', JSON), 413),
        Case("json-unknown-key", post(DMS, insert_json()[:-1] + b', "extra": 1}', JSON), 400),
        Case(
            "json-values-not-objects", post(DMS, b'{"objects": [{"properties": {"Nachname": 1}}]}', JSON), 400
        ),
        Case("json-empty-body", post(DMS, b"", JSON), 400),
    ]


def multipart_cases() -> list[Case]:
    def form(body: bytes, target: str = DMS) -> bytes:
        return post(target, body, FORM)

    huge_header = [("Content-Disposition", 'form-data; name="data"'), ("X-Padding", "a" * 200_000)]
    nested = [
        ("Content-Disposition", 'form-data; name="data"'),
        ("Content-Type", "multipart/mixed; boundary=x"),
    ]
    return [
        Case("mp-no-data-part", form(multipart(B, file_part())), 400),
        Case(
            "mp-duplicate-data", form(multipart(B, data_part(insert_json()), data_part(insert_json()))), 400
        ),
        Case(
            "mp-duplicate-file", form(multipart(B, data_part(document_json()), file_part(), file_part())), 400
        ),
        Case("mp-unterminated", form(multipart(B, data_part(insert_json()), end=False)), 400),
        Case("mp-no-delimiters", form(b"just some bytes, no boundary at all"), 400),
        Case("mp-empty", form(b""), 400),
        Case(
            "mp-part-without-name",
            form(multipart(B, ([("Content-Type", "application/json")], insert_json()))),
            400,
        ),
        Case("mp-huge-part-header", form(multipart(B, (huge_header, insert_json()))), (400, 413)),
        Case("mp-nested", form(multipart(B, (nested, b"--x\r\n\r\nx\r\n--x--\r\n"))), 400),
        Case("mp-data-deep-nesting", form(multipart(B, data_part(nested_json(100_000)))), 400),
        Case("mp-data-not-json", form(multipart(B, data_part(b"<xml/>"))), 400),
        Case("mp-unreferenced-file", form(multipart(B, data_part(insert_json()), file_part())), 400),
        Case(
            "mp-wrong-content-id",
            form(multipart(B, data_part(document_json()), file_part(content_id="x"))),
            400,
        ),
        Case(
            "mp-osrest-two-files",
            form(
                multipart(B, data_part(b'{"objectTypeId": "Anlage"}'), file_part("a"), file_part("b")),
                OSREST + "/insert/0?inusertray=true",
            ),
            400,
        ),
        Case(
            "mp-osrest-unterminated",
            form(multipart(B, data_part(b'{"objectTypeId": "1"}'), end=False), OSREST + "/insert/0"),
            400,
        ),
    ]


def id_cases() -> list[Case]:
    digits = "9" * 5000
    return [
        Case("id-not-numeric", get(DMS + "/abc"), 404),
        Case("id-negative", get(DMS + "/-1"), 404),
        Case("id-overflow", get(DMS + "/99999999999999999999999999"), 404),
        Case("id-too-many-digits", get(f"{DMS}/{digits}"), 404),
        Case("id-superscript-digit", get(DMS + "/%C2%B2"), 404),
        Case("id-arabic-digits", get(DMS + "/%D9%A1%D9%A2"), 404),
        Case("id-content-superscript", get(DMS + "/%C2%B2/contents/file"), 404),
        Case("id-osrest-get-superscript", get(OSREST + "/search/%C2%B2"), 404),
        Case("id-osrest-documentfiles", get("/osrest/api/documentfiles/%C2%B2/1"), 404),
        Case("id-osrest-location-superscript", post(f"{OSREST}/insert/%C2%B2", b"", FORM), 400),
        Case("id-osrest-location-too-many-digits", post(f"{OSREST}/insert/{digits}", b"", FORM), 400),
        Case("id-osrest-location-negative", post(f"{OSREST}/insert/-5", b"", FORM), 400),
        Case(
            "id-parent-superscript", post(DMS, insert_json(**{"system:parentId": {"value": "²"}}), JSON), 422
        ),
        Case(
            "id-parent-too-many-digits",
            post(DMS, insert_json(**{"system:parentId": {"value": digits}}), JSON),
            422,
        ),
        Case(
            "id-parent-traversal", post(DMS, insert_json(**{"system:parentId": {"value": "../1"}}), JSON), 422
        ),
    ]


def query_cases() -> list[Case]:
    search = json.dumps({"query": {"objectTypeId": "Personenakte"}}).encode()
    dms_search = json.dumps({"query": {"statement": "SELECT * FROM Personenakte"}}).encode()
    return [
        Case("query-pagesize-word", post(OSREST + "/search?pagesize=abc", search, JSON), 400),
        Case("query-pagesize-superscript", post(OSREST + "/search?pagesize=%C2%B2", search, JSON), 400),
        Case("query-pagesize-negative", post(OSREST + "/search?pagesize=-1", search, JSON), 400),
        Case("query-page-huge", post(OSREST + "/search?page=" + "9" * 5000, search, JSON), 400),
        # Spring ignores request parameters a handler does not declare: an unknown key changes nothing.
        Case("query-unknown-key", post(DMS + "/search?debug=true&x=%00", dms_search, JSON), 200),
        Case(
            "query-statement-injection",
            post(DMS + "/search", b'{"query": {"statement": "DROP TABLE x"}}', JSON),
            400,
        ),
    ]


def framing_cases() -> list[Case]:
    # Refused by the HTTP layer before any handler: a plain 400, as Tomcat gives its own error page.
    chunked = ("Transfer-Encoding", "chunked")
    return [
        Case(
            "frame-bad-chunk-size", request("POST", DMS, [AUTH, JSON, chunked], b"zz\r\n{}\r\n0\r\n\r\n"), 400
        ),
        Case(
            "frame-length-and-chunked",
            request("POST", DMS, [AUTH, JSON, chunked, ("Content-Length", "2")], b"0\r\n\r\n"),
            400,
        ),
        Case(
            "frame-huge-header",
            request("GET", "/api/dms/info/native", [AUTH, ("X-Big", "a" * 200_000)]),
            (400, 431),
        ),
        Case("frame-bad-length", request("POST", DMS, [AUTH, JSON, ("Content-Length", "-1")], b"{}"), 400),
    ]


CASES = [
    *auth_cases(),
    *method_cases(),
    *content_type_cases(),
    *json_cases(),
    *multipart_cases(),
    *id_cases(),
    *query_cases(),
    *framing_cases(),
]


def stored(enaio: Enaio) -> tuple[int, int, set[Path]]:
    """What the simulator holds: objects, inserts counted, files in its content directory."""
    return len(enaio.state.objects), enaio.state.inserts, set(enaio.state.content_dir.iterdir())


def assert_spring_error(answer: Answer, path: str) -> None:
    """enaio's Spring error body: timestamp, status, error, message, path."""
    assert answer.headers.get("content-type", "").startswith("application/json"), answer
    body = answer.json()
    assert body["status"] == answer.status and body["error"] and body["message"], body
    assert body["path"] == path and body["timestamp"], body
    assert "Traceback" not in body["message"], body


def test_enough_cases() -> None:
    assert len(CASES) >= 20 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_hostile_request(start_enaio: StartEnaio, case: Case) -> None:
    enaio = await start_enaio()
    before = stored(enaio)
    answer = await exchange(enaio.url, case.raw)
    assert answer is not None, "the simulator closed the connection without an answer"
    assert case.expects(answer.status), (answer.status, answer.body[:500])
    if not case.id.startswith("frame-") and answer.status >= 400:
        target = case.raw.split(b" ", 2)[1].decode("latin-1")
        assert_spring_error(answer, unquote(target.split("?")[0]))
    assert stored(enaio) == before
    valid = await exchange(enaio.url, post(DMS, insert_json(), JSON))
    assert valid is not None and valid.status == 200, valid
    assert len(enaio.state.objects) == before[0] + 1
