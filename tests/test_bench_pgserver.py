"""The benchmarks' kept PostgreSQL cluster: built once, every later run starts on a fresh copy of it."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from bench.pgserver import kept_cluster
from hub.testing.postgres import PostgresServer, find_bindir

pytestmark = pytest.mark.skipif(find_bindir() is None, reason="no PostgreSQL server binaries")


def test_a_kept_cluster_is_built_once_and_each_run_gets_it_as_built(tmp_path: Path) -> None:
    builds: list[str] = []

    def build(server: PostgresServer) -> str:
        name = server.create_database()
        with psycopg.connect(server.url(name), autocommit=True) as db:
            db.execute("CREATE TABLE history (row text)")
            db.execute("INSERT INTO history VALUES ('built')")
        builds.append(name)
        return name

    at = tmp_path / "kept"
    with kept_cluster(at, build) as (server, name), psycopg.connect(server.url(name), autocommit=True) as db:
        db.execute("INSERT INTO history VALUES ('written by a run')")
    with kept_cluster(at, build) as (again, same), psycopg.connect(again.url(same)) as db:
        rows = [r for (r,) in db.execute("SELECT row FROM history").fetchall()]

    assert builds == [name] and same == name
    assert rows == ["built"]  # the first run's row went with its copy
    assert not again.base.exists()
