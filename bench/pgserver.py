"""A throw-away PostgreSQL cluster for the benchmarks: the test kit's (`hub.testing.postgres`), but with
commits flushed to disk as a production server does, and the journal's schema migrated in; and one
started on a copy of a cluster kept from an earlier run (a large journal is built once, like the SQLite
file of ``bench/console.py``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.scratch import remove
from hub.localservers import free_port, start_in_scratch, unprivileged_account
from hub.testing.postgres import UNPRIVILEGED_USERS, PostgresServer, find_bindir, start_server


def _bindir() -> Path:
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit(
            "no PostgreSQL server binaries (initdb, pg_ctl, postgres): install Debian's postgresql"
        )
    return bindir


@contextmanager
def throwaway_cluster() -> Iterator[PostgresServer]:
    """A running cluster in a temporary directory, removed afterwards."""
    server = start_server(_bindir(), durable=True)
    try:
        yield server
    finally:
        server.stop()
        remove(server.base)


@contextmanager
def kept_cluster(cache: Path, build: Callable[[PostgresServer], str]) -> Iterator[tuple[PostgresServer, str]]:
    """A running cluster on a copy of the one kept in `cache`, and the name of the database `build`
    filled there (run on a new cluster the first time, which is then stopped and kept).

    The copy is thrown away afterwards: every run starts from the cluster as it was built.
    """
    about = cache / "cluster.json"
    if not about.exists():
        shutil.rmtree(cache, ignore_errors=True)
        with throwaway_cluster() as server:
            database = build(server)
            server.stop(clean=True)
            cache.mkdir(parents=True)
            # cp -a: the files keep the owner the server runs as, and their modes.
            subprocess.run(["cp", "-a", str(server.data_dir), str(cache / "data")], check=True)
        about.write_text(json.dumps({"user": server.user, "password": server.password, "database": database}))
    kept = json.loads(about.read_text())

    def start(base: Path) -> PostgresServer:
        # The account the kept cluster ran as (it owns the copied files): the test kit's choice again.
        run_as = unprivileged_account(UNPRIVILEGED_USERS)
        server = PostgresServer(_bindir(), base, free_port(), kept["user"], kept["password"], run_as, True)
        subprocess.run(["cp", "-a", str(cache / "data"), str(server.data_dir)], check=True)
        server.start(initdb=False)
        return server

    server = start_in_scratch("akh-pgk-", start)
    try:
        yield server, str(kept["database"])
    finally:
        server.stop()
        remove(server.base)


def journal_database(server: PostgresServer) -> str:
    """A new database at the journal's schema (as `aktenhub migrate` leaves it); its URL."""
    from hub.journal.postgres import migrate

    url = server.url(server.create_database())
    migrate(url)
    return url


def server_pid(server: PostgresServer) -> int:
    """The postmaster's process id (its children are the server's backends and helpers)."""
    return int((server.data_dir / "postmaster.pid").read_text().split()[0])
