"""Answers from the staging table: each change of a row's status becomes an `Answer` for the return channel.

A row has changed when its `changed_column` (a version number or a timestamp the Fachverfahren sets)
moved past what the hub acknowledged. The hub remembers that either in the row (`ack_column`: it copies
`changed_column` into it) or, when the table takes no writes to the Fachverfahren's columns, as its own
high-water mark (`changed_column`, key) in a file of the hub's data directory. In both cases the answer
is acknowledged only after `ConnectorContext.answer` returned, i.e. after the durable commit; a crash in
between hands it over again, and the return channel, idempotent on `answer_id`, takes it once.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import Answer, Attachment, ConnectorContext, UnknownApplication, utcnow

from .config import SqlAnswers, SqlConfig
from .tables import StagingTables

log = logging.getLogger(__name__)

ConnectionFactory = Callable[..., AbstractAsyncContextManager[AsyncConnection]]
MAX_DECISION = 64 * 1024 * 1024  # bytes of a decision read from the table


class HighWaterMark(BaseModel):
    """The last row (by `changed_column`, then key) whose answer the hub took."""

    kind: Literal["int", "decimal", "datetime", "str"]
    changed: str
    key: str

    @classmethod
    def of(cls, changed: Any, key: str) -> HighWaterMark:
        """The mark of a row with this `changed_column` value."""
        if isinstance(changed, datetime):
            return cls(kind="datetime", changed=changed.isoformat(), key=key)
        if isinstance(changed, int):
            return cls(kind="int", changed=str(changed), key=key)
        if isinstance(changed, Decimal):
            return cls(kind="decimal", changed=str(changed), key=key)
        return cls(kind="str", changed=str(changed), key=key)

    def value(self) -> Any:
        """The `changed_column` value, typed as the column gave it."""
        if self.kind == "datetime":
            return datetime.fromisoformat(self.changed)
        if self.kind == "int":
            return int(self.changed)
        return Decimal(self.changed) if self.kind == "decimal" else self.changed


def answer_id(key: str, status: str, changed: Any) -> str:
    """The answer's id: key, status value and change (a hash when that is too long)."""
    text = changed.isoformat() if isinstance(changed, datetime) else str(changed)
    full = f"{key}:{status}:{text}"
    return full if len(full) <= 200 else f"{key[:100]}:{hashlib.sha256(full.encode()).hexdigest()}"


def application_of(key: str) -> str:
    """The application id in a key the sink wrote (``<id>`` or ``<id>/r<revision>``)."""
    return key.partition("/")[0]


