"""Browser tests in a real headless Chromium: Debian's ``chromium`` driven by Playwright, checked by axe-core.

No browser is downloaded: Playwright's wheel carries only its driver, and the tests launch the system's
Chromium (``chromium`` on ``PATH``; ``apt-get install chromium``). Without it the browser tests are
skipped, with the reason, except in CI (``CI=true``), where they fail: there `.ci/run` installs it.
Accessibility is checked with the axe-core script the ``axe-playwright-python`` package ships, so a test
run fetches nothing either.

One browser serves a whole test module. Playwright's objects belong to the event loop they were made in,
so a browser test runs in the module's loop, and so must the async fixtures it uses::

    pytestmark = pytest.mark.asyncio(loop_scope="module")

    @pytest_asyncio.fixture(scope="module", loop_scope="module")
    async def world() -> AsyncIterator[RunningHub]:
        hub = await start_hub(settings)  # not `hub_factory`: that one lives in each test's own loop
        yield hub
        await stop_hub(hub)

    async def test_dashboard(page: Page, world: RunningHub) -> None:
        await page.goto(world.url + "/ui/")
        await assert_accessible(page)

Fixtures (loaded with the test kit's pytest plugin):

- ``browser``: the module's headless Chromium (a Playwright `Browser`);
- ``page``: a page at 1366x768 in a fresh browser context (own cookies), German locale, Berlin time.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from hub.testing.servers import unavailable

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

__all__ = [
    "VIEWPORT",
    "WCAG_TAGS",
    "accessibility_violations",
    "assert_accessible",
    "assert_fits",
    "assert_keyboard_usable",
    "browser",
    "chromium_executable",
    "describe_violations",
    "launch_options",
    "new_context",
    "page",
]

VIEWPORT = {"width": 1366, "height": 768}
# axe-core's tags for WCAG 2.0 and 2.1, levels A and AA (what BITV 2.0 and EN 301 549 ask of a page).
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
AXE_PACKAGE = "axe_playwright_python"
ACTION_TIMEOUT_MS = 15_000


def chromium_executable() -> str | None:
    """The system's Chromium (``chromium``, else ``chromium-browser``) on ``PATH``, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def launch_options() -> dict[str, Any]:
    """Playwright's launch options for the system's Chromium, headless.

    Chromium's sandbox needs an unprivileged user: as root (CI, containers) it is switched off, and only
    then. Playwright's own switches already keep Chromium from calling home (updates, sync, field trials),
    which a closed network would refuse.
    """
    executable = chromium_executable()
    if executable is None:
        raise RuntimeError("no chromium on PATH")
    geteuid = getattr(os, "geteuid", None)
    as_root = geteuid is not None and geteuid() == 0
    return {"executable_path": executable, "headless": True, "chromium_sandbox": not as_root}


async def new_context(browser: Browser, base_url: str | None = None) -> BrowserContext:
    """A fresh browser context (no cookies) at 1366x768, German locale, Berlin time."""
    options: dict[str, Any] = {
        "viewport": VIEWPORT,
        "locale": "de-DE",
        "timezone_id": "Europe/Berlin",
        # Screenshots for docs/ look the same on every machine with the same fonts.
        "device_scale_factor": 1,
        "reduced_motion": "reduce",
    }
    if base_url is not None:
        options["base_url"] = base_url
    context = await browser.new_context(**options)
    # Loopback pages answer at once; a slow CI machine still gets its seconds before a step fails.
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    return context


def _axe_script() -> str:
    return (files(AXE_PACKAGE) / "axe.min.js").read_text(encoding="utf-8")


async def accessibility_violations(
    page: Page, tags: Sequence[str] = WCAG_TAGS, exclude: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """axe-core's violations of `tags` on the page as it is now (`exclude`: CSS selectors to leave out).

    The script is evaluated through the DevTools protocol, not as a <script> tag, so the page's
    Content-Security-Policy (no inline scripts) stays in force for everything the page itself does.
    """
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(_axe_script())
    context: dict[str, Any] = {"exclude": [[selector] for selector in exclude]} if exclude else {}
    options = {"runOnly": {"type": "tag", "values": list(tags)}, "resultTypes": ["violations"]}
    result: dict[str, Any] = await page.evaluate(
        "([context, options]) => axe.run(context.exclude ? context : document, options)", [context, options]
    )
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def describe_violations(url: str, violations: list[dict[str, Any]]) -> str:
    """axe-core's violations as a person reads them: rule, impact, what it asks, where it failed."""
    lines = [f"{len(violations)} accessibility violation(s) (WCAG 2.1 A/AA) on {url}:"]
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation.get('impact') or 'n/a'}): {violation['help']}"
            f" <{violation['helpUrl']}>"
        )
        for node in violation["nodes"][:10]:
            target = " ".join(str(part) for part in node["target"])
            html = " ".join(str(node.get("html", "")).split())[:160]
            lines.append(f"    at {target}: {html}")
            # "Fix any of the following:" and one line per way out, each as axe-core words it.
            for line in str(node.get("failureSummary") or "").splitlines():
                if line.strip():
                    lines.append(f"       {line.strip()}")
        if len(violation["nodes"]) > 10:
            lines.append(f"    ... and {len(violation['nodes']) - 10} more elements")
    return "\n".join(lines)


async def assert_accessible(page: Page, tags: Sequence[str] = WCAG_TAGS, exclude: Sequence[str] = ()) -> None:
    """Fail with a readable list if axe-core finds violations of `tags` (default WCAG 2.1 A/AA)."""
    violations = await accessibility_violations(page, tags, exclude)
    if violations:
        raise AssertionError(describe_violations(page.url, violations))


