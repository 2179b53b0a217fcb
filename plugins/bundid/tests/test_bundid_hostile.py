"""Hostile requests against the BundID IdP simulator, sent as raw bytes.

Broken JSON and forms, unknown persons, levels and faults, huge bodies, wrong methods: each is a 4xx
with ``{"error": ...}`` naming the problem, never a 500 or a hang; no response is issued (nothing a
later ``replayed`` fault could hand out), and the simulator then issues a valid response. Values that
reach the SAML XML or the HTML form are escaped, never markup.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_bundid.simulator import IDP, make_app
from lxml import etree

from hub.testing.hostile import Answer, Case, exchange, multipart, nested_json, request
from hub.xml import parse_xml

JSON = ("Content-Type", "application/json")
B = "bundidB0undary"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


def ask(body: bytes, *headers: tuple[str, str]) -> bytes:
    return request("POST", "/sim/response", [*(headers or (JSON,))], body)


def sso(query: str) -> bytes:
    return request("GET", "/sso?" + query)


def sso_form(body: bytes, content_type: str) -> bytes:
    return request("POST", "/sso", [("Content-Type", content_type)], body)


def form_field(name: str, value: bytes) -> tuple[list[tuple[str, str]], bytes]:
    return [("Content-Disposition", f'form-data; name="{name}"')], value


CASES = [
    Case("method-put-sso", request("PUT", "/sso"), 405),
    Case("method-delete-metadata", request("DELETE", "/metadata"), 405),
    Case("method-post-metadata", request("POST", "/metadata", [JSON], b"{}"), 405),
    Case("method-get-response", request("GET", "/sim/response"), 405),
    Case("path-unknown", request("GET", "/idp/profile/SAML2/Redirect/SSO"), 404),
    Case("path-traversal", request("GET", "/sim/../../etc/passwd"), 404),
    Case("json-truncated", ask(b'{"person": '), 400),
    Case("json-deep-nesting", ask(nested_json(30_000)), 400),
    Case("json-deep-object", ask(b'{"a":' * 10_000 + b"1" + b"}" * 10_000), 400),
    Case("json-not-utf8", ask(b'{"person": "\xff\xfe"}'), 400),
    Case("json-nan", ask(b'{"level": NaN}'), (400, 422)),
    Case("json-array", ask(b"[]"), (400, 422)),
    Case("json-unknown-key", ask(b'{"person": "U01", "admin": true}'), 422),
    Case("json-huge", ask(b'{"person": "' + b"U" * 100_000 + b'"}'), 413),
    Case("person-unknown", ask(b'{"person": "U99"}'), 422),
    Case("person-traversal", ask(b'{"person": "../../etc/passwd"}'), 422),
    Case("person-not-a-string", ask(b'{"person": {"$ne": null}}'), 422),
    Case("level-unknown", ask(b'{"level": "99"}'), 422),
    Case("level-huge", ask(b'{"level": ' + b"9" * 1000 + b"}"), (400, 422)),
    Case("level-negative", ask(b'{"level": -1}'), 422),
    Case("fault-unknown", ask(b'{"fault": "nonsense"}'), 422),
    Case("fault-replay-nothing", ask(b'{"fault": "replayed"}'), 422),
    Case("sso-person-unknown", sso("person=U99"), 422),
    Case("sso-person-nul", sso("person=%00"), 422),
    Case("sso-level-word", sso("level=abc"), 422),
    Case("sso-form-no-boundary", sso_form(b"person=U01", "multipart/form-data"), 400),
    Case(
        "sso-form-unterminated",
        sso_form(multipart(B, form_field("person", b"U01"), end=False), f"multipart/form-data; boundary={B}"),
        400,
    ),
    Case(
        "sso-form-not-utf8",
        sso_form(multipart(B, form_field("person", b"\xff\xfe")), f"multipart/form-data; boundary={B}"),
        (400, 422),
    ),
    Case("sso-form-person-unknown", sso_form(b"person=U99", "application/x-www-form-urlencoded"), 422),
    Case("sso-form-huge", sso_form(b"person=" + b"U" * 100_000, "application/x-www-form-urlencoded"), 413),
    Case(
        "frame-bad-chunk",
        request("POST", "/sim/response", [JSON, ("Transfer-Encoding", "chunked")], b"zz\r\n"),
        400,
    ),
    Case("frame-huge-header", request("GET", "/metadata", [("X-Big", "a" * 200_000)]), (400, 431)),
]


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One signing key for the module's simulators (generating RSA keys is the slow part)."""
    return tmp_path_factory.mktemp("bundid-hostile") / "idp-key.pem"


StartIdp = Callable[[], Awaitable[TestServer]]


@pytest_asyncio.fixture
async def start_idp(schema_dir: Path, key_file: Path) -> AsyncIterator[StartIdp]:
    servers: list[TestServer] = []

    async def start() -> TestServer:
        server = TestServer(make_app(reference=str(schema_dir), key_file=str(key_file)), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


def url(server: TestServer) -> str:
    return str(server.make_url("/")).rstrip("/")


def saml(answer: Answer) -> etree._Element:
    return parse_xml(base64.b64decode(answer.json()["response"]), limit=1024**2)


def test_enough_cases() -> None:
    assert len(CASES) >= 20 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_hostile_request(start_idp: StartIdp, case: Case) -> None:
    server = await start_idp()
    idp = server.app[IDP]
    answer = await exchange(url(server), case.raw)
    assert answer is not None, "the simulator closed the connection without an answer"
    assert case.expects(answer.status), (answer.status, answer.body[:500])
    if not case.id.startswith("frame-"):
        assert answer.headers.get("content-type", "").startswith("application/json"), answer
        error = answer.json()["error"]
        assert error and "Traceback" not in error, error
    assert (idp.last_response, idp.last_assertion_id) == (None, None), "a refused request issued a response"
    valid = await exchange(url(server), ask(b'{"person": "U01"}'))
    assert valid is not None and valid.status == 200, valid
    assert saml(valid).findtext(f".//{{{SAML}}}Audience") == idp.sp_entity_id


async def test_values_reach_the_saml_as_text(start_idp: StartIdp) -> None:
    """An audience that tries to close its element and open another stays one Audience's text."""
    server = await start_idp()
    forged = '</saml2:Audience><saml2:Audience>https://evil.example</saml2:Audience><saml2:Audience>x"&'
    answer = await exchange(url(server), ask(json.dumps({"audience": forged}).encode()))
    assert answer is not None and answer.status == 200, answer
    assert [a.text for a in saml(answer).iter(f"{{{SAML}}}Audience")] == [forged]


async def test_relay_state_is_escaped_in_the_form(start_idp: StartIdp) -> None:
    server = await start_idp()
    relay = "'><script>alert(1)</script>"
    answer = await exchange(url(server), sso("person=U01&RelayState=" + quote(relay)))
    assert answer is not None and answer.status == 200, answer
    page = answer.body.decode()
    assert "<script>" not in page and "value='&#x27;&gt;&lt;script&gt;" in page
