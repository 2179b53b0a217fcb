"""The simulator's answers and request validation checked against the public OpenAPI 1.1.3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml
from conftest import FitConnectSim
from hub_fitconnect import jose
from hub_fitconnect.simulator.state import DEFAULT_SCHEMA, DEFAULT_SERVICE
from jwcrypto import jwk


def _openapi(schema_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(
        (schema_dir / "fit-connect/submission-api.v1.1.3.yaml").read_text()
    )
    return document


def _check(document: dict[str, Any], name: str, instance: Any) -> None:
    """Validate against a component schema of the public OpenAPI (its ``$ref``s resolved in place)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    jsonschema.validate(instance, schema, format_checker=jsonschema.FormatChecker())


async def test_answers_match_the_public_openapi(
    fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK, schema_dir: Path
) -> None:
    document = _openapi(schema_dir)
    created = await fitconnect.destination(encryption_key, signature_key)
    sent = await (await fitconnect.sender()).send(
        created["destinationId"], DEFAULT_SERVICE, data=b"{}", data_schema_uri=DEFAULT_SCHEMA
    )
    token = await fitconnect.token(created["subscriber"])
    auth = {"Authorization": f"Bearer {token}"}
    api = fitconnect.api()
    paths = {
        "PublicDestination": f"/destinations/{created['destinationId']}",
        "SubmissionsForPickup": f"/submissions?destinationId={created['destinationId']}",
        "Submission": f"/submissions/{sent.submission_id}",
        "EventLog": f"/cases/{sent.case_id}/events",
        "Error": f"/submissions/{created['destinationId']}",
    }
    for name, path in paths.items():
        async with fitconnect.http.get(api + path, headers=auth) as answer:
            _check(document, name, await answer.json(content_type=None))
    async with fitconnect.http.get(f"{fitconnect.url}/.well-known/jwks.json") as answer:
        service_keys = await answer.json()
    keys = [service_keys["keys"][0]]
    for kid in (jose.key_id(encryption_key), jose.key_id(signature_key)):
        async with fitconnect.http.get(
            f"{api}/destinations/{created['destinationId']}/keys/{kid}", headers=auth
        ) as answer:
            keys.append(await answer.json())
    # The test keys have 2048 bits (fast); everything else of the JWK schema holds as published.
    document["components"]["schemas"]["JWK"]["properties"]["n"]["minLength"] = 342
    for key in keys:
        _check(document, "JWK", key)


def _valid(document: dict[str, Any], name: str, instance: Any) -> bool:
    try:
        _check(document, name, instance)
    except jsonschema.ValidationError:
        return False
    return True


async def test_request_validation_agrees_with_the_public_openapi(
    fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK, schema_dir: Path
) -> None:
    """A body the OpenAPI calls invalid gets 400; one it calls valid gets past validation (201 here)."""
    document = _openapi(schema_dir)
    created = await fitconnect.destination(encryption_key, signature_key)
    client = await fitconnect.operator("POST", "/_sim/clients", {"scopes": ["send:region:DE"]}, 201)
    headers = {"Authorization": f"Bearer {await fitconnect.token(client)}"}
    service = {"name": "Leistung", "identifier": DEFAULT_SERVICE}
    base = {"destinationId": created["destinationId"], "announcedAttachments": [], "serviceType": service}
    attachment = "6a0d5f3e-8b1c-4d2e-9f00-1234567890ab"
    bodies: list[Any] = [
        base,
        base | {"announcedAttachments": [attachment]},
        base | {"unknownField": 1},
        base | {"serviceType": service | {"description": "kurz"}},
        base | {"callback": {"url": "https://portal.example/cb", "secret": "x" * 32}},
        base | {"callback": {"url": "http://portal.example/cb", "secret": "x" * 32}},
        base | {"callback": {"url": "https://portal.example/cb", "secret": "short"}},
        base | {"destinationId": created["destinationId"].replace("-", "")},
        base | {"destinationId": 42},
        base | {"announcedAttachments": ["not-a-uuid"]},
        base | {"announcedAttachments": None},
        base | {"serviceType": {"identifier": DEFAULT_SERVICE}},
        base | {"serviceType": {"name": "x", "identifier": "urn:x"}},
        base | {"serviceType": {"name": "x", "identifier": "URN:DE:FIM:LEIKA:1"}},
        {k: v for k, v in base.items() if k != "announcedAttachments"},
        {k: v for k, v in base.items() if k != "destinationId"},
        [base],
    ]
    for body in bodies:
        async with fitconnect.http.post(
            f"{fitconnect.api()}/submissions", json=body, headers=headers
        ) as answer:
            status = answer.status
        expected_valid = _valid(document, "CreateSubmission", body)
        assert (status != 400) == expected_valid, (body, status)
        assert status in ((201,) if expected_valid else (400,))
