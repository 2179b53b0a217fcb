"""A console client for tests: logs in like a browser (cookie session) and posts with the CSRF token."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

import aiohttp
from yarl import URL

from hub.console.session import CSRF_FIELD

_NONCE = re.compile(r'name="nonce" value="([^"]+)"')
_CSRF = re.compile(rf'name="{CSRF_FIELD}" value="([^"]+)"')
_REFRESH = re.compile(r'<meta http-equiv="refresh" content="0; url=([^"]+)">')
_PROVIDER_FORM = re.compile(r"name='session_code' value='([^']+)'")


class ConsoleClient:
    """A person's browser session on a running hub's console at `url` (no JavaScript)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        # unsafe=True: keep cookies of an IP-address host (the hub listens on 127.0.0.1).
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf: str | None = None

    async def __aenter__(self) -> ConsoleClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session."""
        await self.http.close()

    async def login_with_token(self, token: str) -> aiohttp.ClientResponse:
        """Log in through the login page's token form; afterwards `csrf` holds the session's token."""
        async with self.http.get(self.url + "/ui/login") as page:
            found = _NONCE.search(await page.text())
        assert found is not None, "the login page offers no token form"
        response = await self.http.post(
            self.url + "/ui/login/token", data={"nonce": found.group(1), "token": token, "next": "/ui/"}
        )
        await self.remember_csrf(await response.text())
        return response

    async def login_with_oidc(
        self, user: str | None = None, next_path: str = "/ui/"
    ) -> aiohttp.ClientResponse:
        """Log in through the identity provider (`hub.oidc_simulator`), following redirects like a browser.

        On the provider's form `user` is picked (not needed when it logs in by itself); the console's
        same-origin step after the callback (a meta refresh) is followed too. The last answer is
        returned, with `csrf` taken from it.
        """
        response = await self.http.get(self.url + "/ui/oidc/login", params={"next": next_path})
        page = await response.text()
        form = _PROVIDER_FORM.search(page)
        if form is not None:
            assert user is not None, "the identity provider shows its login form: name the user"
            response = await self.http.post(
                response.url, data={"session_code": form.group(1), "username": user, "login": "1"}
            )
            page = await response.text()
        refresh = _REFRESH.search(page)
        if refresh is not None:
            response = await self.http.get(response.url.join(URL(html.unescape(refresh.group(1)))))
            page = await response.text()
        await self.remember_csrf(page)
        return response

    async def remember_csrf(self, page: str) -> None:
        """Take the CSRF token from a page of the console."""
        found = _CSRF.search(page)
        if found is not None:
            self.csrf = found.group(1)

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str]:
        """GET a console path: (status, body)."""
        async with self.http.get(self.url + path, **kwargs) as response:
            return response.status, await response.text()

    async def post(
        self, path: str, data: dict[str, str] | None = None, csrf: bool = True, **kwargs: Any
    ) -> tuple[int, str]:
        """POST a form to a console path, with the session's CSRF token unless `csrf` is False."""
        form = dict(data or {})
        if csrf:
            assert self.csrf is not None, "log in first"
            form[CSRF_FIELD] = self.csrf
        async with self.http.post(self.url + path, data=form, **kwargs) as response:
            return response.status, await response.text()


class HtmlForm:
    """A form of a console page as a browser would submit it: its method, action and field values."""

    def __init__(self, attrs: dict[str, str]) -> None:
        self.id = attrs.get("id")
        self.method = attrs.get("method", "get").lower()
        self.action = attrs.get("action", "")
        self.fields: dict[str, str] = {}


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[HtmlForm] = []
        self._open: HtmlForm | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._open = HtmlForm(found)
            self.forms.append(self._open)
        elif self._open is not None and "name" in found:
            if tag == "input" and found.get("type") not in ("submit", "button"):
                self._open.fields[found["name"]] = found.get("value", "")
            elif tag in ("textarea", "select"):  # empty until the test fills it in
                self._open.fields[found["name"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def forms(page: str) -> list[HtmlForm]:
    """The forms of a page with their fields' initial values (hidden fields included)."""
    parser = _Forms()
    parser.feed(page)
    return parser.forms


def form(page: str, form_id: str) -> HtmlForm:
    """The form with id `form_id` on `page` (AssertionError if there is none)."""
    found = [f for f in forms(page) if f.id == form_id]
    assert found, f"no form {form_id!r} on the page"
    return found[0]
