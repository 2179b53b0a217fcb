"""Hostile requests against the ZBP mailbox simulator, sent as raw bytes.

Broken or tampered envelopes, forged author tokens (alg ``none``, HS512 keyed with the public
certificate, expired), bad credentials and broken framing: each is a 4xx with ``{"status", "error"}``
naming the problem, never a 500 or a hang; nothing lands in a mailbox, and the simulator then takes
a valid message.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from hub_zbp.envelope import Envelope, ZbpMessage, payload_json, seal, sign_content
from hub_zbp.keys import GeneratedAuthor
from zbp_helpers import MAILBOX, SIGNER, StartZbp, Zbp

from hub.testing.hostile import Case, basic, exchange, nested_json, request

MESSAGES = "/api/v1/messages"
STATUS = "/api/v1/status"
USER, PASSWORD = "aktenhub", "zbp-secret-1"
AUTH = ("Authorization", basic(USER, PASSWORD))
JSON = ("Content-Type", "application/json")
ROLES = ["THIRD_PARTY"]


@dataclass(frozen=True)
class Authors:
    """The keys a case may sign with: the sender's, a stranger's, one whose certificate expired."""

    own: GeneratedAuthor
    other: GeneratedAuthor
    expired: GeneratedAuthor


def message(**changes: Any) -> ZbpMessage:
    values: dict[str, Any] = {
        "stork_qaa_level": 3,
        "mailboxUuid": MAILBOX,
        "sender": "Rhein-Sieg-Kreis",
        "title": "Eingangsbestätigung",
        "content": "Ihr Antrag ist eingegangen.",
        "service": "Jagdschein",
        "applicationId": "6f1c2a9e-3b1d-5c7e-9a2b-0d4e8f6a1b2c",
        "reference": "32.3-2026-00001",
    }
    return ZbpMessage(**{**values, **changes})


def envelope(a: Authors, **changes: Any) -> dict[str, Any]:
    """A valid sealed message, with fields replaced."""
    return {**seal(message(), a.own.author(), SIGNER, ROLES).model_dump(), **changes}


def signed_content(a: Authors, content: str) -> dict[str, Any]:
    """Arbitrary content, correctly signed: only the content itself is wrong."""
    author = a.own.author()
    return Envelope(
        content=content,
        sha512sum=sign_content(content, author.key),
        authorToken=seal(message(), author, SIGNER, ROLES).authorToken,
        authorCertificate=author.certificate_pem,
    ).model_dump()


def token(a: Authors, claims: dict[str, Any] | None = None, **kw: Any) -> str:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    base = {"iat": now, "exp": now + 300, "signer": SIGNER, "roles": ROLES}
    kw.setdefault("key", a.own.author().key)
    kw.setdefault("algorithm", "RS512")
    return jwt.encode({**base, **(claims or {})}, **kw)


def forged_token(algorithm: str, claims: dict[str, Any], secret: bytes = b"") -> str:
    """A JWT written by hand, as an attacker does: ``none`` unsigned, ``HS512`` keyed with `secret`."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(dt.datetime.now(dt.UTC).timestamp())
    body = {"iat": now, "exp": now + 300, "signer": SIGNER, "roles": ROLES, **claims}
    signing_input = (
        f"{part(json.dumps({'alg': algorithm, 'typ': 'JWT'}).encode())}.{part(json.dumps(body).encode())}"
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha512).digest() if secret else b""
    return f"{signing_input}.{part(signature)}"


def lone_surrogate(a: Authors) -> bytes:
    """An envelope whose content string holds an escaped lone surrogate (valid JSON, no Unicode text)."""
    good = json.dumps(envelope(a))
    return post(good.replace('"content": "{', '"content": "\\ud800{', 1).encode())


def post(body: bytes | dict[str, Any], *headers: tuple[str, str], path: str = MESSAGES) -> bytes:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return request("POST", path, [AUTH, JSON, *headers], raw)


