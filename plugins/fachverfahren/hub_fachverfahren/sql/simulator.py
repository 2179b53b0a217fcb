"""A simulated Fachverfahren working on its staging table, as a clerk's system does.

It owns two tables in a real database (created when missing): ``antrag_import`` (one row per
application, the hub writes key, service, Aktenzeichen and applicant; the Fachverfahren writes status,
case number, notes and the decision) and ``antrag_dokument`` (the documents). The database enforces what
the real table would: primary keys, NOT NULL, lengths, the status values, the documents' reference to
their row. Operator endpoints (JSON) move the cases along; with ``auto_seconds`` a loop does it alone:

- ``GET  /_sim/rows``                       the rows (without BLOBs) and their documents' count
- ``POST /_sim/accept``   {key}             new -> UEBERNOMMEN, with a case number
- ``POST /_sim/pick-up``                    new and accepted rows -> IN_BEARBEITUNG (with a case number)
- ``POST /_sim/request``  {key, message}    IN_BEARBEITUNG -> NACHFORDERUNG
- ``POST /_sim/decide``   {key, message}    IN_BEARBEITUNG|NACHFORDERUNG -> BESCHEID_ERLASSEN (+ PDF)
- ``POST /_sim/refuse``   {key, error}      new -> FEHLER

Every change increments ``version`` and sets ``geaendert`` (how the hub sees a change).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from fpdf import FPDF
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from hub import Simulator
from hub.simulation import MalformedRequest, parse_json, refusal_middleware

NEW = "NEU"
ACCEPTED = "UEBERNOMMEN"  # imported, a case number assigned, not yet worked on
IN_PROGRESS = "IN_BEARBEITUNG"
ACTION_REQUIRED = "NACHFORDERUNG"
DECIDED = "BESCHEID_ERLASSEN"
FAILED = "FEHLER"
STATUSES = (NEW, ACCEPTED, IN_PROGRESS, ACTION_REQUIRED, DECIDED, FAILED)
# The sink's `answers.statuses` for this Fachverfahren.
STATUS_MAP = {
    NEW: None,
    ACCEPTED: "accepted",
    IN_PROGRESS: "in_progress",
    ACTION_REQUIRED: "action_required",
    DECIDED: "decided",
    FAILED: "failed",
}
MAX_BODY = 64 * 1024

metadata = MetaData()
staging = Table(
    "antrag_import",
    metadata,
    Column("hub_key", String(64), primary_key=True),
    Column("leistung", String(100), nullable=False),
    Column("aktenzeichen_akte", String(100)),
    Column("antragsteller", String(200)),
    Column("eingang", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("status", String(30), CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})")),
    Column("fv_aktenzeichen", String(50)),
    Column("hinweis", String(2000)),
    Column("fehler", String(2000)),
    Column("bescheid", LargeBinary),
    Column("bescheid_name", String(200)),
    Column("version", Integer, nullable=False, server_default="0"),
    Column("geaendert", DateTime(timezone=True)),
    Column("hub_quittung", Integer),
)
documents = Table(
    "antrag_dokument",
    metadata,
    Column("hub_key", String(64), ForeignKey("antrag_import.hub_key"), primary_key=True),
    Column("lfd_nr", Integer, primary_key=True, autoincrement=False),
    Column("dateiname", String(255), nullable=False),
    Column("dokumentart", String(50)),
    Column("mimetyp", String(100)),
    Column("inhalt", LargeBinary, nullable=False),
)


def connector_settings(url: str, password: str) -> dict[str, Any]:
    """A `type: sql` connector section that fits this Fachverfahren's tables (for tests and the demo):
    `url` without password, `password` as configured (a ``${ENV}`` reference)."""
    return {
        "type": "sql",
        "url": url,
        "password": password,
        "table": str(staging.name),
        "key_column": "hub_key",
        "columns": {"leistung": "record.service", "aktenzeichen_akte": "record.file_number"},
        "constants": {"status": NEW},
        "documents": {
            "table": str(documents.name),
            "key_column": "hub_key",
            "number_column": "lfd_nr",
            "name_column": "dateiname",
            "type_column": "dokumentart",
            "media_type_column": "mimetyp",
            "content_column": "inhalt",
        },
        "answers": {
            "status_column": "status",
            "changed_column": "version",
            "case_number_column": "fv_aktenzeichen",
            "message_column": "hinweis",
            "error_column": "fehler",
            "decision_column": "bescheid",
            "decision_name_column": "bescheid_name",
            "statuses": STATUS_MAP,
            "ack_column": "hub_quittung",
        },
    }


SIM: web.AppKey[StagingFachverfahren] = web.AppKey("sql_fachverfahren")


class Conflict(Exception):
    """The row is not in a state that allows the step."""


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=64)
    message: str | None = Field(None, max_length=2000)
    error: str | None = Field(None, max_length=2000)


def decision_pdf(case_number: str, message: str | None) -> bytes:
    """A one-page decision (Bescheid) as the Fachverfahren would print it."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.cell(text=f"Bescheid zum Vorgang {case_number}")
    pdf.ln(12)
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(w=0, text=message or "Dem Antrag wird stattgegeben.")
    return bytes(pdf.output())


