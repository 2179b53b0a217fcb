"""How many applications and steps the journal holds per state (`/metrics`), at a cost that does not grow
with finished history.

Open states (applications received, processing, dead; steps pending, leased, waiting, dead) are counted
exactly from their index ranges: the cost follows the work in flight. Finished states (applications
completed, rejected, abandoned; steps done or abandoned) are the journal's history: triggers count them
in the same transaction as every change of a row's state (migration 0005, both backends), only when a
row enters or leaves a finished state. On SQLite (one writer) they add to ``final_counts`` in place. On
PostgreSQL they append a row to ``final_count_deltas``, so that concurrent transactions of several hub
processes never wait on a counter row; a scrape folds those deltas into ``final_counts`` first (`fold`,
one short write transaction, only when there are any). A count is ``final_counts`` plus what is not
folded yet, read in one statement. What an operator sees is exact, each count as of the statement that
reads it: the same numbers as the ``GROUP BY`` over the whole tables that this replaces (1.5 s of CPU per
scrape with a million finished applications; now a few milliseconds, `bench.claim`).
"""

from __future__ import annotations

from hub.journal.base import PURGEABLE_STATES as FINAL_APPLICATION_STATES
from hub.journal.base import TaskState
from hub.journal.purge_sql import CLOSED_TASK_STATES as FINAL_TASK_STATES
from hub.journal.tx import Tx
from hub.models import ApplicationState

# Every other state is open: a state added later is counted exactly from the table until it is final.
OPEN_APPLICATION_STATES = tuple(s.value for s in ApplicationState if s not in FINAL_APPLICATION_STATES)
OPEN_TASK_STATES = tuple(
    value for name, value in vars(TaskState).items() if name.isupper() and value not in FINAL_TASK_STATES
)
_OPEN_APPLICATIONS = (
    "SELECT state, COUNT(*) FROM applications "
    f"WHERE state IN ({','.join('?' * len(OPEN_APPLICATION_STATES))}) GROUP BY state"
)
_OPEN_TASKS = (
    "SELECT step, target, state, COUNT(*) FROM tasks "
    f"WHERE state IN ({','.join('?' * len(OPEN_TASK_STATES))}) GROUP BY step, target, state"
)
_FINAL = (
    "SELECT kind, step, target, state, SUM(n) FROM (SELECT kind, step, target, state, n FROM final_counts "
    "UNION ALL SELECT kind, step, target, state, n FROM final_count_deltas) AS counted "
    "GROUP BY kind, step, target, state"
)
_FOLD = (
    "INSERT INTO final_counts (kind, step, target, state, n) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (kind, step, target, state) DO UPDATE SET n = final_counts.n + excluded.n"
)


def unfolded(c: Tx) -> bool:
    """Whether PostgreSQL's triggers left deltas to fold (SQLite's never do)."""
    return c.execute("SELECT 1 FROM final_count_deltas LIMIT 1").fetchone() is not None


def fold(c: Tx) -> None:
    """Move the deltas into `final_counts`: each deleted row is added once, also when two processes fold
    at once (the second one's DELETE skips what the first deleted); rows in order, so that two folds
    lock the counter rows in the same order."""
    sums: dict[tuple[str, str, str, str], int] = {}
    for kind, step, target, state, n in c.execute(
        "DELETE FROM final_count_deltas RETURNING kind, step, target, state, n"
    ).fetchall():
        sums[(kind, step, target, state)] = sums.get((kind, step, target, state), 0) + int(n)
    c.executemany(_FOLD, [(*key, n) for key, n in sorted(sums.items())])


def application_and_task_counts(c: Tx) -> tuple[dict[str, int], dict[tuple[str, str, str], int]]:
    """Applications per state and steps per (step, target, state); states without any are left out."""
    applications: dict[str, int] = dict(c.execute(_OPEN_APPLICATIONS, OPEN_APPLICATION_STATES).fetchall())
    tasks: dict[tuple[str, str, str], int] = {
        (step, target, state): n for step, target, state, n in c.execute(_OPEN_TASKS, OPEN_TASK_STATES)
    }
    for kind, step, target, state, n in c.execute(_FINAL):
        if n <= 0:  # every row of this state has left it again (a revision, a replay, a new answer)
            continue
        if kind == "application":
            applications[state] = int(n)
        else:
            tasks[(step, target, state)] = int(n)
    return applications, tasks
