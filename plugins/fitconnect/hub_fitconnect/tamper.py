"""Deliberately broken JWEs, for the faults of the simulator and the sender (one implementation of each)."""

from __future__ import annotations

import base64
import json

from . import jose


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def with_kid(token: str, kid: str) -> str:
    """The JWE naming another ``kid`` (no key decrypts it then: the protected header is its AAD)."""
    header = jose.jwe_header(token) | {"kid": kid}
    return _b64(json.dumps(header).encode()) + "." + token.split(".", 1)[1]


def corrupted(token: str) -> str:
    """The JWE with its ciphertext altered (the tag no longer checks out; the tag itself is unchanged)."""
    parts = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[3] + "=" * (-len(parts[3]) % 4)))
    raw[0] ^= 0xFF
    parts[3] = _b64(bytes(raw))
    return ".".join(parts)
