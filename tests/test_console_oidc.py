"""Login to the console with OpenID Connect against the provider simulator, as a browser without JS."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from yarl import URL

from hub.actions import Action
from hub.console.config import OidcConfig
from hub.console.oidc import role_of
from hub.oidc_simulator import SimulatedUser, demo_users
from hub.testing.console import ConsoleClient
from hub.testing.harness import RunningHub, base_settings, start_hub, stop_hub
from hub.testing.oidc import RunningProvider, running_provider

NOT_COMPLETED = "Die Anmeldung konnte nicht abgeschlossen werden."


@pytest.fixture
async def idp() -> AsyncIterator[RunningProvider]:
    async with running_provider() as provider:
        yield provider


async def console_with(tmp_path: Path, oidc: dict[str, Any], tokens: bool = False) -> RunningHub:
    settings = base_settings(tmp_path, {"out": {"type": "log"}}, [])
    settings["console"] = {"oidc": oidc}
    if tokens:
        settings["server"]["admin_tokens"] = [{"name": "notfall", "token": "${ADMIN_TOKEN}", "role": "admin"}]
    return await start_hub(settings, env={"ADMIN_TOKEN": "a-secret-3"})


@pytest.fixture
async def hub(tmp_path: Path, idp: RunningProvider) -> AsyncIterator[RunningHub]:
    running = await console_with(tmp_path, idp.console_settings(), tokens=True)
    yield running
    await stop_hub(running)


def session_cookie(browser: ConsoleClient) -> str | None:
    return next((c.value for c in browser.http.cookie_jar if c.key == "aktenhub_session" and c.value), None)


async def logged_out(browser: ConsoleClient) -> bool:
    status, _ = await browser.get("/ui/", allow_redirects=False)
    return status == 303 and session_cookie(browser) is None


async def test_login_through_the_provider(hub: RunningHub, idp: RunningProvider) -> None:
    async with ConsoleClient(hub.url) as browser:
        async with browser.http.get(hub.url + "/ui/oidc/login", allow_redirects=False) as start:
            assert start.status == 303
            flow = next(h for h in start.headers.getall("Set-Cookie") if h.startswith("aktenhub_oidc="))
        # The flow cookie must come back with the provider's cross-site redirect: Lax, not Strict.
        assert "SameSite=Lax" in flow and "HttpOnly" in flow and "Max-Age=600" in flow
        location = urlsplit(start.headers["Location"])
        query = parse_qs(location.query)
        assert f"{location.scheme}://{location.netloc}{location.path}".startswith(idp.issuer)
        assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
        assert query["redirect_uri"] == [hub.url + "/ui/oidc/callback"]
        assert query["state"] != query["nonce"] and query["scope"] == ["openid profile email"]

        response = await browser.login_with_oidc("otto.operator")
        assert response.status == 200 and str(response.url) == hub.url + "/ui/"
        assert "otto.operator (operator)" in await response.text()
        # The session cookie came on the same-origin page after the callback, Strict as always.
        callback = response.history[-1] if response.history else None
        assert callback is None or "aktenhub_session" not in str(callback.headers)
    assert idp.state.logins == [{"user": "otto.operator", "client_id": "aktenhub"}]
    assert idp.state.token_requests == ["client_secret_basic"]


async def test_the_callback_answers_with_a_same_origin_step_carrying_a_strict_session(
    hub: RunningHub,
) -> None:
    async with ConsoleClient(hub.url) as browser:
        async with browser.http.get(hub.url + "/ui/oidc/login", allow_redirects=False) as start:
            authorize = start.headers["Location"]
        async with browser.http.get(authorize) as form_page:
            page = await form_page.text()
        code = page.split("name='session_code' value='")[1].split("'")[0]
        async with browser.http.post(
            authorize,
            data={"session_code": code, "username": "anna.admin", "login": "1"},
            allow_redirects=False,
        ) as chosen:
            callback = chosen.headers["Location"]
        assert callback.startswith(hub.url + "/ui/oidc/callback?code=")
        async with browser.http.get(callback, allow_redirects=False) as answer:
            assert answer.status == 200  # not a redirect: a cross-site chain would not carry the cookie
            body = await answer.text()
            cookies = answer.headers.getall("Set-Cookie")
        assert '<meta http-equiv="refresh" content="0; url=/ui/">' in body
        session = next(c for c in cookies if c.startswith("aktenhub_session="))
        assert "SameSite=Strict" in session and "HttpOnly" in session and "Path=/ui/" in session
        assert any(c.startswith("aktenhub_oidc=;") or c.startswith('aktenhub_oidc="";') for c in cookies)
        status, page = await browser.get("/ui/")
        assert status == 200 and "anna.admin (admin)" in page


async def test_the_name_from_the_provider_is_who_acted_in_the_audit_trail(
    hub: RunningHub, idp: RunningProvider
) -> None:
    async with ConsoleClient(hub.url) as browser:
        await browser.login_with_oidc("otto.operator")
        status, page = await browser.post("/ui/connectors/out/pause", {"reason": "Wartung"})
        assert status == 200 and "Ziel out ist pausiert." in page
    [action] = await hub.hub.operations.audit(Action.PAUSED)
    assert (action.operator, action.subject, action.reason) == ("otto.operator", "out", "Wartung")


async def test_the_page_asked_for_is_reached_after_login(hub: RunningHub) -> None:
    async with ConsoleClient(hub.url) as browser:
        response = await browser.login_with_oidc("vera.viewer", next_path="/ui/applications?x=1&y=2")
        assert str(response.url) == hub.url + "/ui/applications?x=1&y=2"
        assert "vera.viewer (viewer)" in await response.text()


@pytest.mark.parametrize(
    "hostile",
    [
        "//evil.example/ui/",
        "https://evil.example/ui/",
        "/\\evil.example",
        "javascript:alert(1)",
        '/ui/";url=https://evil.example',
        "/ui/\n//evil.example",
    ],
)
async def test_next_never_leads_to_another_site(hub: RunningHub, hostile: str) -> None:
    async with ConsoleClient(hub.url) as browser:
        response = await browser.login_with_oidc("anna.admin", next_path=hostile)
        landed = urlsplit(str(response.url))
        assert landed.netloc == urlsplit(hub.url).netloc and landed.path.startswith("/ui/")
        assert session_cookie(browser) is not None


async def test_a_person_without_a_console_role_is_refused(
    hub: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.console.oidc")
    async with ConsoleClient(hub.url) as browser:
        response = await browser.login_with_oidc("gustav.gast")
        assert response.status == 403
        assert "keine Rolle für die Aktenhub-Konsole" in await response.text()
        assert await logged_out(browser)
    logged = [r.getMessage() for r in caplog.records if r.name == "hub.console.oidc"]
    assert logged == ["console oidc login refused reason=no_role"]  # the reason, not who it was


@pytest.mark.parametrize(
    ("signs", "accepted", "works"),
    [("PS256", ["PS256"], True), ("ES256", ["ES256", "RS256"], True), ("PS256", ["RS256"], False)],
)
async def test_the_signature_algorithms_are_those_configured(
    tmp_path: Path, signs: str, accepted: list[str], works: bool
) -> None:
    async with running_provider(algorithm=signs) as idp:
        running = await console_with(tmp_path, idp.console_settings(algorithms=accepted))
        try:
            async with ConsoleClient(running.url) as browser:
                response = await browser.login_with_oidc("anna.admin")
                assert (response.status == 200) is works
                assert (session_cookie(browser) is not None) is works
        finally:
            await stop_hub(running)


async def test_cancelling_at_the_provider_is_a_german_message_without_session(hub: RunningHub) -> None:
    async with ConsoleClient(hub.url) as browser:
        async with browser.http.get(hub.url + "/ui/oidc/login") as form_page:
            page = await form_page.text()
            authorize = form_page.url
        code = page.split("name='session_code' value='")[1].split("'")[0]
        async with browser.http.post(authorize, data={"session_code": code, "cancel": "1"}) as answer:
            assert answer.status == 403
            assert "beim Anmeldedienst abgebrochen" in await answer.text()
        assert await logged_out(browser)


async def test_a_foreign_state_is_refused(hub: RunningHub) -> None:
    async with ConsoleClient(hub.url) as browser:
        async with browser.http.get(hub.url + "/ui/oidc/login", allow_redirects=False):
            pass
        status, page = await browser.get("/ui/oidc/callback?code=abc&state=somebody-elses")
        assert status == 400 and "gehört zu keiner Anmeldung hier" in page
        assert await logged_out(browser)


async def test_a_callback_without_a_flow_is_refused(hub: RunningHub) -> None:
    async with ConsoleClient(hub.url) as browser:
        status, page = await browser.get("/ui/oidc/callback?code=abc&state=xyz")
        assert status == 400 and "abgelaufen oder wurde nicht hier begonnen" in page
        assert await logged_out(browser)


async def _callback_of_a_login(browser: ConsoleClient, hub: RunningHub, user: str) -> tuple[str, str]:
    """Go through the provider up to its redirect back: (callback URL, flow cookie)."""
    async with browser.http.get(hub.url + "/ui/oidc/login") as form_page:
        page = await form_page.text()
        authorize = form_page.url
    code = page.split("name='session_code' value='")[1].split("'")[0]
    async with browser.http.post(
        authorize, data={"session_code": code, "username": user, "login": "1"}, allow_redirects=False
    ) as chosen:
        callback = chosen.headers["Location"]
    flow = next(c.value for c in browser.http.cookie_jar if c.key == "aktenhub_oidc")
    return callback, flow


async def test_a_replayed_callback_is_refused(hub: RunningHub, idp: RunningProvider) -> None:
    async with ConsoleClient(hub.url) as browser:
        callback, flow = await _callback_of_a_login(browser, hub, "anna.admin")
        status, _ = await browser.get(callback.removeprefix(hub.url))
        assert status == 200 and session_cookie(browser) is not None
    async with ConsoleClient(hub.url) as attacker:
        # The same answer with the same flow cookie, once more: refused before the code is redeemed.
        attacker.http.cookie_jar.update_cookies({"aktenhub_oidc": flow}, response_url=URL(hub.url + "/ui/"))
        status, page = await attacker.get(callback.removeprefix(hub.url))
        assert status == 400 and "bereits abgeschlossen" in page
        assert await logged_out(attacker)
    assert len(idp.state.token_requests) == 1


async def test_a_replayed_code_is_refused_by_the_provider(
    hub: RunningHub, idp: RunningProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.console.oidc")
    async with ConsoleClient(hub.url) as browser:
        callback, _ = await _callback_of_a_login(browser, hub, "anna.admin")
        status, _ = await browser.get(callback.removeprefix(hub.url))
        assert status == 200
    old_code = parse_qs(urlsplit(callback).query)["code"][0]
    async with ConsoleClient(hub.url) as attacker:
        # A flow of its own, answered with somebody else's (used) code.
        async with attacker.http.get(hub.url + "/ui/oidc/login", allow_redirects=False) as start:
            state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
        status, page = await attacker.get(f"/ui/oidc/callback?code={old_code}&state={state}")
        assert status == 400 and NOT_COMPLETED in page
        assert await logged_out(attacker)
    assert len(idp.state.token_requests) == 2
    assert "console oidc login refused reason=token_endpoint_400_invalid_grant" in caplog.messages


@pytest.mark.parametrize(
    ("defect", "reason"),
    [
        ("wrong_audience", "id_token_invalid_claim_aud"),
        ("wrong_issuer", "id_token_invalid_claim_iss"),
        ("expired", "id_token_expired_token_exp"),
        ("alg_none", "id_token_unsupported_algorithm"),
        ("hs256", "id_token_unsupported_algorithm"),
        ("foreign_key", "id_token_bad_signature"),
        ("wrong_nonce", "id_token_nonce"),
        ("several_audiences", "id_token_azp"),
    ],
)
async def test_an_id_token_that_does_not_validate_gives_no_session(
    hub: RunningHub, idp: RunningProvider, defect: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.console.oidc")
    idp.state.knobs.id_token = defect  # type: ignore[assignment]
    async with ConsoleClient(hub.url) as browser:
        response = await browser.login_with_oidc("anna.admin")
        assert response.status == 400 and NOT_COMPLETED in await response.text()
        assert await logged_out(browser)
    assert idp.state.knobs.id_token is None  # the defective token was issued and refused ...
    assert f"console oidc login refused reason={reason}" in caplog.messages  # ... for its defect
    async with ConsoleClient(hub.url) as browser:
        response = await browser.login_with_oidc("anna.admin")
        assert response.status == 200  # the next, sound token is taken


async def test_a_new_signing_key_is_fetched_when_the_provider_rolls_over(
    hub: RunningHub, idp: RunningProvider
) -> None:
    async with ConsoleClient(hub.url) as browser:
        assert (await browser.login_with_oidc("anna.admin")).status == 200
    idp.state.rotate_key()
    async with ConsoleClient(hub.url) as browser:
        response = await browser.login_with_oidc("anna.admin")
        assert response.status == 200 and "anna.admin (admin)" in await response.text()


async def test_logout_ends_the_providers_session_too(hub: RunningHub, idp: RunningProvider) -> None:
    async with ConsoleClient(hub.url) as browser:
        await browser.login_with_oidc("anna.admin")
        async with browser.http.get(hub.url + "/ui/") as page:
            csp = page.headers["Content-Security-Policy"]
        assert csp.endswith(f"form-action 'self' {idp.url}")
        # The provider's SSO session logs the same browser in again without its form ...
        again = await browser.login_with_oidc()
        assert again.status == 200 and "anna.admin (admin)" in await again.text()
        async with browser.http.post(
            hub.url + "/ui/logout", data={"csrf_token": browser.csrf or ""}, allow_redirects=False
        ) as out:
            assert out.status == 303
            target = out.headers["Location"]
        query = parse_qs(urlsplit(target).query)
        assert target.startswith(idp.issuer + "/protocol/openid-connect/logout?")
        assert query["post_logout_redirect_uri"] == [hub.url + "/ui/login"]
        assert query["client_id"] == ["aktenhub"] and "id_token_hint" in query
        async with browser.http.get(target) as back:
            assert back.status == 200 and str(back.url).startswith(hub.url + "/ui/login")
        assert idp.state.logouts == [{"user": "anna.admin", "client_id": "aktenhub", "hint": "yes"}]
        assert await logged_out(browser)
        # ... until it logged out: now the form is shown again.
        async with browser.http.get(hub.url + "/ui/oidc/login") as form_page:
            assert "name='session_code'" in await form_page.text()


async def test_an_unreachable_provider_leaves_the_token_form(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    oidc = {
        "issuer": f"http://127.0.0.1:{port}/realms/kreis",
        "client_id": "aktenhub",
        "role_map": {"admin": ["aktenhub-admin"]},
    }
    running = await console_with(tmp_path, oidc, tokens=True)
    try:
        async with ConsoleClient(running.url) as browser:
            status, page = await browser.get("/ui/oidc/login")
            assert status == 503 and "nicht erreichbar" in page and 'name="token"' in page
            response = await browser.login_with_token("a-secret-3")
            assert response.status == 200 and "notfall (admin)" in await response.text()
    finally:
        await stop_hub(running)


async def test_client_secret_post_when_the_provider_offers_only_that(tmp_path: Path) -> None:
    async with running_provider(token_auth_methods=["client_secret_post"]) as idp:
        running = await console_with(tmp_path, idp.console_settings())
        try:
            async with ConsoleClient(running.url) as browser:
                response = await browser.login_with_oidc("anna.admin")
                assert response.status == 200 and "anna.admin (admin)" in await response.text()
        finally:
            await stop_hub(running)
        assert idp.state.token_requests == ["client_secret_post"]


async def test_a_wrong_client_secret_is_a_message_for_the_it_department(tmp_path: Path) -> None:
    async with running_provider() as idp:
        running = await console_with(tmp_path, idp.console_settings(client_secret="wrong"))
        try:
            async with ConsoleClient(running.url) as browser:
                response = await browser.login_with_oidc("anna.admin")
                assert response.status == 502
                assert "nicht richtig eingetragen" in await response.text()
                assert await logged_out(browser)
        finally:
            await stop_hub(running)


ENTRA_USERS = {
    "erika": SimulatedUser(
        claims={
            "upn": "erika.muster@kreis.example",
            "preferred_username": "erika.muster@kreis.example",
            "roles": ["Aktenhub.Operator", "Aktenhub.Viewer"],
        }
    )
}


async def test_entra_id_app_roles_and_upn(tmp_path: Path) -> None:
    async with running_provider(users=ENTRA_USERS, realm="entra") as idp:
        oidc = idp.console_settings(
            role_claim="roles",
            name_claim="upn",
            role_map={"operator": ["Aktenhub.Operator"], "viewer": ["Aktenhub.Viewer"]},
        )
        running = await console_with(tmp_path, oidc)
        try:
            async with ConsoleClient(running.url) as browser:
                response = await browser.login_with_oidc("erika")
                assert "erika.muster@kreis.example (operator)" in await response.text()
        finally:
            await stop_hub(running)


async def test_roles_from_the_userinfo_endpoint(tmp_path: Path) -> None:
    users = {
        "udo": SimulatedUser(claims={"preferred_username": "udo"}, userinfo_claims={"groups": ["it-ops"]})
    }
    async with running_provider(users=users) as idp:
        settings = idp.console_settings(role_claim="groups", role_map={"operator": ["it-ops"]})
        without = await console_with(tmp_path / "a", settings)
        try:
            async with ConsoleClient(without.url) as browser:
                assert (await browser.login_with_oidc("udo")).status == 403
        finally:
            await stop_hub(without)
        with_userinfo = await console_with(tmp_path / "b", {**settings, "userinfo": True})
        try:
            async with ConsoleClient(with_userinfo.url) as browser:
                response = await browser.login_with_oidc("udo")
                assert response.status == 200 and "udo (operator)" in await response.text()
        finally:
            await stop_hub(with_userinfo)


def _config(role_claim: str, **role_map: list[str]) -> OidcConfig:
    return OidcConfig.model_validate(
        {"issuer": "https://idp.example", "client_id": "c", "role_claim": role_claim, "role_map": role_map}
    )


def test_role_mapping_keycloak_entra_and_adfs_claims() -> None:
    keycloak = demo_users()["otto.operator"].claims
    assert role_of(keycloak, _config("realm_access.roles", operator=["aktenhub-operator"])) == "operator"
    client_roles = {"resource_access": {"aktenhub.console": {"roles": ["admin", "read"]}}}
    config = _config("resource_access.aktenhub.console.roles", admin=["admin"], viewer=["read"])
    assert role_of(client_roles, config) == "admin"  # the highest one wins; a client id with dots
    entra = {"roles": ["Aktenhub.Viewer"]}
    assert role_of(entra, _config("roles", viewer=["Aktenhub.Viewer"], admin=["Aktenhub.Admin"])) == "viewer"
    adfs_claim = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
    adfs = {adfs_claim: "GG-Aktenhub-Bedienung"}  # one role: a string, not a list
    assert role_of(adfs, _config(adfs_claim, operator=["GG-Aktenhub-Bedienung"])) == "operator"
    assert role_of({"role": ["Sachbearbeitung"]}, _config("role", operator=["GG-Aktenhub"])) is None
    assert role_of({}, _config("realm_access.roles", viewer=["x"])) is None


def test_an_unsafe_configuration_is_refused() -> None:
    base = {"issuer": "https://idp.example", "client_id": "c", "role_map": {"viewer": ["x"]}}
    wrong: dict[str, Any]
    for wrong in (
        {"issuer": "http://idp.example"},  # plain http beyond the loopback
        {"algorithms": ["HS256"]},
        {"algorithms": ["none"]},
        {"scopes": ["profile"]},
        {"role_map": {}},
    ):
        with pytest.raises(ValueError):
            OidcConfig.model_validate({**base, **wrong})
