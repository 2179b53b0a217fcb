"""The test kit's throw-away PostgreSQL server: unprivileged, password-protected, a database per test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from hub.testing.postgres import PgBouncer, PostgresServer


def _psql(server: PostgresServer, url: str, sql: str) -> str:
    out = subprocess.run(
        [str(server.bindir / "psql"), url, "-Atc", sql],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.strip()


def test_each_test_gets_an_empty_database_over_password_tcp(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    assert postgres_url.startswith(f"postgresql://aktenhub:{postgres_server.password}@127.0.0.1:")
    _psql(postgres_server, postgres_url, "CREATE TABLE t (x int)")
    other = postgres_server.url(postgres_server.create_database())
    assert _psql(postgres_server, other, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0"
    wrong = postgres_url.replace(postgres_server.password, "falsch")
    refused = subprocess.run(
        [str(postgres_server.bindir / "psql"), wrong, "-Atc", "SELECT 1"], capture_output=True, text=True
    )
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr


def test_server_runs_as_an_unprivileged_user(postgres_server: PostgresServer, postgres_url: str) -> None:
    data = Path(_psql(postgres_server, postgres_url, "SHOW data_directory"))
    assert data == postgres_server.data_dir
    assert data.stat().st_uid != 0 if os.geteuid() == 0 else data.stat().st_uid == os.geteuid()


MISSING = {
    # fixture the test asks for, variable that points the kit at a missing binary, what the skip says
    "postgres_url": ("AKTENHUB_PG_BINDIR", "no PostgreSQL server binaries"),
    "pgbouncer_url": ("AKTENHUB_PGBOUNCER", "no pgbouncer binary"),
}


@pytest.mark.parametrize("fixture", sorted(MISSING))
@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 error"), ("", "1 skipped")])
def test_without_the_binary_skipped_outside_ci_failed_in_ci(
    tmp_path: Path, fixture: str, ci: str, outcome: str
) -> None:
    variable, reason = MISSING[fixture]
    (tmp_path / "test_uses.py").write_text(f"def test_needs_it({fixture}):\n    assert {fixture}\n")
    env = {**os.environ, variable: str(tmp_path / "keine"), "CI": ci}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert outcome in run.stdout, run.stdout
    assert reason in run.stdout


def test_pgbouncer_pools_by_transaction_as_an_unprivileged_user(
    pgbouncer_server: PgBouncer, pgbouncer_url: str
) -> None:
    with (
        psycopg.connect(pgbouncer_url, autocommit=True, prepare_threshold=None) as first,
        psycopg.connect(pgbouncer_url, autocommit=True, prepare_threshold=None) as second,
    ):
        pid = first.execute("SELECT pg_backend_pid()").fetchone()
        # Between its transactions the first client holds no server connection: the second one gets the
        # same (in session mode it would get a server connection of its own).
        assert second.execute("SELECT pg_backend_pid()").fetchone() == pid
        assert first.execute("SELECT current_database()").fetchone() == (pgbouncer_url.rsplit("/", 1)[1],)
    owner = Path(f"/proc/{pgbouncer_server.process.pid}").stat().st_uid
    assert owner != 0 if os.geteuid() == 0 else owner == os.geteuid()
