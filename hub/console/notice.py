"""The outcome of an action, shown once on the page the action leads back to (post/redirect/get).

An action answers with a redirect (a reload does not repeat it) and leaves its outcome in a short-lived
sealed cookie; the next page shows it and clears it. Sealed with the session key: no other site and no
crafted link can make the console announce an outcome that did not happen.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.console.guard import SESSIONS
from hub.console.templating import render

NOTICE_COOKIE = "aktenhub_notice"
NOTICE_SECONDS = 120


def see_other(request: web.Request, location: str, notice: str) -> web.HTTPSeeOther:
    """A redirect to `location` that shows `notice` there (raise it)."""
    response = web.HTTPSeeOther(location)
    sessions = request.app[SESSIONS]
    sessions.set_cookie(response, NOTICE_COOKIE, sessions.seal({"notice": notice}), NOTICE_SECONDS)
    return response


def render_page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """`render` with the notice an action left (as `notice`), which is shown this once."""
    sealed = request.cookies.get(NOTICE_COOKIE)
    notice = None
    if sealed:
        found = request.app[SESSIONS].unseal(sealed, NOTICE_SECONDS)
        text = found.get("notice") if found else None
        notice = text if isinstance(text, str) else None
    response = render(request, template, status=status, notice=notice, **context)
    if sealed:
        request.app[SESSIONS].set_cookie(response, NOTICE_COOKIE, "", 0)
    return response