@dataclass(frozen=True)
class Hostile:
    """A case whose request is built with the test's keys."""

    id: str
    build: Callable[[Authors], bytes]
    status: int | tuple[int, ...]


def auth_cases() -> list[Hostile]:
    def with_auth(value: str | bytes) -> Callable[[Authors], bytes]:
        return lambda a: request(
            "POST", MESSAGES, [("Authorization", value), JSON], json.dumps(envelope(a)).encode()
        )

    return [
        Hostile(
            "auth-missing", lambda a: request("POST", MESSAGES, [JSON], json.dumps(envelope(a)).encode()), 401
        ),
        Hostile("auth-bad-base64", with_auth("Basic !!not*base64!!"), 401),
        Hostile("auth-no-colon", with_auth("Basic " + base64.b64encode(USER.encode()).decode()), 401),
        Hostile("auth-empty-user", with_auth(basic("", PASSWORD)), 401),
        Hostile("auth-non-utf8-user", with_auth(basic(b"\xff\xfe", PASSWORD)), 401),
        Hostile("auth-wrong-password", with_auth(basic(USER, "nope")), 401),
        Hostile("auth-bearer-instead", with_auth("Bearer " + PASSWORD), 401),
        Hostile("auth-raw-latin1-header", with_auth(b"Basic \xe4\xf6\xfc"), 401),
        Hostile("auth-scheme-only", with_auth("Basic"), 401),
    ]


def http_cases() -> list[Hostile]:
    return [
        Hostile("method-get-messages", lambda a: request("GET", MESSAGES, [AUTH]), 405),
        Hostile("method-put-messages", lambda a: request("PUT", MESSAGES, [AUTH, JSON], b"{}"), 405),
        Hostile("method-delete-status", lambda a: request("DELETE", STATUS, [AUTH]), 405),
        Hostile("path-unknown", lambda a: request("POST", "/api/v2/messages", [AUTH, JSON], b"{}"), 404),
        Hostile("path-traversal", lambda a: request("GET", "/api/v1/../../etc/passwd", [AUTH]), 404),
        Hostile(
            "ctype-text",
            lambda a: request(
                "POST", MESSAGES, [AUTH, ("Content-Type", "text/plain")], json.dumps(envelope(a)).encode()
            ),
            415,
        ),
        Hostile(
            "ctype-missing",
            lambda a: request("POST", MESSAGES, [AUTH], json.dumps(envelope(a)).encode()),
            415,
        ),
        Hostile(
            "ctype-form",
            lambda a: request(
                "POST", MESSAGES, [AUTH, ("Content-Type", "application/x-www-form-urlencoded")], b"content=x"
            ),
            415,
        ),
        Hostile(
            "frame-bad-chunk",
            lambda a: request("POST", MESSAGES, [AUTH, JSON, ("Transfer-Encoding", "chunked")], b"zz\r\n"),
            400,
        ),
        Hostile(
            "frame-huge-header",
            lambda a: request("POST", MESSAGES, [AUTH, JSON, ("X-Big", "a" * 200_000)], b"{}"),
            (400, 431),
        ),
    ]


def json_cases() -> list[Hostile]:
    return [
        Hostile("json-truncated", lambda a: post(b'{"content": "'), 400),
        Hostile("json-deep-nesting", lambda a: post(nested_json(100_000)), 400),
        Hostile("json-not-utf8", lambda a: post(b'{"content": "\xff\xfe"}'), 400),
        Hostile("json-array", lambda a: post(b"[]"), 400),
        Hostile("json-empty", lambda a: post(b""), 400),
        Hostile("json-nan", lambda a: post(b'{"content": NaN}'), 400),
        Hostile("json-huge", lambda a: post(b'{"content": "' + b"a" * (2 * 1024**2) + b'"}'), 413),
        Hostile(
            "json-duplicate-keys",
            lambda a: post(json.dumps(envelope(a))[:-1].encode() + b', "content": "{}"}'),
            (400, 401),
        ),
    ]


