"""One Aktenzeichen per application, decided once in the journal; the sequence has no gaps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from hub.journal import FileNumberSequence, SqliteJournal
from hub.models import Application

SEQUENCE = FileNumberSequence("63-{year}-{seq:05d}", "2026", lambda seq: f"63-2026-{seq:05d}")


@pytest_asyncio.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    opened = SqliteJournal(tmp_path / "journal.db")
    await opened.open()
    yield opened
    await opened.close()


async def taken_in(journal: SqliteJournal, external_id: str) -> str:
    app = Application(source="test", external_id=external_id, service="jagdschein", route="r")
    await journal.intake(app, [], [])
    return app.id


async def test_a_retried_decision_keeps_the_number_and_draws_none(journal: SqliteJournal) -> None:
    first = await taken_in(journal, "e-1")
    assert await journal.assign_file_number(first, SEQUENCE) == "63-2026-00001"
    assert await journal.assign_file_number(first, SEQUENCE) == "63-2026-00001"  # the step ran again
    stored = await journal.get_application(first)
    summary = await journal.get_summary(first)
    assert stored is not None and summary is not None
    assert stored.file_number == summary.file_number == "63-2026-00001"
    second = await taken_in(journal, "e-2")
    assert await journal.assign_file_number(second, SEQUENCE) == "63-2026-00002"


async def test_an_existing_akte_s_number_wins_and_is_reused_for_the_same_akte(journal: SqliteJournal) -> None:
    found = await taken_in(journal, "e-1")
    assert await journal.assign_file_number(found, SEQUENCE, found="63-2019-00815", akte_key="a") == (
        "63-2019-00815"
    )
    # The e-file has not filed it yet, so a lookup finds nothing: the journal remembers the Akte's number.
    twin = await taken_in(journal, "e-2")
    assert await journal.assign_file_number(twin, SEQUENCE, akte_key="a") == "63-2019-00815"
    new = await taken_in(journal, "e-3")
    assert (
        await journal.assign_file_number(new, SEQUENCE, akte_key="b") == "63-2026-00001"
    )  # none drawn before
    # The e-file's own number outranks what the journal gave the Akte.
    renumbered = await taken_in(journal, "e-4")
    assert await journal.assign_file_number(renumbered, SEQUENCE, found="63-2020-00001", akte_key="b") == (
        "63-2020-00001"
    )
    later = await taken_in(journal, "e-5")
    assert await journal.assign_file_number(later, SEQUENCE, akte_key="b") == "63-2020-00001"
    assert await journal.assign_file_number(await taken_in(journal, "e-6"), None) is None
