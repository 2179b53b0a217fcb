"""The one outbound HTTP helper every connector and every simulator client uses.

It sends requests through the hub's shared aiohttp session (one connection pool), adds the configured
authentication (HTTP Basic, a bearer token, OAuth2 client credentials with a cached token, a client
certificate for mutual TLS), reads answers up to a bound, and turns every failure into `Retryable` or
`Permanent` in one place, quoting the server's own message: timeouts, refused connections, 5xx, 408,
425 and 429 may pass; other 4xx answers, redirects, an untrusted server certificate and unusable TLS
settings will not. A 401 with OAuth2 fetches a new token once. When the request may have reached the
server but no answer came (a timeout or a broken connection after connecting), the error is `Unanswered`
(a `Retryable`): a sink without an idempotency key looks before it sends again.

A connector's configuration embeds `HttpEndpoint` (base URL, auth, TLS, timeout) and builds one
`Outbound` from it in `__init__`::

    self.http = Outbound(context.http_session, config.endpoint, system="K3")
    answer = await self.http.request("POST", "/cases", "create case", json=payload)
    case = answer.json("create case")
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict, Unpack

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from hub.certificates import CertificateInfo, read_certificates
from hub.errors import Permanent, Retryable, transient_http_status
from hub.secret import ConfigPath, Secret

MAX_ANSWER = 4 * 1024**2  # bytes of an ordinary answer (JSON, XML); larger ones are streamed
MAX_MESSAGE = 300  # characters of a server's error message kept in our error
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN_MARGIN = 30.0  # seconds before a token's expiry at which a new one is fetched

SessionFactory = Callable[[], aiohttp.ClientSession]


class BasicAuth(BaseModel):
    """HTTP Basic authentication (RFC 7617, UTF-8)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["basic"] = "basic"
    username: str
    password: Secret


class BearerAuth(BaseModel):
    """A static bearer token (an API key issued by the system's operator)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["bearer"] = "bearer"
    token: Secret


class OAuth2ClientCredentials(BaseModel):
    """OAuth2 client credentials grant (RFC 6749 §4.4); the token is cached until shortly before expiry."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["oauth2"] = "oauth2"
    token_url: str = Field(pattern=r"^https?://")
    client_id: str
    client_secret: Secret
    scope: str | None = None
    # client_secret_basic (RFC 6749 §2.3.1, the default every server must support) or client_secret_post
    client_auth: Literal["basic", "post"] = "basic"


Auth = Annotated[BasicAuth | BearerAuth | OAuth2ClientCredentials, Field(discriminator="type")]


class ClientTls(BaseModel):
    """TLS towards the server: whom to trust, and our client certificate for mutual TLS."""

    model_config = ConfigDict(extra="forbid")

    ca: ConfigPath | None = Field(None, description="PEM file of the CAs to trust (default: the system's)")
    cert: ConfigPath | None = Field(None, description="PEM client certificate (mutual TLS)")
    key: ConfigPath | None = Field(None, description="PEM private key of the client certificate")
    key_password: Secret | None = Field(None, description="password of the key, if it is encrypted")
    verify: bool = Field(True, description="verify the server's certificate (never off in production)")

    def context(self) -> ssl.SSLContext:
        """The SSL context these settings describe."""
        ctx = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert is not None:
            password = self.key_password.get_secret_value() if self.key_password else None
            ctx.load_cert_chain(str(self.cert), str(self.key) if self.key else None, password)
        return ctx

    def certificates(self, prefix: str = "tls") -> list[CertificateInfo]:
        """Our client certificate (`<prefix>-client`) and the CAs trusted (`<prefix>-ca`)."""
        named = ((self.cert, f"{prefix}-client"), (self.ca, f"{prefix}-ca"))
        return [i for path, purpose in named if path is not None for i in read_certificates(path, purpose)]


class HttpEndpoint(BaseModel):
    """Where a remote HTTP API is and how to talk to it; embedded in a connector's configuration."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(pattern=r"^https?://", description="the API's base URL, without trailing slash")
    auth: Auth | None = None
    tls: ClientTls | None = None
    timeout_seconds: float = Field(30.0, gt=0, description="seconds of silence before a request fails")


@dataclass(frozen=True)
class HttpAnswer:
    """A remote system's answer: status, headers and the (bounded) body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self, what: str) -> Any:
        """The body as JSON; a body that is not JSON (a proxy's error page, say) is `Retryable`."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise Retryable(f"{what}: the answer is not JSON: {self.body[:80]!r}") from None

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")


class Unanswered(Retryable):
    """The request may have reached the server, but no answer came: whether it was taken is unknown."""


class Refusal(Permanent):
    """The remote system refused a request with a 4xx answer that trying again will not change."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` header value of HTTP Basic authentication (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def server_message(data: bytes) -> str:
    """The message of an error answer: JSON ``message``/``error``/``detail``/``title``, else its text."""
    text = data.decode("utf-8", errors="replace")
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    message = None
    if isinstance(answer, dict):
        for key in ("message", "error_description", "error", "errorMessage", "detail", "title"):
            value = answer.get(key)
            if isinstance(value, str) and value.strip():
                message = value
                break
    message = message or " ".join(text.split()) or "(no message)"
    return _CONTROL.sub(" ", message)[:MAX_MESSAGE]


