"""The journal's side of the return channel: answers, the correlations index, older journals migrated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hub.answers import Answer, UnknownApplication
from hub.journal import (
    AnswerEffects,
    ApplicationFilter,
    ApplicationPatch,
    Completion,
    SqliteJournal,
    TaskSpec,
)
from hub.models import AnswerStatus, Application, ApplicationState, Event


def application(external_id: str, **correlations: str) -> Application:
    return Application(source="web", external_id=external_id, service="s", correlations=correlations)


def no_effects(app: Application, state: ApplicationState, row: int) -> AnswerEffects:
    return AnswerEffects()


async def delivered(journal: SqliteJournal, app: Application, target: str, **correlations: str) -> None:
    """Take the application in and finish a delivery to `target` that records `correlations`."""
    await journal.intake(app, [], [TaskSpec(step="deliver", target=target)])
    [task] = await journal.claim("w", 1, 30, {})
    patch = ApplicationPatch(correlations={f"{target}.{k}": v for k, v in correlations.items()})
    await journal.complete(task, Completion(patch=patch))


async def test_answer_found_by_reference_among_the_connectors_correlations(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    await journal.open()
    try:
        app = application("a", **{"other.case": "R-1"})
        await delivered(journal, app, "fv", case="R-1")
        answer = Answer(answer_id="1", reference="R-1", status=AnswerStatus.ACCEPTED)
        stored = await journal.store_answer("fv", answer, no_effects)
        assert (stored.application_id, stored.duplicate) == (app.id, False)
        again = await journal.store_answer("fv", answer, no_effects)
        assert (again.application_id, again.duplicate, again.answer_row) == (app.id, True, stored.answer_row)
        # The same reference through a connector the application was never delivered to: unknown.
        with pytest.raises(UnknownApplication):
            await journal.store_answer("other", answer, no_effects)
        assert [a.connector for a in await journal.answers(app.id)] == ["fv"]
    finally:
        await journal.close()


async def test_a_reference_two_applications_share_is_refused(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    await journal.open()
    try:
        for name in ("a", "b"):
            await delivered(journal, application(name), "fv", case="SAME")
        answer = Answer(answer_id="1", reference="SAME", status=AnswerStatus.ACCEPTED)
        with pytest.raises(UnknownApplication, match="ambiguous"):
            await journal.store_answer("fv", answer, no_effects)
    finally:
        await journal.close()


async def test_the_effects_are_stored_with_the_answer_or_not_at_all(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    await journal.open()
    try:
        app = application("a")
        await delivered(journal, app, "fv", case="R-2")

        def broken(app: Application, state: ApplicationState, row: int) -> AnswerEffects:
            raise ValueError("the plan failed")

        answer = Answer(answer_id="1", reference="R-2", status=AnswerStatus.DECIDED)
        with pytest.raises(ValueError):
            await journal.store_answer("fv", answer, broken)
        assert await journal.answers(app.id) == []

        def effects(app: Application, state: ApplicationState, row: int) -> AnswerEffects:
            return AnswerEffects(
                events=[Event(application_id=app.id, type="answer.received")],
                tasks=[TaskSpec(step="answer-file", target="efile", subject=str(row))],
                state=ApplicationState.PROCESSING,
            )

        stored = await journal.store_answer("fv", answer, effects)
        second = Answer(answer_id="2", reference="R-2", status=AnswerStatus.DECIDED)
        other = await journal.store_answer("fv", second, effects)
        tasks = [(t.step, t.subject) for t in await journal.tasks(app.id) if t.step == "answer-file"]
        assert tasks == [("answer-file", str(stored.answer_row)), ("answer-file", str(other.answer_row))]
        assert (await journal.get_summary(app.id)).state == ApplicationState.PROCESSING  # type: ignore[union-attr]
    finally:
        await journal.close()


async def test_answer_steps_wait_for_the_applications_own_steps(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    await journal.open()
    try:
        app = application("a")
        await journal.intake(app, [], [TaskSpec(step="deliver", target="fv"), TaskSpec("notify", "mail")])
        deliver, notify = await journal.claim("w", 2, 30, {})
        await journal.complete(deliver, Completion(patch=ApplicationPatch(correlations={"fv": "R-3"})))

        def effects(app: Application, state: ApplicationState, row: int) -> AnswerEffects:
            tasks = [TaskSpec(step="answer-file", target="efile", subject=str(row))]
            return AnswerEffects(tasks=tasks, state=ApplicationState.PROCESSING)

        # The receipt is still being sent: the answer's step waits (never claimed) ...
        answer = Answer(answer_id="1", reference="R-3", status=AnswerStatus.ACCEPTED)
        await journal.store_answer("fv", answer, effects)
        assert await journal.claim("w", 10, 30, {}) == []
        # ... until the application's last own step is done; then it is due, the application processing.
        await journal.complete(notify, Completion(state=ApplicationState.COMPLETED))
        [filing] = await journal.claim("w", 10, 30, {})
        assert (filing.step, filing.target) == ("answer-file", "efile")
        assert (await journal.get_summary(app.id)).state == ApplicationState.PROCESSING  # type: ignore[union-attr]
        # Afterwards (no own step left) an answer's steps are due at once.
        await journal.complete(filing, Completion())
        await journal.store_answer("fv", answer.model_copy(update={"answer_id": "2"}), effects)
        assert [t.subject for t in await journal.claim("w", 10, 30, {})] == ["2"]
    finally:
        await journal.close()


async def test_any_id_is_found_by_index(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    await journal.open()
    try:
        app = application("ext-1")
        await delivered(journal, app, "enaio", akte="4711", documents="12,13,14")
        await delivered(journal, application("ext-2"), "enaio", akte="4712", documents="15")
        for any_id in (app.id, "ext-1", "4711", "13", "12,13,14"):
            found = await journal.list_applications(ApplicationFilter(find=any_id))
            assert [a.id for a in found] == [app.id], any_id
        assert await journal.list_applications(ApplicationFilter(find="1")) == []  # exact, not a substring
        # The id a Fachverfahren gave its answer (an event id, a status message's) finds it too.
        await delivered(journal, application("ext-3"), "fv", case="R-3")
        answer = Answer(answer_id="evt-2026-77", reference="R-3", status=AnswerStatus.ACCEPTED)
        stored = await journal.store_answer("fv", answer, no_effects)
        found = await journal.list_applications(ApplicationFilter(find="evt-2026-77"))
        assert [a.id for a in found] == [stored.application_id]
    finally:
        await journal.close()
    conn = sqlite3.connect(tmp_path / "j.db")
    plan = " ".join(
        str(r)
        for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM applications WHERE id=? OR external_id=? OR file_number=? "
            "OR id IN (SELECT application_id FROM correlations WHERE value=?) "
            "OR id IN (SELECT application_id FROM answers WHERE answer_id=?)",
            ("x",) * 5,
        )
    )
    conn.close()
    assert "SCAN applications" not in plan and "correlations_value" in plan, plan
    assert "SCAN answers" not in plan and "answers_answer_id" in plan, plan


async def test_a_journal_from_before_answers_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    journal = SqliteJournal(path)
    await journal.open()
    app = application("old-1")
    await delivered(journal, app, "enaio", akte="4711")
    await journal.close()
    # Make it look like a journal of the release before: no task subject, no correlations index.
    conn = sqlite3.connect(path)
    later = ("subject", "error_group")
    columns = [r[1] for r in conn.execute("PRAGMA table_info(tasks)") if r[1] not in later]
    conn.executescript(
        f"CREATE TABLE old_tasks AS SELECT {', '.join(columns)} FROM tasks; DROP TABLE tasks; "
        "ALTER TABLE old_tasks RENAME TO tasks; DROP TABLE correlations; DROP TABLE task_targets; "
        "DROP TABLE leases; "
        "DELETE FROM meta WHERE key='correlations_indexed'; "
        "UPDATE meta SET value='1' WHERE key='schema_version';"
    )
    conn.close()

    journal = SqliteJournal(path)
    await journal.open()
    try:
        [task] = await journal.tasks(app.id)
        assert (task.step, task.target, task.state, task.subject) == ("deliver", "enaio", "done", "")
        found = await journal.list_applications(ApplicationFilter(find="4711"))
        assert [a.id for a in found] == [app.id]
        # Two answer tasks of one step and target now live side by side.
        await journal.intake(
            application("new-1"),
            [],
            [
                TaskSpec(step="answer-file", target="e", subject="1"),
                TaskSpec(step="answer-file", target="e", subject="2"),
            ],
        )
        assert len(await journal.claim("w", 10, 30, {})) == 2
    finally:
        await journal.close()
