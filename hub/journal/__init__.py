"""Journal backends behind one protocol (`hub.journal.base.Journal`)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hub.errors import ConfigError
from hub.journal import migrations
from hub.journal.base import (
    Abandoned,
    ActionRefused,
    AfterAll,
    AnswerEffects,
    AnswerPlan,
    ApplicationFilter,
    ApplicationPatch,
    ApplicationSummary,
    CircuitRecord,
    ClaimRequest,
    Completion,
    FileNumberAssigned,
    FileNumberSequence,
    IntakeResult,
    Journal,
    JournalStats,
    JournalUnavailable,
    LeaseLost,
    PurgeCandidate,
    PurgedApplication,
    PurgeOrder,
    QueuedAlert,
    ReceivedAnswer,
    StoredAnswer,
    Task,
    TaskFailure,
    TaskSpec,
    TaskState,
)
from hub.journal.lifecycle import SqlJournal
from hub.journal.lock import JournalInUse
from hub.journal.sqlite import SqliteJournal

__all__ = [
    "Abandoned",
    "ActionRefused",
    "AfterAll",
    "AnswerEffects",
    "AnswerPlan",
    "ApplicationFilter",
    "ApplicationPatch",
    "ApplicationSummary",
    "CircuitRecord",
    "ClaimRequest",
    "Completion",
    "FileNumberAssigned",
    "FileNumberSequence",
    "IntakeResult",
    "Journal",
    "JournalInUse",
    "JournalStats",
    "JournalUnavailable",
    "LeaseLost",
    "Migrated",
    "PurgeCandidate",
    "PurgeOrder",
    "PurgedApplication",
    "QueuedAlert",
    "ReceivedAnswer",
    "SqlJournal",
    "SqliteJournal",
    "StoredAnswer",
    "Task",
    "TaskFailure",
    "TaskSpec",
    "TaskState",
    "migrate_schema",
    "open_journal",
]


def open_journal(
    url: str,
    base: Path | None = None,
    clock: Callable[[], float] = time.time,
    *,
    read_only: bool = False,
    guest: bool = False,
) -> Journal:
    """The journal for a store URL: ``sqlite:///relative/path.db``, ``sqlite:////absolute.db`` or
    ``postgresql://user@host:port/dbname?…`` (`hub.journal.postgres`).

    `read_only`: for commands that only look; such a journal takes no lock and writes nothing.
    `guest`: for an operator's command beside the running hub that holds the journal: it takes no lock,
    never migrates or recovers, and writes in short transactions of its own (SQLite serialises them with
    the hub's); the hub notices its changes at its next poll. On PostgreSQL every process is such a
    peer: a guest is an ordinary journal there.
    """
    if url.startswith("sqlite:///"):
        raw = url[len("sqlite:///") :]
        path = Path(raw)
        if not path.is_absolute() and base is not None:
            path = base / path
        return SqliteJournal(path, clock=clock, read_only=read_only, guest=guest)
    if url.startswith(("postgresql://", "postgres://")):
        from hub.journal.postgres import PostgresJournal  # psycopg is loaded only for a PostgreSQL journal

        try:
            return PostgresJournal(url, clock=clock, read_only=read_only)
        except ValueError as exc:
            raise ConfigError([f"store: {exc}"]) from None
    raise ConfigError([f"store: expected sqlite:///PATH or postgresql://…, got {_redacted(url)!r}"])


def _redacted(url: str) -> str:
    # A mistyped PostgreSQL URL may still carry a password.
    return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)


@dataclass(frozen=True)
class Migrated:
    """What `migrate_schema` did: the journal, the migrations it applied, the schema version now."""

    location: str
    applied: list[str] | None  # "0001_initial", …; None: SQLite's journal migrated itself on opening
    version: int


async def migrate_schema(url: str, base: Path | None = None) -> Migrated:
    """Bring the journal's schema up to date (`aktenhub migrate`); `JournalUnavailable` says why not.

    PostgreSQL: applies the missing numbered migrations (several hub processes never migrate on their
    own). SQLite: opening the journal migrates it; this opens it once (refused while a hub holds it).
    """
    if url.startswith(("postgresql://", "postgres://")):
        from hub.journal import postgres  # psycopg is loaded only for a PostgreSQL journal

        applied, version = await postgres.migrate_database(url)
        names = [f"{m.version:04d}_{m.name}" for m in applied]
        return Migrated(postgres.redact(url), names, version)
    journal = open_journal(url, base)
    await journal.open()
    await journal.close()
    return Migrated(str(getattr(journal, "location", url)), None, migrations.latest("sqlite"))
