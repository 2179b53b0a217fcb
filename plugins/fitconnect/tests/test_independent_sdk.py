"""An independent FIT-Connect client against the simulator: the FITKO-listed Python SDK (``fitconnect`` 0.4.2,
synchronous, run in a thread) sends, and receives what our sender sent."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import FitConnectSim
from fitconnect import Environment, FITConnectClient
from hub_fitconnect import jose
from hub_fitconnect.sender import Attachment
from hub_fitconnect.simulator.state import DEFAULT_SCHEMA, DEFAULT_SERVICE
from hub_fitconnect.wire import ACCEPT_SUBMISSION, AuthenticationTags, sha512_hex
from jwcrypto import jwk


@pytest.fixture(scope="session")
def production_encryption_key() -> jwk.JWK:
    """A 4096-bit encryption key: the SDK refuses to encrypt to anything smaller (as it should)."""
    return jose.generate_encryption_key(size=4096)


def _sdk(sim: FitConnectSim, client: dict[str, str]) -> FITConnectClient:
    sdk = FITConnectClient(Environment.TESTING, client["clientId"], client["clientSecret"])
    sdk.token_url = sim.token_url  # the SDK knows FITKO's environments only; point it at the simulator
    sdk.submission_api_url = sim.api("v1")
    return sdk


async def test_sdk_sends_and_our_receiver_accepts(
    fitconnect: FitConnectSim, production_encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    created = await fitconnect.destination(production_encryption_key, signature_key)
    client = await fitconnect.operator("POST", "/_sim/clients", {"scopes": ["send:region:DE"]}, 201)
    data = {"$schema": DEFAULT_SCHEMA, "antrag": {"name": "Muster"}}
    pdf = b"%PDF-1.7 Anlage"
    sdk = _sdk(fitconnect, client)
    answer = await asyncio.to_thread(
        sdk.submission, created["destinationId"], DEFAULT_SERVICE, data=data, attachments=[pdf]
    )
    submission_id = answer["submissionId"]

    token = await fitconnect.token(created["subscriber"])
    auth = {"Authorization": f"Bearer {token}"}
    async with fitconnect.http.get(f"{fitconnect.api()}/submissions/{submission_id}", headers=auth) as got:
        submission: dict[str, Any] = await got.json()
    # The SDK names the key by its RFC 7638 thumbprint and deflates (zip DEF); the keyring finds it anyway.
    ring = jose.Keyring([production_encryption_key])
    metadata = json.loads(jose.decrypt(submission["encryptedMetadata"], ring).plaintext)
    plain = jose.decrypt(submission["encryptedData"], ring).plaintext
    assert json.loads(plain) == data
    assert metadata["contentStructure"]["data"]["hash"]["content"] == sha512_hex(plain)
    (attachment_id,) = submission["attachments"]
    async with fitconnect.http.get(
        f"{fitconnect.api()}/submissions/{submission_id}/attachments/{attachment_id}", headers=auth
    ) as got:
        attachment = await got.text()
    assert jose.decrypt(attachment, ring).plaintext == pdf

    tags = AuthenticationTags(
        metadata=jose.authentication_tag(submission["encryptedMetadata"]),
        data=jose.authentication_tag(submission["encryptedData"]),
        attachments={attachment_id: jose.authentication_tag(attachment)},
    )
    accept = jose.accept_event(created["destinationId"], submission_id, submission["caseId"], tags)
    async with fitconnect.http.post(
        f"{fitconnect.api()}/cases/{submission['caseId']}/events",
        data=jose.sign_event(accept, signature_key),
        headers={**auth, "Content-Type": "application/jose"},
    ) as posted:
        assert posted.status == 204
    view = await fitconnect.operator("GET", f"/_sim/submissions/{submission_id}")
    assert [ACCEPT_SUBMISSION in e["events"] for e in view["events"]].count(True) == 1


async def test_sdk_receives_what_our_sender_sent(
    fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    created = await fitconnect.destination(encryption_key, signature_key)
    sender = await fitconnect.sender()
    data = json.dumps({"antrag": 1}).encode()
    sent = await sender.send(
        created["destinationId"],
        DEFAULT_SERVICE,
        data=data,
        data_schema_uri=DEFAULT_SCHEMA,
        attachments=[Attachment(b"%PDF-1.7", "anlage.pdf")],
    )
    sdk = _sdk(fitconnect, created["subscriber"])
    received = await asyncio.to_thread(
        sdk.retrieve_submission, sent.submission_id, encryption_key.export(as_dict=True)
    )
    assert received["data_json"] == {"antrag": 1}
    assert list(received["attachments"].values()) == [b"%PDF-1.7"]
    assert received["metadata"] == sent.metadata
