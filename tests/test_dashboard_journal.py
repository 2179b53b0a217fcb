"""The dashboard's journal queries: hourly buckets, time to filed, and every statement on an index."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hub.journal import SqliteJournal
from hub.journal import dashboard_sql as queries
from hub.journal.sqlite import _connect

HOUR = 3600.0
NOW = 1_800_000_000.0 + 1800  # half past a full hour (UTC)
TABLES = ("applications", "events", "tasks")


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    opened = SqliteJournal(tmp_path / "journal.db")
    await opened.open()
    yield opened
    await opened.close()


def add(
    c: sqlite3.Connection,
    n: int,
    received: float,
    state: str,
    route: str = "jagd",
    filed_after: float | None = None,
    dead_at: float | None = None,
) -> None:
    """An application as the pipeline leaves it: its row, its events, its delivery task."""
    app_id = f"app_{n}"
    c.execute(
        "INSERT INTO applications (id, source, external_id, service, route, state, received_at, "
        "updated_at, search, doc) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (app_id, "src", f"ext-{n}", "jagdschein", route, state, received, received, "", "{}"),
    )
    events: list[tuple[str, str, float, str | None, str | None, str]] = [
        (app_id, "application.received", received, None, None, "{}")
    ]
    if filed_after is not None:
        events += [
            (app_id, "delivery.completed", received + filed_after, "deliver", "dms", "{}"),
            (app_id, "application.completed", received + filed_after, None, None, "{}"),
        ]
    if dead_at is not None:
        error = {"error": f"Permanent: refused {n}", "error_code": "Permanent"}
        events.append((app_id, "step.dead", dead_at, "deliver", "dms", json.dumps(error)))
    c.executemany(
        "INSERT INTO events (application_id, type, at, step, target, data) VALUES (?,?,?,?,?,?)", events
    )
    task_state = "dead" if dead_at is not None else "done" if filed_after is not None else "pending"
    c.execute(
        "INSERT INTO tasks (application_id, step, target, state, max_attempts, due_at, created_at, "
        "updated_at) VALUES (?,?,?,?,?,?,?,?)",
        (app_id, "deliver", "dms", task_state, 5, received, received, received),
    )


def write(journal: SqliteJournal, fill: Callable[[sqlite3.Connection], None]) -> None:
    with sqlite3.connect(journal.path, isolation_level=None) as c:
        c.execute("BEGIN")
        fill(c)
        c.execute("COMMIT")


async def test_hours_count_and_time_to_filed_is_median_and_p90(journal: SqliteJournal) -> None:
    hour = NOW - 1800 - 2 * HOUR  # the full hour two hours ago

    def fill(c: sqlite3.Connection) -> None:
        for n, taken in enumerate((60.0, 120.0, 600.0)):
            add(c, n, hour + 10 * n, "completed", filed_after=taken)
        add(c, 3, hour + 100, "dead", route="bau", dead_at=hour + HOUR + 5)  # dead in the next hour
        add(c, 4, NOW - 60, "processing")  # in the running hour
        add(c, 5, NOW - 2 * 24 * HOUR, "completed", filed_after=30.0)  # before the window

    write(journal, fill)
    figures = await journal.dashboard_figures(NOW, 24 * 3600)
    assert len(figures.hours) == 24 and figures.hours[-1].start.timestamp() == NOW - 1800
    two_ago, one_ago, running = figures.hours[-3], figures.hours[-2], figures.hours[-1]
    assert (two_ago.received, two_ago.filed, two_ago.dead) == (4, 3, 0)
    assert (two_ago.median_seconds, two_ago.p90_seconds) == (120.0, 600.0)
    assert (one_ago.received, one_ago.filed, one_ago.dead) == (0, 0, 1)
    assert (running.received, running.median_seconds) == (1, None)
    assert sum(h.received for h in figures.hours) == 5
    assert {r.route: r.by_state for r in figures.routes} == {
        "jagd": {"completed": 3, "processing": 1},
        "bau": {"dead": 1},
    }
    dms = figures.targets["dms"]
    assert (dms.done_in_window, dms.failed_in_window, dms.dead, dms.due) == (3, 1, 1, 1)
    assert (dms.last_error_code, dms.last_error) == ("Permanent", "Permanent: refused 3")
    counters = await journal.live_counters(NOW)
    assert counters.by_state == {
        "received": 0,
        "processing": 1,
        "dead": 1,
        "completed": 3,
        "rejected": 0,
        "abandoned": 0,
    }
    assert (counters.received_last_hour, counters.in_flight) == (1, 0)


async def test_every_dashboard_statement_searches_an_index(journal: SqliteJournal) -> None:
    # A full scan of applications, events or tasks grows with the journal's whole history.
    write(journal, lambda c: add(c, 1, NOW - HOUR, "completed", filed_after=5.0))
    statements: list[str] = []
    with contextlib.closing(_connect(journal.path)) as c:

        async def read(op: Callable[[sqlite3.Connection], object]) -> object:
            return op(c)

        c.set_trace_callback(statements.append)
        await queries.figures(read, NOW, 7 * 24 * 3600)
        c.set_trace_callback(None)
        plans = {
            sql: c.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall() for sql in statements if "SELECT" in sql
        }
    assert len(plans) >= 10
    for sql, plan in plans.items():
        for step in (row[3] for row in plan):
            if any(f" {table} " in f" {step} " for table in TABLES):
                assert step.startswith("SEARCH"), f"{step!r} in {sql}"
