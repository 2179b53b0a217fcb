"""The console's page "Protokoll" (/ui/audit): who did what, when; filtered, paged, exported.

The audit trail (`hub.actions`) for operators and admins, like the admin API's: filters by action,
person and date range (days in the Kreis' time zone), paged newest first, and exported with the same
filter as CSV for German Excel (`;`, UTF-8 with BOM, local times) or as JSON lines (UTC, as the API).
An export pages through the trail by row id, so rows written meanwhile neither repeat nor shift it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from aiohttp import web
from pydantic import Field

from hub.actions import Action, OperatorAction
from hub.console.forms import MAX_FIELD, FilterForm, read_form
from hub.console.guard import guarded
from hub.console.labels import OPERATOR_ACTIONS, label
from hub.console.notice import render_page
from hub.console.templating import LOCAL, local_time

if TYPE_CHECKING:
    from hub.runtime import Hub

PAGE = 50
EXPORT_CHUNK = 1000
MAX_EXPORT = 100_000  # rows in one export; narrow the filter for more
MAX_OFFSET = 1_000_000
CSV_HEADER = ("Zeitpunkt", "Person", "Aktion", "Betreff", "Anzahl", "Begründung", "Einzelheiten")
# A cell Excel would read as a formula (CSV injection): shown as text with a leading apostrophe.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


LABELS = {"action": "Aktion", "operator": "Person", "from": "Von", "to": "Bis"}


class AuditForm(FilterForm):
    """The audit page's filter: an action, a person, the days."""

    action: Action | None = None
    operator: str | None = Field(None, max_length=MAX_FIELD)


@dataclass(frozen=True)
class AuditFilter:
    """The audit filter as read (`form`) and as given (`values`), or what is wrong with it."""

    form: AuditForm
    values: dict[str, str]
    problems: list[str]

    def query(self, **extra: str) -> str:
        """The filter (and `extra`) as a query string."""
        return urlencode({**self.values, **extra})


def read_filter(params: Mapping[str, object]) -> AuditFilter:
    """The filter of a query string."""
    found = read_form(AuditForm, params, LABELS)
    if isinstance(found, list):
        given = {k: v[:MAX_FIELD] for k, v in params.items() if k in LABELS and isinstance(v, str)}
        return AuditFilter(AuditForm(), {k: v for k, v in given.items() if v.strip()}, found)
    return AuditFilter(found, found.values(), [])


def _offset(params: Mapping[str, str]) -> int:
    value = params.get("offset", "0")
    return min(int(value), MAX_OFFSET) if value.isascii() and value.isdigit() and len(value) < 10 else 0


def csv_cell(value: object) -> str:
    """A value as a CSV cell that Excel shows as text, never evaluates."""
    cell = "" if value is None else str(value)
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def csv_text(rows: Iterable[Sequence[str]]) -> str:
    """Rows as CSV the way German Excel opens it: `;` between cells, CRLF between rows."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def csv_row(row: OperatorAction) -> list[str]:
    """One audit row as the CSV export writes it (local time, German action names)."""
    return [
        csv_cell(v)
        for v in (
            local_time(row.at),
            row.operator or "",
            label(OPERATOR_ACTIONS, row.action),
            row.subject,
            row.count,
            row.reason or "",
            json.dumps(row.details, ensure_ascii=False, sort_keys=True) if row.details else "",
        )
    ]


def add_routes(app: web.Application, hub: Hub) -> None:
    """Mount the page and its exports."""

    async def rows_of(found: AuditFilter) -> AsyncIterator[list[OperatorAction]]:
        # Keyset paging by id: the export stays consistent while new actions are recorded.
        before: int | None = None
        sent = 0
        since, until = found.form.day_range()
        while sent < MAX_EXPORT:
            chunk = await hub.operations.audit(
                found.form.action,
                found.form.operator,
                min(EXPORT_CHUNK, MAX_EXPORT - sent),
                since=since,
                until=until,
                before_id=before,
            )
            if not chunk:
                return
            yield chunk
            sent += len(chunk)
            before = chunk[-1].id

    @guarded("operator")
    async def audit_page(request: web.Request) -> web.Response:
        found = read_filter(request.query)
        offset = _offset(request.query)
        rows: list[OperatorAction] = []
        if not found.problems:
            since, until = found.form.day_range()
            rows = await hub.operations.audit(
                found.form.action, found.form.operator, PAGE + 1, offset, since=since, until=until
            )
        return render_page(
            request,
            "audit.html",
            status=422 if found.problems else 200,
            filter=found,
            rows=rows[:PAGE],
            offset=offset,
            newer=found.query(offset=str(max(0, offset - PAGE))) if offset else None,
            older=found.query(offset=str(offset + PAGE)) if len(rows) > PAGE else None,
            labels=OPERATOR_ACTIONS,
            actions=list(Action),
        )

    async def export(request: web.Request, kind: str) -> web.StreamResponse:
        found = read_filter(request.query)
        if found.problems:
            raise web.HTTPUnprocessableEntity(text=" ".join(found.problems))
        stamp = datetime.now(LOCAL).strftime("%Y%m%d-%H%M")
        media = "text/csv" if kind == "csv" else "application/x-ndjson"
        response = web.StreamResponse(
            headers={
                "Content-Type": f"{media}; charset=utf-8",
                "Content-Disposition": f'attachment; filename="aktenhub-protokoll-{stamp}.{kind}"',
                "Cache-Control": "no-store",
            }
        )
        await response.prepare(request)
        if kind == "csv":
            # The byte order mark tells Excel the file is UTF-8 (it assumes Windows-1252 otherwise).
            await response.write(("\ufeff" + csv_text([CSV_HEADER])).encode("utf-8"))
        async for chunk in rows_of(found):
            if kind == "csv":
                data = csv_text(csv_row(r) for r in chunk)
            else:
                data = "".join(r.model_dump_json() + "\n" for r in chunk)
            await response.write(data.encode("utf-8"))
        await response.write_eof()
        return response

    @guarded("operator")
    async def export_csv(request: web.Request) -> web.StreamResponse:
        return await export(request, "csv")

    @guarded("operator")
    async def export_jsonl(request: web.Request) -> web.StreamResponse:
        return await export(request, "jsonl")

    app.router.add_get("/ui/audit", audit_page)
    app.router.add_get("/ui/audit/export.csv", export_csv)
    app.router.add_get("/ui/audit/export.jsonl", export_jsonl)
