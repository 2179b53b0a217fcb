"""A submission re-sent under a known (source, external_id): the journal's duplicate, conflict and
revision rules, source-independent (hub.resubmission)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub import ChangedResend, content_fingerprint
from hub.journal import Completion, IntakeResult, LeaseLost, SqliteJournal, TaskSpec, TaskState
from hub.models import Application, ApplicationState, Attachment, Event


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    j = SqliteJournal(tmp_path / "journal.db")
    await j.open()
    yield j
    await j.close()


def submission(form: dict[str, object], *, sha: str = "a" * 64) -> Application:
    app = Application(
        source="portal",
        external_id="ext-1",
        service="jagdschein",
        route="all",
        form=form,
        attachments=[Attachment(name="a.pdf", size=1, sha256=sha, blob=f"sha256:{sha}", field="scan")],
        correlations={"portal": "ext-1"},
    )
    app.fingerprint = content_fingerprint(app)
    return app


async def take_in(journal: SqliteJournal, app: Application, on_changed: ChangedResend) -> IntakeResult:
    return await journal.intake(
        app,
        [Event(application_id=app.id, type="application.received")],
        [TaskSpec("map")],
        on_changed=on_changed,
    )


def test_fingerprint_is_the_content_not_its_carriage() -> None:
    a = submission({"b": "2", "a": ["1", "x"]})
    b = submission({"a": ["1", "x"], "b": "2"})  # other order, other id, other time
    b.attachments[0].name = "renamed.pdf"
    assert content_fingerprint(a) == content_fingerprint(b)
    assert content_fingerprint(a) != content_fingerprint(submission({"b": "2", "a": ["x", "1"]}))
    assert content_fingerprint(a) != content_fingerprint(
        submission({"b": "2", "a": ["1", "x"]}, sha="b" * 64)
    )


async def test_a_fingerprint_missing_on_an_old_row_is_computed(journal: SqliteJournal) -> None:
    old = submission({"a": "1"})
    old.fingerprint = None  # stored by a hub from before fingerprints
    first = await take_in(journal, old, ChangedResend.REFUSE)
    again = await take_in(journal, submission({"a": "1"}), ChangedResend.REFUSE)
    assert again.duplicate and not again.conflict and again.application_id == first.application_id


async def test_refused_change_stores_only_the_conflict_event(journal: SqliteJournal) -> None:
    first = await take_in(journal, submission({"a": "1"}), ChangedResend.REFUSE)
    changed = submission({"a": "2"})
    result = await take_in(journal, changed, ChangedResend.REFUSE)
    assert (result.duplicate, result.conflict, result.revision) == (True, True, 1)
    assert [e.type for e in result.events] == ["intake.conflict"]
    stored = await journal.get_application(first.application_id)
    assert stored is not None and stored.form == {"a": "1"}
    assert await journal.get_application(changed.id) is None
    assert [t.step for t in await journal.tasks(first.application_id)] == ["map"]


async def test_revision_archives_the_superseded_one_and_starts_over(
    journal: SqliteJournal, tmp_path: Path
) -> None:
    first = submission({"a": "1"})
    await take_in(journal, first, ChangedResend.REVISION)
    [task] = await journal.claim("worker-1", 1, 30.0, {})  # revision 1 is being worked on
    await journal.complete(task, Completion(tasks=[TaskSpec("deliver", "dms")]))
    [delivering] = await journal.claim("worker-1", 1, 30.0, {})

    changed = submission({"a": "2"}, sha="b" * 64)
    changed.correlations = {}
    result = await take_in(journal, changed, ChangedResend.REVISION)

    assert (result.application_id, result.duplicate, result.conflict, result.revision) == (
        first.id,
        False,
        False,
        2,
    )
    app = await journal.get_application(first.id)
    assert app is not None
    assert (app.revision, app.form, app.attachments[0].sha256) == (2, {"a": "2"}, "b" * 64)
    assert app.received_at == first.received_at and app.correlations == {"portal": "ext-1"}
    summary = await journal.get_summary(first.id)
    assert summary is not None and summary.state == ApplicationState.RECEIVED
    # The steps start over: one pending map task, the old ones are gone...
    assert [(t.step, t.state) for t in await journal.tasks(first.id)] == [("map", TaskState.PENDING)]
    # ...and the worker still delivering revision 1 cannot complete it.
    with pytest.raises(LeaseLost):
        await journal.complete(delivering, Completion())
    types = [e.type for e in await journal.events(first.id)]
    assert types == ["application.received", "application.revised", "application.received"]
    # Revision 1 is kept: its document (blob references included) and its tasks with their results.
    with sqlite3.connect(tmp_path / "journal.db") as db:
        [(revision, doc, tasks)] = db.execute(
            "SELECT revision, doc, tasks FROM application_revisions WHERE application_id=?", (first.id,)
        ).fetchall()
    assert revision == 1
    assert Application.model_validate_json(doc).form == {"a": "1"}
    assert [(t["step"], t["state"]) for t in json.loads(tasks)] == [("map", "done"), ("deliver", "leased")]


async def test_an_abandoned_application_is_not_revised(journal: SqliteJournal) -> None:
    first = await take_in(journal, submission({"a": "1"}), ChangedResend.REVISION)
    await journal.abandon(first.application_id, "admin", "Spam")
    result = await take_in(journal, submission({"a": "2"}), ChangedResend.REVISION)
    assert (result.duplicate, result.conflict, result.revision) == (True, True, 1)
    summary = await journal.get_summary(first.application_id)
    assert summary is not None and summary.state == ApplicationState.ABANDONED
    stored = await journal.get_application(first.application_id)
    assert stored is not None and stored.form == {"a": "1"}
