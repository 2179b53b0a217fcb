"""The simulator's callbacks (HMAC, retries, faults), deadlines on its clock, content faults, held events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import FitConnectSim
from hub_fitconnect import jose
from hub_fitconnect.sender import SenderFaults
from hub_fitconnect.simulator.state import DEFAULT_SCHEMA, DEFAULT_SERVICE
from hub_fitconnect.wire import (
    CALLBACK_AUTHENTICATION,
    CALLBACK_NEW_SUBMISSIONS,
    CALLBACK_TIMESTAMP,
    REJECT_SUBMISSION,
    callback_mac_matches,
    sha512_hex,
)
from jwcrypto import jwk

SECRET = "s" * 40


@dataclass
class CallbackReceiver:
    """A small HTTP server taking callbacks: it answers `statuses` in turn (then 200) and checks the HMAC."""

    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        timestamp = request.headers[CALLBACK_TIMESTAMP]
        self.received.append(
            {
                "body": json.loads(raw),
                "mac_ok": callback_mac_matches(
                    SECRET, timestamp, raw, request.headers[CALLBACK_AUTHENTICATION]
                ),
                "age": time.time() - int(timestamp),
            }
        )
        async with self.arrived:
            self.arrived.notify_all()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def wait_for(self, count: int) -> None:
        """Until `count` callbacks have arrived (bounded)."""
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.received) >= count), 10)


@pytest_asyncio.fixture
async def callbacks() -> AsyncIterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    app = web.Application()
    app.router.add_post("/callback", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    receiver.url = f"http://127.0.0.1:{server.port}/callback"
    yield receiver
    await server.close()


async def _destination(sim: FitConnectSim, keys: tuple[jwk.JWK, jwk.JWK], url: str) -> dict[str, Any]:
    return await sim.destination(*keys, callback={"url": url, "secret": SECRET})


async def test_callback_with_hmac_retried_until_answered(
    fitconnect: FitConnectSim, callbacks: CallbackReceiver, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    created = await _destination(fitconnect, (encryption_key, signature_key), callbacks.url)
    callbacks.statuses = [500]
    sent = await (await fitconnect.sender()).send(created["destinationId"], DEFAULT_SERVICE)
    await callbacks.wait_for(2)
    first, second = callbacks.received
    assert (
        first["body"]
        == second["body"]
        == {
            "type": CALLBACK_NEW_SUBMISSIONS,
            "submissions": [
                {
                    "destinationId": created["destinationId"],
                    "submissionId": sent.submission_id,
                    "caseId": sent.case_id,
                }
            ],
        }
    )
    assert first["mac_ok"] and second["mac_ok"] and first["age"] < 60
    records = (await fitconnect.operator("GET", "/_sim/callbacks"))["callbacks"]
    assert [(r["attempt"], r["status"]) for r in records] == [(1, 500), (2, 200)]


async def test_callback_faults(
    fitconnect: FitConnectSim, callbacks: CallbackReceiver, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    created = await _destination(fitconnect, (encryption_key, signature_key), callbacks.url)
    sender = await fitconnect.sender()
    await fitconnect.operator("POST", "/_sim/faults", {"stale_callback_next": 1})
    await sender.send(created["destinationId"], DEFAULT_SERVICE)
    await callbacks.wait_for(1)
    await fitconnect.operator("POST", "/_sim/faults", {"wrong_callback_mac_next": 1})
    await sender.send(created["destinationId"], DEFAULT_SERVICE)
    await callbacks.wait_for(2)
    stale, wrong = callbacks.received
    assert stale["mac_ok"] and stale["age"] > 300
    assert not wrong["mac_ok"] and wrong["age"] < 60


async def test_callback_url_must_be_https_or_loopback(
    fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    created = await fitconnect.destination(encryption_key, signature_key)
    path = f"/_sim/destinations/{created['destinationId']}/callback"
    await fitconnect.operator("PUT", path, {"url": "http://example.org/cb", "secret": SECRET}, 422)
    await fitconnect.operator("PUT", path, {"url": "https://example.org/cb", "secret": "short"}, 422)
    await fitconnect.operator("PUT", path, {"url": "https://example.org/cb", "secret": SECRET}, 200)


async def test_deadlines_notice_then_automatic_reject(
    fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    created = await fitconnect.destination(encryption_key, signature_key)
    sent = await (await fitconnect.sender()).send(created["destinationId"], DEFAULT_SERVICE)
    await fitconnect.operator("POST", "/_sim/clock", {"advance_seconds": 3 * 86400 - 60})
    assert (await fitconnect.operator("GET", "/_sim/notices"))["notices"] == []
    await fitconnect.operator("POST", "/_sim/clock", {"advance_seconds": 120})
    notices = (await fitconnect.operator("GET", "/_sim/notices"))["notices"]
    assert [(n["submission_id"], n["reason"]) for n in notices] == [(sent.submission_id, "unfetched-3-days")]
    await fitconnect.operator("POST", "/_sim/clock", {"advance_seconds": 11 * 86400})
    view = await fitconnect.operator("GET", f"/_sim/submissions/{sent.submission_id}")
    assert view["status"] == "rejected"
    assert REJECT_SUBMISSION in view["events"][-1]["events"]
    token = await fitconnect.token(created["subscriber"])
    claims = jose.accept_event(created["destinationId"], sent.submission_id, sent.case_id, sent.tags)
    async with fitconnect.http.post(
        f"{fitconnect.api()}/cases/{sent.case_id}/events",
        data=jose.sign_event(claims, signature_key),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/jose"},
    ) as answer:
        assert answer.status == 409


async def test_fetched_submission_gets_no_notice(
    fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    created = await fitconnect.destination(encryption_key, signature_key)
    sent = await (await fitconnect.sender()).send(created["destinationId"], DEFAULT_SERVICE)
    token = await fitconnect.token(created["subscriber"])
    async with fitconnect.http.get(
        f"{fitconnect.api()}/submissions/{sent.submission_id}", headers={"Authorization": f"Bearer {token}"}
    ) as answer:
        assert answer.status == 200
    await fitconnect.operator("POST", "/_sim/clock", {"advance_seconds": 4 * 86400})
    assert (await fitconnect.operator("GET", "/_sim/notices"))["notices"] == []


async def _fetched(sim: FitConnectSim, created: dict[str, Any], submission_id: str) -> dict[str, Any]:
    token = await sim.token(created["subscriber"])
    async with sim.http.get(
        f"{sim.api()}/submissions/{submission_id}", headers={"Authorization": f"Bearer {token}"}
    ) as answer:
        return dict(await answer.json())


async def test_content_faults(fitconnect: FitConnectSim) -> None:
    created = await fitconnect.operator("POST", "/_sim/destinations", {}, 201)  # keys made by the simulator
    ring = jose.Keyring([jwk.JWK(**created["encryptionKey"])])
    sender = await fitconnect.sender()

    async def send() -> dict[str, Any]:
        sent = await sender.send(
            created["destinationId"], DEFAULT_SERVICE, data=b'{"a": 1}', data_schema_uri=DEFAULT_SCHEMA
        )
        return await _fetched(fitconnect, created, sent.submission_id)

    await fitconnect.operator("POST", "/_sim/faults", {"wrong_kid_next": 1})
    with pytest.raises(jose.JoseError) as unknown:
        jose.decrypt((await send())["encryptedMetadata"], ring)
    assert unknown.value.reason == "unknown-kid"
    await fitconnect.operator("POST", "/_sim/faults", {"corrupt_ciphertext_next": 1})
    with pytest.raises(jose.JoseError) as corrupt:
        jose.decrypt((await send())["encryptedData"], ring)
    assert corrupt.value.reason == "decryption-failed"
    await fitconnect.operator("POST", "/_sim/faults", {"metadata_hash_mismatch_next": 1})
    mismatched = await send()
    metadata = json.loads(jose.decrypt(mismatched["encryptedMetadata"], ring).plaintext)
    data = jose.decrypt(mismatched["encryptedData"], ring).plaintext
    assert metadata["contentStructure"]["data"]["hash"]["content"] != sha512_hex(data)
    # The submit event names the tags of what is stored, so the fault shows where the real one would.
    view = await fitconnect.operator("GET", f"/_sim/submissions/{mismatched['submissionId']}")
    assert view["authenticationTags"]["metadata"] == jose.authentication_tag(mismatched["encryptedMetadata"])
    clean = await send()
    assert json.loads(jose.decrypt(clean["encryptedMetadata"], ring).plaintext)["contentStructure"]["data"][
        "hash"
    ]["content"] == sha512_hex(jose.decrypt(clean["encryptedData"], ring).plaintext)


async def test_sender_faults_reach_the_receiver(
    fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    created = await fitconnect.destination(encryption_key, signature_key)
    ring = jose.Keyring([encryption_key])
    sender = await fitconnect.sender()
    sent = await sender.send(
        created["destinationId"],
        DEFAULT_SERVICE,
        data=b"{}",
        data_schema_uri=DEFAULT_SCHEMA,
        faults=SenderFaults(wrong_data_hash=True, corrupt_data=True),
    )
    fetched = await _fetched(fitconnect, created, sent.submission_id)
    metadata = json.loads(jose.decrypt(fetched["encryptedMetadata"], ring).plaintext)
    assert metadata["contentStructure"]["data"]["hash"]["content"] != sha512_hex(b"{}")
    with pytest.raises(jose.JoseError):
        jose.decrypt(fetched["encryptedData"], ring)


async def test_held_and_failed_event_posts(
    fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    created = await fitconnect.destination(encryption_key, signature_key)
    sent = await (await fitconnect.sender()).send(created["destinationId"], DEFAULT_SERVICE)
    token = await fitconnect.token(created["subscriber"])
    accept = jose.sign_event(
        jose.accept_event(created["destinationId"], sent.submission_id, sent.case_id, sent.tags),
        signature_key,
    )

    async def post() -> int:
        async with fitconnect.http.post(
            f"{fitconnect.api()}/cases/{sent.case_id}/events",
            data=accept,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/jose"},
        ) as answer:
            return answer.status

    await fitconnect.operator("POST", "/_sim/faults", {"fail_events_next": 1, "hold_events_next": 1})
    assert await post() == 503
    assert (await fitconnect.operator("GET", f"/_sim/submissions/{sent.submission_id}"))[
        "status"
    ] == "submitted"
    held = asyncio.create_task(post())
    for _ in range(500):
        if (await fitconnect.operator("GET", "/_sim/held"))["held"] == 1:
            break
        await asyncio.sleep(0.01)
    assert (await fitconnect.operator("GET", f"/_sim/submissions/{sent.submission_id}"))[
        "status"
    ] == "submitted"
    assert (await fitconnect.operator("POST", "/_sim/held/release"))["released"] == 1
    assert await asyncio.wait_for(held, 10) == 204
    assert (await fitconnect.operator("GET", f"/_sim/submissions/{sent.submission_id}"))[
        "status"
    ] == "accepted"