def envelope_cases() -> list[Hostile]:
    def without(name: str) -> Callable[[Authors], bytes]:
        return lambda a: post({k: v for k, v in envelope(a).items() if k != name})

    def changed_content(a: Authors) -> bytes:
        good = envelope(a)
        return post({**good, "content": good["content"].replace("eingegangen", "abgelehnt")})

    return [
        Hostile("env-missing-content", without("content"), 400),
        Hostile("env-missing-signature", without("sha512sum"), 400),
        Hostile("env-missing-token", without("authorToken"), 400),
        Hostile("env-missing-certificate", without("authorCertificate"), 400),
        Hostile("env-extra-field", lambda a: post(envelope(a, extra="x")), 400),
        Hostile("env-content-object", lambda a: post(envelope(a, content={"title": "x"})), 400),
        Hostile("env-content-changed", changed_content, 401),
        Hostile("env-signature-not-base64", lambda a: post(envelope(a, sha512sum="***")), 400),
        Hostile("env-signature-empty", lambda a: post(envelope(a, sha512sum="")), (400, 401)),
        Hostile(
            "env-signature-other-key",
            lambda a: post(
                envelope(a, sha512sum=sign_content(payload_json(message()), a.other.author().key))
            ),
            401,
        ),
        Hostile(
            "env-certificate-garbage",
            lambda a: post(
                envelope(
                    a, authorCertificate="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
                )
            ),
            400,
        ),
        Hostile(
            "env-certificate-other",
            lambda a: post(envelope(a, authorCertificate=a.other.certificate_pem)),
            401,
        ),
        Hostile(
            "env-certificate-expired",
            lambda a: post(seal(message(), a.expired.author(), SIGNER, ROLES).model_dump()),
            401,
        ),
        Hostile("content-not-json", lambda a: post(signed_content(a, "not json")), 400),
        Hostile("content-array", lambda a: post(signed_content(a, "[]")), 400),
        Hostile(
            "content-deep-nesting", lambda a: post(signed_content(a, nested_json(100_000).decode())), 400
        ),
        Hostile("content-lone-surrogate", lone_surrogate, 400),
        Hostile("content-nan", lambda a: post(signed_content(a, '{"stork_qaa_level": NaN}')), (400, 422)),
        Hostile(
            "content-missing-mailbox",
            lambda a: post(
                signed_content(
                    a,
                    json.dumps(
                        {k: v for k, v in json.loads(payload_json(message())).items() if k != "mailboxUuid"}
                    ),
                )
            ),
            422,
        ),
        Hostile(
            "content-status-to-messages",
            lambda a: post(signed_content(a, '{"applicationId": "x", "status": "RECEIVED"}')),
            422,
        ),
        Hostile("status-without-mailbox-header", lambda a: post(envelope(a), path=STATUS), (400, 422)),
    ]


