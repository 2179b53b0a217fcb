"""Dead letters in the journal: error texts normalised into groups, the grouping read by index, bulk
actions on dead steps, and the audit trail by date range."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.actions import Action
from hub.deadletters import error_group
from hub.journal import ApplicationFilter, SqliteJournal, TaskSpec, TaskState, dead_sql
from hub.journal.lifecycle import _where
from hub.journal.sqlite import _connect
from hub.models import Application, ApplicationState, Event

NOW = 1_780_000_000.0


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Permanent: record 4711 refused", "Permanent: record 4712 refused"),
        (
            "Permanent: no case for app_0123456789abcdef0123456789abcdef",
            "Permanent: no case for app_fedcba9876543210fedcba9876543210",
        ),
        (
            "Retryable: message 550e8400-e29b-41d4-a716-446655440000 timed out",
            "Retryable: message 123e4567-e89b-12d3-a456-426614174000 timed out",
        ),
        ("Permanent: Feld Name „Erika Mustermann“ zu lang", "Permanent: Feld Name „Max Muster“ zu lang"),
        ("Permanent: field 'Jürgen Groß' invalid", 'Permanent: field "Hans"   invalid'),
    ],
)
def test_ids_numbers_and_quoted_values_do_not_split_a_group(first: str, second: str) -> None:
    assert error_group(first) == error_group(second)


def test_different_errors_stay_different_groups() -> None:
    assert error_group("Permanent: record 1 refused") != error_group("Permanent: record 1 unknown")
    assert error_group(None) == "" and error_group("x" * 1000) == "x" * 300
    # Cut where a space falls, the group ends without it: a form's field (stripped) names it exactly.
    assert error_group("x" * 299 + " yz") == "x" * 299


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    clock = iter(NOW + i for i in range(10_000))
    opened = SqliteJournal(tmp_path / "journal.db", clock=lambda: next(clock))
    await opened.open()
    yield opened
    await opened.close()


async def dead(journal: SqliteJournal, ident: str, targets: dict[str, str], route: str = "r") -> str:
    """An application whose step against each target went dead with the given error text."""
    app = Application(source="portal", external_id=ident, service="bau", route=route)
    specs = [TaskSpec(step="deliver", target=t) for t in targets]
    result = await journal.intake(app, [Event(application_id=app.id, type="received")], specs)
    for task in await journal.claim("worker", 10, 30.0, {}):
        text = targets[task.target]
        await journal.fail(task, text, None, error_code=text.split(":")[0])
    return result.application_id


async def test_groups_count_steps_and_applications_by_target_and_text(journal: SqliteJournal) -> None:
    await dead(journal, "1", {"enaio": "Permanent: record 1 refused", "zbp": "Retryable: 503"})
    await dead(journal, "2", {"enaio": "Permanent: record 2 refused"})
    await dead(journal, "3", {"enaio": "Permanent: quota exceeded"}, route="other")
    found = await journal.dead_letters(ApplicationFilter(state=ApplicationState.DEAD), True, 10)
    assert [(g.target, g.error_code, g.error_group, g.steps, g.applications) for g in found.groups] == [
        ("enaio", "Permanent", "Permanent: record # refused", 2, 2),
        ("enaio", "Permanent", "Permanent: quota exceeded", 1, 1),
        ("zbp", "Retryable", "Retryable: #", 1, 1),
    ]
    assert (found.steps, found.applications, found.more) == (4, 3, False)
    by_code = await journal.dead_letters(ApplicationFilter(route="r"), False, 1)
    assert [(g.target, g.error_group, g.steps) for g in by_code.groups] == [("enaio", None, 2)]
    assert by_code.more and by_code.steps == 3


async def test_a_replay_of_one_target_replays_only_its_dead_steps(journal: SqliteJournal) -> None:
    app_id = await dead(journal, "1", {"enaio": "Permanent: a", "zbp": "Permanent: b"})
    where = ApplicationFilter(target="enaio", error_group="Permanent: a")
    assert await journal.count_replayable(where) == 1
    assert await journal.replay(where, "Otto", "repariert") == [app_id]
    states = {t.target: t.state for t in await journal.tasks(app_id)}
    assert states == {"enaio": TaskState.PENDING, "zbp": TaskState.DEAD}
    # Its other dead step keeps it dead (and selectable for the next replay).
    summary = await journal.get_summary(app_id)
    assert summary is not None and summary.state == ApplicationState.DEAD
    assert await journal.count_replayable(ApplicationFilter(target="zbp")) == 1


async def test_bulk_abandon_writes_one_audit_row_and_an_event_each(journal: SqliteJournal) -> None:
    ids = [await dead(journal, str(i), {"enaio": f"Permanent: record {i} refused"}) for i in range(3)]
    other = await dead(journal, "x", {"zbp": "Permanent: nope"})
    where = ApplicationFilter(target="enaio", error_code="Permanent")
    assert await journal.count_dead(where) == 3
    done = await journal.abandon_bulk(where, "Anna", "veraltet")
    assert sorted(d.application_id for d in done) == sorted(ids)
    [row] = await journal.operator_actions(Action.ABANDONED)
    assert (row.operator, row.reason, row.count) == ("Anna", "veraltet", 3)
    assert row.subject == "target=enaio error_code=Permanent"
    events = [e for e in await journal.events(ids[0]) if e.type == "operator.abandoned"]
    assert events[0].data["operator"] == "Anna"
    summary = await journal.get_summary(other)
    assert summary is not None and summary.state == ApplicationState.DEAD


async def test_the_audit_subject_names_an_error_group_by_digest_not_by_text(journal: SqliteJournal) -> None:
    await dead(journal, "1", {"enaio": "Permanent: Feld Name Mustermann zu lang"})
    group = error_group("Permanent: Feld Name Mustermann zu lang")
    await journal.replay(ApplicationFilter(error_group=group), "Otto", "ok")
    [row] = await journal.operator_actions(Action.REPLAYED)
    assert "Mustermann" not in row.subject and row.subject.startswith("error=")


async def test_a_dead_date_range_selects_by_when_the_step_went_dead(journal: SqliteJournal) -> None:
    await dead(journal, "1", {"enaio": "Permanent: a"})
    died = datetime.fromtimestamp(NOW, UTC)
    assert await journal.count_dead(ApplicationFilter(dead_from=died, dead_to=died + timedelta(days=1))) == 1
    assert await journal.count_dead(ApplicationFilter(dead_to=died - timedelta(days=1))) == 0


async def test_the_grouping_reads_dead_steps_by_index(journal: SqliteJournal, tmp_path: Path) -> None:
    connection = _connect(str(tmp_path / "journal.db"))
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    for where in (
        ApplicationFilter(state=ApplicationState.DEAD),
        ApplicationFilter(state=ApplicationState.DEAD, route="r", error_code="Permanent"),
    ):
        dead_sql.groups(connection, where, _where(ApplicationFilter(route=where.route)), True, 10)
    for statement in statements:
        plan = " | ".join(r[3] for r in connection.execute("EXPLAIN QUERY PLAN " + statement))
        assert "SCAN tasks" not in plan and "SCAN applications" not in plan, plan
    connection.close()


async def test_the_audit_trail_by_date_range_and_below_a_row(journal: SqliteJournal) -> None:
    for target in ("a", "b", "c"):
        await journal.pause_target(target, "Otto", "Wartung")
    at = datetime.fromtimestamp(NOW, UTC)
    rows = await journal.operator_actions(since=at, until=at + timedelta(hours=1))
    assert [r.subject for r in rows] == ["c", "b", "a"]
    assert await journal.operator_actions(until=at) == []
    assert [r.subject for r in await journal.operator_actions(before_id=rows[0].id)] == ["b", "a"]
