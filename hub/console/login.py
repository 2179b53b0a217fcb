"""Logging in and out of the console: the login page, the admin-token fallback, logout.

OpenID Connect (`hub.console.oidc`) is the way in for people; the token form is the fallback for when
the identity provider is down or not set up. A login form is protected against login CSRF by a
double-submit nonce in a short-lived SameSite=Strict cookie.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from hub.console.guard import SESSIONS, guarded, person_of
from hub.console.session import Person
from hub.console.templating import render
from hub.http.auth import TokenAuth

LOGIN_NONCE = "aktenhub_login"
TOKENS: web.AppKey[TokenAuth] = web.AppKey("console_tokens", TokenAuth)
# Whether the OIDC login is offered (set by `hub.console.oidc` when configured).
OIDC_LABEL: web.AppKey[str] = web.AppKey("console_oidc_label", str)
# Where a logout leads after the session ended (the identity provider's own logout), if anywhere.
EndSession = Callable[[web.Request, Person], Awaitable[str | None]]
LOGOUT_TARGET: web.AppKey[EndSession] = web.AppKey("console_logout_target")


def safe_next(value: str | None) -> str:
    """Where to go after login: only a path inside the console, never another site."""
    if not value or not value.startswith("/ui/") or value.startswith("//"):
        return "/ui/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/ui/"
    return value


async def login_page(request: web.Request, problem: str | None = None, status: int = 200) -> web.Response:
    """The login page: the identity provider's button and, if allowed, the token form."""
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        status=status,
        nonce=nonce,
        next=safe_next(request.query.get("next")),
        problem=problem,
        oidc_label=request.app.get(OIDC_LABEL),
        token_login=TOKENS in request.app,
    )
    request.app[SESSIONS].set_cookie(response, LOGIN_NONCE, nonce, 600)
    return response


async def token_login(request: web.Request) -> web.StreamResponse:
    """The fallback: log in with an admin API token; the session takes the token's name and role."""
    form = await request.post()
    cookie = request.cookies.get(LOGIN_NONCE, "")
    nonce = form.get("nonce")
    if not cookie or not isinstance(nonce, str) or not hmac.compare_digest(cookie.encode(), nonce.encode()):
        return await login_page(request, "Das Anmeldeformular ist abgelaufen. Bitte erneut versuchen.", 403)
    token = form.get("token")
    who = request.app[TOKENS].match(token.strip()) if isinstance(token, str) and token.strip() else None
    if who is None:
        return await login_page(request, "Dieses Token ist unbekannt.", 401)
    next_value = form.get("next")
    response = web.HTTPSeeOther(safe_next(next_value if isinstance(next_value, str) else None))
    request.app[SESSIONS].start(response, name=who[0], role=who[1], via="token")
    request.app[SESSIONS].set_cookie(response, LOGIN_NONCE, "", 0)
    raise response


@guarded("viewer")
async def logout(request: web.Request) -> web.StreamResponse:
    """End the session (POST with the CSRF token, so no other site can log anybody out)."""
    end_session = request.app.get(LOGOUT_TARGET)
    elsewhere = await end_session(request, person_of(request)) if end_session is not None else None
    response = web.HTTPSeeOther(elsewhere or "/ui/login")
    request.app[SESSIONS].end(response)
    raise response


def add_login_routes(app: web.Application) -> None:
    """Mount the login page, the token login and the logout."""
    app.router.add_get("/ui/login", login_page)
    app.router.add_post("/ui/login/token", token_login)
    app.router.add_post("/ui/logout", logout)
