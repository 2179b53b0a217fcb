"""The test kit's browser fixtures: the system's Chromium at 1366x768, and axe-core's verdict readable."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from hub.testing.browser import VIEWPORT, assert_accessible, assert_keyboard_usable, chromium_executable

pytestmark = pytest.mark.asyncio(loop_scope="module")

CSP = "default-src 'self'; script-src 'self'; style-src 'self'"
GOOD = """<!DOCTYPE html><html lang="de"><head><title>Gut</title></head><body><main>
<h1>Suche</h1><form><label for="q">Suchbegriff</label> <input id="q" name="q"></form>
<table><tr><th scope="col">Aktenzeichen</th></tr><tr><td><a href="/keys">32.3-2026-00001</a></td></tr></table>
</main></body></html>"""
# An image without text, a field without label, grey on white: three rules of WCAG 2 A/AA broken.
BAD = """<!DOCTYPE html><html lang="de"><head><title>Schlecht</title>
<link rel="stylesheet" href="/bad.css"></head><body><main>
<h1>Suche</h1><img src="/logo.png"><input name="q"><p class="faint">kaum lesbar</p>
</main></body></html>"""

# A button taken out of the tab order, a field whose focus ring is switched off: usable by mouse only.
KEYS = """<!DOCTYPE html><html lang="de"><head><title>Tastatur</title>
<link rel="stylesheet" href="/keys.css"></head><body><main>
<h1>Aktionen</h1><a href="/good">Suche</a> <button tabindex="-1">Erneut ausführen</button>
<label for="r">Begründung</label> <input id="r" class="plain"> <button>Aufgeben</button>
<input type="hidden" name="csrf_token" value="x"> <button hidden>Versteckt</button>
</main></body></html>"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site() -> AsyncIterator[str]:
    """Two pages served with a strict Content-Security-Policy (no inline script, no inline style)."""

    def html(text: str) -> web.Response:
        return web.Response(text=text, content_type="text/html", headers={"Content-Security-Policy": CSP})

    async def good(request: web.Request) -> web.Response:
        return html(GOOD)

    async def bad(request: web.Request) -> web.Response:
        return html(BAD)

    async def keys(request: web.Request) -> web.Response:
        return html(KEYS)

    async def css(request: web.Request) -> web.Response:
        return web.Response(text=".faint { color: #c8c8c8; }", content_type="text/css")

    async def keys_css(request: web.Request) -> web.Response:
        return web.Response(text=".plain:focus { outline: none; }", content_type="text/css")

    async def png(request: web.Request) -> web.Response:
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/good", good)
    app.router.add_get("/bad", bad)
    app.router.add_get("/bad.css", css)
    app.router.add_get("/keys", keys)
    app.router.add_get("/keys.css", keys_css)
    app.router.add_get("/logo.png", png)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


async def test_the_page_is_the_system_chromium_at_1366x768(browser: Browser, page: Page, site: str) -> None:
    assert chromium_executable() is not None
    await page.goto(site + "/good")
    size = await page.evaluate("() => [window.innerWidth, window.innerHeight]")
    assert size == [VIEWPORT["width"], VIEWPORT["height"]]
    assert await page.evaluate("() => navigator.language") == "de-DE"
    assert "HeadlessChrome" in await page.evaluate("() => navigator.userAgent")


async def test_a_sound_page_passes(page: Page, site: str) -> None:
    await page.goto(site + "/good")
    await assert_accessible(page)
    await assert_keyboard_usable(page)  # its field and its link are tab stops, focus drawn by default


async def test_violations_are_listed_by_rule_and_element(page: Page, site: str) -> None:
    await page.goto(site + "/bad")
    with pytest.raises(AssertionError) as failure:
        await assert_accessible(page)
    report = str(failure.value)
    assert report.startswith(f"3 accessibility violation(s) (WCAG 2.1 A/AA) on {site}/bad:")
    for rule, element in (("image-alt", "img"), ("label", "input"), ("color-contrast", "p")):
        assert f"- {rule} (" in report
        assert f"at {element}: <{element}" in report, report
    assert "https://dequeuniversity.com/rules/axe/" in report
    assert "\n       Element does not have an alt attribute\n" in report  # one line per way out
    # Run twice (axe injected once) and with the offending elements left out: clean.
    await assert_accessible(page, exclude=["img", "input", ".faint"])


async def test_axe_runs_although_the_page_forbids_inline_scripts(page: Page, site: str) -> None:
    await page.goto(site + "/good")
    blocked = await page.evaluate(
        """() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';
        document.head.append(s); return window.ran === undefined; }"""
    )
    assert blocked  # the CSP is in force for the page itself ...
    await assert_accessible(page)  # ... and axe still runs


async def test_keyboard_check_names_what_tab_misses_and_focus_hidden(page: Page, site: str) -> None:
    await page.goto(site + "/keys")
    with pytest.raises(AssertionError) as failure:
        await assert_keyboard_usable(page)
    report = str(failure.value)
    assert report == (
        f"{site}/keys: not reached by Tab: ['<button> \"Erneut ausführen\"']; "
        "focus not shown on: ['<input> \"r\"']"
    ), report
