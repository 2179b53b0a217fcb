"""The one outbound HTTP helper against real aiohttp servers on loopback: auth, TLS, bounds, errors."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from hub import Permanent, Retryable
from hub.outbound import (
    MAX_MESSAGE,
    HttpEndpoint,
    Outbound,
    Refusal,
    Unanswered,
    basic_authorization,
    server_message,
)
from hub.testing.pki import Pki, make_pki, server_context

Serve = Callable[..., Awaitable[str]]


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start an aiohttp app on 127.0.0.1 (optionally https); returns its base URL."""
    servers: list[TestServer] = []

    async def start(app: web.Application, tls: ssl.SSLContext | None = None) -> str:
        server = TestServer(app, host="127.0.0.1", scheme="https" if tls else "http")
        await server.start_server(ssl=tls)
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


def outbound(session: aiohttp.ClientSession, base_url: str, **endpoint: Any) -> Outbound:
    return Outbound(
        lambda: session, HttpEndpoint.model_validate({"base_url": base_url, **endpoint}), system="FV"
    )


def echo_app() -> web.Application:
    """Answers every request with the Authorization header it got."""

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"authorization": request.headers.get("Authorization")})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


# -- static credentials ---------------------------------------------------------------------------------


async def test_basic_auth_is_utf8_rfc7617(session: aiohttp.ClientSession, serve: Serve) -> None:
    url = await serve(echo_app())
    http = outbound(session, url, auth={"type": "basic", "username": "hüb", "password": "gehe:im"})
    answer = await http.request("GET", "/cases", "read cases")
    header = answer.json("read cases")["authorization"]
    assert header.startswith("Basic ")
    assert base64.b64decode(header[6:]).decode("utf-8") == "hüb:gehe:im"
    assert header == basic_authorization("hüb", "gehe:im")


async def test_bearer_token_and_no_auth(session: aiohttp.ClientSession, serve: Serve) -> None:
    url = await serve(echo_app())
    bearer = outbound(session, url, auth={"type": "bearer", "token": "api-key-1"})
    assert (await bearer.request("GET", "x", "read")).json("read") == {"authorization": "Bearer api-key-1"}
    anonymous = outbound(session, url)
    assert (await anonymous.request("GET", "x", "read")).json("read") == {"authorization": None}
    # A caller authenticating itself (a session login) keeps its own header.
    own = await bearer.request("GET", "x", "read", headers={"Authorization": "Custom 1"})
    assert own.json("read") == {"authorization": "Custom 1"}


# -- OAuth2 client credentials --------------------------------------------------------------------------


