"""The `sql` transport passes the contract every sink must pass, against a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest_asyncio
from hub_fachverfahren.sql import SqlSink
from sql_helpers import engine_of, fachverfahren, make_sink, rows_of, settings
from sqlalchemy import text
from sqlalchemy.engine import make_url

from hub import Application, ConnectorContext, Sink
from hub.testing import Fault, SinkContract


async def _silent_server() -> tuple[asyncio.Server, int]:
    """A TCP server that accepts connections and never answers (a database that hangs)."""

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


class TestSqlContract(SinkContract):
    @pytest_asyncio.fixture(autouse=True)
    async def _environment(
        self, postgres_url: str, connector_context: ConnectorContext
    ) -> AsyncIterator[None]:
        self.url = postgres_url
        self.context = connector_context
        self.sim = await fachverfahren(postgres_url)
        self.engine = engine_of(postgres_url)
        self.started: list[SqlSink] = []
        self.servers: list[asyncio.Server] = []
        yield
        for sink in self.started:
            await sink.stop()
        for server in self.servers:
            server.close()
        await self.engine.dispose()
        await self.sim.engine.dispose()

    async def _sink(self, **overrides: object) -> SqlSink:
        sink = await make_sink(self.context, settings(self.url, **overrides))
        self.started.append(sink)
        return sink

    @pytest_asyncio.fixture
    async def sink(self) -> SqlSink:
        return await self._sink()

    async def results(self, sink: Sink, application: Application) -> int:
        return await rows_of(self.engine, application)

    async def faulty_sink(self, fault: Fault) -> Sink | None:
        if fault is Fault.UNREACHABLE:
            server, port = await _silent_server()
            server.close()
            await server.wait_closed()
            return await self._sink(url=f"postgresql+asyncpg://aktenhub@127.0.0.1:{port}/x")
        if fault is Fault.TIMEOUT:
            server, port = await _silent_server()
            self.servers.append(server)
            return await self._sink(url=f"postgresql+asyncpg://aktenhub@127.0.0.1:{port}/x", timeout=0.3)
        if fault is Fault.VALIDATION:
            # The Fachverfahren's table demands a service (NOT NULL): a row without it is refused.
            return await self._sink(columns={"aktenzeichen_akte": "record.file_number"})
        if fault is Fault.SERVER_ERROR:
            # The server's "5xx": a database in maintenance, not accepting connections (for now).
            name = f"wartung_{secrets.token_hex(4)}"
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(f"CREATE DATABASE {name}"))
                await conn.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
            url = make_url(settings(self.url)["url"]).set(database=name)
            return await self._sink(url=url.render_as_string(hide_password=False))
        return None
