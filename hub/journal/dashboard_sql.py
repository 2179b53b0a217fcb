"""The dashboard's figures in the journal (`hub.dashboard`): statements on the journal's reader thread.

Every statement is bounded: by an index range over the shown window (events by type and time,
applications by receipt), or by what is open now (tasks not done, applications not final), never by
the journal's whole history, so a journal of a million finished applications answers as fast as a new
one. Each statement says which index it runs on.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from hub.dashboard import HOUR, HourFigures, JournalFigures, LiveCounters, RouteFigures, TargetWork
from hub.events import OPERATOR_ABANDONED
from hub.held import HeldState
from hub.journal import purge_sql
from hub.journal.base import TaskState
from hub.journal.tx import Tx
from hub.models import ApplicationState

COMPLETED, REJECTED, DEAD_STEP = "application.completed", "application.rejected", "step.dead"
FAILED_STEP, DELIVERED = "step.failed", "delivery.completed"
DAY = 24 * HOUR
# Open applications are counted whole; finished ones by the event that finished them, over a day.
OPEN_STATES = (ApplicationState.RECEIVED, ApplicationState.PROCESSING, ApplicationState.DEAD)
FINISHING_EVENTS = {
    ApplicationState.COMPLETED: COMPLETED,
    ApplicationState.REJECTED: REJECTED,
    ApplicationState.ABANDONED: OPERATOR_ABANDONED,
}
OPEN_TASK_STATES = (TaskState.PENDING, TaskState.LEASED, TaskState.WAITING, TaskState.DEAD)
T = TypeVar("T")


def counters(c: Tx, now: float) -> LiveCounters:
    """Open applications, applications finished in the last day, steps running, intake of the last hour."""
    by_state: dict[str, int] = {}
    for state in OPEN_STATES:
        # applications_state (state, received_at): covering; open applications are few
        by_state[state] = c.execute("SELECT COUNT(*) FROM applications WHERE state=?", (state,)).fetchone()[0]
    for state, event in FINISHING_EVENTS.items():
        # events_type_at: covering, one day of the type
        by_state[state] = c.execute(
            "SELECT COUNT(*) FROM events WHERE type=? AND at>=?", (event, now - DAY)
        ).fetchone()[0]
    # tasks_due (state, due_at): covering
    in_flight = c.execute("SELECT COUNT(*) FROM tasks WHERE state=?", (TaskState.LEASED,)).fetchone()[0]
    # applications_received (received_at): covering
    received = c.execute("SELECT COUNT(*) FROM applications WHERE received_at>=?", (now - HOUR,)).fetchone()[
        0
    ]
    # held_messages_state (state, source): covering
    quarantined = c.execute(
        "SELECT COUNT(*) FROM held_messages WHERE state=?", (HeldState.QUARANTINED,)
    ).fetchone()[0]
    return LiveCounters(
        by_state=by_state, in_flight=in_flight, received_last_hour=received, quarantined=quarantined
    )


Read = Callable[[Callable[[Tx], T]], Awaitable[T]]


@dataclass(frozen=True)
class Window:
    """The shown window in whole hours, the last one running."""

    start: float
    until: float
    hours: int

    @classmethod
    def up_to(cls, now: float, seconds: int) -> Window:
        """The window of `seconds` (whole hours) whose last hour contains `now`."""
        hours = max(1, seconds // HOUR)
        start = (math.floor(now / HOUR) - hours + 1) * HOUR
        return cls(start, start + hours * HOUR, hours)


async def figures(read: Read[Any], now: float, window_seconds: int) -> JournalFigures:
    """The dashboard's figures over `window_seconds` up to `now`, in whole hours (the last one running).

    Each part is its own job on the journal's reader thread (`read`): a worker's read waits for one part,
    never for the whole dashboard.
    """
    window = Window.up_to(now, window_seconds)
    hours: list[HourFigures] = await read(lambda c: _hours(c, window))
    routes: list[RouteFigures] = await read(lambda c: _routes(c, window))
    targets: dict[str, TargetWork] = await read(lambda c: _targets(c, now, window))
    live: LiveCounters = await read(lambda c: counters(c, now))
    purged: purge_sql.PurgeTotals = await read(purge_sql.totals)
    by_state: dict[str, int] = defaultdict(int)
    for route in routes:
        for state, n in route.by_state.items():
            by_state[state] += n
    return JournalFigures(
        counters=live,
        received_in_window_by_state=dict(by_state),
        hours=hours,
        routes=routes,
        targets=targets,
        journal_bytes=await read(lambda c: c.dialect.storage_bytes(c)),
        purged_applications=purged.applications,
        purged_blobs=purged.blobs,
        purged_bytes=purged.size,
        last_purge_at=datetime.fromtimestamp(purged.last_run, UTC) if purged.last_run else None,
    )


def _hours(c: Tx, window: Window) -> list[HourFigures]:
    start, until = window.start, window.until
    series = [HourFigures(start=datetime.fromtimestamp(start + i * HOUR, UTC)) for i in range(window.hours)]
    bucket = c.dialect.hour_bucket
    # applications_received (received_at): covering
    for h, n in c.execute(
        f"SELECT {bucket('received_at')}, COUNT(*) FROM applications "
        "WHERE received_at>=? AND received_at<? GROUP BY 1",
        (start, start, until),
    ):
        series[h].received = n
    # events_type_at: the window's step.dead events, each looked up for its application
    for h, n in c.execute(
        f"SELECT {bucket('at')}, COUNT(DISTINCT application_id) FROM events "
        "WHERE type=? AND at>=? AND at<? GROUP BY 1",
        (start, DEAD_STEP, start, until),
    ):
        series[h].dead = n
    # events_type_at for the window's completions, then each application by its primary key (the
    # window's events are few, the applications many)
    durations: dict[int, list[float]] = defaultdict(list)
    for at, received_at in c.execute(
        "SELECT e.at, a.received_at FROM events e JOIN applications a ON a.id=e.application_id "
        "WHERE e.type=? AND e.at>=? AND e.at<?",
        (COMPLETED, start, until),
    ):
        durations[int((at - start) // HOUR)].append(max(0.0, at - received_at))
    for h, taken in durations.items():
        taken.sort()
        series[h].filed = len(taken)
        series[h].median_seconds = _quantile(taken, 0.5)
        series[h].p90_seconds = _quantile(taken, 0.9)
    return series


def _routes(c: Tx, window: Window) -> list[RouteFigures]:
    by_route: dict[str | None, dict[str, int]] = defaultdict(dict)
    # applications_received (received_at), each row looked up for its route and state
    for route, state, n in c.execute(
        "SELECT route, state, COUNT(*) FROM applications WHERE received_at>=? AND received_at<? "
        "GROUP BY route, state",
        (window.start, window.until),
    ):
        by_route[route][state] = n
    routes = [RouteFigures(route=r, by_state=s) for r, s in by_route.items()]
    routes.sort(key=lambda r: (-r.total, r.route or ""))
    return routes


def _targets(c: Tx, now: float, window: Window) -> dict[str, TargetWork]:
    start, until = window.start, window.until
    work: dict[str, TargetWork] = defaultdict(TargetWork)
    marks = ",".join("?" * len(OPEN_TASK_STATES))
    # tasks_claim (state, target, due_at, id): covering; only the open steps, never the finished history
    for target, state, n, due in c.execute(
        f"SELECT target, state, COUNT(*), SUM(CASE WHEN due_at<=? THEN 1 ELSE 0 END) FROM tasks "
        f"WHERE state IN ({marks}) "
        "GROUP BY target, state",
        (now, *OPEN_TASK_STATES),
    ):
        if not target:
            continue  # the hub's own steps (identity, map) have no target
        figures = work[target]
        if state == TaskState.LEASED:
            figures.in_flight = n
        elif state == TaskState.DEAD:
            figures.dead = n
        elif state == TaskState.PENDING:
            figures.due += due
            figures.waiting += n - due
        else:
            figures.waiting += n
    # events_type_at: the window's deliveries, covering
    for target, n in c.execute(
        "SELECT target, COUNT(*) FROM events WHERE type=? AND at>=? AND at<? GROUP BY target",
        (DELIVERED, start, until),
    ):
        if target:
            work[target].done_in_window = n
    # events_type_at: the window's failures, then the last one of each target for its error
    failures = c.execute(
        "SELECT target, COUNT(*), MAX(at) FROM events WHERE type IN (?,?) AND at>=? AND at<? GROUP BY target",
        (FAILED_STEP, DEAD_STEP, start, until),
    ).fetchall()
    for target, n, at in failures:
        if not target:
            continue
        (data,) = c.execute(
            "SELECT data FROM events WHERE type IN (?,?) AND at=? AND target=? ORDER BY id DESC LIMIT 1",
            (FAILED_STEP, DEAD_STEP, at, target),
        ).fetchone()
        error = json.loads(data)
        figures = work[target]
        figures.failed_in_window = n
        figures.last_error_at = datetime.fromtimestamp(at, UTC)
        figures.last_error_code = error.get("error_code")
        figures.last_error = error.get("error")
    return dict(work)


def _quantile(ordered: list[float], q: float) -> float:
    # Nearest rank: a duration one of the applications really took.
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
