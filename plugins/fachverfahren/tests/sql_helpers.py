"""Shared pieces of the `sql` transport's tests: the simulated Fachverfahren's database, sink settings."""

from __future__ import annotations

from typing import Any

from hub_fachverfahren.sql import SqlConfig, SqlSink
from hub_fachverfahren.sql.simulator import StagingFachverfahren, connector_settings, staging
from sqlalchemy import func, or_, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hub import Application, ConnectorContext


def split_url(postgres_url: str) -> tuple[str, str]:
    """(async SQLAlchemy URL without password, password) of the test kit's libpq URL."""
    url = make_url(postgres_url)
    bare = URL.create("postgresql+asyncpg", url.username, None, url.host, url.port, url.database)
    return bare.render_as_string(hide_password=False), str(url.password or "")


def engine_of(postgres_url: str) -> AsyncEngine:
    """An engine on the test database (for the Fachverfahren's side and for asserting rows)."""
    return create_async_engine(make_url(postgres_url).set(drivername="postgresql+asyncpg"))


async def fachverfahren(postgres_url: str) -> StagingFachverfahren:
    """The simulated Fachverfahren with its tables created in the test database."""
    sim = StagingFachverfahren(engine_of(postgres_url))
    await sim.setup()
    return sim


def settings(postgres_url: str, **overrides: Any) -> dict[str, Any]:
    """The `connectors.<name>` section for the simulator's tables (documents and answers included;
    answers remembered by the hub's high-water mark unless `ack_column` is set again)."""
    section = connector_settings(*split_url(postgres_url))
    section["constants"] = {}
    section["answers"].update(ack_column=None, interval=0.2)
    section.update(overrides)
    return section


async def make_sink(context: ConnectorContext, section: dict[str, Any]) -> SqlSink:
    """A started sink with these settings."""
    sink = SqlSink(SqlConfig.model_validate(section), context)
    await sink.start()
    return sink


async def rows_of(engine: AsyncEngine, application: Application) -> int:
    """How many staging rows the application has (any revision)."""
    key = staging.c.hub_key
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).where(or_(key == application.id, key.startswith(application.id + "/")))
        )
    return int(count or 0)
