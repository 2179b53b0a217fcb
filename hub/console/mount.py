"""Mounting the console on the hub's HTTP application, with its security headers."""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

from aiohttp import web

from hub.console import applications, audit, connectors, dashboard, dead, held
from hub.console.guard import SESSIONS
from hub.console.login import TOKENS, add_login_routes
from hub.console.session import Sessions
from hub.console.templating import TEMPLATES, environment
from hub.http.auth import TokenAuth

if TYPE_CHECKING:
    from hub.runtime import Hub

UI_PREFIX = "/ui/"
# The console's own pages load nothing from elsewhere; `form-action` (last, so an origin can be added)
# gains the identity provider's origin when OpenID Connect is set up (its logout is reached by a
# form's redirect).
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
CSP_HEADER: web.AppKey[str] = web.AppKey("console_csp", str)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(UI_PREFIX) or request.path == "/ui":
        response.headers.setdefault("Content-Security-Policy", request.app[CSP_HEADER])
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")


async def _to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(UI_PREFIX)


def add_console(app: web.Application, hub: Hub) -> None:
    """Mount the console (unless `console.enabled` is false)."""
    config = hub.config.hub.console
    if not config.enabled:
        return
    app[SESSIONS] = Sessions(config)
    app[TEMPLATES] = environment()
    app[CSP_HEADER] = CSP
    if config.token_login and hub.config.hub.server.admin_tokens:
        app[TOKENS] = TokenAuth(hub.config.hub.server.admin_tokens)
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/ui", _to_console)
    app.router.add_static("/ui/static/", str(files("hub.console") / "static"), append_version=False)
    add_login_routes(app)
    if config.oidc is not None:
        from hub.console.oidc import add_oidc_routes, origin_of

        # The logout form's redirect ends at the provider's end_session_endpoint on the issuer's origin.
        app[CSP_HEADER] = CSP + " " + origin_of(config.oidc.issuer)
        add_oidc_routes(app, config)
    dashboard.add_routes(app, hub)
    applications.add_routes(app, hub)
    dead.add_routes(app, hub)
    held.add_routes(app, hub)
    connectors.add_routes(app, hub)
    audit.add_routes(app, hub)
