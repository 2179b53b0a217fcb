"""Login with OpenID Connect: the authorization code flow with PKCE against the Kreis' identity provider.

`/ui/oidc/login` sends the browser to the provider with `state`, `nonce` and an S256 code challenge;
what the callback needs to check the answer lives in a short-lived sealed cookie that is `SameSite=Lax`
(the provider's redirect back is a cross-site navigation, which a Strict cookie would not follow).
`/ui/oidc/callback` redeems the code at the token endpoint (`client_secret_basic`, or
`client_secret_post` when that is all the provider offers), validates the ID token with joserfc
(signature with an allowed algorithm and a key from the provider's JWKS, re-read once for an unknown
`kid`; `iss`, `aud`/`azp`, `exp`/`iat` with leeway, `nonce`), maps the role claim to a console role and
starts the session. Its Strict cookie is set on a small same-origin page that moves on by itself: a
browser does not send a Strict cookie on a redirect chain that began on another site.

Refusals (an error from the provider, a foreign or replayed `state`, an expired flow, a token that
does not validate, no mapped role) end on a German page without a session and are logged at INFO
without personal data. A provider that cannot be reached leaves the token form as the way in.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
from aiohttp import web
from joserfc import jwt
from joserfc.errors import ClaimError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.console.config import ConsoleConfig, OidcConfig
from hub.console.guard import SESSIONS
from hub.console.login import LOGOUT_TARGET, OIDC_LABEL, login_page, safe_next
from hub.console.session import Person
from hub.console.templating import render
from hub.errors import Permanent, Retryable
from hub.http.auth import Role
from hub.outbound import HttpEndpoint, Outbound

log = logging.getLogger("hub.console.oidc")

FLOW_COOKIE = "aktenhub_oidc"
FLOW_SECONDS = 600  # from the click on the button to the provider's answer
METADATA_SECONDS = 3600  # discovery and keys are read again after this long
MAX_IAT_AGE = 600  # an ID token issued longer ago than this is not a fresh login
# A sealed session cookie must stay under the browsers' 4096 bytes: a larger ID token (Entra ID with
# many groups) is not kept, and the logout names the client instead of the token.
MAX_KEPT_ID_TOKEN = 1800
_ERROR_CODE = re.compile(r"^[a-z_]{1,40}$")

UNREACHABLE = (
    "Der Anmeldedienst des Kreises ist zurzeit nicht erreichbar. Bitte später erneut versuchen oder "
    "mit einem API-Token anmelden."
)
NOT_COMPLETED = "Die Anmeldung konnte nicht abgeschlossen werden. Bitte erneut anmelden."


class ProviderMetadata(BaseModel):
    """What the console needs of the provider's discovery document (OpenID Connect Discovery 1.0 §3)."""

    model_config = ConfigDict(extra="ignore")

    issuer: str
    authorization_endpoint: str = Field(pattern=r"^https?://")
    token_endpoint: str = Field(pattern=r"^https?://")
    jwks_uri: str = Field(pattern=r"^https?://")
    userinfo_endpoint: str | None = Field(None, pattern=r"^https?://")
    end_session_endpoint: str | None = Field(None, pattern=r"^https?://")
    # Absent means client_secret_basic (Discovery §3).
    token_endpoint_auth_methods_supported: list[str] = Field(default_factory=lambda: ["client_secret_basic"])


class ProviderUnavailable(Exception):
    """The provider cannot be reached or answers nonsense: the login page offers the token form."""


