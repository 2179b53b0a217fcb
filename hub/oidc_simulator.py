"""The OpenID Connect provider simulator: a Kreis' identity provider (Keycloak-like) for the console's login.

Run it with ``aktenhub simulate oidc --port 8097`` (on another port, name it in the issuer too:
``--option issuer=http://127.0.0.1:PORT/realms/kreis``); tests start `make_app` on a loopback socket
(`hub.testing.oidc.running_provider`), the demo starts it beside the hub. It is as strict as Keycloak
where the console's client could go wrong: an unknown client, a wrong secret, a redirect address that
is not registered, a missing or wrong PKCE verifier (S256 only), a code used twice, a code older than
its lifetime, a code redeemed by another client or with another redirect address are refused with
the OAuth 2.0 error a real provider sends (RFC 6749 §4.1.2.1, §5.2).

Endpoints (under the issuer's path, e.g. ``/realms/kreis``):

- ``GET /.well-known/openid-configuration`` (discovery), ``GET /protocol/openid-connect/certs`` (JWKS)
- ``GET /protocol/openid-connect/auth``: the login form (pick a configured user, or "Abbrechen" for
  ``access_denied``); with ``auto_login`` the configured user is logged in at once; an SSO session
  cookie logs the same browser in again without the form until it logs out
- ``POST /protocol/openid-connect/token``: authorization code grant, ``client_secret_basic`` or
  ``client_secret_post``
- ``GET|POST /protocol/openid-connect/userinfo`` (Bearer access token)
- ``GET /protocol/openid-connect/logout``: RP-initiated logout (``id_token_hint``,
  ``post_logout_redirect_uri``, ``client_id``, ``state``)
- ``GET|POST /_sim/faults``: the usual fault knobs plus ``id_token``, a defect of the next ID token
  (to prove the client refuses it); ``GET /_sim/logins``, ``GET /_sim/logouts``: what happened.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote_plus, urlencode, urlsplit

from aiohttp import web
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from pydantic import BaseModel, ConfigDict, Field

from hub.simulation import (
    FaultKnobs,
    SimulatedFaults,
    basic_credentials,
    bearer_token,
    fault_middleware,
    fault_routes,
    secret_matches,
)

Algorithm = Literal["RS256", "PS256", "ES256"]
TokenAuthMethod = Literal["client_secret_basic", "client_secret_post"]
# What can be wrong with the next ID token the simulator issues (each one a test of the client).
IdTokenDefect = Literal[
    "wrong_audience",  # aud is another client
    "wrong_issuer",  # iss is another provider
    "expired",  # exp (and iat) an hour ago
    "alg_none",  # unsigned (alg "none")
    "hs256",  # HMAC-signed with the public key as secret (the classic key confusion)
    "foreign_key",  # signed by a key the JWKS does not hold, with the kid of one it holds
    "wrong_nonce",  # another login's nonce
    "several_audiences",  # aud names another client too, azp is that other client
]
PROVIDER_PATH = "/protocol/openid-connect"
SSO_COOKIE = "OIDC_SIM_SESSION"
MAX_FORM = 64 * 1024
_VERIFIER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class SimulatedClient(BaseModel):
    """A client registered at the provider (Keycloak: a client of the realm)."""

    model_config = ConfigDict(extra="forbid")

    secret: str | None = Field(None, description="the client secret (None: a public client)")
    # Keycloak's "Valid redirect URIs": exact, or a prefix ending in "*".
    redirect_uris: list[str] = Field(default_factory=list)
    post_logout_redirect_uris: list[str] = Field(default_factory=list)
    pkce: bool = Field(True, description="demand PKCE with S256 (Keycloak: 'Proof Key for Code Exchange')")


class SimulatedUser(BaseModel):
    """A person who can log in: the claims the provider asserts about them (roles, groups, name, ...)."""

    model_config = ConfigDict(extra="forbid")

    claims: dict[str, Any] = Field(default_factory=dict)
    # Claims only the userinfo endpoint tells (Keycloak mappers "add to userinfo" only, group overage).
    userinfo_claims: dict[str, Any] = Field(default_factory=dict)


class ProviderOptions(BaseModel):
    """Options of the simulator (from a test, or YAML-parsed values from the command line)."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field("http://127.0.0.1:8097/realms/kreis", pattern=r"^https?://[^?#]+$")
    clients: dict[str, SimulatedClient] = Field(
        default_factory=lambda: {
            "aktenhub": SimulatedClient(
                secret="simulator-secret",  # noqa: S106 - the simulator's documented default
                redirect_uris=["http://127.0.0.1:*"],
                post_logout_redirect_uris=["http://127.0.0.1:*"],
            )
        }
    )
    users: dict[str, SimulatedUser] = Field(default_factory=lambda: demo_users())
    auto_login: str | None = Field(None, description="log this user in without the form (tests)")
    algorithm: Algorithm = "RS256"
    token_auth_methods: list[TokenAuthMethod] = Field(
        default_factory=lambda: list[TokenAuthMethod](["client_secret_basic", "client_secret_post"]),
        min_length=1,
    )
    code_seconds: float = Field(60.0, gt=0, description="a code's lifetime (Keycloak: 1 minute)")
    token_seconds: float = Field(300.0, gt=0, description="ID and access tokens' lifetime")


