"""The simulated OAuth 2 token endpoint: client credentials, ``client_secret_basic`` or ``_post``."""

from __future__ import annotations

from urllib.parse import unquote_plus

from aiohttp import hdrs, web

from hub.simulation import basic_credentials, secret_matches

from .common import STATE
from .problems import OAuthRefused, oauth_error


async def token_endpoint(request: web.Request) -> web.Response:
    """``POST /token``: client credentials by ``client_secret_basic`` or ``client_secret_post``."""
    state = request.app[STATE]
    basic = basic_credentials(request.headers.get(hdrs.AUTHORIZATION, ""))
    if basic is not None:  # RFC 6749, section 2.3.1: both parts are form-urlencoded
        basic = (unquote_plus(basic[0]), unquote_plus(basic[1]))
    try:
        if request.content_type != "application/x-www-form-urlencoded":
            raise OAuthRefused(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            raise OAuthRefused(400, "unsupported_grant_type", "only client_credentials is supported")
        posted = (str(form.get("client_id", "")), str(form.get("client_secret", "")))
        if basic and posted[1]:
            raise OAuthRefused(400, "invalid_request", "client authentication by more than one method")
        client_id, secret = basic or posted
        client = state.clients.get(client_id)
        if not secret_matches(secret, client.secret if client else None) or client is None:
            raise OAuthRefused(401, "invalid_client", "client authentication failed")
        requested = str(form.get("scope", "")).split()
        if not set(requested) <= client.scopes:
            raise OAuthRefused(400, "invalid_scope", "a requested scope is not granted to this client")
        scopes = frozenset(requested) or client.scopes
    except OAuthRefused as refused:
        return oauth_error(refused, basic is not None)
    value, _ = state.issue_token(client, scopes)
    answer = {
        "access_token": value,
        "token_type": "Bearer",
        "expires_in": state.options.token_lifetime_seconds,
        "scope": " ".join(sorted(scopes)),
    }
    return web.json_response(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
