"""Who is logged in: a sealed session cookie, and the CSRF token that goes with it.

The session lives in the cookie itself, encrypted and authenticated (Fernet): no server-side store, so
any hub process that has the same `console.session_secret` reads it. The cookie is `HttpOnly` (no script
reads it), `SameSite=Strict` (no other site's page sends it) and `Secure` when the console is reached
over https (`console.public_url`). Each session carries a random CSRF token that every state-changing
request must echo (form field or `X-CSRF-Token` header): SameSite alone does not cover older browsers
or a sibling subdomain.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass

from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken

from hub.console.config import ConsoleConfig

COOKIE = "aktenhub_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Person:
    """A logged-in person: the name the audit trail records, the role, and the session's CSRF token."""

    name: str
    role: str  # viewer | operator | admin
    csrf: str
    via: str  # "oidc" or "token"
    expires: float  # Unix time
    # What the identity provider needs to end its own session at logout (OIDC id_token_hint), if any.
    id_token: str | None = None

    def csrf_matches(self, presented: str | None) -> bool:
        """Whether `presented` is this session's CSRF token (constant time)."""
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf.encode())


class Sessions:
    """Seals and opens session cookies with the console's key."""

    def __init__(self, config: ConsoleConfig) -> None:
        secret = config.session_secret.get_secret_value() if config.session_secret else None
        material = secret.encode() if secret else secrets.token_bytes(32)
        # Fernet wants 32 url-safe base64 bytes; a passphrase of any length is stretched to that.
        key = base64.urlsafe_b64encode(hashlib.sha256(b"aktenhub-console-session\0" + material).digest())
        self._fernet = Fernet(key)
        self._lifetime = config.session_minutes * 60
        self.secure = config.public_url is not None and config.public_url.scheme == "https"
        url = config.public_url
        # The origin browsers send (scheme://host[:port]) when the console is behind a reverse proxy.
        self.public_origin = None
        if url is not None:
            port = "" if url.port in (None, 80, 443) else f":{url.port}"
            self.public_origin = f"{url.scheme}://{url.host}{port}"

    def start(
        self, response: web.StreamResponse, name: str, role: str, via: str, id_token: str | None = None
    ) -> Person:
        """Log `name` in with `role`: set the session cookie on `response`."""
        person = Person(
            name=name,
            role=role,
            csrf=secrets.token_urlsafe(32),
            via=via,
            expires=time.time() + self._lifetime,
            id_token=id_token,
        )
        self.set_cookie(response, COOKIE, self.seal(asdict(person)), self._lifetime)
        return person

    def person(self, request: web.Request) -> Person | None:
        """The person the request's session cookie names, or None (absent, forged, expired)."""
        sealed = request.cookies.get(COOKIE)
        data = self.unseal(sealed, self._lifetime) if sealed else None
        if data is None:
            return None
        try:
            person = Person(**data)  # type: ignore[arg-type]  # the fields `start` sealed
        except TypeError:
            return None
        return person if person.expires > time.time() else None

    def end(self, response: web.StreamResponse) -> None:
        """Log out: the cookie is emptied and expires at once."""
        self.set_cookie(response, COOKIE, "", 0)

    def seal(self, data: dict[str, object]) -> str:
        """`data` encrypted and authenticated with the session key (for short-lived flow cookies)."""
        return self._fernet.encrypt(json.dumps(data).encode()).decode()

    def unseal(self, sealed: str, max_age: int) -> dict[str, object] | None:
        """What `seal` sealed, if authentic and younger than `max_age` seconds; else None."""
        try:
            data = json.loads(self._fernet.decrypt(sealed.encode(), ttl=max_age))
        except (InvalidToken, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def set_cookie(
        self, response: web.StreamResponse, name: str, value: str, max_age: int, samesite: str = "Strict"
    ) -> None:
        """A console cookie: HttpOnly, path /ui/, Secure behind TLS."""
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/ui/",
            httponly=True,
            secure=self.secure,
            samesite=samesite,
        )