def _keycloak_user(login: str, name: str, roles: list[str]) -> SimulatedUser:
    given, _, family = name.partition(" ")
    return SimulatedUser(
        claims={
            "preferred_username": login,
            "name": name,
            "given_name": given,
            "family_name": family,
            "email": f"{login}@kreis.example",
            "realm_access": {"roles": roles},
        }
    )


# The console's `role_map` for the demo users' realm roles.
DEMO_ROLE_MAP = {
    "admin": ["aktenhub-admin"],
    "operator": ["aktenhub-operator"],
    "viewer": ["aktenhub-viewer"],
}


def demo_users() -> dict[str, SimulatedUser]:
    """The demo's people: one per console role and one without, with Keycloak's realm roles."""
    return {
        "anna.admin": _keycloak_user("anna.admin", "Anna Admin", ["aktenhub-admin", "offline_access"]),
        "otto.operator": _keycloak_user("otto.operator", "Otto Operator", ["aktenhub-operator"]),
        "vera.viewer": _keycloak_user("vera.viewer", "Vera Viewer", ["aktenhub-viewer"]),
        "gustav.gast": _keycloak_user("gustav.gast", "Gustav Gast", ["offline_access"]),
    }


class ProviderKnobs(FaultKnobs):
    """The fault knobs, and a defect for the next ID token."""

    id_token: IdTokenDefect | None = None


