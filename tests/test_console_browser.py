"""The console in a real headless Chromium: log in, find, replay, and what a viewer may not see.

One world for the module: a hub FormCycle → enaio (the enaio simulator in-process on loopback), filed
applications of Jürgen Groß-Öztürk, and persons with the roles viewer, operator and admin. One Chromium
(the test kit's `browser`), a fresh context (own cookies) per test. Waiting is on the page's state
(Playwright's auto-waiting `expect`), never on time.

With ``AKTENHUB_SCREENSHOTS=docs`` the tests save the README's screenshots of the dashboard and the
application page (PNG, 1366x768) into that directory; without it nothing in the checkout changes.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_enaio.simulator import make_app
from playwright.async_api import Page, expect
from test_e2e_enaio import ENAIO_PASSWORD, FORMCYCLE_TOKEN, Simulator, formcycle_to_enaio, jagdschein, submit

from hub.models import ApplicationState
from hub.testing.browser import VIEWPORT, assert_accessible
from hub.testing.harness import RunningHub, base_settings, start_hub, stop_hub

pytestmark = pytest.mark.asyncio(loop_scope="module")

TOKENS = {"viewer": "v-" + "1" * 30, "operator": "o-" + "2" * 30, "admin": "a-" + "3" * 30}
NAMES = {"viewer": "vera.viewer", "operator": "otto.operator", "admin": "anna.admin"}
# What the applicant sent (tests/test_e2e_enaio.py `jagdschein`): none of it may reach a viewer's screen.
PERSONAL = (
    "Jürgen",
    "Groß-Öztürk",
    "Kaiserstraße",
    "1971-01-11",
    "11.01.1971",
    "53721",
    "j.gross@example.org",
    "Jahresjagdschein",
    "Jagdhaftpflicht",
    "Personalausweis_Groß.pdf",
    "Versicherungsnachweis.pdf",
)
VORGANG_IDS = ("FC-2026-000101", "FC-2026-000102", "FC-2026-000103")


@dataclass
class World:
    """The running hub, the enaio simulator, and the applications filed at the start."""

    hub: RunningHub
    enaio: Simulator
    filed: list[str]

    @property
    def url(self) -> str:
        """The hub's base URL."""
        return self.hub.url

    async def vorgang_id(self, application_id: str) -> str:
        """The enaio object id of the application's Vorgang."""
        (vorgang,) = await self.enaio.objects(type="Vorgang", AktenhubID=application_id)
        object_id: str = vorgang["id"]
        return object_id


def _settings(tmp: Path, enaio: Simulator) -> dict[str, Any]:
    connectors, routes = formcycle_to_enaio(enaio)
    # A failing enaio makes its applications dead after the second attempt, and the circuit stays
    # closed meanwhile (an open one would hold them back instead of letting them die).
    connectors["enaio"]["retry"] = {"max_attempts": 2, "initial_seconds": 0.05, "max_seconds": 0.1}
    connectors["enaio"]["circuit"] = {"failure_threshold": 1000}
    settings = base_settings(tmp, connectors, routes)
    settings["server"]["admin_tokens"] = [
        {"name": NAMES[role], "token": f"${{{role.upper()}_TOKEN}}", "role": role} for role in TOKENS
    ]
    return settings


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """The hub with three applications filed in enaio."""
    server = TestServer(make_app(), host="127.0.0.1")
    await server.start_server()
    env = {"FORMCYCLE_TOKEN": FORMCYCLE_TOKEN, "ENAIO_PASSWORD": ENAIO_PASSWORD}
    env.update({f"{role.upper()}_TOKEN": token for role, token in TOKENS.items()})
    async with aiohttp.ClientSession() as http:
        enaio = Simulator(f"http://127.0.0.1:{server.port}", "dms", http)
        hub = await start_hub(_settings(tmp_path_factory.mktemp("browser-world"), enaio), env=env)
        try:
            filed = [await submit(hub, jagdschein(vorgang_id)) for vorgang_id in VORGANG_IDS]
            for application_id in filed:
                assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED
            yield World(hub, enaio, filed)
        finally:
            await stop_hub(hub)
    await server.close()


async def log_in(page: Page, world: World, role: str) -> None:
    """Log in through the login page's token form as the person with `role`; land on the dashboard."""
    await page.goto(world.url + "/ui/login")
    await page.get_by_label("Admin-Token").fill(TOKENS[role])
    await page.get_by_role("button", name="Anmelden").click()
    await expect(page).to_have_url(world.url + "/ui/")
    await expect(page.locator("header form.who")).to_contain_text(f"{NAMES[role]} ({role})")


async def screenshot(page: Page, name: str) -> None:
    """Save a screenshot for docs/ when AKTENHUB_SCREENSHOTS names the directory (else nothing)."""
    directory = os.environ.get("AKTENHUB_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(directory) / name), full_page=False)


# -- login -----------------------------------------------------------------------------------------------


async def test_login_sets_the_session_cookie_and_the_login_page_is_accessible(
    page: Page, world: World
) -> None:
    await page.goto(world.url + "/ui/")
    await expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    await assert_accessible(page)
    await log_in(page, world, "operator")
    (cookie,) = [c for c in await page.context.cookies() if c["name"] == "aktenhub_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui/"


# -- accessibility and layout ----------------------------------------------------------------------------


async def test_dashboard_is_accessible_and_fits_the_screen(page: Page, world: World) -> None:
    await log_in(page, world, "operator")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Übersicht")
    await assert_accessible(page)
    await assert_fits(page)
    await screenshot(page, "console-dashboard.png")


async def assert_fits(page: Page) -> None:
    """At 1366x768 the page does not scroll sideways: wide tables scroll inside their own container."""
    overflow = await page.evaluate("() => document.documentElement.scrollWidth")
    assert overflow <= VIEWPORT["width"], f"{page.url} is {overflow}px wide at {VIEWPORT['width']}px"


# -- CSRF ------------------------------------------------------------------------------------------------


async def test_a_post_without_csrf_token_is_refused_and_the_page_s_own_form_works(
    page: Page, world: World
) -> None:
    await log_in(page, world, "viewer")
    # The same request the logout button sends, without the session's token: refused, still logged in.
    refused = await page.request.post(world.url + "/ui/logout", form={}, max_redirects=0)
    assert refused.status == 403 and "CSRF" in await refused.text()
    await page.goto(world.url + "/ui/")
    await expect(page).to_have_url(world.url + "/ui/")
    # The page's own form carries the token: logged out.
    await page.get_by_role("button", name="Abmelden").click()
    await expect(page).to_have_url(world.url + "/ui/login")
    await page.goto(world.url + "/ui/")
    await expect(page).to_have_url(re.compile(r"/ui/login\?next="))