class StagingFachverfahren:
    """The Fachverfahren's side of the staging table: picks rows up, moves their status on."""

    def __init__(self, engine: AsyncEngine, prefix: str = "FV") -> None:
        self.engine = engine
        self.prefix = prefix
        self._lock = asyncio.Lock()

    async def setup(self) -> None:
        """Create the tables when they do not exist."""
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def pick_up(self) -> list[dict[str, str]]:
        """New and accepted rows get IN_BEARBEITUNG (and a case number, if they have none yet)."""
        async with self._lock, self.engine.begin() as conn:
            waiting = (
                await conn.execute(
                    select(staging.c.hub_key, staging.c.fv_aktenzeichen)
                    .where(staging.c.status.is_(None) | staging.c.status.in_((NEW, ACCEPTED)))
                    .order_by(staging.c.eingang, staging.c.hub_key)
                )
            ).all()
            picked = []
            for key, number in waiting:
                case_number = number or await self._next_case_number(conn)
                await conn.execute(_change(key).values(status=IN_PROGRESS, fv_aktenzeichen=case_number))
                picked.append({"key": key, "case_number": case_number})
            return picked

    async def _next_case_number(self, conn: AsyncConnection) -> str:
        numbered = await conn.scalar(select(func.count()).where(staging.c.fv_aktenzeichen.is_not(None)))
        return f"{self.prefix}-{datetime.now(UTC).year}-{int(numbered or 0) + 1:06d}"

    async def step(self, key: str, target: str, message: str | None = None, error: str | None = None) -> None:
        """Move one row to `target` (from the states that allow it)."""
        allowed = {
            ACCEPTED: (None, NEW),
            ACTION_REQUIRED: (IN_PROGRESS,),
            DECIDED: (IN_PROGRESS, ACTION_REQUIRED),
            FAILED: (None, NEW),
            IN_PROGRESS: (ACTION_REQUIRED,),
        }[target]
        async with self._lock, self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(staging.c.status, staging.c.fv_aktenzeichen).where(staging.c.hub_key == key)
                )
            ).first()
            if row is None:
                raise KeyError(key)
            if row.status not in allowed:
                needs = " or ".join(str(s or "new") for s in allowed)
                raise Conflict(f"row is {row.status or 'new'}; {target} needs {needs}")
            values: dict[str, Any] = {"status": target, "hinweis": message}
            if target == ACCEPTED:
                values["fv_aktenzeichen"] = await self._next_case_number(conn)
            if target == DECIDED:
                values["bescheid"] = decision_pdf(row.fv_aktenzeichen, message)
                values["bescheid_name"] = f"bescheid-{row.fv_aktenzeichen}.pdf"
            if target == FAILED:
                values["fehler"] = error or "Import abgelehnt"
            await conn.execute(_change(key).values(values))

    async def rows(self) -> list[dict[str, Any]]:
        """Every row without its BLOBs, with the number of its documents."""
        count = (
            select(func.count())
            .where(documents.c.hub_key == staging.c.hub_key)
            .scalar_subquery()
            .label("dokumente")
        )
        wanted = [c for c in staging.c if c.name != "bescheid"]
        async with self.engine.connect() as conn:
            result = await conn.execute(select(*wanted, count).order_by(staging.c.eingang, staging.c.hub_key))
            return [
                {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row._mapping.items()}
                for row in result
            ]

    async def decide_due(self, older_than: float) -> int:
        """Decide every case in progress for longer than `older_than` seconds (the automatic clerk)."""
        async with self.engine.connect() as conn:
            due = (
                await conn.execute(
                    select(staging.c.hub_key, staging.c.geaendert).where(staging.c.status == IN_PROGRESS)
                )
            ).all()
        now = datetime.now(UTC)
        decided = 0
        for key, changed in due:
            if changed is not None and (now - changed).total_seconds() >= older_than:
                with contextlib.suppress(Conflict, KeyError):
                    await self.step(key, DECIDED)
                    decided += 1
        return decided


