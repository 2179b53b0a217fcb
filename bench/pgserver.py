"""A throw-away PostgreSQL cluster for the benchmarks: the test kit's (`hub.testing.postgres`), but with
commits flushed to disk as a production server does, and the journal's schema migrated in."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from hub.testing.postgres import PostgresServer, find_bindir, start_server


@contextmanager
def throwaway_cluster() -> Iterator[PostgresServer]:
    """A running cluster in a temporary directory, removed afterwards."""
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit(
            "no PostgreSQL server binaries (initdb, pg_ctl, postgres): install Debian's postgresql"
        )
    server = start_server(bindir, durable=True)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)


def journal_database(server: PostgresServer) -> str:
    """A new database at the journal's schema (as `aktenhub migrate` leaves it); its URL."""
    from hub.journal.postgres import migrate

    url = server.url(server.create_database())
    migrate(url)
    return url


def server_pid(server: PostgresServer) -> int:
    """The postmaster's process id (its children are the server's backends and helpers)."""
    return int((server.data_dir / "postmaster.pid").read_text().split()[0])
