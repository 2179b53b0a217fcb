"""Pages and actions by role: who may look, who may act, and the CSRF check on every change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from hub.console.session import CSRF_FIELD, CSRF_HEADER, Person, Sessions
from hub.http.auth import RANK, Role
from hub.http.auth import sees_personal_data as role_sees_personal_data

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PERSON = web.RequestKey("person", Person)
SESSIONS: web.AppKey[Sessions] = web.AppKey("console_sessions", Sessions)
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def sees_personal_data(person: Person) -> bool:
    """Viewers see metadata only; operators and admins see what applications contain."""
    return role_sees_personal_data(person.role)


def may(person: Person, role: Role) -> bool:
    """Whether `person` has at least `role`."""
    return RANK[person.role] >= RANK[role]


def person_of(request: web.Request) -> Person:
    """The logged-in person of a guarded handler's request."""
    return request[PERSON]


def guarded(role: Role) -> Callable[[Handler], Handler]:
    """Decorator: the handler needs a session with at least `role`; unsafe methods need the CSRF token.

    Without a session a page redirects to the login (htmx requests get 401 and `HX-Redirect`); with a
    lower role it answers 403. A state-changing request whose CSRF token is missing or wrong is refused
    with 403 and changes nothing.
    """

    def wrap(handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            person = request.app[SESSIONS].person(request)
            if person is None:
                target = "/ui/login?next=" + quote(request.path_qs if request.method == "GET" else "/ui/")
                if request.headers.get("HX-Request"):
                    return web.Response(status=401, headers={"HX-Redirect": target})
                raise web.HTTPSeeOther(target)
            if request.method in UNSAFE and not await csrf_ok(request, person):
                return web.Response(
                    status=403,
                    text="Die Anfrage trägt kein gültiges CSRF-Token und wurde nicht ausgeführt. "
                    "Bitte die Seite neu laden und erneut versuchen.",
                    content_type="text/plain",
                )
            if not may(person, role):
                return web.Response(
                    status=403,
                    text=f"Dafür ist die Rolle {role} nötig; Ihre Rolle ist {person.role}.",
                    content_type="text/plain",
                )
            request[PERSON] = person
            return await handler(request)

        return checked

    return wrap


async def csrf_ok(request: web.Request, person: Person) -> bool:
    """Whether the request echoes the session's CSRF token (header, or form field) and comes from here."""
    origin = request.headers.get("Origin")
    if (
        origin is not None
        and origin != f"{request.scheme}://{request.host}"
        and not _proxied(request, origin)
    ):
        return False
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    return person.csrf_matches(presented)


def _proxied(request: web.Request, origin: str) -> bool:
    # Behind a reverse proxy the browser's origin is the public address, not the one the hub sees.
    sessions = request.app[SESSIONS]
    public = sessions.public_origin
    return public is not None and origin == public
