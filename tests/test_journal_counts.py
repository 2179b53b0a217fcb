"""/metrics' journal counts (`hub.journal.counts`): finished applications and steps come from counters
kept by triggers (migration 0005), which `aktenhub migrate` fills on an existing journal, on both
backends; every later change of a row's state keeps them equal to a count over the tables."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.journal import SqliteJournal
from hub.journal.lifecycle import SqlJournal
from hub.journal.postgres import PostgresJournal

# What migration 0005 adds, taken away again to make a journal as the hub before it left it.
BEFORE_0005 = {
    "sqlite": [
        *(
            f"DROP TRIGGER {table}_final_{change}"
            for table in ("applications", "tasks")
            for change in ("insert", "update", "delete")
        ),
        "DROP TABLE final_counts",
        "DROP TABLE final_count_deltas",
    ],
    "postgresql": [
        "DROP FUNCTION count_final_applications() CASCADE",
        "DROP FUNCTION count_final_tasks() CASCADE",
        "DROP FUNCTION count_final(TEXT, TEXT, TEXT, TEXT, INTEGER)",
        "DROP TABLE final_counts",
        "DROP TABLE final_count_deltas",
    ],
}
APPLICATIONS = [  # id, state
    ("a1", "completed"),
    ("a2", "completed"),
    ("a3", "rejected"),
    ("a4", "processing"),
    ("a5", "abandoned"),
    ("a6", "dead"),
    ("a7", "received"),
]
TASKS = [  # application, step, target, state
    ("a1", "deliver", "enaio", "done"),
    ("a1", "notify", "mailbox", "done"),
    ("a2", "deliver", "enaio", "done"),
    ("a2", "notify", "mailbox", "done"),
    ("a3", "notify", "mailbox", "done"),
    ("a4", "deliver", "enaio", "done"),
    ("a4", "notify", "mailbox", "pending"),
    ("a5", "deliver", "enaio", "abandoned"),
    ("a6", "deliver", "enaio", "dead"),
    ("a7", "map", "enaio", "waiting"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The journal's location: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.db'}"
    return str(request.getfixturevalue("postgres_url"))


@contextmanager
def connected(store: str) -> Iterator[Any]:
    """A plain connection to the journal's database (no hub code), committed at the end."""
    if store.startswith("sqlite:///"):
        with closing(sqlite3.connect(store.removeprefix("sqlite:///"))) as conn, conn:
            yield conn
    else:
        with psycopg.connect(store) as conn:
            yield conn


