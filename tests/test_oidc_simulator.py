"""The OpenID Connect provider simulator refuses what Keycloak refuses, so client mistakes show."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest

from hub.console.oidc import s256_challenge
from hub.testing.oidc import CLIENT_ID, CLIENT_SECRET, RunningProvider, running_provider

REDIRECT = "http://127.0.0.1:9999/ui/oidc/callback"


@pytest.fixture
async def idp() -> AsyncIterator[RunningProvider]:
    async with running_provider(auto_login="anna.admin", code_seconds=5) as provider:
        yield provider


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def basic(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def authorize(
    http: aiohttp.ClientSession, idp: RunningProvider, **overrides: str | None
) -> tuple[int, dict[str, list[str]], str]:
    """An authorization request: (status, the redirect's query, the PKCE verifier)."""
    verifier = secrets.token_urlsafe(48)
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid",
        "state": "s1",
        "nonce": "n1",
        "code_challenge": s256_challenge(verifier),
        "code_challenge_method": "S256",
        **overrides,
    }
    query = urlencode({k: v for k, v in params.items() if v is not None})
    url = f"{idp.issuer}/protocol/openid-connect/auth?{query}"
    async with http.get(url, allow_redirects=False) as response:
        location = response.headers.get("Location", "")
        return response.status, parse_qs(urlsplit(location).query), verifier


async def redeem(
    http: aiohttp.ClientSession,
    idp: RunningProvider,
    code: str,
    verifier: str | None,
    headers: dict[str, str] | None = None,
    **extra: str,
) -> tuple[int, dict[str, Any]]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **extra}
    if verifier is not None:
        form["code_verifier"] = verifier
    url = f"{idp.issuer}/protocol/openid-connect/token"
    async with http.post(url, data=form, headers=basic() if headers is None else headers) as response:
        return response.status, await response.json()


async def test_a_code_is_redeemed_once_with_the_right_verifier(
    idp: RunningProvider, http: aiohttp.ClientSession
) -> None:
    status, query, verifier = await authorize(http, idp)
    assert status == 302 and query["state"] == ["s1"]
    code = query["code"][0]
    status, answer = await redeem(http, idp, code, verifier)
    assert status == 200 and answer["token_type"] == "Bearer" and answer["id_token"].count(".") == 2
    async with http.get(
        f"{idp.issuer}/protocol/openid-connect/userinfo",
        headers={"Authorization": "Bearer " + answer["access_token"]},
    ) as info:
        assert info.status == 200 and (await info.json())["preferred_username"] == "anna.admin"
    # Again: the code is spent, and the tokens it gave are revoked as Keycloak does.
    status, answer2 = await redeem(http, idp, code, verifier)
    assert status == 400 and answer2["error"] == "invalid_grant"
    async with http.get(
        f"{idp.issuer}/protocol/openid-connect/userinfo",
        headers={"Authorization": "Bearer " + answer["access_token"]},
    ) as info:
        assert info.status == 401 and 'error="invalid_token"' in info.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("verifier", "description"),
    [
        (None, "PKCE code verifier not specified"),
        ("x" * 43, "PKCE verification failed"),
        ("short", "Invalid code verifier"),
    ],
)
async def test_pkce_is_enforced(
    idp: RunningProvider, http: aiohttp.ClientSession, verifier: str | None, description: str
) -> None:
    _, query, _ = await authorize(http, idp)
    status, answer = await redeem(http, idp, query["code"][0], verifier)
    assert (status, answer["error"], answer["error_description"]) == (400, "invalid_grant", description)


async def test_an_authorization_without_pkce_or_openid_is_sent_back_with_an_error(
    idp: RunningProvider, http: aiohttp.ClientSession
) -> None:
    status, query, _ = await authorize(http, idp, code_challenge=None, code_challenge_method=None)
    assert status == 302 and query["error"] == ["invalid_request"] and query["state"] == ["s1"]
    status, query, _ = await authorize(http, idp, code_challenge_method="plain")
    assert query["error"] == ["invalid_request"]
    status, query, _ = await authorize(http, idp, scope="profile")
    assert query["error"] == ["invalid_scope"]


