"""The journal's contract on PostgreSQL through pgbouncer in transaction pooling mode: each transaction
may run on another server connection, so nothing may rely on session state (prepared statements, SET,
session advisory locks)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.testing.journal_backends import JournalBackend, PgBouncerBackend
from hub.testing.journal_contract import *  # noqa: F403 - the suite's tests and fixtures
from hub.testing.postgres import PgBouncer


@pytest.fixture  # type: ignore[no-redef]  # replaces the suite's fixture (one run per backend)
def journal_backend(pgbouncer_server: PgBouncer) -> Iterator[JournalBackend]:
    """Every contract test, once, through the pooler."""
    backend = PgBouncerBackend(pgbouncer_server)
    yield backend
    backend.discard()
