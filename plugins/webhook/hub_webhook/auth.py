"""Authenticating a sender: a static token, or an HMAC signature over the raw body.

Everything the headers alone decide (token, signature header present and readable, timestamp fresh) is
checked before a byte of the body is read. A signature is computed over the body as it streams past, for
each configured key (several while one is being replaced), and compared in constant time once the body
has ended; until then nothing the body carried is committed (`hub.formdata.multipart` holds files back).
Every refusal is a 401 whose message names the header, never a value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from hub import BadSubmission

from .config import BODY, TIMESTAMP, Authentication, HmacAuth, TokenAuth

Clock = Callable[[], float]


class BodySignature:
    """The HMACs of one request's body, fed as it is read; `verify()` when it has ended."""

    def __init__(self, config: HmacAuth, expected: bytes, prefix: bytes) -> None:
        self.config = config
        self.expected = expected
        digest = getattr(hashlib, config.algorithm)
        self._macs = [
            hmac.new(secret.get_secret_value().encode("utf-8"), prefix, digest) for secret in config.secrets
        ]

    def update(self, chunk: bytes) -> None:
        """Feed the next piece of the body."""
        for mac in self._macs:
            mac.update(chunk)

    async def feed(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Pass the body's chunks through, feeding each to the signature."""
        async for chunk in chunks:
            self.update(chunk)
            yield chunk

    def verify(self) -> None:
        """Refuse (401) a body that no configured key signed."""
        # Every key is compared (no early exit), so the time taken does not tell which one nearly matched.
        matched = False
        for mac in self._macs:
            matched |= hmac.compare_digest(mac.digest(), self.expected)
        if not matched:
            raise BadSubmission(f"the signature in {self.config.header} does not match the body", 401)


class Authenticator:
    """Checks a request's credentials as configured; `begin` before the body, then the body's signature."""

    def __init__(self, config: Authentication, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock

    def begin(self, request: web.Request) -> BodySignature | None:
        """Check what the headers decide; the body's signature to feed and verify (HMAC), else None."""
        if self.config.token is not None:
            self._token(request, self.config.token)
            return None
        assert self.config.hmac is not None
        return self._signature(request, self.config.hmac)

    def _token(self, request: web.Request, config: TokenAuth) -> None:
        presented = _one_header(request, config.header)
        if config.scheme is not None:
            scheme, _, presented = presented.partition(" ")
            if scheme.lower() != config.scheme.lower():
                raise BadSubmission(f"{config.header} does not use the {config.scheme} scheme", 401)
            presented = presented.strip()
        given = presented.encode("utf-8", "surrogateescape")
        matched = False
        for secret in config.secrets:
            matched |= hmac.compare_digest(given, secret.get_secret_value().encode("utf-8"))
        if not matched:
            raise BadSubmission(f"invalid token in {config.header} header", 401)

    def _signature(self, request: web.Request, config: HmacAuth) -> BodySignature:
        raw = _one_header(request, config.header)
        if not raw.startswith(config.prefix):
            raise BadSubmission(f"the signature in {config.header} lacks its prefix {config.prefix!r}", 401)
        expected = _decode(raw[len(config.prefix) :].strip(), config)
        signed_prefix = config.signed[: -len(BODY)]
        if config.timestamp_header is not None:
            stamp = _one_header(request, config.timestamp_header)
            if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
                raise BadSubmission(f"{config.timestamp_header} is not a time in Unix seconds", 401)
            if abs(self.clock() - int(stamp)) > config.tolerance_seconds:
                raise BadSubmission(
                    f"{config.timestamp_header} is more than {config.tolerance_seconds} seconds off: "
                    "a stale or replayed request",
                    401,
                )
            signed_prefix = signed_prefix.replace(TIMESTAMP, stamp)
        return BodySignature(config, expected, signed_prefix.encode("utf-8"))


def _one_header(request: web.Request, header: str) -> str:
    given = request.headers.getall(header, [])
    if not given:
        raise BadSubmission(f"missing {header} header", 401)
    if len(given) > 1:
        # Two values are ambiguous: a proxy in front may have checked the other one.
        raise BadSubmission(f"{header} header given more than once", 401)
    return str(given[0])


def _decode(signature: str, config: HmacAuth) -> bytes:
    try:
        if config.encoding == "hex":
            return bytes.fromhex(signature)
        return base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        raise BadSubmission(f"the signature in {config.header} is not {config.encoding}", 401) from None


def sign(body: bytes, key: str, config: HmacAuth, timestamp: int | None = None) -> dict[str, str]:
    """The headers a sender puts on `body` to satisfy `config` (for simulators and tests)."""
    prefix = config.signed[: -len(BODY)]
    headers: dict[str, str] = {}
    if config.timestamp_header is not None:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        prefix = prefix.replace(TIMESTAMP, stamp)
        headers[config.timestamp_header] = stamp
    digest = hmac.new(key.encode("utf-8"), prefix.encode("utf-8") + body, config.algorithm).digest()
    encoded = digest.hex() if config.encoding == "hex" else base64.b64encode(digest).decode("ascii")
    headers[config.header] = config.prefix + encoded
    return headers
