"""Bearer tokens for the admin API, with roles viewer < operator < admin."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Literal

from aiohttp import web

from hub.config import AdminToken

Role = Literal["viewer", "operator", "admin"]
RANK: dict[str, int] = {"viewer": 1, "operator": 2, "admin": 3}


def sees_personal_data(role: str) -> bool:
    """Viewers see metadata only; operators and admins see what applications and messages contain."""
    return RANK[role] >= RANK["operator"]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CALLER = web.RequestKey("caller", str)
ROLE = web.RequestKey("role", str)


class TokenAuth:
    """Checks the `Authorization: Bearer ...` header against the configured tokens."""

    def __init__(self, tokens: list[AdminToken]) -> None:
        self._tokens = [(t.token.get_secret_value().encode(), t.role, t.name) for t in tokens]

    def identify(self, request: web.Request) -> tuple[str, str] | None:
        """(name, role) of the caller, or None."""
        headers = request.headers.getall("Authorization", [])
        if len(headers) != 1:
            return None  # none, or ambiguous: a proxy in front may have looked at the other one
        header = headers[0]
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return None
        return self.match(presented.strip())

    def match(self, presented: str) -> tuple[str, str] | None:
        """(name, role) of the token `presented` (a header's, or one typed into the console's login)."""
        given = presented.encode()
        found = None
        for secret, role, name in self._tokens:
            # Compare against every token so timing tells nothing about which one nearly matched.
            if hmac.compare_digest(given, secret) and found is None:
                found = (name, role)
        return found

    def require(self, role: Role) -> Callable[[Handler], Handler]:
        """Decorator: the handler needs at least `role`."""

        def wrap(handler: Handler) -> Handler:
            async def checked(request: web.Request) -> web.StreamResponse:
                if len(request.headers.getall("Authorization", [])) > 1:
                    return web.json_response(
                        {"error": "the Authorization header is given more than once"},
                        status=401,
                        headers={"WWW-Authenticate": 'Bearer realm="aktenhub"'},
                    )
                who = self.identify(request)
                if who is None:
                    return web.json_response(
                        {"error": "missing or unknown bearer token"},
                        status=401,
                        headers={"WWW-Authenticate": 'Bearer realm="aktenhub"'},
                    )
                if RANK[who[1]] < RANK[role]:
                    return web.json_response(
                        {"error": f"this needs role {role}; your token has role {who[1]}"},
                        status=403,
                    )
                request[CALLER], request[ROLE] = who
                return await handler(request)

            return checked

        return wrap
