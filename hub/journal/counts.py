"""How many applications and steps the journal holds per state (`/metrics`), at a cost that does not grow
with finished history.

Open states (applications received, processing, dead; steps pending, leased, waiting, dead) are counted
exactly from their index ranges: the cost follows the work in flight. Finished states (applications
completed, rejected, abandoned; steps done or abandoned) are the journal's history: they are read from
``final_counts``, which triggers keep in the same transaction as every change of a row's state
(migration 0005, both backends). Both are therefore exact as of the scrape's read snapshot, and an
operator sees the same numbers as a ``GROUP BY`` over the tables would give. The triggers run only when an
application or step enters or leaves a finished state: one upsert of a small row each.
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
_FINAL = "SELECT kind, step, target, state, SUM(n) FROM final_counts GROUP BY kind, step, target, state"


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
