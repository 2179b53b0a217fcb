"""The subscriber's test world: the FIT-Connect simulator, a destination with the session's keys, an
online service's sender, and the hub configuration of a ``type: fitconnect`` source filing into a drop
folder (the Fachverfahren's import folder)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_fitconnect import jose
from hub_fitconnect.sender import Attachment, Sender, SenderFaults, Sent
from hub_fitconnect.simulator import STATE, SimState, make_app
from hub_fitconnect.wire import ACCEPT_SUBMISSION, REJECT_SUBMISSION, SCOPE_SEND_DESTINATION, callback_mac
from jwcrypto import jwk

WOHNGELD = "urn:de:fim:leika:leistung:99108008252000"  # the simulator's default service
# Any other LeiKa key: the destination offers it, the hub is not configured to take it.
OTHER_SERVICE = "urn:de:fim:leika:leistung:99050012104000"
DATA_SCHEMA = "https://schema.fitko.de/fim/s00000000009_1.0.0.schema.json"
CALLBACK_SECRET = "callback-secret-of-the-test-destination-0123456789"
CLIENT_SECRET_ENV = "FC_TEST_CLIENT_SECRET"
CALLBACK_SECRET_ENV = "FC_TEST_CALLBACK_SECRET"
SOURCE = "efa"
WOHNGELDANTRAG = {
    "antragsart": "Erstantrag",
    "antragsteller": {"vorname": "Dragana", "nachname": "Petrović", "geburtsdatum": "1986-09-23"},
    "haushalt": {"personen": 3},
    "wohnung": {"strasse": "Mühlenstraße 12", "plz": "53721", "ort": "Siegburg", "bruttokaltmiete": 735.5},
}
MIETBESCHEINIGUNG = b"%PDF-1.7\n% Mietbescheinigung (test)\n" + bytes(range(256)) * 40


@dataclass
class FitConnect:
    """The simulator, our destination on it, and a sender allowed to submit to it."""

    url: str
    state: SimState
    http: aiohttp.ClientSession
    destination_id: str
    client_id: str
    client_secret: str
    sender: Sender
    key_dir: Path

    async def send(
        self, *, service: str = WOHNGELD, faults: SenderFaults | None = None, attachments: int = 1
    ) -> Sent:
        """An online service submits a Wohngeld application with `attachments` Mietbescheinigungen."""
        files = [
            Attachment(content=MIETBESCHEINIGUNG + bytes([i]), filename=f"Mietbescheinigung-{i}.pdf")
            for i in range(attachments)
        ]
        return await self.sender.send(
            self.destination_id,
            service,
            service_name="Wohngeld",
            data=json.dumps(WOHNGELDANTRAG).encode("utf-8"),
            data_schema_uri=DATA_SCHEMA,
            attachments=files,
            faults=faults or SenderFaults(),
        )

    async def view(self, submission_id: str) -> dict[str, Any]:
        """The simulator's view of a submission: status, tags, decoded events."""
        async with self.http.get(f"{self.url}/_sim/submissions/{submission_id}") as resp:
            assert resp.status == 200, await resp.text()
            body: dict[str, Any] = await resp.json()
            return body

    async def events(self, submission_id: str, event: str) -> list[dict[str, Any]]:
        """The submission's events of one kind (decoded claims)."""
        return [e for e in (await self.view(submission_id))["events"] if event in e["events"]]

    async def accepts(self, submission_id: str) -> list[dict[str, Any]]:
        """Its accept events."""
        return await self.events(submission_id, ACCEPT_SUBMISSION)

    async def rejects(self, submission_id: str) -> list[dict[str, Any]]:
        """Its reject events."""
        return await self.events(submission_id, REJECT_SUBMISSION)

    async def faults(self, **knobs: Any) -> None:
        """Turn simulator faults on."""
        async with self.http.post(f"{self.url}/_sim/faults", json=knobs) as resp:
            assert resp.status == 200, await resp.text()

    async def set_callback(self, url: str) -> None:
        """Point the destination's callback at `url`."""
        body = {"url": url, "secret": CALLBACK_SECRET}
        async with self.http.put(
            f"{self.url}/_sim/destinations/{self.destination_id}/callback", json=body
        ) as resp:
            assert resp.status in (200, 204), await resp.text()

    def connector(self, **settings: Any) -> dict[str, Any]:
        """The hub's ``type: fitconnect`` connector for our destination."""
        return {
            "type": "fitconnect",
            "api": {
                "base_url": self.url,
                "auth": {
                    "type": "oauth2",
                    "token_url": f"{self.url}/token",
                    "client_id": self.client_id,
                    "client_secret": f"${{{CLIENT_SECRET_ENV}}}",
                },
                "timeout_seconds": 10,
            },
            "destinations": [
                {
                    "id": self.destination_id,
                    "decryption_keys": [str(self.key_dir / "encryption.jwk.json")],
                    "signing_key": str(self.key_dir / "signature.jwk.json"),
                    "callback_secret": f"${{{CALLBACK_SECRET_ENV}}}",
                }
            ],
            "services": [{"service": "wohngeld", "leika": WOHNGELD}],
            "poll_seconds": 3600,
            "fetch_backoff": {"max_fetches": 2, "initial_seconds": 0},
            **settings,
        }

    def env(self) -> dict[str, str]:
        """The secrets the configuration names."""
        return {CLIENT_SECRET_ENV: self.client_secret, CALLBACK_SECRET_ENV: CALLBACK_SECRET}


