"""The `sql` transport: an application becomes one row in a staging table of the Fachverfahren's
database (and its documents rows in a second table); answers are read back from the row's status.

SQLAlchemy Core with its async engine, so PostgreSQL (asyncpg), Microsoft SQL Server (aioodbc) and
Oracle (oracledb) are a driver away. Idempotent by the unique key column: within one transaction the
row is looked up, and only when absent inserted with its documents; a concurrent insert of the same key
(a retry whose lease ran out) fails on the unique key and is then found as the existing row.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from hub import (
    BlobNotFound,
    CheckResult,
    ConnectorContext,
    Delivery,
    DeliveryContext,
    Document,
    FileRecord,
    Manifest,
    Permanent,
    Retryable,
    Sink,
    revision_key,
)

from .answers import AnswerReader
from .config import SqlConfig
from .errors import classify
from .tables import StagingTables, convert, problems, reflect

log = logging.getLogger(__name__)

VERSION = "0.1.0"


class _Refused(Exception):
    """The database refused the staging row's insert (unique key, NOT NULL, check constraint)."""

    def __init__(self, error: IntegrityError) -> None:
        super().__init__(str(error.orig))
        self.error = error


class SqlPayload(BaseModel):
    """What the `sql` target reads from the mapping's `payloads.<target>`: flat values, one per field.

    The configuration's `columns` name the fields; each value is converted to its column's type.
    """

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _flat(self) -> SqlPayload:
        nested = sorted(k for k, v in (self.model_extra or {}).items() if isinstance(v, dict | list))
        if nested:
            raise ValueError(f"a column takes one value: field(s) {', '.join(nested)} are lists or mappings")
        return self

    def fields(self) -> dict[str, Any]:
        """The payload's fields."""
        return dict(self.model_extra or {})