def run(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One statement with ``?`` placeholders on either backend; its rows."""
    if isinstance(conn, psycopg.Connection):
        sql = sql.replace("?", "%s")
    cursor = conn.execute(sql, params)
    return list(cursor.fetchall()) if cursor.description else []


def application_row(app_id: str, state: str) -> tuple[str, tuple[str, ...]]:
    """The statement and parameters that insert a bare application in `state`."""
    return (
        "INSERT INTO applications (id, source, external_id, service, state, received_at, updated_at, "
        "search, doc) VALUES (?, 'portal', ?, 'svc', ?, 1, 1, '', '{}')",
        (app_id, f"ext-{app_id}", state),
    )


def migrate(store: str, tmp_path: Path) -> str:
    """`aktenhub migrate` on the journal; its output."""
    config = tmp_path / "hub.yaml"
    config.write_text(f"store: {store}\nblobs: {tmp_path / 'blobs'}\nconnectors: {{}}\nroutes: []\n")
    result = CliRunner().invoke(main, ["migrate", "-c", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def counted(store: str) -> tuple[dict[str, int], dict[tuple[str, str, str], int]]:
    """What /metrics counted before the counters: a GROUP BY over the whole tables."""
    with connected(store) as conn:
        applications = dict(run(conn, "SELECT state, COUNT(*) FROM applications GROUP BY state"))
        tasks = {
            (step, target, state): n
            for step, target, state, n in run(
                conn, "SELECT step, target, state, COUNT(*) FROM tasks GROUP BY step, target, state"
            )
        }
    return applications, tasks


def opened(store: str) -> SqlJournal:
    if store.startswith("sqlite:///"):
        return SqliteJournal(Path(store.removeprefix("sqlite:///")))
    return PostgresJournal(store)


async def stats(store: str) -> tuple[dict[str, int], dict[tuple[str, str, str], int]]:
    journal = opened(store)
    await journal.open()
    try:
        found = await journal.stats()
    finally:
        await journal.close()
    return found.applications_by_state, found.tasks_by_step_target_state


async def test_migrate_fills_the_counts_of_an_existing_journal_and_they_follow_every_change(
    store: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(migrate, store, tmp_path)  # the CLI runs its own event loop
    backend = "sqlite" if store.startswith("sqlite") else "postgresql"
    with connected(store) as conn:  # the journal as the hub before migration 0005 left it, with history
        for statement in BEFORE_0005[backend]:
            run(conn, statement)
        run(conn, "UPDATE meta SET value='4' WHERE key='schema_version'")
        for app_id, state in APPLICATIONS:
            run(conn, *application_row(app_id, state))
        for app_id, step, target, state in TASKS:
            run(
                conn,
                "INSERT INTO tasks (application_id, step, target, state, max_attempts, due_at, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, 5, 1, 1, 1)",
                (app_id, step, target, state),
            )

    output = await asyncio.to_thread(migrate, store, tmp_path)
    if backend == "postgresql":
        assert "applied 0005_final_counts" in output
    expected = counted(store)
    assert expected[0]["completed"] == 2 and expected[1][("deliver", "enaio", "done")] == 3
    assert await stats(store) == expected

    with connected(store) as conn:  # changes by any path: the triggers count them
        run(conn, "UPDATE tasks SET state='pending' WHERE application_id='a2' AND step='deliver'")  # replay
        run(conn, "UPDATE applications SET state='processing' WHERE id='a2'")
        run(conn, "DELETE FROM tasks WHERE application_id='a1'")  # a revision's new tasks replace them
        run(conn, "UPDATE tasks SET state='done' WHERE application_id='a4'")
        run(conn, "UPDATE applications SET state='completed' WHERE id='a4'")
        run(conn, "UPDATE applications SET state='abandoned' WHERE id='a6'")
        run(conn, "UPDATE tasks SET state='abandoned' WHERE application_id='a6'")
        run(conn, "UPDATE tasks SET checkpoints='{}' WHERE state='done'")  # no change of state
        run(
            conn,
            "INSERT INTO tasks (application_id, step, target, state, max_attempts, due_at, created_at, "
            "updated_at) VALUES ('a3', 'answer-file', 'enaio', 'done', 5, 1, 1, 1)",
        )
    expected = counted(store)
    assert expected[0] == {"completed": 2, "rejected": 1, "processing": 1, "abandoned": 2, "received": 1}
    assert ("notify", "mailbox", "done") in expected[1] and ("deliver", "enaio", "dead") not in expected[1]
    assert await stats(store) == expected


async def test_steps_finished_at_once_on_postgresql_do_not_wait_for_each_other_on_the_counts(
    postgres_url: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(migrate, postgres_url, tmp_path)
    with connected(postgres_url) as conn:
        run(conn, *application_row("a1", "processing"))
        for subject in ("1", "2"):
            run(
                conn,
                "INSERT INTO tasks (application_id, step, target, state, max_attempts, due_at, created_at, "
                "updated_at, subject) VALUES ('a1', 'deliver', 'enaio', 'leased', 5, 1, 1, 1, ?)",
                (subject,),
            )
    with psycopg.connect(postgres_url) as first, psycopg.connect(postgres_url) as second:
        # Two hub processes finish a step of the same target at once; the first one's transaction is
        # still open when the second one commits.
        first.execute("UPDATE tasks SET state='done' WHERE subject='1'")
        second.execute("SET lock_timeout = '5s'")  # a counter row updated in place would wait for `first`
        second.execute("UPDATE tasks SET state='done' WHERE subject='2'")
        second.commit()
        assert (await stats(postgres_url))[1] == {
            ("deliver", "enaio", "done"): 1,
            ("deliver", "enaio", "leased"): 1,
        }
        first.commit()
    assert (await stats(postgres_url))[1] == {("deliver", "enaio", "done"): 2}
    with connected(postgres_url) as conn:  # the scrapes folded what the triggers appended
        assert run(conn, "SELECT COUNT(*) FROM final_count_deltas") == [(0,)]
        assert run(conn, "SELECT kind, step, target, state, n FROM final_counts") == [
            ("task", "deliver", "enaio", "done", 2)
        ]
