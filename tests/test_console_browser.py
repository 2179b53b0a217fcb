"""The console in a real headless Chromium: log in, find, replay, and what a viewer may not see.

One world for the module: a hub FormCycle → enaio (the enaio simulator in-process on loopback), filed
applications of Jürgen Groß-Öztürk, and the OpenID Connect provider simulator where people with the roles
viewer, operator and admin log in (on "localhost", the hub on "127.0.0.1": two sites, so the browser meets
the real cross-site redirects and SameSite rules); their admin tokens are the fallback. One Chromium
(the test kit's `browser`), a fresh context (own cookies) per test. Waiting is on the page's state
(Playwright's auto-waiting `expect`), never on time.

With ``AKTENHUB_SCREENSHOTS=docs`` the tests save the README's screenshots of the dashboard and the
application page (PNG, 1366x768) into that directory; without it nothing in the checkout changes.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_enaio.simulator import make_app
from playwright.async_api import Page, expect
from test_e2e_enaio import ENAIO_PASSWORD, FORMCYCLE_TOKEN, Simulator, formcycle_to_enaio, jagdschein, submit

from hub.held import HeldMessages
from hub.journal import ApplicationFilter
from hub.models import ApplicationState
from hub.testing.browser import assert_accessible, assert_fits, assert_keyboard_usable
from hub.testing.harness import RunningHub, base_settings, start_hub, stop_hub
from hub.testing.oidc import RunningProvider, running_provider

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
    """The running hub, the enaio simulator, the applications filed at the start and one refused."""

    hub: RunningHub
    enaio: Simulator
    idp: RunningProvider
    filed: list[str]
    refused: str  # dead: enaio refused it (422), which no replay of a 503 group touches
    _next: Iterator[int] = field(default_factory=lambda: itertools.count(201))

    @property
    def url(self) -> str:
        """The hub's base URL."""
        return self.hub.url

    async def submit(self, **faults: int) -> str:
        """Submit a new application of Jürgen Groß-Öztürk with enaio's `faults` set for it."""
        if faults:
            await self.enaio.set_faults(**faults)
        return await submit(self.hub, jagdschein(f"FC-2026-000{next(self._next)}"))

    async def dead_now(self) -> list[str]:
        """The ids of the applications that are dead now."""
        summaries = await self.hub.journal.list_applications(
            ApplicationFilter(state=ApplicationState.DEAD), limit=1000
        )
        return sorted(summary.id for summary in summaries)

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
    """The hub with three applications filed in enaio and one refused, people logging in at the provider."""
    server = TestServer(make_app(), host="127.0.0.1")
    await server.start_server()
    env = {"FORMCYCLE_TOKEN": FORMCYCLE_TOKEN, "ENAIO_PASSWORD": ENAIO_PASSWORD}
    env.update({f"{role.upper()}_TOKEN": token for role, token in TOKENS.items()})
    async with aiohttp.ClientSession() as http, running_provider(host="localhost") as idp:
        enaio = Simulator(f"http://127.0.0.1:{server.port}", "dms", http)
        settings = _settings(tmp_path_factory.mktemp("browser-world"), enaio)
        settings["console"] = {"oidc": idp.console_settings()}
        hub = await start_hub(settings, env=env)
        try:
            filed = [await submit(hub, jagdschein(vorgang_id)) for vorgang_id in VORGANG_IDS]
            for application_id in filed:
                assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED
            # The next request, the mapping's look-up of an existing Akte, is refused: dead at once.
            await enaio.set_faults(fail_next=1, fail_status=422)
            refused = await submit(hub, jagdschein("FC-2026-000199"))
            assert await hub.wait_for_state(refused) == ApplicationState.DEAD
            # An inbound message its source could not take, whose sender and fault name the applicant.
            await HeldMessages(hub.journal, "formcycle").quarantine(
                "FC-HELD-1",
                sender="Jürgen Groß-Öztürk",
                code="oversize",
                reason="Anlage von Groß-Öztürk: 2 GB",
            )
            yield World(hub, enaio, idp, filed, refused)
        finally:
            await stop_hub(hub)
    await server.close()


async def log_in(page: Page, world: World, role: str, next_path: str = "/ui/") -> None:
    """Log in at the identity provider as the person with `role`; land on `next_path`."""
    await page.goto(world.url + next_path)
    await expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    await page.get_by_role("link", name="Anmelden mit dem Kreis-Konto").click()
    await page.get_by_label(re.compile(rf"^{re.escape(NAMES[role])} ")).check()  # the provider's form
    await page.get_by_role("button", name="Anmelden").click()
    await expect(page).to_have_url(world.url + next_path)
    await expect(page.locator("header form.who")).to_contain_text(f"{NAMES[role]} ({role})")


async def log_in_with_token(page: Page, world: World, role: str) -> None:
    """Log in with the login page's fallback, the admin token of the person with `role`."""
    await page.goto(world.url + "/ui/login")
    await page.get_by_label("Admin-Token").fill(TOKENS[role])
    await page.get_by_role("button", name="Anmelden", exact=True).click()
    await expect(page).to_have_url(world.url + "/ui/")
    await expect(page.locator("header form.who")).to_contain_text(f"{NAMES[role]} ({role})")


