"""The console's login, session cookie and CSRF check, seen from a browser without JavaScript."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.testing.console import ConsoleClient
from hub.testing.harness import RunningHub, base_settings, start_hub, stop_hub

TOKENS = {"VIEWER_TOKEN": "v-secret-1", "ADMIN_TOKEN": "a-secret-3"}


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningHub]:
    settings = base_settings(tmp_path, {"out": {"type": "log"}}, [])
    settings["server"]["admin_tokens"] = [
        {"name": "dashboard", "token": "${VIEWER_TOKEN}", "role": "viewer"},
        {"name": "chief", "token": "${ADMIN_TOKEN}", "role": "admin"},
    ]
    hub = await start_hub(settings, env=TOKENS)
    yield hub
    await stop_hub(hub)


async def test_a_page_without_session_leads_to_the_login(running: RunningHub) -> None:
    async with ConsoleClient(running.url) as browser:
        async with browser.http.get(browser.url + "/ui/audit?x=1", allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"].startswith("/ui/login?next=")
        # After the login the person lands on the page asked for.
        status, page = await browser.get("/ui/audit?x=1")
        assert status == 200 and 'name="next" value="/ui/audit?x=1"' in page


async def test_token_login_sets_a_strict_httponly_cookie(running: RunningHub) -> None:
    async with ConsoleClient(running.url) as browser:
        response = await browser.login_with_token("a-secret-3")
        assert response.status == 200 and str(response.url).endswith("/ui/")
        cookie = next(h for h in response.history[0].headers.getall("Set-Cookie") if "aktenhub_session" in h)
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui/" in cookie
        assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would never come back
        assert "chief (admin)" in await response.text()


async def test_an_unknown_token_is_refused(running: RunningHub) -> None:
    async with ConsoleClient(running.url) as browser:
        response = await browser.login_with_token("guessed")
        assert response.status == 401
        assert "Dieses Token ist unbekannt." in await response.text()
        assert not [c for c in browser.http.cookie_jar if c.key == "aktenhub_session" and c.value]


async def test_a_forged_session_cookie_is_no_session(running: RunningHub) -> None:
    async with ConsoleClient(running.url) as browser:
        browser.http.cookie_jar.update_cookies({"aktenhub_session": "gAAAAAforged"})
        status, _ = await browser.get("/ui/audit", allow_redirects=False)
        assert status == 303


async def test_a_change_without_csrf_token_is_refused_and_the_session_stays(running: RunningHub) -> None:
    async with ConsoleClient(running.url) as browser:
        await browser.login_with_token("v-secret-1")
        status, body = await browser.post("/ui/logout", csrf=False, allow_redirects=False)
        assert status == 403 and "CSRF" in body
        status, _ = await browser.get("/ui/", allow_redirects=False)
        assert status == 200
        status, _ = await browser.post("/ui/logout", allow_redirects=False)
        assert status == 303
        status, _ = await browser.get("/ui/", allow_redirects=False)
        assert status == 303


async def test_pages_are_not_cached_nor_framed(running: RunningHub) -> None:
    async with ConsoleClient(running.url) as browser:
        await browser.login_with_token("v-secret-1")
        async with browser.http.get(browser.url + "/ui/") as response:
            assert response.headers["Cache-Control"] == "no-store"
            assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