class LoginRefused(Exception):
    """The login does not go through: a German `message` for the person, a `reason` for the log."""

    def __init__(self, reason: str, message: str = NOT_COMPLETED, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Login:
    """Who logged in: the audit trail's name, the console role, the ID token kept for the logout."""

    name: str
    role: Role
    id_token: str | None


@dataclass(frozen=True)
class Tokens:
    """What the token endpoint gave: the ID token, and the access token for the userinfo endpoint."""

    id_token: str
    access_token: str | None


def origin_of(url: str) -> str:
    """scheme://host[:port] of an address."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def s256_challenge(verifier: str) -> str:
    """The PKCE code challenge of `verifier` (RFC 7636 §4.2, S256)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted claim path (``realm_access.roles``); a claim whose name itself has dots
    (``resource_access.my.client.roles``, ADFS' URI claim names) is found too, longest name first."""
    if path in claims:
        return claims[path]
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        inner = claims.get(head)
        if isinstance(inner, Mapping):
            found = claim_at(inner, ".".join(parts[cut:]))
            if found is not None:
                return found
    return None


def role_of(claims: Mapping[str, Any], config: OidcConfig) -> Role | None:
    """The highest console role the role claim's values are mapped to, or None."""
    value = claim_at(claims, config.role_claim)
    found = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    values = {v for v in found if isinstance(v, str)}
    mapping: tuple[tuple[Role, list[str]], ...] = (
        ("admin", config.role_map.admin),
        ("operator", config.role_map.operator),
        ("viewer", config.role_map.viewer),
    )
    return next((role for role, names in mapping if values & set(names)), None)


def name_of(claims: Mapping[str, Any], config: OidcConfig) -> str:
    """The name the audit trail records: the configured claim, else the subject."""
    value = claim_at(claims, config.name_claim)
    return value if isinstance(value, str) and value.strip() else str(claims["sub"])


class OidcClient:
    """The console as a client of one OpenID Connect provider: discovery, keys, tokens, validation."""

    def __init__(self, config: OidcConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        endpoint = HttpEndpoint(
            base_url=config.issuer, tls=config.tls, timeout_seconds=config.timeout_seconds
        )
        self._http = Outbound(self._client_session, endpoint, system="the identity provider")
        self._metadata: ProviderMetadata | None = None
        self._metadata_read = 0.0
        self._keys: KeySet | None = None
        self._keys_read = 0.0
        self._lock = asyncio.Lock()

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No cookie jar: the provider's cookies belong to the person's browser, not to the hub.
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def close(self) -> None:
        """Close the client's HTTP session."""
        if self._session is not None:
            await self._session.close()

    async def _get_json(self, url: str, what: str) -> Any:
        try:
            answer = await self._http.request("GET", url, what, headers={"Accept": "application/json"})
            return answer.json(what)
        except (Retryable, Permanent) as exc:
            raise ProviderUnavailable(str(exc)) from None

    async def metadata(self) -> ProviderMetadata:
        """The provider's discovery document, read at most once an hour."""
        async with self._lock:
            if self._metadata is None or self._clock() - self._metadata_read > METADATA_SECONDS:
                url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
                data = await self._get_json(url, "OpenID Connect discovery")
                try:
                    found = ProviderMetadata.model_validate(data)
                except ValidationError as exc:
                    raise ProviderUnavailable(f"the discovery document is unusable: {exc}") from None
                if found.issuer != self.config.issuer:
                    # Discovery §4.3: a document naming another issuer must not be used.
                    raise ProviderUnavailable(
                        f"the discovery document names issuer {found.issuer!r}, configured is "
                        f"{self.config.issuer!r}"
                    )
                if urlsplit(self.config.issuer).scheme == "https" and any(
                    url is not None and not url.startswith("https://")
                    for url in (found.authorization_endpoint, found.token_endpoint, found.jwks_uri)
                ):
                    raise ProviderUnavailable("the discovery document names an endpoint without https")
                self._metadata, self._metadata_read = found, self._clock()
                self._keys = None
            return self._metadata

    async def keys(self, read_since: float | None = None) -> KeySet:
        """The provider's signing keys (JWKS); re-read unless read at or after `read_since` already
        (so logins that all meet a new kid at once read the keys once)."""
        metadata = await self.metadata()
        async with self._lock:
            stale = read_since is not None and self._keys_read < read_since
            if self._keys is None or stale:
                data = await self._get_json(metadata.jwks_uri, "the provider's keys (JWKS)")
                try:
                    self._keys = KeySet.import_key_set(data)
                except (JoseError, ValueError, KeyError, TypeError) as exc:
                    raise ProviderUnavailable(f"the provider's JWKS is unusable: {exc}") from None
                self._keys_read = self._clock()
            return self._keys

    async def redeem(self, code: str, redirect_uri: str, verifier: str) -> Tokens:
        """Trade the authorization code for tokens at the token endpoint (OpenID Connect Core §3.1.3)."""
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        headers = {"Accept": "application/json"}
        secret = self.config.client_secret.get_secret_value() if self.config.client_secret else None
        methods = metadata.token_endpoint_auth_methods_supported
        if secret is None:
            form["client_id"] = self.config.client_id
        elif "client_secret_basic" in methods or "client_secret_post" not in methods:
            # RFC 6749 §2.3.1: both are form-urlencoded before the Basic encoding.
            pair = f"{quote(self.config.client_id, safe='')}:{quote(secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            form |= {"client_id": self.config.client_id, "client_secret": secret}
        what = "OpenID Connect token request"
        try:
            answer = await self._http.send("POST", metadata.token_endpoint, what, data=form, headers=headers)
        except (Retryable, Permanent) as exc:
            raise ProviderUnavailable(str(exc)) from None
        if answer.status >= 500:
            raise ProviderUnavailable(f"{what}: the provider answered {answer.status}")
        if answer.status != 200:
            error = _oauth_error(answer.body)
            if answer.status == 401 or error in ("invalid_client", "unauthorized_client"):
                log.warning(
                    "console oidc: the token endpoint refused the client (%s): check client_id and "
                    "client_secret",
                    answer.status,
                )
                raise LoginRefused(
                    "client_refused",
                    "Die Konsole ist beim Anmeldedienst nicht richtig eingetragen. Bitte den IT-Betrieb "
                    "verständigen; bis dahin ist die Anmeldung mit einem API-Token möglich.",
                    502,
                )
            raise LoginRefused(f"token_endpoint_{answer.status}_{error}")
        data = answer.json(what) if answer.body else None
        id_token = data.get("id_token") if isinstance(data, dict) else None
        if not isinstance(id_token, str):
            raise LoginRefused("no_id_token")
        access = data.get("access_token") if isinstance(data, dict) else None
        return Tokens(id_token, access if isinstance(access, str) else None)

    async def validate(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of a valid ID token for this login (OIDC Core §3.1.3.7), else `LoginRefused`."""
        asked = self._clock()
        try:
            decoded = jwt.decode(id_token, await self.keys(), algorithms=self.config.algorithms)
        except InvalidKeyIdError:
            # The provider rolled its keys since we read them: read them again, once.
            try:
                keys = await self.keys(read_since=asked)
                decoded = jwt.decode(id_token, keys, algorithms=self.config.algorithms)
            except (JoseError, ValueError) as exc:
                raise LoginRefused(f"id_token_{_jose_reason(exc)}") from None
        except (JoseError, ValueError) as exc:
            raise LoginRefused(f"id_token_{_jose_reason(exc)}") from None
        claims = decoded.claims
        now = self._clock()
        leeway = self.config.leeway_seconds
        registry = jwt.JWTClaimsRegistry(
            now=int(now),
            leeway=leeway,
            iss={"essential": True, "value": self.config.issuer},
            sub={"essential": True},
            aud={"essential": True, "value": self.config.client_id},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise LoginRefused(f"id_token_{_jose_reason(exc)}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.config.client_id:
            raise LoginRefused("id_token_azp")
        if claims["iat"] < now - MAX_IAT_AGE - leeway:
            raise LoginRefused("id_token_stale")
        given = claims.get("nonce")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), nonce.encode()):
            raise LoginRefused("id_token_nonce")
        return claims

    async def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """The userinfo endpoint's claims (OpenID Connect Core §5.3), for the same subject only."""
        metadata = await self.metadata()
        if metadata.userinfo_endpoint is None:
            raise ProviderUnavailable("the provider has no userinfo endpoint")
        what = "OpenID Connect userinfo"
        try:
            answer = await self._http.request(
                "GET",
                metadata.userinfo_endpoint,
                what,
                headers={"Authorization": "Bearer " + access_token, "Accept": "application/json"},
            )
            data = answer.json(what)
        except (Retryable, Permanent) as exc:
            raise ProviderUnavailable(str(exc)) from None
        if not isinstance(data, dict) or data.get("sub") != subject:
            # §5.3.4: a userinfo answer for another subject must not be used.
            raise LoginRefused("userinfo_subject")
        return data

    async def logout_url(self, person: Person, back: str) -> str | None:
        """Where the browser ends the provider's session (RP-Initiated Logout 1.0), if it has one."""
        try:
            metadata = await self.metadata()
        except ProviderUnavailable:
            return None
        endpoint = metadata.end_session_endpoint
        if endpoint is None:
            return None
        if origin_of(endpoint) != origin_of(self.config.issuer):
            # The console's CSP lets its forms lead to the issuer's origin only.
            log.warning(
                "console oidc: end_session_endpoint is on another origin than the issuer; local logout"
            )
            return None
        params = {"client_id": self.config.client_id, "post_logout_redirect_uri": back}
        if person.id_token:
            params["id_token_hint"] = person.id_token
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)


def _oauth_error(body: bytes) -> str:
    """The `error` code of an OAuth 2.0 error answer (RFC 6749 §5.2): its free text stays out of logs."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return "other"
    return error if isinstance(error, str) and _ERROR_CODE.match(error) else "other"


def _jose_reason(exc: Exception) -> str:
    """Why joserfc refused a token, for the log: the error and the claim's name, never its value."""
    reason = getattr(exc, "error", None) or type(exc).__name__
    return f"{reason}_{exc.claim}" if isinstance(exc, ClaimError) else reason


OIDC: web.AppKey[OidcClient] = web.AppKey("console_oidc", OidcClient)


def console_base(request: web.Request, config: ConsoleConfig) -> str:
    """The console's address as the browser reaches it (without trailing slash)."""
    if config.public_url is not None:
        return str(config.public_url).rstrip("/")
    return f"{request.scheme}://{request.host}"


class _UsedStates:
    """States already answered, so a flow cookie cannot be replayed within its lifetime (this process)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def first_use(self, state: str, now: float) -> bool:
        self._seen = {s: t for s, t in self._seen.items() if t > now - FLOW_SECONDS}
        if state in self._seen:
            return False
        self._seen[state] = now
        return True


def add_oidc_routes(app: web.Application, config: ConsoleConfig) -> None:
    """Mount /ui/oidc/login and /ui/oidc/callback, and the provider's logout."""
    oidc_config = config.oidc
    assert oidc_config is not None
    client = OidcClient(oidc_config)
    app[OIDC] = client
    app[OIDC_LABEL] = oidc_config.display_name
    used = _UsedStates()

    async def start(request: web.Request) -> web.StreamResponse:
        try:
            metadata = await client.metadata()
        except ProviderUnavailable as exc:
            log.warning("console oidc: provider unavailable: %s", exc)
            return await login_page(request, UNREACHABLE, 503)
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        redirect_uri = console_base(request, config) + "/ui/oidc/callback"
        flow: dict[str, object] = {
            "state": state,
            "nonce": nonce,
            "verifier": verifier,
            "next": safe_next(request.query.get("next")),
            "redirect_uri": redirect_uri,
        }
        params = {
            "response_type": "code",
            "client_id": oidc_config.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(oidc_config.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
        }
        endpoint = metadata.authorization_endpoint
        response = web.HTTPSeeOther(endpoint + ("&" if "?" in endpoint else "?") + urlencode(params))
        sessions = request.app[SESSIONS]
        sessions.set_cookie(response, FLOW_COOKIE, sessions.seal(flow), FLOW_SECONDS, samesite="Lax")
        raise response

    async def callback(request: web.Request) -> web.StreamResponse:
        sessions = request.app[SESSIONS]
        try:
            flow = _flow_of(request, used)
            login, next_path = await _complete(request, client, flow)
        except LoginRefused as refused:
            log.info("console oidc login refused reason=%s", refused.reason)
            response = await login_page(request, refused.message, refused.status)
        except ProviderUnavailable as exc:
            log.warning("console oidc: provider unavailable: %s", exc)
            response = await login_page(request, UNREACHABLE, 503)
        else:
            log.info("console login method=oidc role=%s", login.role)
            # A page of our own that moves on: the Strict session cookie goes with the next request.
            response = render(request, "oidc_continue.html", next=next_path)
            sessions.start(response, name=login.name, role=login.role, via="oidc", id_token=login.id_token)
        sessions.set_cookie(response, FLOW_COOKIE, "", 0, samesite="Lax")
        return response

    async def end_session(request: web.Request, person: Person) -> str | None:
        if person.via != "oidc":
            return None
        return await client.logout_url(person, console_base(request, config) + "/ui/login")

    async def close(app: web.Application) -> None:
        await client.close()

    app[LOGOUT_TARGET] = end_session
    app.on_cleanup.append(close)
    app.router.add_get("/ui/oidc/login", start)
    app.router.add_get("/ui/oidc/callback", callback)


def _flow_of(request: web.Request, used: _UsedStates) -> dict[str, str]:
    """The login flow this callback answers, checked against `state`; `LoginRefused` otherwise."""
    sealed = request.cookies.get(FLOW_COOKIE)
    flow = request.app[SESSIONS].unseal(sealed, FLOW_SECONDS) if sealed else None
    if flow is None or not all(isinstance(v, str) for v in flow.values()):
        raise LoginRefused(
            "no_flow", "Die Anmeldung ist abgelaufen oder wurde nicht hier begonnen. Bitte erneut anmelden."
        )
    checked = {k: str(v) for k, v in flow.items()}
    given = request.query.get("state", "")
    if not hmac.compare_digest(given.encode(), checked["state"].encode()):
        raise LoginRefused(
            "state_mismatch", "Die Antwort des Anmeldedienstes gehört zu keiner Anmeldung hier."
        )
    if not used.first_use(checked["state"], time.time()):
        raise LoginRefused(
            "state_replayed", "Diese Anmeldung wurde bereits abgeschlossen. Bitte erneut anmelden."
        )
    error = request.query.get("error")
    if error is not None:
        code = error if _ERROR_CODE.match(error) else "other"
        if code == "access_denied":
            raise LoginRefused(
                "provider_access_denied", "Die Anmeldung wurde beim Anmeldedienst abgebrochen.", 403
            )
        raise LoginRefused(f"provider_{code}", f"Der Anmeldedienst hat die Anmeldung abgelehnt ({code}).")
    return checked


async def _complete(request: web.Request, client: OidcClient, flow: dict[str, str]) -> tuple[Login, str]:
    """Redeem the code, validate the ID token, map the role: who logged in, and where to go next."""
    code = request.query.get("code")
    if not code:
        raise LoginRefused("no_code")
    tokens = await client.redeem(code, flow["redirect_uri"], flow["verifier"])
    claims = await client.validate(tokens.id_token, flow["nonce"])
    config = client.config
    if config.userinfo:
        if tokens.access_token is None:
            raise LoginRefused("no_access_token")
        claims = {**claims, **await client.userinfo(tokens.access_token, str(claims["sub"]))}
    role = role_of(claims, config)
    if role is None:
        raise LoginRefused(
            "no_role",
            "Ihr Konto ist beim Anmeldedienst bekannt, hat aber keine Rolle für die Aktenhub-Konsole. "
            "Bitte beim IT-Betrieb eine Rolle (Lesen, Bedienen oder Verwalten) beantragen.",
            403,
        )
    kept = tokens.id_token if len(tokens.id_token) <= MAX_KEPT_ID_TOKEN else None
    return Login(name_of(claims, config), role, kept), flow["next"]
