"""Shared helpers of the ZBP tests (a module name unique in the whole suite)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from hub_zbp.keys import GeneratedAuthor
from hub_zbp.notifier import ZbpNotifier
from hub_zbp.simulator import ZbpState

from hub import Application, ConnectorContext, Identity, Party, Receipt, ReceiptKind, TrustLevel

SIGNER = "Rhein-Sieg-Kreis ZBP"  # the CN of the `author` fixture's certificate
SENDER = "Rhein-Sieg-Kreis"
FILE_NUMBER = "32.3-2026-00001"
MAILBOX = "pk-4711-3f2a"


@dataclass
class Zbp:
    """A running ZBP simulator: where it listens, and what it holds."""

    url: str
    state: ZbpState

    async def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """POST JSON to the simulator; (status, JSON answer)."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url + path, json=body, headers=headers or {}) as response,
        ):
            return response.status, await response.json()

    async def get(self, path: str) -> tuple[int, Any]:
        """GET from the simulator; (status, JSON answer)."""
        async with aiohttp.ClientSession() as http, http.get(self.url + path) as response:
            return response.status, await response.json()


StartZbp = Callable[..., Awaitable[Zbp]]


def notifier_settings(author: GeneratedAuthor, base_url: str, **settings: Any) -> dict[str, Any]:
    """A `type: zbp` configuration against `base_url`, signed by `author`."""
    return {
        "type": "zbp",
        "base_url": base_url,
        "author_key": author.key_pem,
        "author_certificate": author.certificate_pem,
        "sender_name": SENDER,
        "services": {"jagdschein": "Jagdschein beantragen"},
        "timeout_seconds": 5,
        **settings,
    }


def make_notifier(
    context: ConnectorContext, author: GeneratedAuthor, base_url: str, **settings: Any
) -> ZbpNotifier:
    """A notifier built the way the hub builds it: configuration validated by its `Config`."""
    config = ZbpNotifier.Config.model_validate(notifier_settings(author, base_url, **settings))
    return ZbpNotifier(config, context)


def application(
    mailbox: str | None = MAILBOX,
    level: TrustLevel | None = TrustLevel.SUBSTANTIELL,
    file_number: str | None = FILE_NUMBER,
    service: str = "jagdschein",
) -> Application:
    """A filed application of a BundID-verified applicant."""
    return Application(
        source="formcycle",
        external_id="sub-1",
        service=service,
        route="jagdschein",
        applicant=Party(given_name="Jürgen", family_name="Groß", mailbox=mailbox),
        identity=Identity(verified=level is not None, provider="bundid", asserted_by="idp", level=level),
        file_number=file_number,
    )


def receipt(
    app: Application,
    kind: ReceiptKind = ReceiptKind.RECEIVED,
    reason: str | None = None,
    code: str | None = None,
) -> Receipt:
    """The receipt the core's notify step hands the notifier."""
    return Receipt(application_id=app.id, kind=kind, file_number=app.file_number, reason=reason, code=code)


def closed_loopback_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