def signed_callback(body: bytes, timestamp: int, secret: str = CALLBACK_SECRET) -> dict[str, str]:
    """The headers of a callback as FIT-Connect signs it."""
    return {
        "callback-timestamp": str(timestamp),
        "callback-authentication": callback_mac(secret, str(timestamp), body),
        "Content-Type": "application/json",
    }


async def start_world(
    http: aiohttp.ClientSession, tmp: Path, encryption: jwk.JWK, signature: jwk.JWK, **options: Any
) -> tuple[TestServer, FitConnect]:
    """The simulator with one destination registered with the given (session) keys."""
    options = {"default_destination": False, "key_size": 2048, "min_key_bits": 2048, **options}
    server = TestServer(make_app(**options), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    services = [
        {
            "identifier": service,
            "regions": ["DE"],
            "submissionSchemas": [{"schemaUri": DATA_SCHEMA, "mimeType": "application/json"}],
        }
        for service in (WOHNGELD, OTHER_SERVICE)
    ]
    new = {
        "encryptionPublicKey": jose.public_jwk(encryption),
        "signingPublicKey": jose.public_jwk(signature),
        "services": services,
    }
    async with http.post(f"{url}/_sim/destinations", json=new) as resp:
        assert resp.status == 201, await resp.text()
        created = await resp.json()
    destination_id = created["destinationId"]
    async with http.post(
        f"{url}/_sim/clients", json={"scopes": [SCOPE_SEND_DESTINATION + destination_id]}
    ) as resp:
        assert resp.status == 201, await resp.text()
        sending = await resp.json()
    key_dir = tmp / "keys"
    key_dir.mkdir(exist_ok=True)
    (key_dir / "encryption.jwk.json").write_text(encryption.export(private_key=True), encoding="utf-8")
    (key_dir / "signature.jwk.json").write_text(signature.export(private_key=True), encoding="utf-8")
    sender = Sender(http, f"{url}/v1", f"{url}/token", sending["clientId"], sending["clientSecret"])
    world = FitConnect(
        url=url,
        state=server.app[STATE],
        http=http,
        destination_id=destination_id,
        client_id=created["subscriber"]["clientId"],
        client_secret=created["subscriber"]["clientSecret"],
        sender=sender,
        key_dir=key_dir,
    )
    return server, world


@pytest_asyncio.fixture
async def world(tmp_path: Path, encryption_key: jwk.JWK, signature_key: jwk.JWK) -> AsyncIterator[FitConnect]:
    """The subscriber tests' world: the simulator with our destination (the session's keys) and a sender."""
    async with aiohttp.ClientSession() as http:
        server, world = await start_world(http, tmp_path, encryption_key, signature_key)
        try:
            yield world
        finally:
            await server.close()
