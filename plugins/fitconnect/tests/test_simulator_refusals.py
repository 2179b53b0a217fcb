"""What the simulated Zustelldienst refuses, as the real one does: tokens, scopes, announcements, uploads."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from conftest import FitConnectSim, StartSim
from hub_fitconnect import jose
from hub_fitconnect.sender import Attachment, Sender, SendError
from hub_fitconnect.simulator.state import DEFAULT_SCHEMA, DEFAULT_SERVICE
from jwcrypto import jwk


async def _token_answer(
    sim: FitConnectSim, data: dict[str, str], auth: tuple[str, str] | None = None
) -> tuple[int, Any, str]:
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    async with sim.http.post(sim.token_url, data=data, headers=headers) as answer:
        return answer.status, await answer.json(), answer.headers.get("WWW-Authenticate", "")


async def test_token_endpoint_client_authentication(
    fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    client = (await fitconnect.destination(encryption_key, signature_key))["subscriber"]
    grant = {"grant_type": "client_credentials"}
    ok_basic = await _token_answer(fitconnect, grant, (client["clientId"], client["clientSecret"]))
    assert ok_basic[0] == 200 and ok_basic[1]["token_type"] == "Bearer" and ok_basic[1]["expires_in"] > 0
    posted = {**grant, "client_id": client["clientId"], "client_secret": client["clientSecret"]}
    assert (await _token_answer(fitconnect, posted))[0] == 200
    status, body, challenge = await _token_answer(fitconnect, grant, (client["clientId"], "wrong"))
    assert (status, body["error"], challenge) == (401, "invalid_client", 'Basic realm="fit-connect"')
    status, body, _ = await _token_answer(fitconnect, {**posted, "client_secret": "wrong"})
    assert (status, body["error"]) == (401, "invalid_client")
    status, body, _ = await _token_answer(fitconnect, {**posted, "grant_type": "password"})
    assert (status, body["error"]) == (400, "unsupported_grant_type")
    status, body, _ = await _token_answer(fitconnect, {**posted, "scope": "send:region:DE"})
    assert (status, body["error"]) == (400, "invalid_scope")


async def _api(
    sim: FitConnectSim, token: str | None, method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with sim.http.request(
        method, sim.api() + path, headers={**headers, **kwargs.pop("headers", {})}, **kwargs
    ) as answer:
        text = await answer.text()
        return answer.status, json.loads(text) if answer.content_type.endswith("json") else text


async def test_missing_expired_and_foreign_tokens(
    fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    ours = await fitconnect.destination(encryption_key, signature_key)
    theirs = await fitconnect.destination(encryption_key, signature_key)
    query = {"destinationId": ours["destinationId"]}
    status, body = await _api(fitconnect, None, "GET", "/submissions", params=query)
    assert status == 401 and body["status"] == 401
    assert (await _api(fitconnect, "made-up", "GET", "/submissions", params=query))[0] == 401
    foreign = await fitconnect.token(theirs["subscriber"])
    status, body = await _api(fitconnect, foreign, "GET", "/submissions", params=query)
    assert status == 403 and "subscribe:destination:" in body["detail"]
    sender = await fitconnect.operator("POST", "/_sim/clients", {"scopes": ["send:region:DE"]}, 201)
    assert (await _api(fitconnect, await fitconnect.token(sender), "GET", "/submissions", params=query))[
        0
    ] == 403

    token = await fitconnect.token(ours["subscriber"])
    assert (await _api(fitconnect, token, "GET", "/submissions", params=query))[0] == 200
    await fitconnect.operator("POST", "/_sim/clock", {"advance_seconds": 1801})
    assert (await _api(fitconnect, token, "GET", "/submissions", params=query))[0] == 401
    token = await fitconnect.token(ours["subscriber"])
    await fitconnect.operator("POST", "/_sim/faults", {"expire_tokens": True})
    assert (await _api(fitconnect, token, "GET", "/submissions", params=query))[0] == 401
    assert (
        await _api(
            fitconnect, await fitconnect.token(ours["subscriber"]), "GET", "/submissions", params=query
        )
    )[0] == 200


async def test_sender_scopes(
    fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    created = await fitconnect.destination(
        encryption_key,
        signature_key,
        services=[
            {
                "identifier": DEFAULT_SERVICE,
                "regions": ["DE05382"],
                "submissionSchemas": [{"schemaUri": DEFAULT_SCHEMA, "mimeType": "application/json"}],
            }
        ],
    )
    body = {
        "destinationId": created["destinationId"],
        "announcedAttachments": [],
        "serviceType": {"name": "x", "identifier": DEFAULT_SERVICE},
    }
    for scopes, expected in (
        (["send:region:DE05"], 201),
        (["send:region:DE09"], 403),
        ([f"send:destination:{created['destinationId']}"], 201),
        ([f"send:destination:{uuid.uuid4()}"], 403),
        ([f"subscribe:destination:{created['destinationId']}"], 403),
    ):
        client = await fitconnect.operator("POST", "/_sim/clients", {"scopes": scopes}, 201)
        status, answer = await _api(
            fitconnect, await fitconnect.token(client), "POST", "/submissions", json=body
        )
        assert status == expected, (scopes, answer)


async def _announce(
    sim: FitConnectSim, sender_token: str, destination_id: str, attachments: list[str]
) -> dict[str, Any]:
    body = {
        "destinationId": destination_id,
        "announcedAttachments": attachments,
        "serviceType": {"name": "Leistung", "identifier": DEFAULT_SERVICE},
    }
    status, answer = await _api(sim, sender_token, "POST", "/submissions", json=body)
    assert status == 201, answer
    return dict(answer)


@pytest.fixture
async def announced(
    fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> dict[str, Any]:
    created = await fitconnect.destination(encryption_key, signature_key)
    client = await fitconnect.operator("POST", "/_sim/clients", {"scopes": ["send:region:DE"]}, 201)
    token = await fitconnect.token(client)
    attachment = str(uuid.uuid4())
    submission = await _announce(fitconnect, token, created["destinationId"], [attachment])
    jwe = jose.encrypt(b"%PDF", jose.public_key(encryption_key), "application/pdf")
    return {"token": token, "attachment": attachment, "jwe": jwe, **submission}


def _upload(
    sim: FitConnectSim,
    given: dict[str, Any],
    attachment: str,
    body: bytes,
    content_type: str = "application/jose",
) -> Any:
    path = f"/submissions/{given['submissionId']}/attachments/{attachment}"
    return _api(sim, given["token"], "PUT", path, data=body, headers={"Content-Type": content_type})


async def test_upload_refusals(fitconnect: FitConnectSim, announced: dict[str, Any]) -> None:
    jwe = announced["jwe"].encode()
    status, body = await _upload(fitconnect, announced, str(uuid.uuid4()), jwe)
    assert status == 422 and body["type"].endswith("attachment-not-announced")
    status, body = await _upload(
        fitconnect, announced, announced["attachment"], jwe, "application/octet-stream"
    )
    assert status == 415
    status, body = await _upload(fitconnect, announced, announced["attachment"], b"%PDF-1.7 not encrypted")
    assert status == 422 and body["type"].endswith("invalid-jwe")
    status, body = await _upload(fitconnect, announced, announced["attachment"], b"a.b.c")
    assert status == 422
    status, body = await _upload(fitconnect, announced, announced["attachment"], b"A" * (64 * 1024 + 1))
    assert status == 413 and body["status"] == 413
    assert (await _upload(fitconnect, announced, announced["attachment"], jwe)) == (204, "")
    view = await fitconnect.operator("GET", f"/_sim/submissions/{announced['submissionId']}")
    assert view["uploaded"] == [announced["attachment"]]


async def test_submit_refusals(
    fitconnect: FitConnectSim, announced: dict[str, Any], encryption_key: jwk.JWK
) -> None:
    metadata = jose.encrypt(b"{}", jose.public_key(encryption_key), "application/json")
    path = f"/submissions/{announced['submissionId']}"
    status, body = await _api(
        fitconnect, announced["token"], "PUT", path, json={"encryptedMetadata": metadata}
    )
    assert status == 422 and body["type"].endswith("missing-attachments")
    assert (await _upload(fitconnect, announced, announced["attachment"], announced["jwe"].encode()))[
        0
    ] == 204
    status, body = await _api(
        fitconnect, announced["token"], "PUT", path, json={"encryptedMetadata": "eyJhbGciOiJub25lIn0.e30."}
    )
    assert status == 422 and body["type"].endswith("invalid-jwe")
    status, body = await _api(fitconnect, announced["token"], "PUT", path, json={"metadata": metadata})
    assert status == 400
    status, _ = await _api(
        fitconnect,
        announced["token"],
        "PUT",
        path,
        data=json.dumps({"encryptedMetadata": metadata}),
        headers={"Content-Type": "text/plain"},
    )
    assert status == 415
    view = await fitconnect.operator("GET", f"/_sim/submissions/{announced['submissionId']}")
    assert view["status"] == "created" and [e for e in view["events"] if "submit" in json.dumps(e)] == []
    status, body = await _api(
        fitconnect, announced["token"], "PUT", path, json={"encryptedMetadata": metadata}
    )
    assert status == 202 and body["submissionId"] == announced["submissionId"]
    status, body = await _api(
        fitconnect, announced["token"], "PUT", path, json={"encryptedMetadata": metadata}
    )
    assert status == 422 and body["type"].endswith("already-submitted")


async def test_announce_refusals(fitconnect: FitConnectSim, announced: dict[str, Any]) -> None:
    destination = announced["destinationId"]
    bad: list[tuple[dict[str, Any], int]] = [
        (
            {
                "destinationId": "not-a-uuid",
                "announcedAttachments": [],
                "serviceType": {"name": "x", "identifier": DEFAULT_SERVICE},
            },
            400,
        ),
        (
            {
                "destinationId": destination,
                "announcedAttachments": [],
                "serviceType": {"name": "x", "identifier": "leika 123"},
            },
            400,
        ),
        ({"destinationId": destination, "serviceType": {"name": "x", "identifier": DEFAULT_SERVICE}}, 400),
        (
            {
                "destinationId": str(uuid.uuid4()),
                "announcedAttachments": [],
                "serviceType": {"name": "x", "identifier": DEFAULT_SERVICE},
            },
            404,
        ),
        (
            {
                "destinationId": destination,
                "announcedAttachments": [],
                "serviceType": {"name": "x", "identifier": "urn:de:fim:leika:leistung:1"},
            },
            422,
        ),
        (
            {
                "destinationId": destination,
                "announcedAttachments": [],
                "caseId": str(uuid.uuid4()),
                "serviceType": {"name": "x", "identifier": DEFAULT_SERVICE},
            },
            404,
        ),
    ]
    before = len(fitconnect.state.submissions)
    for body, expected in bad:
        status, answer = await _api(fitconnect, announced["token"], "POST", "/submissions", json=body)
        assert status == expected, (body, answer)
        assert answer["status"] == expected and answer["type"].startswith(
            "https://schema.fitko.de/fit-connect/"
        )
    assert len(fitconnect.state.submissions) == before


async def test_sender_sees_refusals_as_send_errors(
    fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    created = await fitconnect.destination(encryption_key, signature_key)
    sender = await fitconnect.sender()
    with pytest.raises(SendError) as refused:
        await sender.send(created["destinationId"], "urn:de:fim:leika:leistung:1")
    assert refused.value.status == 422 and refused.value.problem is not None
    with pytest.raises(SendError) as too_big:
        await sender.send(
            created["destinationId"], DEFAULT_SERVICE, attachments=[Attachment(b"x" * 64 * 1024, "big.pdf")]
        )
    assert (too_big.value.step, too_big.value.status) == ("upload", 413)


async def test_small_keys_are_refused_at_registration(
    start_fitconnect: StartSim, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    strict = await start_fitconnect(min_key_bits=4096)
    body = {
        "encryptionPublicKey": jose.public_jwk(encryption_key),
        "signingPublicKey": jose.public_jwk(signature_key),
    }
    answer = await strict.operator("POST", "/_sim/destinations", body, 422)
    assert "4096" in answer["detail"]
    swapped = {
        "encryptionPublicKey": jose.public_jwk(signature_key),
        "signingPublicKey": jose.public_jwk(encryption_key),
    }
    await strict.operator("POST", "/_sim/destinations", swapped, 422)


async def test_only_configured_versions_are_served(
    start_fitconnect: StartSim, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    v2 = await start_fitconnect(versions="v2")
    created = await v2.destination(encryption_key, signature_key)
    sender: Sender = await v2.sender("v2")
    sent = await sender.send(
        created["destinationId"], DEFAULT_SERVICE, data=b"{}", data_schema_uri=DEFAULT_SCHEMA
    )
    token = await v2.token(created["subscriber"])
    async with v2.http.get(
        f"{v2.url}/v2/submissions/{sent.submission_id}", headers={"Authorization": f"Bearer {token}"}
    ) as answer:
        assert answer.status == 200
    async with v2.http.get(
        f"{v2.url}/v1/submissions/{sent.submission_id}", headers={"Authorization": f"Bearer {token}"}
    ) as answer:
        assert answer.status == 404
        assert answer.content_type == "application/problem+json"


async def test_v2_as_deployed_clients_call_it(
    fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK
) -> None:
    """v2 names the service ``publicService``, lists a destination's keys, and gives a submission's events."""
    created = await fitconnect.destination(encryption_key, signature_key)
    sender: Sender = await fitconnect.sender("v2")
    sent = await sender.send(created["destinationId"], DEFAULT_SERVICE, metadata_version="2.1.0")
    assert sent.metadata["publicService"]["identifier"] == DEFAULT_SERVICE
    assert "publicServiceType" not in sent.metadata
    token = await fitconnect.token(created["subscriber"])
    auth = {"Authorization": f"Bearer {token}"}
    async with fitconnect.http.get(
        f"{fitconnect.api('v2')}/destinations/{created['destinationId']}/keys", headers=auth
    ) as answer:
        kids = [k["kid"] for k in (await answer.json())["keys"]]
    assert kids == [jose.key_id(encryption_key), jose.key_id(signature_key)]
    async with fitconnect.http.get(
        f"{fitconnect.api('v2')}/submissions/{sent.submission_id}/events", headers=auth
    ) as answer:
        subjects = {jose.unverified_claims(t)["sub"] for t in (await answer.json())["eventLog"]}
    assert subjects == {f"submission:{sent.submission_id}"}
    async with fitconnect.http.get(
        f"{fitconnect.api('v2')}/submissions/{sent.submission_id}", headers=auth
    ) as answer:
        body = await answer.json()
    assert body["publicService"]["identifier"] == body["serviceType"]["identifier"] == DEFAULT_SERVICE
    # v1 keeps the published OpenAPI: no publicService, no key list.
    client = await fitconnect.operator("POST", "/_sim/clients", {"scopes": ["send:region:DE"]}, 201)
    v1_body = {
        "destinationId": created["destinationId"],
        "announcedAttachments": [],
        "publicService": {"name": "x", "identifier": DEFAULT_SERVICE},
    }
    status, problem = await _api(
        fitconnect, await fitconnect.token(client), "POST", "/submissions", json=v1_body
    )
    assert status == 400 and "serviceType" in problem["detail"]
    assert (await _api(fitconnect, token, "GET", f"/destinations/{created['destinationId']}/keys"))[0] == 404
