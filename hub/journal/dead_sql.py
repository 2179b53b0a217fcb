"""Dead letters in the journal: grouping dead steps, selecting them, abandoning in bulk.

Statements run on the journal's threads like those of `hub.journal.lifecycle`. Dead steps are found
through the task indexes that lead with the state (`tasks_claim`, `tasks_due`), and each step's
application by its key, so the grouping reads the dead steps and nothing else, however many tasks and
applications the journal keeps. The error texts are normalised by `hub.deadletters.error_group` when a
step fails and kept beside the text (`tasks.error_group`), so the group a page counts is the group a
replay or abandon selects, on every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hub.actions import Action
from hub.deadletters import DeadGroup, DeadLetters
from hub.journal import operator_sql
from hub.journal.base import Abandoned, ActionRefused, ApplicationFilter, TaskState
from hub.journal.tx import Tx

DEAD = f"state='{TaskState.DEAD}'"
AbandonOne = Callable[[Tx, float, str, str, str], Abandoned]


def step_clause(f: ApplicationFilter) -> tuple[str, tuple[Any, ...]]:
    """The condition on a dead task that the filter's dead-step fields make ("" if none)."""
    clauses: list[str] = []
    params: list[Any] = []
    if f.target is not None:
        clauses.append("target=?")
        params.append(f.target)
    if f.error_code is not None:
        clauses.append("COALESCE(error_code, '')=?")
        params.append(f.error_code)
    if f.error_group is not None:
        clauses.append("COALESCE(error_group, '')=?")
        params.append(f.error_group)
    if f.dead_from is not None:
        clauses.append("updated_at>=?")
        params.append(f.dead_from.timestamp())
    if f.dead_to is not None:
        clauses.append("updated_at<?")
        params.append(f.dead_to.timestamp())
    return " AND ".join(clauses), tuple(params)


def application_clause(f: ApplicationFilter) -> tuple[str, tuple[Any, ...]]:
    """The condition on an application: it has a dead step the filter selects ("" if no such field)."""
    steps, params = step_clause(f)
    if not steps:
        return "", ()
    return f"id IN (SELECT application_id FROM tasks WHERE {DEAD} AND {steps})", params


def groups(
    c: Tx,
    where: ApplicationFilter,
    applications: tuple[str, tuple[Any, ...]],
    by_text: bool,
    limit: int,
) -> DeadLetters:
    """Dead steps grouped, largest groups first; `applications`: the filter's application-level
    `WHERE` (route, service, ...) as `hub.journal.lifecycle` builds it, "" for none."""
    steps, params = step_clause(where)
    conditions = [DEAD, *([steps] if steps else [])]
    app_sql, app_params = applications
    if app_sql:
        # Correlated: each dead step looks its application up by key (no scan of all applications).
        conditions.append(f"EXISTS (SELECT 1 FROM applications {app_sql} AND id=tasks.application_id)")
    text = "COALESCE(error_group, '')" if by_text else "''"
    selected = f"FROM tasks WHERE {' AND '.join(conditions)}"
    all_params = (*params, *app_params)
    rows = c.execute(
        f"SELECT target, COALESCE(error_code, ''), {text} AS grp, COUNT(*), "
        f"COUNT(DISTINCT application_id), MIN(updated_at), MAX(updated_at) {selected} "
        "GROUP BY target, COALESCE(error_code, ''), grp ORDER BY COUNT(*) DESC, target, 2, grp LIMIT ?",
        (*all_params, limit + 1),
    ).fetchall()
    total_steps, total_applications = c.execute(
        f"SELECT COUNT(*), COUNT(DISTINCT application_id) {selected}", all_params
    ).fetchone()
    return DeadLetters(
        groups=[
            DeadGroup(
                target=r[0],
                error_code=r[1] or None,
                error_group=r[2] if by_text else None,
                steps=r[3],
                applications=r[4],
                oldest=datetime.fromtimestamp(r[5], UTC),
                newest=datetime.fromtimestamp(r[6], UTC),
            )
            for r in rows[:limit]
        ],
        steps=total_steps,
        applications=total_applications,
        more=len(rows) > limit,
    )


def abandon_all(
    c: Tx,
    now: float,
    ids: list[str],
    subject: str,
    operator: str,
    reason: str,
    abandon_one: AbandonOne,
) -> list[Abandoned]:
    """Abandon each of `ids` with `abandon_one` (its events, no audit row), then one audit row."""
    done: list[Abandoned] = []
    for app_id in ids:
        try:
            done.append(abandon_one(c, now, app_id, operator, reason))
        except ActionRefused:
            continue  # a step of it is running: it is abandoned alone once it ended
    if done:
        operator_sql.record(c, now, operator, Action.ABANDONED, subject, len(done), reason)
    return done
