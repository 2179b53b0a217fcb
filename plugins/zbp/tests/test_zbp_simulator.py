"""The ZBP simulator is strict: what a real mailbox would refuse, it refuses, with a clear message."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import aiohttp
import jwt
import pytest
from hub_zbp import plugin
from hub_zbp.envelope import (
    Envelope,
    ZbpMessage,
    ZbpStatus,
    ZbpStatusUpdate,
    payload_json,
    seal,
    sign_content,
)
from hub_zbp.keys import GeneratedAuthor
from hub_zbp.notifier import ZbpNotifier
from hub_zbp.simulator import STATE, make_app
from zbp_helpers import MAILBOX, SIGNER, StartZbp

MESSAGES = "/api/v1/messages"
STATUS = "/api/v1/status"
ROLES = ["THIRD_PARTY"]
APP_1 = "6f1c2a9e-3b1d-5c7e-9a2b-0d4e8f6a1b2c"
APP_2 = "0b7d9c4e-2a6f-5e1d-8c3b-7f9a1e2d4c6b"


def message(**changes: Any) -> ZbpMessage:
    values: dict[str, Any] = {
        "stork_qaa_level": 3,
        "mailboxUuid": MAILBOX,
        "sender": "Rhein-Sieg-Kreis",
        "title": "Eingangsbestätigung",
        "content": "Ihr Antrag ist eingegangen. Aktenzeichen: 32.3-2026-00001",
        "service": "Jagdschein",
        "applicationId": APP_1,
        "reference": "32.3-2026-00001",
    }
    return ZbpMessage(**{**values, **changes})


def status_update(**changes: Any) -> ZbpStatusUpdate:
    values: dict[str, Any] = {
        "applicationId": APP_1,
        "status": ZbpStatus.RECEIVED,
        "publicServiceName": {"de": "Jagdschein"},
        "senderName": "Rhein-Sieg-Kreis",
        "createdDate": dt.datetime.now(dt.UTC),
        "statusDetails": {"de": "Ihr Antrag ist eingegangen."},
    }
    return ZbpStatusUpdate(**{**values, **changes})


def sealed(author: GeneratedAuthor, payload: ZbpMessage | ZbpStatusUpdate, **kw: Any) -> dict[str, Any]:
    return seal(payload, author.author(), SIGNER, ROLES, **kw).model_dump()


def with_content(author: GeneratedAuthor, content: str) -> dict[str, Any]:
    """An envelope around arbitrary content, correctly signed."""
    a = author.author()
    return Envelope(
        content=content,
        sha512sum=sign_content(content, a.key),
        authorToken=seal(message(), a, SIGNER, ROLES).authorToken,
        authorCertificate=a.certificate_pem,
    ).model_dump()


def token(author: GeneratedAuthor, claims: dict[str, Any], algorithm: str = "RS512", key: Any = None) -> str:
    return jwt.encode(claims, key if key is not None else author.author().key, algorithm=algorithm)


def now() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp())


async def test_accepts_and_shows_per_mailbox(start_zbp: StartZbp, author: GeneratedAuthor) -> None:
    zbp = await start_zbp()
    status, answer = await zbp.post(MESSAGES, sealed(author, message()))
    assert status == 201 and answer["duplicate"] is False and answer["id"].startswith("msg_")
    status, answer = await zbp.post(STATUS, sealed(author, status_update()), {"X-Mailbox-Uuid": MAILBOX})
    assert status == 201

    status, listing = await zbp.get("/_sim/mailboxes")
    assert listing == {"mailboxes": [{"mailbox": MAILBOX, "messages": 1, "status_updates": 1}]}
    status, box = await zbp.get(f"/_sim/mailboxes/{MAILBOX}")
    assert status == 200
    assert box["messages"][0]["payload"]["reference"] == "32.3-2026-00001"
    assert box["messages"][0]["signer"] == SIGNER and box["messages"][0]["roles"] == ROLES
    assert box["status_updates"][0]["payload"]["status"] == "RECEIVED"
    assert (await zbp.get("/_sim/mailboxes/pk-empty"))[1] == {
        "mailbox": "pk-empty",
        "messages": [],
        "status_updates": [],
    }
    assert (await zbp.get("/api/v1/health"))[0] == 200


async def test_idempotency_key(start_zbp: StartZbp, author: GeneratedAuthor) -> None:
    zbp = await start_zbp()
    key = {"Idempotency-Key": "app_1/received/message"}
    first_status, first = await zbp.post(MESSAGES, sealed(author, message()), key)
    # A retry is signed anew (new token, maybe new timestamps): still the same message.
    again_status, again = await zbp.post(MESSAGES, sealed(author, message(title="neu")), key)
    assert (first_status, again_status) == (201, 200)
    assert again == {"id": first["id"], "duplicate": True}
    assert len(zbp.state.messages(MAILBOX)) == 1
    status, answer = await zbp.post(MESSAGES, sealed(author, message(applicationId=APP_2)), key)
    assert status == 422 and "Idempotency-Key" in answer["error"]
    status, _ = await zbp.post(
        STATUS, sealed(author, status_update()), {**key, "X-Mailbox-Uuid": MAILBOX}
    )  # same key, other kind
    assert status == 422


async def test_refuses_what_is_not_an_envelope(start_zbp: StartZbp, author: GeneratedAuthor) -> None:
    zbp = await start_zbp()
    good = sealed(author, message())
    cases: list[tuple[Any, int, str]] = [
        ([1, 2], 400, "JSON object"),
        ({k: v for k, v in good.items() if k != "authorToken"}, 400, "authorToken"),
        ({**good, "extra": 1}, 400, "extra"),
        ({**good, "content": json.loads(good["content"])}, 400, "JSON string"),
        ({**good, "sha512sum": "***"}, 400, "base64"),
        ({**good, "authorCertificate": "nope"}, 400, "PEM X.509"),
        (with_content(author, "not json"), 400, "not JSON"),
        (with_content(author, "[1]"), 400, "JSON object"),
    ]
    for body, expected, text in cases:
        status, answer = await zbp.post(MESSAGES, body)
        assert (status, text in answer["error"]) == (expected, True), answer
    json_type = {"Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(zbp.url + MESSAGES, data=b"{", headers=json_type) as r,
    ):
        assert r.status == 400
    assert zbp.state.items == []
    assert len((await zbp.get("/_sim/refusals"))[1]["refusals"]) == len(cases) + 1


async def test_refuses_changed_content_and_foreign_signatures(
    start_zbp: StartZbp, author: GeneratedAuthor, other_author: GeneratedAuthor
) -> None:
    zbp = await start_zbp()
    good = sealed(author, message())
    tampered = {**good, "content": good["content"].replace("00001", "00002")}
    status, answer = await zbp.post(MESSAGES, tampered)
    assert status == 401 and "sha512sum does not verify" in answer["error"]

    foreign = sealed(other_author, message())
    # Signed by someone else, presented with our certificate.
    status, answer = await zbp.post(MESSAGES, {**foreign, "authorCertificate": good["authorCertificate"]})
    assert status == 401 and "sha512sum" in answer["error"]
    # Content signature fine, token signed by someone else.
    status, answer = await zbp.post(MESSAGES, {**good, "authorToken": foreign["authorToken"]})
    assert status == 401 and "authorToken does not verify" in answer["error"]
    assert zbp.state.items == []


async def test_refuses_bad_author_tokens(start_zbp: StartZbp, author: GeneratedAuthor) -> None:
    zbp = await start_zbp()
    good = sealed(author, message())
    t = now()
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    cases = [
        (sealed(author, message(), now=past)["authorToken"], "expired"),
        (token(author, {"iat": t, "exp": t + 60, "roles": ROLES}), "'signer'"),
        (token(author, {"iat": t, "exp": t + 60, "signer": SIGNER}), "'roles'"),
        (token(author, {"iat": t, "exp": t + 60, "signer": SIGNER, "roles": []}), "'roles'"),
        (token(author, {"exp": t + 60, "signer": SIGNER, "roles": ROLES}), "'iat'"),
        (token(author, {"iat": t, "signer": SIGNER, "roles": ROLES}), "'exp'"),
        (token(author, {"iat": t, "exp": t + 86400, "signer": SIGNER, "roles": ROLES}), "at most"),
        (token(author, {"iat": t + 3600, "exp": t + 3660, "signer": SIGNER, "roles": ROLES}), "future"),
        (token(author, {"iat": t, "exp": t + 60, "signer": SIGNER, "roles": ROLES}, "RS256"), "RS512"),
        (
            token(author, {"iat": t, "exp": t + 60, "signer": SIGNER, "roles": ROLES}, "HS512", "k" * 64),
            "RS512",
        ),
        ("not.a.jwt", "JWT"),
    ]
    for bad, text in cases:
        status, answer = await zbp.post(MESSAGES, {**good, "authorToken": bad})
        assert status == 401 and text in answer["error"], (text, answer)
    wrong_role = token(author, {"iat": t, "exp": t + 60, "signer": SIGNER, "roles": ["ROLE_READER"]})
    status, answer = await zbp.post(MESSAGES, {**good, "authorToken": wrong_role})
    assert status == 403 and "THIRD_PARTY" in answer["error"]
    assert zbp.state.items == []


async def test_certificates(
    start_zbp: StartZbp,
    author: GeneratedAuthor,
    other_author: GeneratedAuthor,
    expired_author: GeneratedAuthor,
) -> None:
    zbp = await start_zbp(trusted_certificates=[author.certificate_pem])
    status, answer = await zbp.post(MESSAGES, sealed(other_author, message()))
    assert status == 401 and "not trusted" in answer["error"]
    status, answer = await zbp.post(MESSAGES, sealed(expired_author, message()))
    assert status == 401 and "expired" in answer["error"]
    assert (await zbp.post(MESSAGES, sealed(author, message())))[0] == 201


async def test_refuses_payloads_outside_the_schema(start_zbp: StartZbp, author: GeneratedAuthor) -> None:
    zbp = await start_zbp()
    mailbox = {"X-Mailbox-Uuid": MAILBOX}
    good_status = json.loads(payload_json(status_update()))
    good_message = json.loads(payload_json(message()))
    status_cases: list[tuple[dict[str, Any], str]] = [
        ({**good_status, "status": "REJECTED"}, "status"),
        ({k: v for k, v in good_status.items() if k != "senderName"}, "senderName"),
        ({**good_status, "publicServiceName": {"en": "Hunting licence"}}, "German"),
        ({**good_status, "createdDate": "gestern"}, "createdDate"),
        ({**good_status, "createdDate": "2026-03-01T09:30:00"}, "time zone"),
        ({**good_status, "extra": "x"}, "extra"),
        # the ZBP keeps 50 characters of a status text and knows applications by UUID
        ({**good_status, "statusDetails": {"de": "x" * 51}}, "statusDetails"),
        ({**good_status, "applicationId": "app_1"}, "applicationId"),
    ]
    for payload, field in status_cases:
        status, answer = await zbp.post(STATUS, with_content(author, json.dumps(payload)), mailbox)
        assert status == 422 and field in answer["error"], (field, answer)
        assert answer["details"]
    message_cases: list[tuple[dict[str, Any], str]] = [
        ({**good_message, "stork_qaa_level": 5}, "stork_qaa_level"),
        ({**good_message, "stork_qaa_level": "3"}, "stork_qaa_level"),
        ({k: v for k, v in good_message.items() if k != "mailboxUuid"}, "mailboxUuid"),
        ({**good_message, "title": ""}, "title"),
        ({**good_message, "applicationId": "app_1"}, "applicationId"),
    ]
    for payload, field in message_cases:
        status, answer = await zbp.post(MESSAGES, with_content(author, json.dumps(payload)))
        assert status == 422 and field in answer["error"], (field, answer)
    # A status update is not a message, and the other way round.
    assert (await zbp.post(MESSAGES, sealed(author, status_update())))[0] == 422
    assert (await zbp.post(STATUS, sealed(author, message()), mailbox))[0] == 422
    status, answer = await zbp.post(STATUS, sealed(author, status_update()))
    assert status == 400 and "X-Mailbox-Uuid" in answer["error"]
    assert zbp.state.items == []


async def test_mailboxes_auth_and_faults(start_zbp: StartZbp, author: GeneratedAuthor) -> None:
    zbp = await start_zbp(mailboxes="pk-1,pk-2", token="t-1", fail_next=1)
    auth = {"Authorization": "Bearer t-1"}
    status, _ = await zbp.post(MESSAGES, sealed(author, message(mailboxUuid="pk-1")), auth)
    assert status == 503
    status, answer = await zbp.post(MESSAGES, sealed(author, message(mailboxUuid="pk-3")), auth)
    assert status == 404 and answer["error"] == "unknown mailbox"
    assert (await zbp.post(MESSAGES, sealed(author, message(mailboxUuid="pk-1")), auth))[0] == 201
    assert (await zbp.post(MESSAGES, sealed(author, message(mailboxUuid="pk-1"))))[0] == 401
    basic = {"Authorization": "Bearer wrong"}
    assert (await zbp.post(MESSAGES, sealed(author, message(mailboxUuid="pk-1")), basic))[0] == 401

    status, knobs = await zbp.post("/_sim/faults", {"fail_next": 2})
    assert (status, knobs["fail_next"]) == (200, 2)
    assert (await zbp.post(MESSAGES, sealed(author, message(mailboxUuid="pk-2")), auth))[0] == 503
    assert (await zbp.post("/_sim/faults", {"fail_next": -1}))[0] == 400
    assert await zbp.post("/_sim/reset", {}) == (200, {"reset": True})
    assert zbp.state.items == []


def test_plugin_offers_the_notifier_and_the_simulator() -> None:
    assert list(plugin.aktenhub_connector_types()) == [ZbpNotifier]
    (simulator,) = plugin.aktenhub_simulators()
    assert simulator.name == "zbp"
    app = simulator.make_app(fail_next="2", mailboxes="a, b", required_role="")
    assert app[STATE].knobs.fail_next == 2 and app[STATE].options.mailboxes == ("a", "b")
    with pytest.raises(ValueError, match="unknown_option"):
        make_app(unknown_option=1)


def test_envelope_fields_are_base64_and_pem(author: GeneratedAuthor) -> None:
    envelope = seal(message(), author.author(), SIGNER, ROLES)
    assert len(base64.b64decode(envelope.sha512sum, validate=True)) == 256  # RSA 2048
    assert envelope.authorCertificate.startswith("-----BEGIN CERTIFICATE-----")
    assert json.loads(envelope.content)["mailboxUuid"] == MAILBOX
    assert "Eingangsbestätigung" in envelope.content  # UTF-8 kept, not \u-escaped


async def test_refuses_large_bodies(start_zbp: StartZbp, author: GeneratedAuthor) -> None:
    zbp = await start_zbp(max_body=4096)
    status, answer = await zbp.post(MESSAGES, sealed(author, message(content="x" * 5000)))
    assert status == 413 and "4096" in answer["error"]

    async def chunks() -> Any:  # no Content-Length: the limit holds while reading
        yield json.dumps(sealed(author, message(content="y" * 5000))).encode()

    json_type = {"Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(zbp.url + MESSAGES, data=chunks(), headers=json_type) as response,
    ):
        assert response.status == 413
    assert zbp.state.items == []
