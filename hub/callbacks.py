"""Authenticating `POST /callback/<connector>`: an HMAC signature over timestamp and body, or a token.

`sign_callback` is what a sender (a Fachverfahren, a simulator) computes; `callback_refusal` is what
the core checks. See `hub.answers.CallbackAuth` for the scheme.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from hub.answers import CallbackAuth

__all__ = ["callback_refusal", "callback_signature", "sign_callback"]


def callback_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``hex(HMAC-SHA256(secret, "<timestamp>.<body>"))``."""
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_callback(auth: CallbackAuth, body: bytes, now: float) -> dict[str, str]:
    """The headers a sender puts on a callback with this body at Unix time `now`."""
    secret = auth.secret.get_secret_value()
    if auth.scheme == "token":
        return {"Authorization": f"Bearer {secret}"}
    timestamp = str(int(now))
    return {
        auth.timestamp_header: timestamp,
        auth.signature_header: "sha256=" + callback_signature(secret, timestamp, body),
    }


def callback_refusal(auth: CallbackAuth, body: bytes, headers: Mapping[str, str], now: float) -> str | None:
    """Why a callback is not authentic (never quoting the secret), or None if it is."""
    secret = auth.secret.get_secret_value()
    if auth.scheme == "token":
        given = headers.get("Authorization", "")
        expected = f"Bearer {secret}"
        # Compared as bytes: compare_digest refuses non-ASCII str, and a header may carry any.
        if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8")):
            return "missing or wrong bearer token"
        return None
    timestamp = headers.get(auth.timestamp_header, "")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return f"missing or malformed {auth.timestamp_header} (Unix seconds)"
    if abs(now - int(timestamp)) > auth.max_age_seconds:
        return f"{auth.timestamp_header} is more than {auth.max_age_seconds} seconds away from now"
    given = headers.get(auth.signature_header, "").strip()
    given = given.removeprefix("sha256=").lower()
    expected = callback_signature(secret, timestamp, body)
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("ascii")):
        return f"missing or wrong {auth.signature_header}"
    return None