async def screenshot(page: Page, name: str) -> None:
    """Save a screenshot for docs/ when AKTENHUB_SCREENSHOTS names the directory (else nothing)."""
    directory = os.environ.get("AKTENHUB_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(directory) / name), full_page=False)


# -- login -----------------------------------------------------------------------------------------------


async def test_login_at_the_identity_provider_sets_the_session_cookie(page: Page, world: World) -> None:
    seen: list[str] = []
    page.on("framenavigated", lambda frame: seen.append(frame.url) if frame == page.main_frame else None)
    await log_in(page, world, "operator", next_path="/ui/connectors")
    # The browser went to the provider (another site) and came back through the callback.
    assert world.idp.url.startswith("http://localhost:")
    assert any(url.startswith(world.idp.url + "/") for url in seen), seen
    assert any("/ui/oidc/callback?" in url for url in seen), seen
    assert world.idp.state.logins[-1] == {"user": NAMES["operator"], "client_id": "aktenhub"}
    (cookie,) = [c for c in await page.context.cookies(world.url + "/ui/") if c["name"] == "aktenhub_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui/"
    assert cookie["value"] and not cookie["secure"]  # plain http on loopback


async def test_login_page_and_token_fallback(page: Page, world: World) -> None:
    await page.goto(world.url + "/ui/login")
    await assert_accessible(page)
    await assert_fits(page)
    await log_in_with_token(page, world, "viewer")


# -- accessibility and layout ----------------------------------------------------------------------------

# The main pages, each with what marks it as built (its h1); `{filed}`/`{refused}` name applications.
# The main pages, each with an element only the built page has; `{refused}` names an application.
PAGES = [
    pytest.param("/ui/", "#live-counters", id="dashboard"),
    pytest.param("/ui/applications", "#search", id="applications"),
    pytest.param("/ui/applications/{refused}", "#timeline", id="application"),
    pytest.param("/ui/dead", "#dead-groups", id="dead"),
    pytest.param("/ui/connectors", "section.connector", id="connectors"),
    pytest.param("/ui/held", "#held-messages", id="held"),
    pytest.param("/ui/audit", "#audit-filter", id="audit"),
]


@pytest.mark.parametrize(("path", "built"), PAGES)
async def test_main_page_is_accessible_usable_by_keyboard_and_fits_the_screen(
    page: Page, world: World, path: str, built: str
) -> None:
    await log_in(page, world, "admin")  # the admin sees every control a page has
    await page.goto(world.url + path.format(refused=world.refused))
    await expect(page.locator(built).first).to_be_visible()
    await assert_accessible(page)
    await assert_fits(page)
    await assert_keyboard_usable(page)


async def test_dashboard_screenshot(page: Page, world: World) -> None:
    await log_in(page, world, "operator")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Übersicht")
    await screenshot(page, "console-dashboard.png")


# -- finding an application ------------------------------------------------------------------------------


async def test_find_an_application_by_its_enaio_id_and_read_its_timeline(page: Page, world: World) -> None:
    application_id = world.filed[1]
    vorgang = await world.vorgang_id(application_id)
    await log_in(page, world, "operator")
    await page.get_by_role("link", name="Anträge").click()
    await page.get_by_role("searchbox").fill(vorgang)
    await page.get_by_role("searchbox").press("Enter")
    # One hit: the list links to it, or the console goes straight to its page.
    link = page.locator(f"a[href='/ui/applications/{application_id}']")
    if not page.url.endswith(f"/ui/applications/{application_id}"):
        await link.first.click()
    await expect(page).to_have_url(world.url + f"/ui/applications/{application_id}")
    timeline = page.locator("#timeline")
    await expect(timeline).to_contain_text(vorgang)  # the enaio id, where the Vorgang was filed
    await expect(timeline).to_contain_text("FC-2026-000102")
    await screenshot(page, "console-application.png")


# -- dead letters ----------------------------------------------------------------------------------------


async def test_dead_letters_of_a_target_are_replayed_in_bulk_after_the_fix(page: Page, world: World) -> None:
    retryable = "#dead-groups tr.dead-group[data-target='enaio'][data-error-code='Retryable']"
    refusal = "#dead-groups tr.dead-group[data-target='enaio'][data-error-code='Refusal']"
    # enaio answers 503 for a while: each of the two applications is dead after its second attempt.
    try:
        failing = [await world.submit(fail_next=10_000, fail_status=503) for _ in range(2)]
        for application_id in failing:
            assert await world.hub.wait_for_state(application_id) == ApplicationState.DEAD
        dead = len(await world.dead_now())
        await log_in(page, world, "operator")
        # A second tab keeps the dashboard open: its live counters follow without a reload.
        dashboard = await page.context.new_page()
        await dashboard.goto(world.url + "/ui/")
        dead_counter = dashboard.locator(".card[data-counter='dead'] .figure")
        await expect(dead_counter).to_have_text(str(dead))

        await page.get_by_role("link", name="Fehlgeschlagen").click()
        await expect(page.locator(f"{retryable} td[data-applications]")).to_have_attribute(
            "data-applications", "2"
        )
        # The refused application is a group of its own, which this replay leaves alone.
        await expect(page.locator(refusal)).to_have_count(1)
    finally:
        await world.enaio.set_faults(fail_next=0)  # enaio is back
    await page.locator(f"{retryable} button[data-action='replay']").click()
    await expect(page.locator("#dead-confirm-count")).to_have_text("Dies betrifft 2 Anträge.")
    reason = "enaio nach Wartung wieder erreichbar (Ticket 4711)"
    await page.get_by_label("Begründung").fill(reason)
    await page.locator("#dead-confirm-submit").click()
    await expect(page.locator("#dead-notice")).to_contain_text("2 Anträge")

    # The dashboard counts them done by itself (htmx polls every few seconds; no reload, no sleep).
    await expect(dead_counter).to_have_text(str(dead - 2), timeout=30_000)
    for application_id in failing:
        assert await world.hub.wait_for_state(application_id) == ApplicationState.COMPLETED
    assert await world.dead_now() == [world.refused]
    # Gone from the dead letters, completed on their pages, and in the audit trail with name and reason.
    await page.goto(world.url + "/ui/dead")
    await expect(page.locator(retryable)).to_have_count(0)
    await expect(page.locator(refusal)).to_have_count(1)
    for application_id in failing:
        await page.goto(world.url + f"/ui/applications/{application_id}")
        await expect(page.locator("#application-state")).to_have_class(re.compile(r"\bstate-completed\b"))
    await page.goto(world.url + "/ui/audit")
    replayed = page.locator("#audit-rows tbody tr", has_text=reason)
    await expect(replayed).to_have_count(1)
    await expect(replayed).to_contain_text(NAMES["operator"])


# -- what a viewer sees ----------------------------------------------------------------------------------


async def visible_and_source(page: Page) -> str:
    """The page's rendered text and its HTML (hidden fields, attributes), to search both."""
    return await page.locator("body").inner_text() + "\n" + await page.content()


async def test_a_viewer_sees_no_personal_data(page: Page, world: World) -> None:
    error = (await world.hub.hub.operations.show(world.refused)).summary.error
    assert error, "the refused application has an error text"
    pages = [
        "/ui/",
        "/ui/applications",
        f"/ui/applications/{world.filed[0]}",
        f"/ui/applications/{world.refused}",
        "/ui/dead",
        "/ui/connectors",
        "/ui/held",
    ]
    await log_in(page, world, "viewer")
    for path in pages:
        await page.goto(world.url + path)
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        text = await visible_and_source(page)
        # As whole words: the postal code 53721 may occur by chance inside an id or a timestamp.
        leaked = [v for v in (*PERSONAL, error) if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", text)]
        assert not leaked, f"a viewer sees {leaked} on {path}"
    # Nor can a viewer find applications by the applicant's name.
    by_name = "/ui/applications?q=Gro%C3%9F-%C3%96zt%C3%BCrk"
    await page.goto(world.url + by_name)
    await expect(page.locator("#no-results")).to_be_visible()
    # An operator sees there what a viewer may not: the checks above looked at the right places.
    await page.context.clear_cookies()
    await log_in(page, world, "operator")
    await page.goto(world.url + f"/ui/applications/{world.refused}")
    await expect(page.locator("main")).to_contain_text("Groß-Öztürk")
    await expect(page.locator("main")).to_contain_text(error)
    await page.goto(world.url + by_name)
    await expect(page.locator("#results tr[data-application-id]")).not_to_have_count(0)


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


async def test_pausing_a_target_without_csrf_token_is_refused_and_from_the_page_it_works(
    page: Page, world: World
) -> None:
    operations = world.hub.hub.operations

    async def paused() -> bool:
        (enaio,) = [t for t in await operations.targets() if t.target == "enaio"]
        return enaio.paused is not None

    await log_in(page, world, "operator")
    refused = await page.request.post(
        world.url + "/ui/connectors/enaio/pause", form={"reason": "Wartung"}, max_redirects=0
    )
    assert refused.status == 403 and "CSRF" in await refused.text()
    assert not await paused()

    await page.goto(world.url + "/ui/connectors")
    enaio = page.locator("section.connector[data-connector='enaio']")
    await enaio.get_by_label("Begründung der Pause").fill("Wartung des DMS")
    await enaio.get_by_role("button", name="Pausieren").click()
    await expect(enaio.locator("dd.pause")).to_have_attribute("data-paused", "true")
    assert await paused()
    await enaio.get_by_role("button", name="Fortsetzen").click()
    await expect(enaio.locator("dd.pause")).to_have_attribute("data-paused", "false")
    assert not await paused()