async def test_unknown_client_and_foreign_redirect_are_not_redirected_to(
    idp: RunningProvider, http: aiohttp.ClientSession
) -> None:
    status, query, _ = await authorize(http, idp, client_id="stranger")
    assert status == 400 and not query
    status, query, _ = await authorize(http, idp, redirect_uri="https://evil.example/cb")
    assert status == 400 and not query
    assert idp.state.logins == []


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        (basic(secret="wrong"), 401, "unauthorized_client"),
        (basic(client_id="stranger"), 401, "invalid_client"),
        ({}, 401, "unauthorized_client"),  # a confidential client without its secret
        ({"Authorization": "Basic !!"}, 401, "invalid_client"),
    ],
)
async def test_the_client_must_authenticate(
    idp: RunningProvider, http: aiohttp.ClientSession, headers: dict[str, str], status: int, error: str
) -> None:
    _, query, verifier = await authorize(http, idp)
    extra = {} if headers else {"client_id": CLIENT_ID}
    got, answer = await redeem(http, idp, query["code"][0], verifier, headers=headers, **extra)
    assert (got, answer["error"]) == (status, error)


async def test_two_client_authentications_at_once_are_refused(
    idp: RunningProvider, http: aiohttp.ClientSession
) -> None:
    _, query, verifier = await authorize(http, idp)
    status, answer = await redeem(http, idp, query["code"][0], verifier, client_secret=CLIENT_SECRET)
    assert (status, answer["error"]) == (400, "invalid_request")


async def test_a_code_for_another_redirect_address_is_refused(
    idp: RunningProvider, http: aiohttp.ClientSession
) -> None:
    _, query, verifier = await authorize(http, idp)
    code = query["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1:9999/other",
        "code_verifier": verifier,
    }
    async with http.post(f"{idp.issuer}/protocol/openid-connect/token", data=form, headers=basic()) as r:
        assert r.status == 400 and (await r.json())["error_description"] == "Incorrect redirect_uri"


async def test_an_expired_code_is_refused(http: aiohttp.ClientSession) -> None:
    async with running_provider(auto_login="anna.admin", code_seconds=0.001) as idp:
        _, query, verifier = await authorize(http, idp)
        for grant in idp.state.codes.values():
            grant.issued -= 1  # a second later than its lifetime, without waiting for it
        status, answer = await redeem(http, idp, query["code"][0], verifier)
        assert (status, answer["error"]) == (400, "invalid_grant")


async def test_discovery_and_keys_describe_the_provider(
    idp: RunningProvider, http: aiohttp.ClientSession
) -> None:
    async with http.get(idp.issuer + "/.well-known/openid-configuration") as response:
        document = await response.json()
    assert document["issuer"] == idp.issuer
    assert document["code_challenge_methods_supported"] == ["S256"]
    async with http.get(document["jwks_uri"]) as response:
        keys = (await response.json())["keys"]
    assert [(k["kty"], k["use"], k["alg"]) for k in keys] == [("RSA", "sig", "RS256")]
    assert "d" not in keys[0]  # the public part only


async def test_logout_only_to_a_registered_address(idp: RunningProvider, http: aiohttp.ClientSession) -> None:
    url = f"{idp.issuer}/protocol/openid-connect/logout"
    params = {"client_id": CLIENT_ID, "post_logout_redirect_uri": "https://evil.example/"}
    async with http.get(url, params=params, allow_redirects=False) as response:
        assert response.status == 400
    params["post_logout_redirect_uri"] = "http://127.0.0.1:9999/ui/login"
    async with http.get(url, params=params, allow_redirects=False) as response:
        assert response.status == 302 and response.headers["Location"].startswith(
            "http://127.0.0.1:9999/ui/login"
        )
    async with http.get(
        url, params={"id_token_hint": "forged.token.here"}, allow_redirects=False
    ) as response:
        assert response.status == 400
