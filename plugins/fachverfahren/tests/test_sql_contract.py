"""The `sql` transport passes the contract every sink must pass, against a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from hub_fachverfahren.sql import SqlSink
from hub_fachverfahren.sql.simulator import STATUS_MAP, staging
from sql_helpers import engine_of, fachverfahren, make_sink, rows_of, settings
from sqlalchemy import text, update
from sqlalchemy.engine import make_url

from hub import AnswerStatus, Application, ConnectorContext, Sink
from hub.testing import Fault, SinkContract
from hub.testing.contracts import AnsweringSinkContract
from hub.testing.harness import RunningHub


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


# The Fachverfahren's way of learning that the hub took an answer: the hub writes `hub_quittung`; a
# trigger of the database counts each such write (one row per acknowledgement).
ACKNOWLEDGEMENTS = [
    "CREATE TABLE quittungen (hub_key varchar(64) NOT NULL, version integer NOT NULL)",
    """CREATE FUNCTION quittung_zaehlen() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN INSERT INTO quittungen VALUES (NEW.hub_key, NEW.hub_quittung); RETURN NEW; END $$""",
    """CREATE TRIGGER quittung AFTER UPDATE OF hub_quittung ON antrag_import
       FOR EACH ROW WHEN (NEW.hub_quittung IS NOT NULL) EXECUTE FUNCTION quittung_zaehlen()""",
]
SYSTEM_STATUS = {AnswerStatus(v): k for k, v in STATUS_MAP.items() if v}


class TestSqlAnsweringContract(AnsweringSinkContract):
    """Answers by the status column (acknowledged in `ack_column`), through a real hub."""

    @pytest_asyncio.fixture
    async def answering_hub(self, hub_factory: Any, postgres_url: str) -> AsyncIterator[RunningHub]:
        self.sim = await fachverfahren(postgres_url)
        async with self.sim.engine.begin() as conn:
            for statement in ACKNOWLEDGEMENTS:
                await conn.execute(text(statement))
        self.versions: dict[tuple[str, int], int] = {}
        section = settings(postgres_url, documents=None, retry={"initial_seconds": 0.05, "max_seconds": 0.1})
        section["answers"].update(ack_column="hub_quittung", interval=0.05)
        connectors = {"json": {"type": "test-json"}, self.answering_target: section}
        routes = [{"name": "wasser", "from": "json", "to": [self.answering_target]}]
        yield await hub_factory(connectors, routes)
        await self.sim.engine.dispose()

    async def submit(self, running: RunningHub, n: int) -> str:
        status, body = await running.post("/intake/json/wasserrecht", json={"id": f"sql-{n}", "form": {}})
        assert status == 202, body
        return str(body["application_id"])

    async def give_answer(
        self, running: RunningHub, application_id: str, n: int, status: AnswerStatus
    ) -> None:
        async with self.sim.engine.begin() as conn:
            if (application_id, n) in self.versions:
                # Given again: the Fachverfahren flags the row as not taken (as after a restore).
                await conn.execute(
                    update(staging).where(staging.c.hub_key == application_id).values(hub_quittung=None)
                )
                return
            version = await conn.scalar(
                update(staging)
                .where(staging.c.hub_key == application_id)
                .values(status=SYSTEM_STATUS[status], version=staging.c.version + 1, fv_aktenzeichen=f"K-{n}")
                .returning(staging.c.version)
            )
        self.versions[(application_id, n)] = int(version or 0)

    async def acknowledgements(self, running: RunningHub, application_id: str, n: int) -> int:
        version = self.versions.get((application_id, n))
        async with self.sim.engine.connect() as conn:
            count = await conn.scalar(
                text("SELECT count(*) FROM quittungen WHERE hub_key = :k AND version = :v"),
                {"k": application_id, "v": version},
            )
        return int(count or 0)