@dataclass
class _Authorization:
    """A login in progress, or the code it ended with."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    challenge: str | None
    user: str | None = None
    sid: str | None = None
    issued: float = 0.0


@dataclass
class _Grant:
    """An access token issued: whom it is for (userinfo)."""

    user: str
    client_id: str
    expires: float


@dataclass
class ProviderState(SimulatedFaults[ProviderKnobs]):
    """The provider's keys, clients, users, logins in progress, codes, tokens and SSO sessions."""

    options: ProviderOptions
    knobs: ProviderKnobs = field(default_factory=ProviderKnobs)
    pending: dict[str, _Authorization] = field(default_factory=dict)  # login form id -> request
    codes: dict[str, _Authorization] = field(default_factory=dict)
    used_codes: set[str] = field(default_factory=set)
    grants: dict[str, _Grant] = field(default_factory=dict)  # access token -> grant
    sessions: dict[str, str] = field(default_factory=dict)  # SSO session id -> user
    logins: list[dict[str, str]] = field(default_factory=list)
    logouts: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[str] = field(default_factory=list)  # the client authentication each used
    key: RSAKey | ECKey = field(init=False)

    def __post_init__(self) -> None:
        self.rotate_key()

    def rotate_key(self) -> None:
        """Sign with a new key from now on (its JWKS holds only the new one), as after a key rollover."""
        self.key = (
            ECKey.generate_key("P-256", auto_kid=True)
            if self.options.algorithm == "ES256"
            else RSAKey.generate_key(2048, auto_kid=True)
        )

    @property
    def issuer(self) -> str:
        """The issuer identifier, exactly as in every token."""
        return self.options.issuer

    def jwks(self) -> dict[str, Any]:
        """The public keys (JWKS) the provider signs with."""
        public = self.key.as_dict(private=False, use="sig", alg=self.options.algorithm)
        return {"keys": [public]}

    def discovery(self) -> dict[str, Any]:
        """The discovery document (OpenID Connect Discovery 1.0 §3), as Keycloak publishes it."""
        base = self.issuer + PROVIDER_PATH
        return {
            "issuer": self.issuer,
            "authorization_endpoint": base + "/auth",
            "token_endpoint": base + "/token",
            "userinfo_endpoint": base + "/userinfo",
            "end_session_endpoint": base + "/logout",
            "jwks_uri": base + "/certs",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.options.algorithm],
            "scopes_supported": ["openid", "profile", "email", "roles"],
            "token_endpoint_auth_methods_supported": list(self.options.token_auth_methods),
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "name", "preferred_username"],
        }

    def subject(self, user: str) -> str:
        """A user's stable subject identifier (as Keycloak's user id, a UUID)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, self.issuer + "/users/" + user))

    def id_token(self, grant: _Authorization, now: float) -> str:
        """The signed ID token of a redeemed code, with the defect the knobs ask for (once)."""
        assert grant.user is not None
        claims: dict[str, Any] = {
            **self.options.users[grant.user].claims,
            "iss": self.issuer,
            "sub": self.subject(grant.user),
            "aud": grant.client_id,
            "azp": grant.client_id,
            "exp": int(now + self.options.token_seconds),
            "iat": int(now),
            "auth_time": int(grant.issued),
            "typ": "ID",
            "sid": grant.sid,
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        defect, self.knobs.id_token = self.knobs.id_token, None
        header: dict[str, Any] = {"alg": self.options.algorithm, "kid": self.key.kid}
        key: RSAKey | ECKey = self.key
        if defect == "wrong_audience":
            claims["aud"] = claims["azp"] = "another-client"
        elif defect == "several_audiences":
            claims["aud"] = [grant.client_id, "another-client"]
            claims["azp"] = "another-client"
        elif defect == "wrong_issuer":
            claims["iss"] = "https://idp.elsewhere.example/realms/kreis"
        elif defect == "expired":
            claims["iat"], claims["exp"] = int(now - 3600), int(now - 1800)
        elif defect == "wrong_nonce":
            claims["nonce"] = secrets.token_urlsafe(16)
        elif defect == "foreign_key":
            key = (
                ECKey.generate_key("P-256")
                if isinstance(self.key, ECKey)
                else RSAKey.generate_key(2048, auto_kid=False)
            )
        elif defect == "hs256":
            # joserfc refuses to make this token; the attacker's own code does not.
            secret = self.key.as_pem(private=False)
            return _hand_made({"alg": "HS256", "typ": "JWT", "kid": self.key.kid}, claims, secret)
        elif defect == "alg_none":
            return _hand_made({"alg": "none", "typ": "JWT"}, claims, None)
        return jwt.encode(header, claims, key, algorithms=[header["alg"]])

    def verify_hint(self, token: str) -> dict[str, Any] | None:
        """The claims of an ID token this provider issued (expired ones too, as Keycloak takes them)."""
        try:
            decoded = jwt.decode(token, KeySet([self.key]), algorithms=[self.options.algorithm])
        except (JoseError, ValueError):
            return None
        return decoded.claims if decoded.claims.get("iss") == self.issuer else None


def _hand_made(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None) -> str:
    """A JWS no honest library makes: unsigned (alg none), or HMAC-signed with a public key."""

    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(claims).encode())}"
    if hmac_key is None:
        return signing_input + "."
    signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


def redirect_allowed(uri: str, registered: list[str]) -> bool:
    """Whether `uri` is registered: exactly, or by a prefix ending in ``*`` (Keycloak's rule)."""
    if urlsplit(uri).fragment or "#" in uri:
        return False
    return any(uri == r or (r.endswith("*") and uri.startswith(r[:-1])) for r in registered)


def s256(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 §4.2)."""
    # Computed here, not taken from the console's client: a bug they shared would pass every test.
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


PROVIDER = web.AppKey("oidc_provider_state", ProviderState)


def make_app(**options: Any) -> web.Application:
    """The simulator as an aiohttp application; `app[PROVIDER]` is its `ProviderState`."""
    settings = ProviderOptions.model_validate(options)
    if settings.auto_login is not None and settings.auto_login not in settings.users:
        raise ValueError(f"auto_login names no configured user: {settings.auto_login!r}")
    state = ProviderState(settings)
    app = web.Application(middlewares=[fault_middleware(PROVIDER, _fault_answer)], client_max_size=MAX_FORM)
    app[PROVIDER] = state
    prefix = urlsplit(settings.issuer).path.rstrip("/")
    base = prefix + PROVIDER_PATH
    app.router.add_get(prefix + "/.well-known/openid-configuration", _discovery)
    app.router.add_get(base + "/certs", _jwks)
    app.router.add_get(base + "/auth", _authorize)
    app.router.add_post(base + "/auth", _login_form)
    app.router.add_post(base + "/token", _token)
    app.router.add_route("GET", base + "/userinfo", _userinfo)
    app.router.add_route("POST", base + "/userinfo", _userinfo)
    app.router.add_get(base + "/logout", _logout)
    app.add_routes(fault_routes(PROVIDER))
    app.router.add_get("/_sim/logins", _logins)
    app.router.add_get("/_sim/logouts", _logouts)

    async def release(app: web.Application) -> None:
        app[PROVIDER].release()

    app.on_shutdown.append(release)
    return app


def _fault_answer(status: int, message: str) -> web.Response:
    return web.json_response(
        {"error": "temporarily_unavailable", "error_description": message}, status=status
    )


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    # RFC 6749 §5.2; Keycloak answers the same shape.
    return web.json_response(
        {"error": error, "error_description": description},
        status=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _error_page(status: int, message: str) -> web.Response:
    # What Keycloak shows when it cannot redirect back (unknown client, unregistered redirect_uri).
    page = f"<!DOCTYPE html><html lang='de'><title>Fehler</title><h1>Fehler</h1><p>{html.escape(message)}</p>"
    return web.Response(status=status, text=page, content_type="text/html")


async def _discovery(request: web.Request) -> web.Response:
    return web.json_response(request.app[PROVIDER].discovery())


async def _jwks(request: web.Request) -> web.Response:
    return web.json_response(request.app[PROVIDER].jwks())


def _redirect(uri: str, params: dict[str, str | None]) -> web.HTTPFound:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return web.HTTPFound(uri + ("&" if "?" in uri else "?") + query)


async def _authorize(request: web.Request) -> web.StreamResponse:
    """The authorization endpoint (OpenID Connect Core §3.1.2.1)."""
    state = request.app[PROVIDER]
    query = request.query
    client_id = query.get("client_id", "")
    client = state.options.clients.get(client_id)
    if client is None:
        return _error_page(400, "Client not found.")
    redirect_uri = query.get("redirect_uri", "")
    if not redirect_allowed(redirect_uri, client.redirect_uris):
        return _error_page(400, "Invalid parameter: redirect_uri")
    flow_state = query.get("state")

    def refuse(error: str, description: str) -> web.HTTPFound:
        return _redirect(
            redirect_uri, {"error": error, "error_description": description, "state": flow_state}
        )

    if query.get("response_type") != "code":
        raise refuse("unsupported_response_type", "Client is not allowed to initiate browser login")
    scope = query.get("scope", "")
    if "openid" not in scope.split():
        raise refuse("invalid_scope", "Missing openid scope")
    challenge = query.get("code_challenge")
    method = query.get("code_challenge_method")
    if client.pkce and not challenge:
        raise refuse("invalid_request", "Missing parameter: code_challenge_method")
    if challenge is not None and (method != "S256" or not 43 <= len(challenge) <= 128):
        raise refuse("invalid_request", "Invalid parameter: code_challenge_method")
    pending = _Authorization(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        state=flow_state,
        nonce=query.get("nonce"),
        challenge=challenge,
    )
    user = state.options.auto_login
    sid = request.cookies.get(SSO_COOKIE)
    if user is None and sid in state.sessions and query.get("prompt") != "login":
        user = state.sessions[sid]
    if user is not None:
        raise _issue_code(state, pending, user, sid if sid in state.sessions else None)
    form_id = secrets.token_urlsafe(24)
    state.pending[form_id] = pending
    return _login_page(state, form_id)


def _login_page(state: ProviderState, form_id: str) -> web.Response:
    choices = "".join(
        f'<p><input type="radio" name="username" id="u{i}" value="{html.escape(name)}"'
        f'{" checked" if i == 0 else ""}> <label for="u{i}">{html.escape(name)}'
        f" ({html.escape(str(user.claims.get('name', '')))})</label></p>"
        for i, (name, user) in enumerate(state.options.users.items())
    )
    page = (
        "<!DOCTYPE html><html lang='de'><head><meta charset='utf-8'><title>Anmeldung beim Kreis"
        "</title></head><body><main><h1>Anmeldung beim Kreis (Simulator)</h1>"
        f"<form method='post'><input type='hidden' name='session_code' value='{form_id}'>"
        f"<fieldset><legend>Benutzerkonto</legend>{choices}</fieldset>"
        "<p><button type='submit' name='login' value='1'>Anmelden</button> "
        "<button type='submit' name='cancel' value='1'>Abbrechen</button></p></form></main></body></html>"
    )
    return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})


async def _login_form(request: web.Request) -> web.StreamResponse:
    """The login form's answer: the chosen user logs in (an SSO session starts), or cancels."""
    state = request.app[PROVIDER]
    form = await request.post()
    form_id = str(form.get("session_code", ""))
    pending = state.pending.pop(form_id, None)
    if pending is None:
        # Keycloak: "Your login attempt timed out. Login will start from the beginning."
        return _error_page(400, "Die Anmeldung ist abgelaufen. Bitte von vorn beginnen.")
    if form.get("cancel"):
        raise _redirect(
            pending.redirect_uri,
            {"error": "access_denied", "error_description": "User cancelled", "state": pending.state},
        )
    user = str(form.get("username", ""))
    if user not in state.options.users:
        state.pending[form_id] = pending
        return _login_page(state, form_id)
    sid = secrets.token_urlsafe(24)
    state.sessions[sid] = user
    found = _issue_code(state, pending, user, sid)
    found.set_cookie(SSO_COOKIE, sid, httponly=True, samesite="Lax", path="/")
    raise found


def _issue_code(state: ProviderState, pending: _Authorization, user: str, sid: str | None) -> web.HTTPFound:
    code = secrets.token_urlsafe(32)
    pending.user, pending.sid, pending.issued = user, sid, time.time()
    state.codes[code] = pending
    state.logins.append({"user": user, "client_id": pending.client_id})
    return _redirect(pending.redirect_uri, {"code": code, "state": pending.state})


def _client_of(request: web.Request, form: dict[str, str], state: ProviderState) -> str | web.Response:
    """The authenticated client's id, or the 400/401 answer (RFC 6749 §2.3.1, §5.2)."""
    header = request.headers.get("Authorization")
    basic = basic_credentials(header) if header else None
    if header and basic is None:
        return _oauth_error(401, "invalid_client", "Invalid client credentials")
    if basic is not None and ("client_secret" in form or form.get("client_id", basic[0]) != basic[0]):
        return _oauth_error(400, "invalid_request", "Multiple client authentication methods")
    # client_secret_basic: id and secret are form-urlencoded before the Basic encoding.
    client_id, secret = (
        (unquote_plus(basic[0]), unquote_plus(basic[1]))
        if basic is not None
        else (form.get("client_id", ""), form.get("client_secret"))
    )
    method = "client_secret_basic" if basic is not None else "client_secret_post" if secret else "none"
    if method != "none" and method not in state.options.token_auth_methods:
        return _oauth_error(401, "invalid_client", f"Client authentication {method} is not supported")
    state.token_requests.append(method)
    client = state.options.clients.get(client_id)
    if client is None:
        return _oauth_error(401, "invalid_client", "Invalid client or Invalid client credentials")
    if client.secret is not None and not secret_matches(secret or "", client.secret):
        return _oauth_error(401, "unauthorized_client", "Invalid client or Invalid client credentials")
    return client_id


async def _token(request: web.Request) -> web.StreamResponse:
    """The token endpoint: the authorization code grant only (OpenID Connect Core §3.1.3)."""
    state = request.app[PROVIDER]
    if request.content_type != "application/x-www-form-urlencoded":
        return _oauth_error(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
    raw = await request.post()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    client_id = _client_of(request, form, state)
    if isinstance(client_id, web.Response):
        return client_id
    if form.get("grant_type") != "authorization_code":
        return _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
    code = form.get("code", "")
    grant = state.codes.pop(code, None)
    if code in state.used_codes:
        # A replayed code: refused (and, as Keycloak does, the tokens it gave are revoked).
        for token in [t for t, g in state.grants.items() if g.client_id == client_id]:
            state.grants.pop(token, None)
        return _oauth_error(400, "invalid_grant", "Code not valid")
    if grant is None:
        return _oauth_error(400, "invalid_grant", "Code not valid")
    state.used_codes.add(code)
    now = time.time()
    if now - grant.issued > state.options.code_seconds:
        return _oauth_error(400, "invalid_grant", "Code not valid")
    if grant.client_id != client_id:
        return _oauth_error(400, "invalid_grant", "Got code for a different client")
    if form.get("redirect_uri") != grant.redirect_uri:
        return _oauth_error(400, "invalid_grant", "Incorrect redirect_uri")
    if grant.challenge is not None:
        verifier = form.get("code_verifier")
        if verifier is None:
            return _oauth_error(400, "invalid_grant", "PKCE code verifier not specified")
        if not (43 <= len(verifier) <= 128 and set(verifier) <= _VERIFIER):
            return _oauth_error(400, "invalid_grant", "Invalid code verifier")
        if not secrets.compare_digest(s256(verifier), grant.challenge):
            return _oauth_error(400, "invalid_grant", "PKCE verification failed")
    access = secrets.token_urlsafe(32)
    assert grant.user is not None
    state.grants[access] = _Grant(grant.user, client_id, now + state.options.token_seconds)
    body = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": int(state.options.token_seconds),
        "id_token": state.id_token(grant, now),
        "scope": grant.scope,
    }
    return web.json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def _userinfo(request: web.Request) -> web.Response:
    """The userinfo endpoint (OpenID Connect Core §5.3): the user's claims for a valid access token."""
    state = request.app[PROVIDER]
    token = bearer_token(request.headers.get("Authorization", ""))
    grant = state.grants.get(token or "")
    if grant is None or grant.expires < time.time():
        return web.json_response(
            {"error": "invalid_token", "error_description": "Token verification failed"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="kreis", error="invalid_token"'},
        )
    user = state.options.users[grant.user]
    return web.json_response({**user.claims, **user.userinfo_claims, "sub": state.subject(grant.user)})


async def _logout(request: web.Request) -> web.StreamResponse:
    """RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2): the SSO session ends."""
    state = request.app[PROVIDER]
    query = request.query
    hint = query.get("id_token_hint")
    claims = state.verify_hint(hint) if hint else None
    if hint and claims is None:
        return _error_page(400, "Invalid parameter: id_token_hint")
    client_id = query.get("client_id") or (str(claims.get("azp", "")) if claims else "")
    if claims is not None and query.get("client_id") and claims.get("azp") != query.get("client_id"):
        return _error_page(400, "Parameter client_id does not match the id_token_hint")
    target = query.get("post_logout_redirect_uri")
    if target is not None:
        client = state.options.clients.get(client_id)
        if client is None:
            return _error_page(400, "Either the parameter client_id or id_token_hint is required")
        if not redirect_allowed(target, client.post_logout_redirect_uris):
            return _error_page(400, "Invalid redirect uri")
    sid = request.cookies.get(SSO_COOKIE)
    ended = {s for s in (sid, claims.get("sid") if claims else None) if isinstance(s, str)}
    user = next((state.sessions.pop(s) for s in ended if s in state.sessions), "")
    state.logouts.append({"user": user, "client_id": client_id, "hint": "yes" if claims else "no"})
    if target is None:
        response: web.StreamResponse = _error_page(200, "Sie sind abgemeldet.")
    else:
        response = _redirect(target, {"state": query.get("state")})
    response.del_cookie(SSO_COOKIE, path="/")
    if isinstance(response, web.HTTPFound):
        raise response
    return response


async def _logins(request: web.Request) -> web.Response:
    return web.json_response(request.app[PROVIDER].logins)


async def _logouts(request: web.Request) -> web.Response:
    return web.json_response(request.app[PROVIDER].logouts)
