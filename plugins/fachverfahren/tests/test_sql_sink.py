"""The `sql` sink against a real PostgreSQL server: rows, types, documents, idempotency, `check()`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
import pytest_asyncio
from hub_fachverfahren.sql import SqlConfig, SqlSink
from hub_fachverfahren.sql.simulator import documents, staging
from pydantic import ValidationError
from sql_helpers import engine_of, fachverfahren, make_sink, rows_of, settings
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import Blobs, ConnectorContext, Permanent
from hub.testing import default_record, delivery_context, make_application


@pytest_asyncio.fixture
async def db(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    sim = await fachverfahren(postgres_url)
    await sim.engine.dispose()
    engine = engine_of(postgres_url)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def sinks(connector_context: ConnectorContext) -> AsyncIterator[list[SqlSink]]:
    started: list[SqlSink] = []
    yield started
    for sink in started:
        await sink.stop()


async def _sink(context: ConnectorContext, sinks: list[SqlSink], url: str, **overrides: Any) -> SqlSink:
    sink = await make_sink(context, settings(url, **overrides))
    sinks.append(sink)
    return sink


async def test_row_and_documents_hold_what_was_delivered(
    db: AsyncEngine,
    postgres_url: str,
    connector_context: ConnectorContext,
    blobs: Blobs,
    sinks: list[SqlSink],
) -> None:
    sink = await _sink(connector_context, sinks, postgres_url)
    app = await make_application(blobs, files={"plan.pdf": b"%PDF-1.4 plan\n" * 5000})
    app.file_number = "UA-2026-0042"
    record = default_record(app)
    delivery = await sink.deliver(record, delivery_context(app, blobs))
    assert delivery.reference == app.id and not delivery.duplicate
    async with db.connect() as conn:
        row = (await conn.execute(select(staging).where(staging.c.hub_key == app.id))).one()
        docs = (await conn.execute(select(documents).order_by(documents.c.lfd_nr))).all()
    assert (row.leistung, row.aktenzeichen_akte, row.status) == ("jagdschein", "UA-2026-0042", None)
    assert [d.lfd_nr for d in docs] == [1, 2]
    assert [d.dateiname for d in docs] == [doc.name for doc in record.documents]
    assert docs[1].inhalt == b"%PDF-1.4 plan\n" * 5000
    assert docs[1].mimetyp == "application/pdf" and docs[1].dokumentart == "attachment"


async def test_payload_values_take_their_columns_types(
    postgres_url: str, connector_context: ConnectorContext, blobs: Blobs, sinks: list[SqlSink]
) -> None:
    engine = engine_of(postgres_url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE TABLE fv (schluessel varchar(64) PRIMARY KEY, anzahl integer, termin date, name text)"
            )
        )
    await engine.dispose()
    section = {
        "url": settings(postgres_url)["url"],
        "password": settings(postgres_url)["password"],
        "type": "sql",
        "table": "fv",
        "key_column": "schluessel",
        "columns": {"anzahl": "tiere", "termin": "datum", "name": "nachname"},
    }
    sink = await make_sink(connector_context, section)
    sinks.append(sink)
    app = await make_application(blobs)
    record = default_record(app)
    record.payloads = {"contract": {"tiere": "3", "datum": "2026-05-01", "nachname": "Groß"}}
    await sink.deliver(record, delivery_context(app, blobs))
    engine = engine_of(postgres_url)
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT anzahl, termin, name FROM fv"))).one()
    await engine.dispose()
    assert tuple(row) == (3, date(2026, 5, 1), "Groß")

    other = await make_application(blobs, external_id="other")
    bad = default_record(other)
    bad.payloads = {"contract": {"tiere": "drei", "datum": "2026-05-01", "nachname": "X"}}
    with pytest.raises(Permanent, match="column anzahl"):
        await sink.deliver(bad, delivery_context(other, blobs))
    nested = default_record(other)
    nested.payloads = {"contract": {"tiere": ["1", "2"], "datum": "2026-05-01", "nachname": "X"}}
    with pytest.raises(Permanent, match="tiere are lists or mappings"):
        await sink.deliver(nested, delivery_context(other, blobs))
    missing = default_record(other)
    missing.payloads = {"contract": {"tiere": "1"}}
    with pytest.raises(Permanent, match=r"termin <- datum"):
        await sink.deliver(missing, delivery_context(other, blobs))


async def test_concurrent_deliveries_make_one_row(
    db: AsyncEngine,
    postgres_url: str,
    connector_context: ConnectorContext,
    blobs: Blobs,
    sinks: list[SqlSink],
) -> None:
    a = await _sink(connector_context, sinks, postgres_url)
    b = await _sink(connector_context, sinks, postgres_url)
    app = await make_application(blobs)
    record = default_record(app)
    results = await asyncio.gather(
        *(sink.deliver(record, delivery_context(app, blobs)) for sink in (a, b, a, b)), return_exceptions=True
    )
    assert all(not isinstance(r, BaseException) for r in results), results
    assert {r.reference for r in results if not isinstance(r, BaseException)} == {app.id}
    assert await rows_of(db, app) == 1
    async with db.connect() as conn:
        assert len((await conn.execute(select(documents.c.lfd_nr))).all()) == len(record.documents)


async def test_revision_is_a_row_of_its_own(
    db: AsyncEngine,
    postgres_url: str,
    connector_context: ConnectorContext,
    blobs: Blobs,
    sinks: list[SqlSink],
) -> None:
    sink = await _sink(connector_context, sinks, postgres_url)
    app = await make_application(blobs)
    first = default_record(app)
    second = default_record(app)
    second.revision = 2
    await sink.deliver(first, delivery_context(app, blobs))
    delivery = await sink.deliver(second, delivery_context(app, blobs))
    assert delivery.reference == f"{app.id}/r2"
    assert await rows_of(db, app) == 2


async def test_too_large_document_changes_nothing(
    db: AsyncEngine,
    postgres_url: str,
    connector_context: ConnectorContext,
    blobs: Blobs,
    sinks: list[SqlSink],
) -> None:
    section = settings(postgres_url)
    section["documents"]["max_size"] = 1000
    sink = await _sink(connector_context, sinks, postgres_url, documents=section["documents"])
    app = await make_application(blobs, files={"gross.pdf": b"x" * 5000})
    with pytest.raises(Permanent, match=r"larger than documents\.max_size"):
        await sink.deliver(default_record(app), delivery_context(app, blobs))
    assert await rows_of(db, app) == 0
    async with db.connect() as conn:
        assert (await conn.execute(select(documents.c.lfd_nr))).all() == []


async def test_check_accepts_the_simulators_tables(
    db: AsyncEngine, postgres_url: str, connector_context: ConnectorContext, sinks: list[SqlSink]
) -> None:
    result = await (await _sink(connector_context, sinks, postgres_url)).check()
    assert result.ok, result.message
    assert result.details["dialect"] == "postgresql" and result.details["server_version"].startswith("1")
    assert "password" not in str(result.details) and settings(postgres_url)["password"] not in str(result)


async def test_check_names_what_does_not_fit(
    db: AsyncEngine, postgres_url: str, connector_context: ConnectorContext, sinks: list[SqlSink]
) -> None:
    section = settings(postgres_url)
    section["answers"]["status_column"] = "hub_quittung"  # an integer
    section["answers"]["ack_column"] = "eingang"  # a timestamp, but changed_column is a number
    sink = await _sink(
        connector_context,
        sinks,
        postgres_url,
        columns={"antragsteller": "name", "gibtsnicht": "x"},
        answers=section["answers"],
    )
    result = await sink.check()
    assert not result.ok
    assert "has no column gibtsnicht" in result.message
    assert "column hub_quittung is INTEGER, expected character" in result.message
    assert "column leistung is NOT NULL without a default" in result.message
    assert "ack_column eingang" in result.message

    missing = await _sink(connector_context, sinks, postgres_url, table="gibtsnicht")
    result = await missing.check()
    assert not result.ok and "table gibtsnicht does not exist" in result.message


async def test_check_refuses_a_key_that_is_not_unique(
    postgres_url: str, connector_context: ConnectorContext, sinks: list[SqlSink]
) -> None:
    engine = engine_of(postgres_url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE lose (schluessel varchar(64), art varchar(10))"))
    await engine.dispose()
    sink = await _sink(
        connector_context,
        sinks,
        postgres_url,
        table="lose",
        key_column="schluessel",
        columns={},
        answers=None,
        documents=None,
    )
    result = await sink.check()
    assert not result.ok and "key column schluessel is not unique" in result.message


async def test_unreachable_database_fails_check_with_reason(
    connector_context: ConnectorContext, postgres_url: str, sinks: list[SqlSink]
) -> None:
    closed = settings(postgres_url, url="postgresql+asyncpg://aktenhub@127.0.0.1:9/x")
    sink = await make_sink(connector_context, closed)
    sinks.append(sink)
    result = await sink.check()
    assert not result.ok and "database unreachable" in result.message


def test_configuration_refuses_literal_passwords_and_sync_drivers(postgres_url: str) -> None:
    section = settings(postgres_url)
    with pytest.raises(ValidationError, match="must not hold a password"):
        SqlConfig.model_validate({**section, "url": "postgresql+asyncpg://u:geheim@127.0.0.1/db"})
    with pytest.raises(ValidationError, match="is not async"):
        SqlConfig.model_validate({**section, "url": "postgresql+psycopg2://u@127.0.0.1/db"})
    with pytest.raises(ValidationError, match="not a plain SQL name"):
        SqlConfig.model_validate({**section, "table": "x; DROP TABLE y"})
    with pytest.raises(ValidationError, match="written by the hub"):
        SqlConfig.model_validate({**section, "columns": {"status": "record.service"}})


async def test_diagnostics_hide_the_password(
    postgres_url: str, connector_context: ConnectorContext, sinks: list[SqlSink]
) -> None:
    sink = await _sink(connector_context, sinks, postgres_url)
    state = await sink.diagnostics()
    assert settings(postgres_url)["password"] not in str(state)
    assert state["config"]["url"].startswith("postgresql+asyncpg://aktenhub@127.0.0.1:")
    assert state["answers"]["acknowledge"] == "high_water_mark"


async def test_a_column_added_to_fix_a_refusal_is_used_on_replay(
    postgres_url: str, connector_context: ConnectorContext, blobs: Blobs, sinks: list[SqlSink]
) -> None:
    engine = engine_of(postgres_url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE fv (schluessel varchar(64) PRIMARY KEY)"))
    section = {
        **{k: settings(postgres_url)[k] for k in ("type", "url", "password")},
        "table": "fv",
        "key_column": "schluessel",
        "columns": {"leistung": "record.service"},
    }
    sink = await make_sink(connector_context, section)
    sinks.append(sink)
    app = await make_application(blobs)
    with pytest.raises(Permanent, match="has no column leistung"):
        await sink.deliver(default_record(app), delivery_context(app, blobs))
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE fv ADD COLUMN leistung varchar(100)"))
    await sink.deliver(default_record(app), delivery_context(app, blobs))
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT leistung FROM fv"))).scalar_one() == "jagdschein"
    await engine.dispose()