# Elements to read or press whose right edge lies outside the window, unless a box between them and the
# page scrolls sideways by itself (a wide table in its own scrolling container is fine).
_CUT_OFF = """(selector) => {
  const width = window.innerWidth;
  const scrollsItself = (element) => {
    for (let box = element.parentElement; box && box !== document.body; box = box.parentElement) {
      const overflow = getComputedStyle(box).overflowX;
      if ((overflow === "auto" || overflow === "scroll") && box.getBoundingClientRect().right <= width) {
        return true;
      }
    }
    return false;
  };
  const found = [];
  for (const element of document.querySelectorAll(selector)) {
    const rect = element.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0 || rect.right <= width + 1 || scrollsItself(element)) {
      continue;
    }
    const text = (element.textContent || element.getAttribute("name") || "").trim().slice(0, 40);
    found.push(`<${element.tagName.toLowerCase()}> "${text}" ends at ${Math.round(rect.right)}px`);
  }
  return {pageWidth: document.documentElement.scrollWidth, cutOff: found};
}"""
FITS_SELECTOR = ", ".join(
    f"{region} {element}"
    for region in ("main", "header")
    for element in ("a", "button", "input", "select", "textarea", "th", "td")
)


async def assert_fits(page: Page, selector: str = FITS_SELECTOR) -> None:
    """Fail if the page scrolls sideways in its window, or an element of `selector` (links, controls,
    table cells of main and header) is cut off at the window's right edge outside a scrolling box."""
    layout: dict[str, Any] = await page.evaluate(_CUT_OFF, selector)
    width = page.viewport_size["width"] if page.viewport_size else VIEWPORT["width"]
    problems = list(layout["cutOff"])
    if layout["pageWidth"] > width:
        problems.insert(0, f"the page is {layout['pageWidth']}px wide")
    if problems:
        raise AssertionError(f"{page.url} at {width}px: " + "; ".join(problems))


# Tags each control of `selector` that a person can see and use, then reports them (by tag) as text.
_TAG_CONTROLS = """(selector) => {
  const controls = [...document.querySelectorAll(selector)].filter((element) => {
    const rect = element.getBoundingClientRect();
    const style = getComputedStyle(element);
    return rect.width > 0 && rect.height > 0 && style.visibility !== "hidden" && !element.disabled
      && !element.closest("[inert], [aria-hidden=true]");
  });
  controls.forEach((element, index) => element.setAttribute("data-tab-check", String(index)));
  return controls.map((element) => {
    const text = (element.textContent || element.getAttribute("name") || element.id || "").trim();
    return `<${element.tagName.toLowerCase()}> "${text.replace(/\\s+/g, " ").slice(0, 40)}"`;
  });
}"""
# The focused element: its tag (if tagged) and whether its focus is drawn (outline or box shadow).
_FOCUSED = """() => {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const style = getComputedStyle(element);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  return {tag: element.getAttribute("data-tab-check"), visible: outline || style.boxShadow !== "none"};
}"""
KEYBOARD_SELECTOR = (
    "main a[href], main button, main input:not([type=hidden]), main select, main textarea, main summary"
)


async def assert_keyboard_usable(page: Page, selector: str = KEYBOARD_SELECTOR) -> None:
    """Fail unless the Tab key reaches every visible control of `selector` (default: those of main),
    each showing where the focus is (WCAG 2.1.1 Keyboard and 2.4.7 Focus Visible, which axe cannot see)."""
    controls: list[str] = await page.evaluate(_TAG_CONTROLS, selector)
    reached: set[int] = set()
    unmarked: list[str] = []

    def note(focused: dict[str, Any]) -> None:
        index = int(focused["tag"])
        reached.add(index)
        if not focused["visible"]:
            unmarked.append(controls[index])

    # A field focused on load (autofocus) counts; Tab goes on from there.
    start = await page.evaluate(_FOCUSED)
    if start is not None and start["tag"] is not None:
        note(start)
    last = start["tag"] if start is not None else None
    # Every tab stop once, with room for those outside `selector` (navigation) and for fields that take
    # several presses (a date field's day, month and year).
    for _ in range(3 * len(controls) + 40):
        if len(reached) == len(controls):
            break
        await page.keyboard.press("Tab")
        focused = await page.evaluate(_FOCUSED)
        if focused is None or focused["tag"] is None:
            last = None
            continue
        if focused["tag"] == last:
            continue  # within the same field
        if int(focused["tag"]) in reached:
            break  # round the page once
        note(focused)
        last = focused["tag"]
    missed = [control for index, control in enumerate(controls) if index not in reached]
    problems = [f"not reached by Tab: {missed}"] if missed else []
    if unmarked:
        problems.append(f"focus not shown on: {unmarked}")
    if problems:
        raise AssertionError(f"{page.url}: " + "; ".join(problems))


def _loop_scope(request: pytest.FixtureRequest) -> str | None:
    marker = request.node.get_closest_marker("asyncio")
    scope = marker.kwargs.get("loop_scope") if marker is not None else None
    return scope if isinstance(scope, str) else None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """The module's headless Chromium (skipped without one, failed in CI)."""
    if chromium_executable() is None:
        unavailable("Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install 'aktenhub[dev]')")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(**launch_options())
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A page at 1366x768 in a fresh browser context of the module's Chromium."""
    if _loop_scope(request) != "module":
        pytest.fail(
            "a browser test runs in its module's event loop: put "
            '`pytestmark = pytest.mark.asyncio(loop_scope="module")` in the test module'
        )
    context = await new_context(browser)
    opened = await context.new_page()
    yield opened
    await context.close()