class TokenServer:
    """An OAuth2 token endpoint (RFC 6749 §4.4) and an API accepting only the tokens it issued last."""

    def __init__(self, lifetimes: list[Any], *, revoke_first: bool = False) -> None:
        self.lifetimes = lifetimes
        self.issued: list[str] = []
        self.credentials: list[tuple[str, dict[str, str]]] = []  # how the client authenticated
        self.seen: list[str] = []  # tokens the API was called with
        self.revoke_first = revoke_first
        self.bodies: list[bytes] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self.token)
        app.router.add_route("*", "/api/{tail:.*}", self.api)
        return app

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            client, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            self.credentials.append(("basic", {"client_id": client, "client_secret": secret}))
        else:
            self.credentials.append(("post", {k: str(form.get(k)) for k in ("client_id", "client_secret")}))
        if self.credentials[-1][1] != {"client_id": "hub", "client_secret": "s3cret"}:
            return web.json_response(
                {"error": "invalid_client", "error_description": "client authentication failed"}, status=401
            )
        token = f"token-{len(self.issued) + 1}"
        self.issued.append(token)
        grant: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        lifetime = self.lifetimes[min(len(self.issued) - 1, len(self.lifetimes) - 1)]
        if lifetime is not None:
            grant["expires_in"] = lifetime
        return web.json_response(grant)

    async def api(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.seen.append(token)
        valid = self.issued[-1:] if not self.revoke_first else self.issued[1:]
        if token not in valid:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response({"ok": True})


def oauth2(url: str, client_auth: str = "basic", secret: str = "s3cret") -> dict[str, Any]:
    return {
        "type": "oauth2",
        "token_url": f"{url}/token",
        "client_id": "hub",
        "client_secret": secret,
        "client_auth": client_auth,
    }


@pytest.mark.parametrize("client_auth", ["basic", "post"])
async def test_oauth2_token_fetched_once_and_cached(
    session: aiohttp.ClientSession, serve: Serve, client_auth: str
) -> None:
    server = TokenServer([3600])
    url = await serve(server.app())
    http = outbound(session, f"{url}/api", auth=oauth2(url, client_auth))
    await asyncio.gather(*(http.request("GET", "cases", "read") for _ in range(5)))
    assert server.issued == ["token-1"]  # concurrent first requests share one fetch
    assert server.seen == ["token-1"] * 5
    # client_secret_basic (RFC 6749 §2.3.1) or client_secret_post, as configured
    assert server.credentials == [(client_auth, {"client_id": "hub", "client_secret": "s3cret"})]


async def test_oauth2_token_refetched_when_it_expires(session: aiohttp.ClientSession, serve: Serve) -> None:
    # The first token lives 10 s: inside the safety margin, so it counts as expired at the next request.
    server = TokenServer([10, "3600"])
    url = await serve(server.app())
    http = outbound(session, f"{url}/api", auth=oauth2(url))
    for _ in range(3):
        await http.request("GET", "cases", "read")
    assert server.issued == ["token-1", "token-2"]
    assert server.seen == ["token-1", "token-2", "token-2"]


async def test_oauth2_new_token_once_after_401(session: aiohttp.ClientSession, serve: Serve) -> None:
    server = TokenServer([3600], revoke_first=True)  # the API forgot the first token (restart, revocation)
    url = await serve(server.app())
    http = outbound(session, f"{url}/api", auth=oauth2(url))

    def body() -> aiohttp.MultipartWriter:  # a stream can be sent once: a fresh one for the retry
        writer = aiohttp.MultipartWriter("form-data")
        writer.append(b"content").set_content_disposition("form-data", name="file", filename="a.txt")
        return writer

    answer = await http.request("POST", "cases", "create case", data=body)
    assert answer.json("create case") == {"ok": True}
    assert server.seen == ["token-1", "token-2"]
    assert all(b"content" in sent for sent in server.bodies) and len(server.bodies) == 2


async def test_oauth2_persistent_401_is_refused_after_one_new_token(
    session: aiohttp.ClientSession, serve: Serve
) -> None:
    async def never(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": "invalid_token", "error_description": "token not accepted"}, status=401
        )

    server = TokenServer([3600])
    app = server.app()
    app.router.add_get("/never", never)
    url = await serve(app)
    http = outbound(session, url, auth=oauth2(url))
    with pytest.raises(Refusal, match="token not accepted") as refused:
        await http.request("GET", "/never", "read")
    assert refused.value.status == 401
    assert server.issued == ["token-1", "token-2"]


async def test_oauth2_bad_client_secret_is_permanent_with_the_servers_reason(
    session: aiohttp.ClientSession, serve: Serve
) -> None:
    server = TokenServer([3600])
    url = await serve(server.app())
    http = outbound(session, f"{url}/api", auth=oauth2(url, secret="wrong"))
    with pytest.raises(Refusal, match="client authentication failed") as refused:
        await http.request("GET", "cases", "read")
    assert "wrong" not in str(refused.value)
    assert server.seen == []  # the API was never called without a token


# -- mutual TLS -----------------------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path, prefix="fv", key_password="schluessel")


def peer_app() -> web.Application:
    async def who(request: web.Request) -> web.Response:
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport else None
        peer = ssl_object.getpeercert() if ssl_object else None
        subject = dict(item[0] for item in peer["subject"]) if peer else {}
        return web.json_response({"client": subject.get("commonName")})

    app = web.Application()
    app.router.add_get("/who", who)
    return app


async def test_mutual_tls_presents_the_client_certificate(
    session: aiohttp.ClientSession, serve: Serve, pki: Pki
) -> None:
    url = await serve(peer_app(), server_context(pki))
    tls = {"ca": pki.ca, "cert": pki.client_cert, "key": pki.client_key, "key_password": "schluessel"}
    http = outbound(session, url, tls=tls)
    assert (await http.request("GET", "who", "who am I")).json("who") == {"client": "fv-client"}
    assert http.describe()["client_certificate"] == "yes"


async def test_mutual_tls_failures(session: aiohttp.ClientSession, serve: Serve, pki: Pki) -> None:
    url = await serve(peer_app(), server_context(pki))
    without_certificate = outbound(session, url, tls={"ca": pki.ca})
    with pytest.raises(Retryable):  # the server ends the handshake: nothing was taken
        await without_certificate.request("GET", "who", "who am I")
    untrusting = outbound(session, url)  # the system's CAs do not know the test CA
    with pytest.raises(Permanent, match="not trusted"):
        await untrusting.request("GET", "who", "who am I")
    wrong_password = {"ca": pki.ca, "cert": pki.client_cert, "key": pki.client_key, "key_password": "falsch"}
    with pytest.raises(Permanent, match="TLS settings unusable for FV"):
        await outbound(session, url, tls=wrong_password).request("GET", "who", "who am I")


# -- bounded reads --------------------------------------------------------------------------------------


def big_app(size: int) -> web.Application:
    async def declared(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * size)  # with Content-Length

    async def streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()  # no Content-Length: only counting finds the size
        await response.prepare(request)
        for _ in range(size // 1000):
            await response.write(b"y" * 1000)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/declared", declared)
    app.router.add_get("/streamed", streamed)
    return app


@pytest.mark.parametrize("path", ["declared", "streamed"])
async def test_answers_are_read_up_to_a_bound(
    session: aiohttp.ClientSession, serve: Serve, path: str
) -> None:
    url = await serve(big_app(200_000))
    http = outbound(session, url)
    with pytest.raises(Retryable, match="larger than 100000 bytes"):
        await http.request("GET", path, "download", limit=100_000)
    assert len((await http.request("GET", path, "download", limit=200_000)).body) == 200_000


async def test_stream_reads_a_large_answer_in_chunks(session: aiohttp.ClientSession, serve: Serve) -> None:
    url = await serve(big_app(300_000))
    http = outbound(session, url)
    received = 0
    async with http.stream("GET", "streamed", "download") as response:
        async for chunk in response.content.iter_chunked(16 * 1024):
            received += len(chunk)
    assert received == 300_000


# -- statuses and the server's message ------------------------------------------------------------------


def status_app() -> web.Application:
    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        kind = request.query.get("kind", "json")
        headers = {"Location": "https://elsewhere.example/"} if 300 <= code < 400 else None
        if kind == "problem":
            return web.json_response(
                {"type": "about:blank", "title": "Bad Request", "detail": "field az missing"},
                status=code,
                content_type="application/problem+json",
                headers=headers,
            )
        if kind == "html":
            text = "<html>\n  <body>Gateway\r\n  down\x07</body></html>" + "z" * 1000
            return web.Response(text=text, status=code, content_type="text/html", headers=headers)
        return web.json_response({"message": f"nope {code}"}, status=code, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/status/{code}", status)
    return app


@pytest.mark.parametrize("code", [500, 502, 503, 504, 408, 425, 429])
async def test_transient_statuses_are_retryable(
    session: aiohttp.ClientSession, serve: Serve, code: int
) -> None:
    http = outbound(session, await serve(status_app()))
    with pytest.raises(Retryable, match=f"FV answered {code}: nope {code}") as raised:
        await http.request("POST", f"status/{code}", "create case")
    assert not isinstance(raised.value, Permanent)
    assert not isinstance(raised.value, Unanswered)  # an answer came: the server said no


@pytest.mark.parametrize("code", [400, 404, 405, 409, 410, 413, 422])
async def test_other_client_errors_are_refusals(
    session: aiohttp.ClientSession, serve: Serve, code: int
) -> None:
    http = outbound(session, await serve(status_app()))
    with pytest.raises(
        Refusal, match=f"create case: FV refused the request \\({code}\\): nope {code}"
    ) as refused:
        await http.request("POST", f"status/{code}", "create case")
    assert refused.value.status == code
    assert isinstance(refused.value, Permanent)


@pytest.mark.parametrize("code", [401, 403])
async def test_refused_credentials_say_what_to_check(
    session: aiohttp.ClientSession, serve: Serve, code: int
) -> None:
    http = outbound(
        session, await serve(status_app()), auth={"type": "basic", "username": "u", "password": "pw"}
    )
    with pytest.raises(Refusal, match=f"FV refused user 'u' \\({code}\\): nope {code}; check the") as refused:
        await http.request("GET", f"status/{code}", "read")
    assert refused.value.status == code
    assert "pw" not in str(refused.value)
    with pytest.raises(Refusal, match="FV refused our credentials"):
        await outbound(session, http.endpoint.base_url).request("GET", f"status/{code}", "read")


async def test_redirects_are_not_followed_and_permanent(session: aiohttp.ClientSession, serve: Serve) -> None:
    http = outbound(session, await serve(status_app()))
    with pytest.raises(Permanent, match="redirect \\(302\\): check the URL"):
        await http.request("POST", "status/302", "create case")


async def test_the_servers_own_message_is_quoted(session: aiohttp.ClientSession, serve: Serve) -> None:
    http = outbound(session, await serve(status_app()))
    with pytest.raises(Refusal, match="field az missing"):
        await http.request("POST", "status/400", "create case", params={"kind": "problem"})
    with pytest.raises(Retryable) as raised:
        await http.request("POST", "status/502", "create case", params={"kind": "html"})
    message = str(raised.value)
    assert "<html> <body>Gateway down </body></html>" in message  # whitespace folded, control chars gone
    assert "\x07" not in message and "\n" not in message
    assert len(server_message(b"z" * 5000)) == MAX_MESSAGE


async def test_accepted_statuses_are_returned(session: aiohttp.ClientSession, serve: Serve) -> None:
    http = outbound(session, await serve(status_app()))
    answer = await http.request("GET", "status/404", "look up case", accept=(404,))
    assert answer.status == 404 and answer.json("look up case") == {"message": "nope 404"}
    raw = await http.send("GET", "status/503", "look")  # `send` returns any status as it is
    assert raw.status == 503


async def test_an_answer_that_is_not_json_is_retryable(session: aiohttp.ClientSession, serve: Serve) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>proxy login</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/page", page)
    answer = await outbound(session, await serve(app)).request("GET", "page", "read case")
    with pytest.raises(Retryable, match="not JSON"):
        answer.json("read case")


# -- no answer ------------------------------------------------------------------------------------------


async def test_silence_is_unanswered(session: aiohttp.ClientSession, serve: Serve) -> None:
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.Response(text="too late")

    app = web.Application()
    app.router.add_post("/stuck", stuck)
    http = outbound(session, await serve(app), timeout_seconds=0.3)
    try:
        with pytest.raises(Unanswered, match=r"no answer from FV .* within 0\.3 s"):
            await http.request("POST", "stuck", "create case", json={"a": 1})
    finally:
        release.set()
    assert arrived.is_set()  # the request reached the server: whether it was taken is unknown


async def test_refused_connection_is_retryable_and_not_unanswered(session: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    http = outbound(session, f"http://127.0.0.1:{port}")
    with pytest.raises(
        Retryable, match=r"connection to FV at http://127\.0\.0\.1:\d+/cases failed"
    ) as raised:
        await http.request("POST", "cases", "create case")
    assert not isinstance(raised.value, Unanswered)


async def test_a_connection_closed_before_the_answer_is_unanswered(
    session: aiohttp.ClientSession, serve: Serve
) -> None:
    async def hang_up(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError  # the handler ends with the connection

    app = web.Application()
    app.router.add_post("/hang-up", hang_up)
    http = outbound(session, await serve(app))
    with pytest.raises(Unanswered, match="broke"):
        await http.request("POST", "hang-up", "create case")


async def test_auth_secrets_may_come_from_files(
    session: aiohttp.ClientSession, serve: Serve, tmp_path: Path
) -> None:
    secret = tmp_path / "fv-password"
    secret.write_text("aus-der-datei\n", encoding="utf-8")
    url = await serve(echo_app())
    http = outbound(session, url, auth={"type": "basic", "username": "hub", "password": f"file:{secret}"})
    answer = (await http.request("GET", "x", "read")).json("read")
    assert answer == {"authorization": basic_authorization("hub", "aus-der-datei")}
    assert "aus-der-datei" not in repr(http.endpoint)
