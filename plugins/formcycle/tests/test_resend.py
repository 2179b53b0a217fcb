"""A FormCycle process sent again under its id: same content, changed content refused or revised."""

from __future__ import annotations

from typing import Any

from test_formcycle import JPEG, PDF, count, formdata, send, sha, start, stored

from hub import ApplicationState
from hub.testing import RunningHub
from hub.testing.fakes import RecordingSink


def submission(vorname: str, scan: bytes = PDF, vorgang_id: str = "fc-r-1") -> Any:
    return formdata(
        [("vorgang_id", vorgang_id), ("vorname", vorname)],
        [("ausweis", "ausweis.pdf", scan, "application/pdf")],
    )


async def timeline(running: RunningHub, app_id: str) -> list[str]:
    return [e.type for e in await running.journal.events(app_id)]


def metric(running: RunningHub, action: str) -> float:
    value = running.hub.metrics.registry.get_sample_value(
        "aktenhub_intake_changed_resends_total", {"source": "formcycle", "action": action}
    )
    return value or 0.0


async def test_same_content_again_is_a_duplicate(hub_factory: Any) -> None:
    running = await start(hub_factory)
    status, first = await send(running, submission("Jürgen"))
    assert status == 202, first
    status, again = await send(running, submission("Jürgen"))  # new boundary, same content
    assert (status, again) == (200, {"application_id": first["application_id"], "duplicate": True})
    assert "intake.conflict" not in await timeline(running, first["application_id"])


async def test_changed_content_is_refused_with_409_and_recorded(hub_factory: Any) -> None:
    running = await start(hub_factory)
    status, first = await send(running, submission("Jürgen"))
    assert status == 202, first
    app_id = first["application_id"]
    before = await stored(running, app_id_body(app_id))
    status, answer = await send(running, submission("Jürgen Anton", scan=JPEG))
    assert status == 409, answer
    assert answer["application_id"] == app_id and answer["conflict"] is True
    assert "'fc-r-1' was already received with different content" in answer["error"]
    # Nothing of the re-send is taken in: one application, unchanged.
    assert await count(running) == 1
    after = await stored(running, app_id_body(app_id))
    assert after.form == before.form and after.attachments == before.attachments
    assert after.revision == 1 and after.fingerprint == before.fingerprint
    assert not running.hub.blobs.stored(f"sha256:{sha(JPEG)}")  # the refused re-send's file is gone
    events = [e for e in await running.journal.events(app_id) if e.type == "intake.conflict"]
    assert len(events) == 1
    assert events[0].data == {
        "action": "refuse",
        "revision": 1,
        "stored_fingerprint": before.fingerprint,
        "received_fingerprint": events[0].data["received_fingerprint"],
    }
    assert events[0].data["received_fingerprint"] != before.fingerprint
    assert "Jürgen" not in str(events[0].data)  # fingerprints and numbers, no personal data
    assert metric(running, "refuse") == 1
    # The same changed re-send again is refused again, and recorded again.
    status, _ = await send(running, submission("Jürgen Anton", scan=JPEG))
    assert status == 409
    assert (await timeline(running, app_id)).count("intake.conflict") == 2


async def test_changed_content_becomes_a_revision_and_is_delivered_again(hub_factory: Any) -> None:
    running = await start(hub_factory, on_changed_resend="revision")
    status, first = await send(running, submission("Jürgen"))
    assert status == 202, first
    app_id = first["application_id"]
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    sink = running.hub.connectors["rec"]
    assert isinstance(sink, RecordingSink)
    assert sink.delivered[app_id].revision == 1
    original = await stored(running, first)

    status, answer = await send(running, submission("Jürgen Anton", scan=JPEG))
    assert status == 202, answer
    assert answer == {"application_id": app_id, "duplicate": False, "revision": 2}
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    app = await stored(running, first)
    assert (app.revision, app.form["vorname"]) == (2, "Jürgen Anton")
    assert [a.sha256 for a in app.attachments] == [sha(JPEG)]
    # The new file is kept, and so is the superseded revision's (archived with it in the journal).
    assert running.hub.blobs.stored(f"sha256:{sha(JPEG)}") and running.hub.blobs.stored(f"sha256:{sha(PDF)}")
    assert f"sha256:{sha(PDF)}" in await running.journal.blob_references()
    assert app.received_at == original.received_at and app.revised_at is not None
    assert app.correlations["formcycle"] == "fc-r-1"
    assert await count(running) == 1
    # The steps ran again for the new content: the target got revision 2 with the new file.
    record = sink.delivered[app_id]
    assert record.revision == 2
    assert [d.blob for d in record.documents if d.type == "attachment"] == [f"sha256:{sha(JPEG)}"]
    assert sink.attempts[app_id] == 2
    types = await timeline(running, app_id)
    assert types.count("application.revised") == 1
    assert types.count("delivery.completed") == 2 and types[-1] == "application.completed"
    revised = next(e for e in await running.journal.events(app_id) if e.type == "application.revised")
    assert revised.data["revision"] == 2 and revised.data["previous_fingerprint"] == original.fingerprint
    assert metric(running, "revision") == 1
    # Revision 2 sent again is a duplicate of revision 2.
    status, again = await send(running, submission("Jürgen Anton", scan=JPEG))
    assert (status, again["duplicate"], again.get("revision")) == (200, True, 2)
    assert metric(running, "revision") == 1


def app_id_body(app_id: str) -> dict[str, str]:
    return {"application_id": app_id}