class AnswerReader:
    """Polls the staging table for changed rows and hands each to the return channel."""

    def __init__(
        self,
        config: SqlConfig,
        answers: SqlAnswers,
        context: ConnectorContext,
        connection: ConnectionFactory,
        staging: Callable[[], Awaitable[StagingTables]],
    ) -> None:
        self.config = config
        self.answers = answers
        self.context = context
        self._connection = connection
        self._staging = staging
        self._mark_file = context.data_dir / f"sql-answers-{context.name}.json"
        self._mark: HighWaterMark | None = self._load_mark()
        self.taken = 0
        self.passed_over = 0
        self.unmapped: dict[str, int] = {}

    def _load_mark(self) -> HighWaterMark | None:
        try:
            return HighWaterMark.model_validate_json(self._mark_file.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError) as exc:
            # Starting over is safe (answers are idempotent on their id); say so once.
            log.warning(
                "high-water mark unreadable, reading all answers again target=%s reason=%s",
                self.context.name,
                exc,
            )
            return None

    def _save_mark(self, mark: HighWaterMark) -> None:
        self._mark_file.parent.mkdir(parents=True, exist_ok=True)
        temp = self._mark_file.with_suffix(".tmp")
        with open(temp, "wb") as f:
            f.write(mark.model_dump_json().encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, self._mark_file)
        self._mark = mark

    async def poll(self) -> int:
        """One poll: at most `batch` changed rows, in the order of their change. Returns answers taken."""
        tables = await self._staging()
        a, t = self.answers, tables.staging
        key, status, changed = t.c[self.config.key_column], t.c[a.status_column], t.c[a.changed_column]
        wanted = [key, status, changed]
        for name in (a.case_number_column, a.message_column, a.error_column, a.decision_name_column):
            if name is not None:
                wanted.append(t.c[name])
        query = select(*wanted).where(status.is_not(None), changed.is_not(None))
        if a.ack_column is not None:
            ack = t.c[a.ack_column]
            query = query.where(or_(ack.is_(None), ack != changed))
        elif self._mark is not None:
            mark = self._mark.value()
            query = query.where(or_(changed > mark, and_(changed == mark, key > self._mark.key)))
        query = query.order_by(changed, key).limit(a.batch)
        async with self._connection("reading answers from the staging table", transaction=False) as conn:
            rows = (await conn.execute(query)).all()
        taken = 0
        for row in rows:
            taken += await self._take(row._mapping, tables)
        return taken

    async def _take(self, row: Any, tables: StagingTables) -> int:
        a = self.answers
        key: str = row[self.config.key_column]
        value = str(row[a.status_column])
        changed = row[a.changed_column]
        known, status = a.status_of(value)
        taken = 0
        if status is not None:
            answer = Answer(
                answer_id=answer_id(key, value, changed),
                application_id=application_of(key),
                reference=key,
                status=status,
                case_number=_text(row, a.case_number_column, 200),
                status_text=value[:500],
                message=_text(row, a.message_column, 2000),
                error=_text(row, a.error_column, 2000),
                decision=await self._decision(row, key, tables),
                at=_aware(changed) if isinstance(changed, datetime) else utcnow(),
            )
            try:
                outcome = await self.context.answer(answer)
            except UnknownApplication:
                # Not one of the hub's rows (or one whose application was purged): nothing to tell.
                log.warning("answer names no application of the hub target=%s key=%s", self.context.name, key)
                self.passed_over += 1
            else:
                taken = 0 if outcome.duplicate else 1
                self.taken += taken
        elif not known:
            # An unmapped status value is a configuration gap: visible, read again at the row's next change.
            self.unmapped[value[:50]] = self.unmapped.get(value[:50], 0) + 1
            log.warning(
                "status value not in answers.statuses, passed over target=%s key=%s status=%s",
                self.context.name,
                key,
                value[:50],
            )
            self.passed_over += 1
        await self._acknowledge(key, changed, tables)
        return taken

    async def _decision(self, row: Any, key: str, tables: StagingTables) -> Attachment | None:
        """The decision BLOB of the row, stored in the blob store (read separately: it may be large)."""
        a = self.answers
        if a.decision_column is None:
            return None
        t = tables.staging
        query = select(t.c[a.decision_column]).where(t.c[self.config.key_column] == key)
        async with self._connection("reading the decision", transaction=False) as conn:
            content = await conn.scalar(query)
        if not content:
            return None
        content = bytes(content)
        if len(content) > MAX_DECISION:
            log.warning(
                "decision larger than %d bytes not taken target=%s key=%s",
                MAX_DECISION,
                self.context.name,
                key,
            )
            return None
        info = await self.context.blobs.write_bytes(content)
        name = _text(row, a.decision_name_column, 200) or "bescheid.pdf"
        return Attachment(
            name=name, media_type=a.decision_media_type, size=info.size, sha256=info.sha256, blob=info.ref
        )

    async def _acknowledge(self, key: str, changed: Any, tables: StagingTables) -> None:
        a = self.answers
        if a.ack_column is None:
            self._save_mark(HighWaterMark.of(changed, key))
            return
        t = tables.staging
        statement = (
            update(t)
            .where(t.c[self.config.key_column] == key, t.c[a.changed_column] == changed)
            .values({a.ack_column: changed})
        )
        async with self._connection("acknowledging an answer in the staging table") as conn:
            await conn.execute(statement)

    def diagnostics(self) -> dict[str, Any]:
        """How answers are acknowledged, how far, how many were taken and passed over."""
        state: dict[str, Any] = {
            "acknowledge": self.answers.acknowledge,
            "taken": self.taken,
            "passed_over": self.passed_over,
            "unmapped_statuses": dict(self.unmapped),
        }
        if self._mark is not None:
            state["high_water_mark"] = self._mark.model_dump(mode="json")
        return state


def _text(row: Any, column: str | None, limit: int) -> str | None:
    if column is None:
        return None
    value = row[column]
    if value is None:
        return None
    text = str(value).strip()
    return text[:limit] or None


def _aware(value: datetime) -> datetime:
    # A timestamp without time zone is taken as UTC (document it for operators).
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