def token_cases() -> list[Hostile]:
    def claims_without(name: str) -> Callable[[Authors], bytes]:
        def build(a: Authors) -> bytes:
            now = int(dt.datetime.now(dt.UTC).timestamp())
            claims = {"iat": now, "exp": now + 300, "signer": SIGNER, "roles": ROLES}
            del claims[name]
            return post(envelope(a, authorToken=jwt.encode(claims, a.own.author().key, algorithm="RS512")))

        return build

    def hours_ago(hours: int) -> int:
        return int((dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)).timestamp())

    return [
        Hostile("token-alg-none", lambda a: post(envelope(a, authorToken=forged_token("none", {}))), 401),
        Hostile(
            "token-hs512-with-certificate",
            lambda a: post(
                envelope(a, authorToken=forged_token("HS512", {}, a.own.certificate_pem.encode()))
            ),
            401,
        ),
        Hostile("token-rs256", lambda a: post(envelope(a, authorToken=token(a, algorithm="RS256"))), 401),
        Hostile(
            "token-other-key",
            lambda a: post(envelope(a, authorToken=token(a, key=a.other.author().key))),
            401,
        ),
        Hostile(
            "token-expired",
            lambda a: post(envelope(a, authorToken=token(a, {"iat": hours_ago(2), "exp": hours_ago(1)}))),
            401,
        ),
        Hostile(
            "token-from-future",
            lambda a: post(
                envelope(a, authorToken=token(a, {"iat": hours_ago(-2), "exp": hours_ago(-2) + 60}))
            ),
            401,
        ),
        Hostile(
            "token-lives-too-long",
            lambda a: post(envelope(a, authorToken=token(a, {"exp": hours_ago(-48)}))),
            401,
        ),
        Hostile(
            "token-huge-iat",
            lambda a: post(envelope(a, authorToken=token(a, {"iat": 10**30, "exp": 10**30 + 60}))),
            401,
        ),
        Hostile("token-float-iat", lambda a: post(envelope(a, authorToken=token(a, {"iat": 1e300}))), 401),
        Hostile("token-no-signer", claims_without("signer"), 401),
        Hostile("token-no-roles", claims_without("roles"), 401),
        Hostile("token-no-exp", claims_without("exp"), 401),
        Hostile(
            "token-wrong-role", lambda a: post(envelope(a, authorToken=token(a, {"roles": ["READER"]}))), 403
        ),
        Hostile(
            "token-signer-not-cn", lambda a: post(envelope(a, authorToken=token(a, {"signer": "Fremd"}))), 401
        ),
        Hostile("token-garbage", lambda a: post(envelope(a, authorToken="a.b.c")), 401),
        Hostile("token-header-not-object", lambda a: post(envelope(a, authorToken="WzFd.e30.")), 401),
        Hostile("token-not-a-string", lambda a: post(envelope(a, authorToken=42)), 400),
    ]


CASES = [*auth_cases(), *http_cases(), *json_cases(), *envelope_cases(), *token_cases()]


@pytest.fixture(scope="module")
def authors() -> Authors:
    from hub_zbp.keys import generate_author

    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    return Authors(
        own=generate_author(SIGNER),
        other=generate_author("Fremder Absender"),
        expired=generate_author(SIGNER, valid_from=start, valid_days=29),
    )


def test_enough_cases() -> None:
    assert len(CASES) >= 20 and len({c.id for c in CASES}) == len(CASES)


async def valid_message(zbp: Zbp, a: Authors) -> int:
    answer = await exchange(zbp.url, post(envelope(a)))
    assert answer is not None
    return answer.status


@pytest.mark.parametrize("hostile", CASES, ids=[c.id for c in CASES])
async def test_hostile_request(start_zbp: StartZbp, authors: Authors, hostile: Hostile) -> None:
    zbp = await start_zbp(username=USER, password=PASSWORD, max_body=1024**2)
    case = Case(hostile.id, hostile.build(authors), hostile.status)
    answer = await exchange(zbp.url, case.raw)
    assert answer is not None, "the simulator closed the connection without an answer"
    assert case.expects(answer.status), (answer.status, answer.body[:500])
    if not case.id.startswith("frame-"):
        assert answer.headers.get("content-type", "").startswith("application/json"), answer
        body = answer.json()
        assert body["status"] == answer.status and body["error"], body
        assert "Traceback" not in body["error"], body
    assert zbp.state.items == []
    assert await valid_message(zbp, authors) == 201
    assert len(zbp.state.items) == 1


async def test_lower_case_basic_scheme_is_accepted(start_zbp: StartZbp, authors: Authors) -> None:
    """RFC 7617: the scheme name is case-insensitive (``basic``), as every real server takes it."""
    zbp = await start_zbp(username=USER, password=PASSWORD)
    lower = ("Authorization", "basic " + AUTH[1].split(" ", 1)[1])
    answer = await exchange(
        zbp.url, request("POST", MESSAGES, [lower, JSON], json.dumps(envelope(authors)).encode())
    )
    assert answer is not None and answer.status == 201, answer
    assert len(zbp.state.items) == 1
