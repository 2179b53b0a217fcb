"""How envelopes reach the ZBP: a small transport interface, with the REST transport behind it.

Today there is one transport, ``rest``: the ZBP REST endpoint inside the administration network. A
FIT-Connect bridge is a second implementation of `Transport` (and a new value of the ``transport``
setting); the notifier does not change.

REST conversation (one request per envelope)::

    POST {base_url}{messages_path}   body: the envelope (JSON)
    POST {base_url}{status_path}     body: the envelope (JSON), header X-Mailbox-Uuid: <handle>
    headers: Content-Type: application/json, Idempotency-Key: <key>, Authorization (if configured)
    2xx -> {"id": "...", "duplicate": false|true}

The reference status payload carries no mailbox, so a status update names it in the header
``X-Mailbox-Uuid`` (a header, not the URL: handles are personal data and URLs end up in access logs).

Failures are classified for the core, which owns retrying: no answer in time, no connection, 5xx, 408,
425 and 429 are `Retryable`; other 4xx (bad signature, unknown mailbox, schema) are `Permanent` with the
server's message.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from hub import Permanent, Retryable, transient_http_status

from .config import ZbpConfig
from .envelope import Envelope, PayloadKind

MAX_ANSWER = 256 * 1024  # bytes; the ZBP answers with small JSON documents
MAX_MESSAGE = 300  # characters of a server's error message kept in our error
MAILBOX_HEADER = "X-Mailbox-Uuid"
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Submission:
    """One envelope to deliver, with what the transport needs besides it."""

    kind: PayloadKind
    envelope: Envelope
    mailbox: str
    idempotency_key: str


@dataclass(frozen=True)
class Accepted:
    """The ZBP took the envelope: its id for it, and whether it already had it (same idempotency key)."""

    id: str | None
    duplicate: bool


@dataclass(frozen=True)
class Probe:
    """Whether the ZBP can be reached and accepts our credentials."""

    ok: bool
    message: str


class Transport(Protocol):
    """Carries envelopes to the ZBP."""

    name: str

    async def send(self, submission: Submission) -> Accepted:
        """Deliver one envelope; raise `Retryable` or `Permanent` on failure."""
        ...

    async def probe(self) -> Probe:
        """Can the ZBP be reached with this configuration? Never raises."""
        ...

    def describe(self) -> dict[str, str]:
        """Where envelopes go (no secrets), for check results and diagnostics."""
        ...


class RestTransport:
    """The ZBP REST endpoint, through the hub's shared HTTP session."""

    name = "rest"

    def __init__(self, config: ZbpConfig, http: Callable[[], aiohttp.ClientSession]) -> None:
        self.config = config
        self._http = http
        self._authorization: str | None = None
        if config.token is not None:
            self._authorization = "Bearer " + config.token.get_secret_value()
        elif config.username is not None and config.password is not None:
            pair = f"{config.username}:{config.password.get_secret_value()}".encode()
            self._authorization = "Basic " + base64.b64encode(pair).decode("ascii")

    def describe(self) -> dict[str, str]:
        """Where envelopes go."""
        c = self.config
        auth = "bearer" if c.token else ("basic" if c.username else "none")
        return {
            "transport": self.name,
            "messages_url": c.base_url + c.messages_path,
            "status_url": c.base_url + c.status_path,
            "auth": auth,
        }

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        headers = {"Accept": "application/json", **extra}
        if self._authorization:
            headers["Authorization"] = self._authorization
        return headers

    async def send(self, submission: Submission) -> Accepted:
        """POST the envelope to the messages or status path."""
        c = self.config
        path = c.messages_path if submission.kind is PayloadKind.MESSAGE else c.status_path
        what = f"ZBP {submission.kind.value}"
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: submission.idempotency_key}
        if submission.kind is PayloadKind.STATUS:
            headers[MAILBOX_HEADER] = submission.mailbox
        body = submission.envelope.model_dump_json().encode("utf-8")
        status, text = await self._request("POST", c.base_url + path, what, data=body, headers=headers)
        if 200 <= status < 300:
            try:
                answer = json.loads(text) if text.strip() else {}
            except ValueError:
                answer = {}
            if not isinstance(answer, dict):
                answer = {}
            ident = answer.get("id")
            return Accepted(
                id=str(ident) if ident is not None else None,
                duplicate=bool(answer.get("duplicate", status == 200)),
            )
        message = _server_message(text)
        if status in (401, 403):
            raise Permanent(
                f"{what}: the ZBP refused the envelope or our credentials ({status}): {message}; "
                "check the author key and certificate, signer, roles and token, then replay"
            )
        if 400 <= status < 500 and not transient_http_status(status):
            raise Permanent(f"{what}: the ZBP refused it ({status}): {message}")
        raise Retryable(f"{what}: the ZBP answered {status}: {message}")

    async def probe(self) -> Probe:
        """GET the health path: any answer but 5xx, 401 and 403 counts as reachable."""
        url = self.config.base_url + self.config.health_path
        try:
            status, text = await self._request("GET", url, "ZBP health check", headers={})
        except (Retryable, Permanent) as exc:
            return Probe(False, str(exc))
        if status in (401, 403):
            return Probe(False, f"{url} refused our credentials ({status}): {_server_message(text)}")
        if status >= 500:
            return Probe(False, f"{url} answered {status}: {_server_message(text)}")
        return Probe(True, f"{url} answers ({status})")

    async def _request(
        self, method: str, url: str, what: str, *, headers: dict[str, str], data: bytes | None = None
    ) -> tuple[int, str]:
        timeout = self.config.timeout_seconds
        try:
            async with self._http().request(
                method,
                url,
                data=data,
                headers=self._headers(headers),
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                return response.status, await _read_limited(response, what)
        except TimeoutError:
            raise Retryable(f"{what}: no answer from {self.config.base_url} within {timeout:g} s") from None
        except aiohttp.ClientConnectionError as exc:
            raise Retryable(
                f"{what}: connection to {self.config.base_url} failed: {type(exc).__name__}: {exc}"
            ) from None
        except aiohttp.ClientError as exc:
            raise Retryable(f"{what}: {type(exc).__name__}: {exc}") from None


def make_transport(config: ZbpConfig, http: Callable[[], aiohttp.ClientSession]) -> Transport:
    """The transport the configuration names."""
    if config.transport == "rest":
        return RestTransport(config, http)
    raise ValueError(f"unknown ZBP transport {config.transport!r}")  # pragma: no cover - config forbids it


async def _read_limited(response: aiohttp.ClientResponse, what: str) -> str:
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > MAX_ANSWER:
            raise Retryable(f"{what}: the answer is larger than {MAX_ANSWER} bytes")
    return data.decode("utf-8", errors="replace")


def _server_message(text: str) -> str:
    """The ``error`` (or ``message``) of a JSON error answer, else the start of the text."""
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    message: str | None = None
    if isinstance(answer, dict):
        for key in ("error", "message", "detail"):
            if isinstance(answer.get(key), str):
                message = answer[key]
                break
    if message is None:
        message = " ".join(text.split()) or "(no message)"
    return message[:MAX_MESSAGE]
