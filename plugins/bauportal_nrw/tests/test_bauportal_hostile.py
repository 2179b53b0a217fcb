"""Hostile requests against the Bauportal.NRW portal simulator, sent as raw bytes.

Broken JSON, descriptions no Bauantrag can be built from, message types that are no XML names, huge
bodies, wrong methods and an unreachable XTA server: each is a 4xx (or a 502 for the XTA server) with
``{"error": ...}``, never a 500 or a hang; nothing reaches the authority's XTA mailbox, and the portal
then submits a valid Bauantrag.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from bauportal_helpers import StartXta, Xta
from hub_bauportal_nrw.portal import make_app

from hub.testing.hostile import Answer, Case, exchange, nested_json, request

JSON = ("Content-Type", "application/json")
XML = ("Content-Type", "application/xml")
READER = "vbe:053820004"


def submit(body: bytes, *headers: tuple[str, str]) -> bytes:
    return request("POST", "/sim/bauantrag", [*(headers or (JSON,))], body)


def withdraw(body: bytes) -> bytes:
    return request("POST", "/sim/ruecknahme", [JSON], body)


def raw(query: str, body: bytes = b"<x/>") -> bytes:
    return request("POST", "/sim/nachricht" + query, [XML], body)


CASES = [
    Case("method-get-bauantrag", request("GET", "/sim/bauantrag"), 405),
    Case("method-put-answers", request("PUT", "/sim/answers", [JSON], b"{}"), 405),
    Case("path-unknown", request("POST", "/sim/bauvoranfrage", [JSON], b"{}"), 404),
    Case("path-traversal", request("GET", "/sim/../../etc/passwd"), 404),
    Case("json-truncated", submit(b'{"bauherr": '), 400),
    Case("json-deep-nesting", submit(nested_json(100_000)), 400),
    Case("json-not-utf8", submit(b'{"bezeichnung": "\xff\xfe"}'), 400),
    Case("json-nan", submit(b'{"invalid": NaN}'), (400, 422)),
    Case("json-array", submit(b"[]"), 422),
    Case("json-unknown-key", submit(b'{"bauherr": {}, "admin": true}'), 422),
    Case("json-huge", submit(b'{"bezeichnung": "' + b"a" * (2 * 1024**2) + b'"}'), 413),
    Case("ctype-text", submit(b"{}", ("Content-Type", "text/plain")), 415),
    Case("ctype-form", submit(b"bauherr=x", ("Content-Type", "application/x-www-form-urlencoded")), 415),
    Case("bauherr-not-object", submit(b'{"bauherr": "Max"}'), 422),
    Case("bauherr-nested", submit(b'{"bauherr": {"vorname": {"$ne": 1}}}'), 422),
    Case("bauherr-nul", submit(b'{"bauherr": {"vorname": "Max\\u0000"}}'), 422),
    Case("bauherr-control-char", submit(b'{"bauherr": {"familienname": "A\\u0007B"}}'), 422),
    Case("flurstueck-unknown-key", submit(b'{"flurstueck": {"gemarkung": "Siegburg", "x": "1"}}'), 422),
    Case("flurstueck-missing-zaehler", submit(b'{"flurstueck": {"gemarkung": "Siegburg"}}'), 422),
    Case("invalid-not-bool", submit(b'{"invalid": "maybe"}'), 422),
    Case("withdraw-bad-uuid", withdraw(b'{"nachricht_uuid": "../../etc/passwd"}'), 422),
    Case("withdraw-deep-nesting", withdraw(nested_json(100_000)), 400),
    Case("withdraw-unknown-key", withdraw(b'{"nachricht": "x"}'), 422),
    Case("raw-no-type", raw(""), 422),
    Case("raw-type-markup", raw("?type=%3Cscript%3E"), 422),
    Case("raw-type-newline", raw("?type=a%0Ab"), 422),
    Case("raw-type-huge", raw("?type=" + "a" * 5000), 422),
    Case("raw-schema-not-uri", raw("?type=baugenehmigung.antrag.0200&schema=kein%20uri"), 422),
    Case("raw-empty-body", raw("?type=baugenehmigung.antrag.0200", b""), 422),
    Case(
        "raw-huge-body", raw("?type=baugenehmigung.antrag.0200", b"<x>" + b"a" * (2 * 1024**2) + b"</x>"), 413
    ),
    Case(
        "frame-bad-chunk",
        request("POST", "/sim/bauantrag", [JSON, ("Transfer-Encoding", "chunked")], b"zz\r\n"),
        400,
    ),
    Case("frame-huge-header", request("GET", "/sim/answers", [("X-Big", "a" * 200_000)]), (400, 431)),
]

StartPortal = Callable[[str], Awaitable[str]]


@pytest_asyncio.fixture
async def start_portal() -> AsyncIterator[StartPortal]:
    servers: list[TestServer] = []

    async def start(xta_url: str) -> str:
        server = TestServer(make_app(xta_url=xta_url), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        await server.close()


def delivered(xta: Xta) -> int:
    """Messages in the authority's XTA mailbox."""
    return len(xta.state.mailbox(READER))


def assert_clear_error(answer: Answer) -> None:
    assert answer.headers.get("content-type", "").startswith("application/json"), answer
    error = answer.json()["error"]
    assert error and "Traceback" not in error, error


def test_enough_cases() -> None:
    assert len(CASES) >= 20 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_hostile_request(start_xta: StartXta, start_portal: StartPortal, case: Case) -> None:
    xta = await start_xta()
    portal = await start_portal(xta.url)
    answer = await exchange(portal, case.raw)
    assert answer is not None, "the portal closed the connection without an answer"
    assert case.expects(answer.status), (answer.status, answer.body[:500])
    if not case.id.startswith("frame-"):
        assert_clear_error(answer)
    assert delivered(xta) == 0, "a refused request reached the authority's mailbox"
    valid = await exchange(portal, submit(b"{}"))
    assert valid is not None and valid.status == 201, valid
    assert delivered(xta) == 1


async def test_unreachable_xta_server_is_a_502(start_portal: StartPortal) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    portal = await start_portal(f"http://127.0.0.1:{closed}")
    for raw_request in (submit(b"{}"), withdraw(b""), raw("?type=x"), request("GET", "/sim/answers")):
        answer = await exchange(portal, raw_request)
        assert answer is not None and answer.status == 502, answer
        assert_clear_error(answer)
        assert "XTA server" in answer.json()["error"]
