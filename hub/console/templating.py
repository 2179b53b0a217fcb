"""The console's pages: Jinja2 templates, autoescaped, with German dates in the Kreis' time zone."""

from __future__ import annotations

from datetime import datetime
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from hub.console.guard import PERSON, may, sees_personal_data
from hub.console.labels import APPLICATION_STATES, label
from hub.console.session import CSRF_FIELD, CSRF_HEADER

# Operators read times as local time; the journal keeps UTC.
LOCAL = ZoneInfo("Europe/Berlin")
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("console_templates", jinja2.Environment)

# The navigation: path, label, the role a page needs. Every page shows the entries the person may
# open; the current page is marked aria-current.
NAVIGATION = (
    ("/ui/", "Übersicht", "viewer"),
    ("/ui/applications", "Anträge", "viewer"),
    ("/ui/dead", "Fehlgeschlagen", "viewer"),
    ("/ui/held", "Zurückgehalten", "viewer"),
    ("/ui/connectors", "Konnektoren", "viewer"),
    ("/ui/audit", "Protokoll", "operator"),  # like the admin API's audit trail
)


def local_time(value: datetime | None, pattern: str = "%d.%m.%Y %H:%M:%S") -> str:
    """A UTC timestamp as local German time (empty for None)."""
    if value is None:
        return ""
    return value.astimezone(LOCAL).strftime(pattern)


def number(value: float | int | None) -> str:
    """A number with German grouping (1.234.567)."""
    if value is None:
        return ""
    return f"{value:,.0f}".replace(",", ".")


def size(value: int | None) -> str:
    """A byte count as people read it (KB, MB, GB; decimal, German comma)."""
    if value is None:
        return ""
    amount = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if amount < 1000 or unit == "TB":
            text = f"{amount:.0f}" if unit == "B" else f"{amount:.1f}".replace(".", ",")
            return f"{text} {unit}"
        amount /= 1000
    raise AssertionError("unreachable")


def state_label(value: str) -> str:
    """An application state in German (`hub.console.labels`; the code itself if unknown)."""
    return label(APPLICATION_STATES, value)


def duration(seconds: float | None) -> str:
    """A duration as people read it: 45 s, 12 min, 3,5 h, 2,0 Tage (empty for None)."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h".replace(".", ",")
    return f"{seconds / 86400:.1f} Tage".replace(".", ",")


def environment() -> jinja2.Environment:
    """The template environment (templates shipped in the package, HTML autoescaped)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(files("hub.console") / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local_time"] = local_time
    env.filters["number"] = number
    env.filters["size"] = size
    env.filters["state_label"] = state_label
    env.filters["duration"] = duration
    env.globals["NAVIGATION"] = NAVIGATION
    env.globals["CSRF_FIELD"] = CSRF_FIELD
    env.globals["CSRF_HEADER"] = CSRF_HEADER
    return env


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """A page (or an htmx fragment) rendered for the logged-in person of `request`."""
    person = request.get(PERSON)
    page = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            person=person,
            personal=person is not None and sees_personal_data(person),
            may=(lambda role: person is not None and may(person, role)),
            path=request.path,
            **context,
        )
    )
    response = web.Response(text=page, content_type="text/html", status=status)
    # Pages can show personal data: no cache keeps them, no frame embeds them.
    response.headers["Cache-Control"] = "no-store"
    return response