def classify(status: int, body: bytes, what: str, system: str, account: str | None = None) -> None:
    """Raise `Refusal` (4xx that will not pass), `Permanent` (3xx) or `Retryable` for a non-2xx answer.

    `account` names whom a 401/403 refused (a user name, an OAuth2 client id), for the operator.
    """
    if 200 <= status < 300:
        return
    message = server_message(body)
    if 300 <= status < 400:
        raise Permanent(f"{what}: {system} answered with a redirect ({status}): check the URL, then replay")
    if status in (401, 403):
        raise Refusal(
            f"{what}: {system} refused {f'user {account!r}' if account else 'our credentials'} ({status}): "
            f"{message}; check the credentials and the account's rights, then replay",
            status,
        )
    if 400 <= status < 500 and not transient_http_status(status):
        raise Refusal(f"{what}: {system} refused the request ({status}): {message}", status)
    raise Retryable(f"{what}: {system} answered {status}: {message}")


async def read_bounded(response: aiohttp.ClientResponse, what: str, limit: int = MAX_ANSWER) -> bytes:
    """The body of an answer, or `Retryable` when it is larger than `limit` bytes."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise Retryable(f"{what}: the answer is larger than {limit} bytes")
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise Retryable(f"{what}: the answer is larger than {limit} bytes")
    return bytes(data)


class _TokenCache:
    """One OAuth2 access token, fetched when missing or about to expire; one fetch at a time."""

    def __init__(self, grant: OAuth2ClientCredentials) -> None:
        self.grant = grant
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def token(self, outbound: Outbound) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires - _TOKEN_MARGIN:
                self._token, lifetime = await self._fetch(outbound)
                self._expires = time.monotonic() + lifetime
            return self._token

    def forget(self, token: str) -> None:
        if self._token == token:
            self._token = None

    async def _fetch(self, outbound: Outbound) -> tuple[str, float]:
        g = self.grant
        secret = g.client_secret.get_secret_value()
        form = {"grant_type": "client_credentials"}
        headers = {"Accept": "application/json"}
        if g.scope:
            form["scope"] = g.scope
        if g.client_auth == "basic":
            headers["Authorization"] = basic_authorization(g.client_id, secret)
        else:
            form |= {"client_id": g.client_id, "client_secret": secret}
        what = "OAuth2 token request"
        answer = await outbound.send("POST", g.token_url, what, data=form, headers=headers, auth=False)
        classify(answer.status, answer.body, what, "the token endpoint")
        grant = answer.json(what)
        token = grant.get("access_token") if isinstance(grant, dict) else None
        if not isinstance(token, str) or not token:
            raise Permanent(f"{what}: the answer holds no access_token")
        lifetime = grant.get("expires_in")
        try:  # RFC 6749 §5.1: a number of seconds; some servers send it as a string
            return token, float(lifetime) if lifetime is not None else 300.0
        except (TypeError, ValueError):
            return token, 300.0


class RequestOptions(TypedDict, total=False):
    """What a request may carry besides method, path and what it is for."""

    json: Any  # a JSON body
    # A body, or a callable returning a fresh one (a multipart writer streaming from the blob store): a
    # stream can be sent once only, and an expired OAuth2 token sends the request again.
    data: Any
    headers: Mapping[str, str] | None  # an Authorization given here replaces the configured auth
    params: Mapping[str, str] | None
    cookies: Mapping[str, str] | None
    auth: bool  # add the configured authentication (default True)


class Outbound:
    """Requests to one remote system: authentication added, answers bounded, failures classified."""

    def __init__(
        self, session: SessionFactory, endpoint: HttpEndpoint, *, system: str, account: str | None = None
    ) -> None:
        self.endpoint = endpoint
        self.system = system  # how errors name the remote system, e.g. "enaio", "the ZBP"
        auth = endpoint.auth
        if account is None and isinstance(auth, BasicAuth):
            account = auth.username
        elif account is None and isinstance(auth, OAuth2ClientCredentials):
            account = auth.client_id
        self.account = account  # whom a 401/403 refused, named in the error
        self._session = session
        self._ssl: ssl.SSLContext | bool | None = None  # built on first use: a file may appear later
        self._tokens = _TokenCache(auth) if isinstance(auth, OAuth2ClientCredentials) else None

    def url(self, path: str) -> str:
        """An absolute URL: `path` relative to the base URL, or already absolute."""
        if path.startswith(("http://", "https://")):
            return path
        return self.endpoint.base_url.rstrip("/") + "/" + path.lstrip("/")

    def describe(self) -> dict[str, str]:
        """Where requests go and how they authenticate, for check results and diagnostics (no secrets)."""
        auth = self.endpoint.auth
        tls = self.endpoint.tls
        return {
            "base_url": self.endpoint.base_url,
            "auth": auth.type if auth is not None else "none",
            "client_certificate": "yes" if tls is not None and tls.cert is not None else "no",
        }

    async def request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        limit: int = MAX_ANSWER,
        accept: Collection[int] = (),
        **options: Unpack[RequestOptions],
    ) -> HttpAnswer:
        """One call: the 2xx answer (or one whose status is in `accept`), else `Refusal`/`Retryable`.

        `what` names the call in errors ("create case"); `limit` bounds the answer's bytes.
        """
        answer = await self.send(method, path, what, limit=limit, **options)
        if answer.status not in accept:
            classify(answer.status, answer.body, what, self.system, self.account)
        return answer

    async def send(
        self, method: str, path: str, what: str, *, limit: int = MAX_ANSWER, **options: Unpack[RequestOptions]
    ) -> HttpAnswer:
        """One call, any status returned as it is; only transport failures raise (`Retryable`)."""
        async with self.open(method, path, what, **options) as response:
            body = await read_bounded(response, what, limit)
            return HttpAnswer(response.status, dict(response.headers), body)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        what: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A 2xx answer to read as a stream (large downloads); other answers raise as in `request`."""
        async with self.open(method, path, what, headers=headers, params=params) as response:
            if not 200 <= response.status < 300:
                classify(response.status, await read_bounded(response, what), what, self.system, self.account)
            yield response

    @asynccontextmanager
    async def open(
        self, method: str, path: str, what: str, **options: Unpack[RequestOptions]
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The raw response (any status), authenticated; transport failures become `Retryable`."""
        data = options.get("data")
        headers = options.get("headers")
        auth = options.get("auth", True)
        url = self.url(path)
        seconds = self.endpoint.timeout_seconds
        # No total limit: a large upload or download may take long; what must not take long is silence.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)
        for attempt in (1, 2):
            sent = dict(headers or {})
            token = await self._authorize(sent) if auth else None
            try:
                async with self._session().request(
                    method,
                    url,
                    json=options.get("json"),
                    data=data() if callable(data) else data,
                    headers=sent,
                    params=options.get("params"),
                    cookies=options.get("cookies"),
                    timeout=timeout,
                    allow_redirects=False,
                    ssl=self._ssl_context(),
                ) as response:
                    if response.status == 401 and token is not None and attempt == 1 and self._tokens:
                        # The token was revoked or the server restarted: a new one, once.
                        self._tokens.forget(token)
                        continue
                    yield response
                    return
            except aiohttp.ClientConnectorCertificateError as exc:
                untrusted = f"the TLS certificate of {self.system} at {url} is not trusted"
                raise Permanent(f"{what}: {untrusted}: {exc.certificate_error}") from None
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                # No connection was made: the request never reached the server.
                raise Retryable(
                    f"{what}: connection to {self.system} at {url} failed: {type(exc).__name__}: {exc}"
                ) from None
            except TimeoutError:
                silent = f"no answer from {self.system} at {url} within {seconds:g} s"
                raise Unanswered(f"{what}: {silent}") from None
            except aiohttp.ClientError as exc:
                raise Unanswered(
                    f"{what}: the connection to {self.system} at {url} broke: {type(exc).__name__}: {exc}"
                ) from None

    def _ssl_context(self) -> ssl.SSLContext | bool:
        """The TLS context of the endpoint (True: the system's defaults); `Permanent` if unusable."""
        if self._ssl is None:
            tls = self.endpoint.tls
            try:
                self._ssl = tls.context() if tls is not None else True
            except (OSError, ssl.SSLError) as exc:
                raise Permanent(f"TLS settings unusable for {self.system} (ca/cert/key): {exc}") from None
        return self._ssl

    async def _authorize(self, headers: dict[str, str]) -> str | None:
        """Add the Authorization header; the OAuth2 token used, if any."""
        if "Authorization" in headers:
            return None  # the caller authenticates itself (a session login, say)
        auth = self.endpoint.auth
        if isinstance(auth, BasicAuth):
            headers["Authorization"] = basic_authorization(auth.username, auth.password.get_secret_value())
        elif isinstance(auth, BearerAuth):
            headers["Authorization"] = "Bearer " + auth.token.get_secret_value()
        elif self._tokens is not None:
            token = await self._tokens.token(self)
            headers["Authorization"] = "Bearer " + token
            return token
        return None