def _change(key: str) -> Any:
    """An update of one row that counts as a change: version + 1, geaendert = now."""
    return (
        update(staging)
        .where(staging.c.hub_key == key)
        .values(version=staging.c.version + 1, geaendert=datetime.now(UTC))
    )


def _error(request: web.Request, status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _read_step(request: web.Request) -> _Step:
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise MalformedRequest("body too large", 413)
    try:
        return _Step.model_validate(parse_json(raw))
    except ValidationError as exc:
        raise MalformedRequest(f"invalid step: {exc.errors()[0]['msg']}") from None


def _step_handler(target: str) -> Any:
    async def handle(request: web.Request) -> web.Response:
        body = await _read_step(request)
        try:
            await request.app[SIM].step(body.key, target, body.message, body.error)
        except KeyError:
            return _error(request, 404, "no such row")
        except Conflict as exc:
            return _error(request, 409, str(exc))
        return web.json_response({"key": body.key, "status": target})

    return handle


async def _pick_up(request: web.Request) -> web.Response:
    return web.json_response({"picked_up": await request.app[SIM].pick_up()})


async def _rows(request: web.Request) -> web.Response:
    return web.json_response({"rows": await request.app[SIM].rows()})


def make_app(
    url: str | None = None,
    password: str | None = None,
    auto_seconds: float | str | None = None,
    prefix: str = "FV",
) -> web.Application:
    """The simulator on the database at `url` (async SQLAlchemy URL; `password` merged into it)."""
    if not url:
        raise ValueError("the sql Fachverfahren simulator needs url=<async SQLAlchemy URL> of its database")
    database = make_url(url)
    if password:
        database = database.set(password=password)
    auto = float(auto_seconds) if auto_seconds not in (None, "") else None
    app = web.Application(middlewares=[refusal_middleware(_error)])
    app.router.add_get("/_sim/rows", _rows)
    app.router.add_post("/_sim/pick-up", _pick_up)
    app.router.add_post("/_sim/accept", _step_handler(ACCEPTED))
    app.router.add_post("/_sim/request", _step_handler(ACTION_REQUIRED))
    app.router.add_post("/_sim/decide", _step_handler(DECIDED))
    app.router.add_post("/_sim/refuse", _step_handler(FAILED))

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        engine = create_async_engine(database, pool_size=2, hide_parameters=True)
        sim = StagingFachverfahren(engine, prefix)
        await sim.setup()
        app[SIM] = sim
        loop = asyncio.create_task(_clerk(sim, auto)) if auto is not None else None
        yield
        if loop is not None:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        await engine.dispose()

    app.cleanup_ctx.append(lifecycle)
    return app


async def _clerk(sim: StagingFachverfahren, seconds: float) -> None:
    """Pick up new rows and decide them after `seconds` (for the demo and `aktenhub simulate`)."""
    while True:
        await sim.pick_up()
        await sim.decide_due(seconds)
        await asyncio.sleep(seconds)


SIMULATOR = Simulator(
    name="fachverfahren-sql",
    description="a Fachverfahren on its staging table (antrag_import, antrag_dokument) in the database "
    "at url=<async SQLAlchemy URL> (password=...): POST /_sim/accept, /_sim/pick-up, /_sim/request, "
    "/_sim/decide, /_sim/refuse; GET /_sim/rows; auto_seconds=N picks up and decides by itself",
    make_app=make_app,
)
