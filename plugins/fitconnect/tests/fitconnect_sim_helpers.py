"""The FIT-Connect simulator as tests drive it (own module name: every plugin's conftest is `conftest`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from hub_fitconnect import jose
from hub_fitconnect.sender import Sender
from hub_fitconnect.simulator import SimState
from jwcrypto import jwk

# 2048 bits keep the suite fast; production keys are 4096 (the simulator checks that only when asked).
TEST_KEY_SIZE = 2048


@dataclass
class FitConnectSim:
    """A running FIT-Connect simulator: its URL, its state, and the calls most tests make."""

    url: str
    state: SimState
    http: aiohttp.ClientSession

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint."""
        return f"{self.url}/token"

    def api(self, version: str = "v1") -> str:
        """The Submission API's base URL."""
        return f"{self.url}/{version}"

    async def operator(self, method: str, path: str, body: Any = None, expected: int = 200) -> Any:
        """Call an operator endpoint, asserting the status."""
        async with self.http.request(method, self.url + path, json=body) as answer:
            assert answer.status == expected, await answer.text()
            return await answer.json()

    async def destination(self, encryption: jwk.JWK, signature: jwk.JWK, **extra: Any) -> dict[str, Any]:
        """Register a destination with the public halves of these keys; its id and subscriber client."""
        body = {
            "encryptionPublicKey": jose.public_jwk(encryption),
            "signingPublicKey": jose.public_jwk(signature),
            **extra,
        }
        created: dict[str, Any] = await self.operator("POST", "/_sim/destinations", body, 201)
        return created

    async def sender(self, version: str = "v1") -> Sender:
        """A sender with scope ``send:region:DE``."""
        client = await self.operator("POST", "/_sim/clients", {"scopes": ["send:region:DE"]}, 201)
        return Sender(
            self.http, self.api(version), self.token_url, client["clientId"], client["clientSecret"]
        )

    async def token(self, client: dict[str, str], **form: str) -> str:
        """An access token for a client (``client_secret_post``)."""
        data = {
            "grant_type": "client_credentials",
            "client_id": client["clientId"],
            "client_secret": client["clientSecret"],
            **form,
        }
        async with self.http.post(self.token_url, data=data) as answer:
            assert answer.status == 200, await answer.text()
            return str((await answer.json())["access_token"])


StartSim = Callable[..., Awaitable[FitConnectSim]]

# Short retries and small limits keep the tests fast; 2048-bit keys are allowed here.
TEST_OPTIONS: dict[str, Any] = {
    "key_size": TEST_KEY_SIZE,
    "min_key_bits": TEST_KEY_SIZE,
    "callback_retry_seconds": 0.05,
    "callback_attempts": 3,
    "callback_timeout_seconds": 5,
    "max_attachment_bytes": 64 * 1024,
}