class SqlSink(Sink[SqlConfig]):
    """Writes each application as a row into the Fachverfahren's staging table; polls its status."""

    kind: ClassVar[str] = "sql"
    Config = SqlConfig
    Payload = SqlPayload
    manifest = Manifest(
        name="Fachverfahren staging table (SQL)",
        version=VERSION,
        standards=("SQL (PostgreSQL, Microsoft SQL Server, Oracle via SQLAlchemy 2)",),
        description="rows into a staging table of the Fachverfahren's database; answers from a status column",
    )

    def __init__(self, config: SqlConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self._engine: AsyncEngine | None = None
        self._tables: StagingTables | None = None
        self._reflecting = asyncio.Lock()
        self._answers = (
            AnswerReader(self.config, self.config.answers, context, self._connection, self._staging)
            if self.config.answers is not None
            else None
        )
        if self.config.answers is not None:
            self.answer_poll_interval = self.config.answers.interval

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the engine (connections are opened on first use)."""
        self._engine = create_async_engine(
            self.config.database_url(),
            pool_size=self.config.pool_size,
            max_overflow=0,
            pool_pre_ping=True,
            pool_timeout=self.config.timeout,
            hide_parameters=True,  # statement parameters may hold personal data
        )

    async def stop(self) -> None:
        """Close the database connections."""
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @asynccontextmanager
    async def _connection(self, what: str, *, transaction: bool = True) -> AsyncIterator[AsyncConnection]:
        """A connection (in a transaction) within the configured timeout; errors classified."""
        if self._engine is None:
            await self.start()
        assert self._engine is not None
        try:
            async with asyncio.timeout(self.config.timeout):
                if transaction:
                    async with self._engine.begin() as conn:
                        yield conn
                else:
                    async with self._engine.connect() as conn:
                        yield conn
        except (Retryable, Permanent):
            raise
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise classify(exc, what) from None

    async def _staging(self) -> StagingTables:
        """The reflected tables (once per process: the column types decide how values are written)."""
        async with self._reflecting:
            if self._tables is None:
                async with self._connection("reading the staging table's columns", transaction=False) as conn:
                    found = await conn.run_sync(reflect, self.config)
                if isinstance(found, str):
                    raise Permanent(found)
                self._tables = found
            return self._tables

    # -- delivery ------------------------------------------------------------------------------------

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        """Insert the application's row (and documents) once; a repeat finds the row and writes nothing."""
        try:
            return await self._deliver(record, ctx)
        except Permanent:
            # Perhaps the table changed under the hub (a column added or altered to fix this): the
            # replay after the fix reflects it anew.
            self._tables = None
            raise

    async def _deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        key = revision_key(record.application_id, record.revision)
        tables = await self._staging()
        row = self._row(record, key, tables)
        key_column = tables.column(self.config.key_column)
        try:
            async with self._connection("inserting the staging row") as conn:
                if await conn.scalar(select(func.count()).where(key_column == key)):
                    return self._delivery(key, duplicate=True, documents=None)
                try:
                    await conn.execute(insert(tables.staging).values(row))
                except IntegrityError as exc:
                    raise _Refused(exc) from None
                documents = await self._insert_documents(conn, tables, key, record.documents, ctx)
        except _Refused as refused:
            # Another attempt (a worker whose lease ran out) inserted the key meanwhile: delivered. Else
            # the database refused the row for a reason of its own (NOT NULL, check constraint).
            async with self._connection("looking up the staging row", transaction=False) as conn:
                if await conn.scalar(select(func.count()).where(key_column == key)):
                    return self._delivery(key, duplicate=True, documents=None)
            raise classify(refused.error, "inserting the staging row") from None
        log.info("staging row inserted target=%s key=%s documents=%d", self.name, key, documents)
        return self._delivery(key, duplicate=False, documents=documents)

    def _delivery(self, key: str, *, duplicate: bool, documents: int | None) -> Delivery:
        details: dict[str, Any] = {"table": self.config.table, "key": key}
        if documents is not None:
            details["documents"] = documents
        # The reference becomes the application's correlation `<connector>`: answers name it.
        return Delivery(target=self.name, reference=key, duplicate=duplicate, details=details)

    def _row(self, record: FileRecord, key: str, tables: StagingTables) -> dict[str, Any]:
        """The staging row: key, mapped columns converted to their types, constants. No I/O."""
        try:
            payload = SqlPayload.model_validate(record.payloads.get(self.name, {})).fields()
        except ValidationError as exc:
            raise Permanent(f"payloads.{self.name}: {exc.errors()[0]['msg']}") from None
        sources: dict[str, Any] = {
            "record.application_id": record.application_id,
            "record.service": record.service,
            "record.file_number": record.file_number,
            "record.revision": record.revision,
        }
        missing = sorted(
            f"{column} <- {source}"
            for column, source in self.config.columns.items()
            if source not in sources and source not in payload
        )
        if missing:
            raise Permanent(
                f"the mapping's payloads.{self.name} lacks field(s) the columns need: {', '.join(missing)}"
            )
        row: dict[str, Any] = {self.config.key_column: key}
        values = {
            **{
                column: sources.get(source, payload.get(source))
                for column, source in self.config.columns.items()
            },
            **self.config.constants,
        }
        for column, value in values.items():
            target = tables.staging.c.get(column)
            if target is None:
                raise Permanent(f"table {self.config.table} has no column {column} (see `aktenhub check`)")
            converted = convert(target, value)
            if converted is None and value is not None:
                raise Permanent(
                    f"column {column}: the value does not convert to the column's type {target.type}"
                )
            row[column] = converted
        return row

    async def _insert_documents(
        self,
        conn: AsyncConnection,
        tables: StagingTables,
        key: str,
        documents: list[Document],
        ctx: DeliveryContext,
    ) -> int:
        spec, table = self.config.documents, tables.documents
        if spec is None or table is None:
            return 0
        for number, document in enumerate(documents, start=1):
            row: dict[str, Any] = {
                spec.key_column: key,
                spec.number_column: number,
                spec.name_column: document.name,
                spec.content_column: await self._content(document, number, ctx, spec.max_size),
            }
            if spec.type_column is not None:
                row[spec.type_column] = document.type
            if spec.media_type_column is not None:
                row[spec.media_type_column] = document.media_type
            await conn.execute(insert(table).values(row))
        return len(documents)

    async def _content(self, document: Document, number: int, ctx: DeliveryContext, limit: int) -> bytes:
        """A document's content, read from the blob store in chunks, bounded and checked against its hash.

        Database drivers bind a BLOB parameter whole, so the content is held once in memory: `max_size`
        bounds it (one document at a time per delivery).
        """
        what = f"document {number} (type {document.type!r})"
        if document.blob is None:
            raise Permanent(f"{what} has no content (no blob reference): nothing to deliver")
        digest = hashlib.sha256()
        parts: list[bytes] = []
        size = 0
        try:
            async for chunk in ctx.blobs.read(document.blob):
                size += len(chunk)
                if size > limit:
                    raise Permanent(f"{what} is larger than documents.max_size ({limit} bytes)")
                digest.update(chunk)
                parts.append(chunk)
        except BlobNotFound:
            raise Permanent(f"{what} references {document.blob}, which is not in the blob store") from None
        if "sha256:" + digest.hexdigest() != document.blob:
            raise Permanent(f"{what}: the content of {document.blob} does not match its reference")
        return b"".join(parts)

    # -- answers -------------------------------------------------------------------------------------

    async def poll_answers(self) -> int:
        """Hand the rows whose status changed to the return channel; acknowledge each after it."""
        if self._answers is None:
            return 0
        return await self._answers.poll()

    # -- operators -----------------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """Connect, reflect the tables and check them against the configuration."""
        details = {"url": self.config.redacted_url(), "table": self.config.table}
        if self.config.answers is not None:
            details["answers"] = self.config.answers.acknowledge
        try:
            async with self._connection("checking the staging table", transaction=False) as conn:
                found = await conn.run_sync(reflect, self.config)
                if isinstance(found, str):
                    return CheckResult(ok=False, message=found, details=details)
                trouble = await conn.run_sync(problems, self.config, found)
                details["dialect"] = conn.dialect.name
                version = conn.dialect.server_version_info
                if version:
                    details["server_version"] = ".".join(str(v) for v in version)
        except (Retryable, Permanent) as exc:
            return CheckResult(ok=False, message=str(exc), details=details)
        if trouble:
            return CheckResult(ok=False, message="; ".join(trouble), details=details)
        return CheckResult(
            ok=True, message=f"staging table {self.config.table} fits the configuration", details=details
        )

    async def diagnostics(self) -> dict[str, Any]:
        """Redacted state: the URL without password, how answers are acknowledged and how far."""
        state = await super().diagnostics()
        state["config"]["url"] = self.config.redacted_url()
        if self._answers is not None:
            state["answers"] = self._answers.diagnostics()
        return state
