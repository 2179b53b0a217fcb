"""The answers store forgets purged applications: rows gone, their blobs handed back for deletion."""

from __future__ import annotations

from pathlib import Path

from hub_bauportal_nrw import AnswerStore, PreparedAnswer


def prepared(application_id: str, message_type: str, blob: str) -> PreparedAnswer:
    return PreparedAnswer(
        application_id=application_id,
        message_type=message_type,
        xta_message_id=f"xta-{application_id}-{message_type}",
        xbau_uuid=f"uuid-{application_id}-{message_type}",
        blob=blob,
        size=10,
        sent=False,
    )


async def test_forget_drops_the_purged_applications_answers_only(tmp_path: Path) -> None:
    store = AnswerStore(tmp_path / "answers.sqlite")
    a, b, c = ("sha256:" + d * 64 for d in "abc")
    await store.prepare(prepared("app-1", "1120", a))
    await store.prepare(prepared("app-1", "1170/x", b))
    await store.prepare(prepared("app-2", "1120", c))
    await store.mark_sent("app-1", "1120")

    assert await store.forget(["app-1"]) == {a, b}
    assert await store.blobs() == {c}
    assert await store.get("app-1", "1120") is None and await store.get("app-2", "1120") is not None
    assert await store.forget(["app-1"]) == set()  # again: nothing left, nothing fails
