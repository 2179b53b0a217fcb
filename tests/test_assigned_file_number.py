"""A route whose Fachverfahren assigns the Aktenzeichen, on a real hub with the test kit's fakes.

The Fachverfahren (`fv`, the answering fake) gets the record first; its number — given with its
delivery or in its first answer with a case number — becomes the Aktenzeichen once; then the e-file
(`efile`, which would give a number of its own) gets the record carrying it, and the receipt follows.
Dead steps of either stage are replayed; later answers never change the number.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from hub.answers import Answer
from hub.journal import ApplicationFilter, TaskState
from hub.models import AnswerStatus, ApplicationState
from hub.testing.fakes import AnsweringSink, Ledger, RecordingEfile, RecordingNotifier
from hub.testing.harness import RunningHub

FAST_RETRY = {"initial_seconds": 0.05, "max_seconds": 0.1, "jitter_seconds": 0.01}
ROUTES: list[dict[str, Any]] = [
    {
        "name": "bau",
        "from": "json",
        "to": ["efile", "fv"],
        "notify": ["mailbox"],
        "on_answer": {"update_akte": "efile", "notify": "mailbox"},
        "file_number": {"assigned_by": "fv"},
    }
]


def connectors(fv: dict[str, Any] | None = None, efile: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "json": {"type": "test-json"},
        "efile": {"type": "test-efile", "file_number": "AZ-EFILE-1", "retry": FAST_RETRY, **(efile or {})},
        "fv": {"type": "test-answering", "retry": FAST_RETRY, **(fv or {})},
        "mailbox": {"type": "test-notifier"},
    }


async def submit(running: RunningHub, ident: str) -> str:
    status, body = await running.post("/intake/json/bauantrag", json={"id": ident, "form": {"a": "1"}})
    assert status == 202, body
    return str(body["application_id"])


def parts(running: RunningHub) -> tuple[AnsweringSink, RecordingEfile, RecordingNotifier]:
    fv, efile, mailbox = (running.hub.connectors[n] for n in ("fv", "efile", "mailbox"))
    assert isinstance(fv, AnsweringSink) and isinstance(efile, RecordingEfile)
    assert isinstance(mailbox, RecordingNotifier)
    return fv, efile, mailbox


async def answer(running: RunningHub, app_id: str, answer_id: str, case_number: str | None) -> None:
    fv, _, _ = parts(running)
    fv.issue(
        Answer(
            answer_id=answer_id,
            reference=f"rec-{app_id}",
            status=AnswerStatus.ACCEPTED,
            case_number=case_number,
        )
    )
    assert await fv.poll_answers() == 1


async def awaiting(running: RunningHub, app_id: str) -> None:
    """Wait until the Fachverfahren has the record and the application waits for its number."""

    async def delivered() -> bool:
        return any(
            t.step == "deliver" and t.target == "fv" and t.state == TaskState.DONE
            for t in await running.journal.tasks(app_id)
        )

    await running.wait_for(delivered, what="the delivery to the Fachverfahren")


async def timeline(running: RunningHub, app_id: str) -> Counter[str]:
    return Counter(e.type for e in await running.journal.events(app_id))


async def test_the_first_case_number_becomes_the_aktenzeichen_and_later_ones_change_nothing(
    hub_factory: Any,
) -> None:
    running = await hub_factory(connectors(), ROUTES)
    fv, efile, mailbox = parts(running)
    app_id = await submit(running, "bau-1")
    await awaiting(running, app_id)
    assert (await running.journal.get_summary(app_id)).state == ApplicationState.PROCESSING
    assert fv.delivered[app_id].file_number is None and efile.delivered == {}
    assert mailbox.receipts == {}

    # A status without a number assigns nothing; its steps wait for the application's own.
    await answer(running, app_id, "fv-1", None)
    tasks = {(t.step, t.state) for t in await running.journal.tasks(app_id)}
    assert {("remap", TaskState.WAITING), ("answer-file", TaskState.WAITING)} <= tasks
    await answer(running, app_id, "fv-2", "63-BA-2026-1")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    await running.wait_all_final()

    app = await running.journal.get_application(app_id)
    assert app is not None and app.file_number == "63-BA-2026-1"
    assert efile.delivered[app_id].file_number == "63-BA-2026-1"  # its own AZ-EFILE-1 does not win
    assert mailbox.receipts[(app_id, "received")].file_number == "63-BA-2026-1"
    assert {a.answer_id: a.file_number for a in efile.answered.values()} == {
        "fv-1": "63-BA-2026-1",
        "fv-2": "63-BA-2026-1",
    }

    await answer(running, app_id, "fv-3", "63-BA-2026-999")
    await running.wait_for(
        lambda: len(efile.answered) == 3 and len(mailbox.statuses) == 3, what="the third answer told"
    )
    await running.wait_all_final()
    app = await running.journal.get_application(app_id)
    assert app is not None and app.file_number == "63-BA-2026-1"
    assert app.correlations["fv.case_number"] == "63-BA-2026-999"  # the correlation follows the system
    events = await timeline(running, app_id)
    assert (events["file_number.awaited"], events["file_number.assigned"], events["record.mapped"]) == (
        1,
        1,
        2,
    )
    assert len(efile.delivered) == 1 and efile.attempts[app_id] == 1


async def test_a_number_given_with_the_delivery_goes_on_at_once(hub_factory: Any) -> None:
    running = await hub_factory(connectors(fv={"file_number": "63-BA-2026-7"}), ROUTES)
    _, efile, mailbox = parts(running)
    app_id = await submit(running, "bau-2")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    app = await running.journal.get_application(app_id)
    assert app is not None and app.file_number == "63-BA-2026-7"
    assert efile.delivered[app_id].file_number == "63-BA-2026-7"
    assert mailbox.receipts[(app_id, "received")].file_number == "63-BA-2026-7"
    events = await running.journal.events(app_id)
    [assigned] = [e for e in events if e.type == "file_number.assigned"]
    assert (assigned.step, assigned.target) == ("deliver", "fv")
    # Joined once, after the Akte: the number made `remap` due in the transaction that took it.
    order = [(e.type, e.target) for e in events if e.type in ("delivery.completed", "application.delivered")]
    assert order == [
        ("delivery.completed", "fv"),
        ("delivery.completed", "efile"),
        ("application.delivered", None),
    ]


async def test_a_dead_delivery_to_the_assigning_fachverfahren_is_replayed(hub_factory: Any) -> None:
    running = await hub_factory(connectors(fv={"poison": True}), ROUTES)
    fv, efile, mailbox = parts(running)
    app_id = await submit(running, "bau-3")
    assert await running.wait_for_state(app_id) == ApplicationState.DEAD
    assert efile.delivered == {} and mailbox.receipts == {}

    fv.poison = False  # the Fachverfahren was fixed
    assert await running.hub.bus.replay(ApplicationFilter(ids=(app_id,))) == [app_id]
    await awaiting(running, app_id)
    await answer(running, app_id, "fv-1", "63-BA-2026-3")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    await running.wait_all_final()
    assert efile.delivered[app_id].file_number == "63-BA-2026-3"
    assert mailbox.receipts[(app_id, "received")].file_number == "63-BA-2026-3"


async def test_a_dead_second_stage_is_replayed_with_the_assigned_number(hub_factory: Any) -> None:
    running = await hub_factory(connectors(efile={"poison": True}), ROUTES)
    _, efile, mailbox = parts(running)
    app_id = await submit(running, "bau-4")
    await awaiting(running, app_id)
    await answer(running, app_id, "fv-1", "63-BA-2026-4")
    assert await running.wait_for_state(app_id) == ApplicationState.DEAD
    assert mailbox.receipts == {} and mailbox.statuses == {}  # nobody told before the Akte exists

    efile.poison = False
    assert await running.hub.bus.replay(ApplicationFilter(ids=(app_id,))) == [app_id]
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    await running.wait_all_final()
    assert efile.delivered[app_id].file_number == "63-BA-2026-4"
    assert mailbox.receipts[(app_id, "received")].file_number == "63-BA-2026-4"
    assert list(efile.answered) == ["fv-1"] and len(mailbox.statuses) == 1
    events = await timeline(running, app_id)
    assert (events["file_number.assigned"], events["record.mapped"], events["receipt.sent"]) == (1, 2, 2)


async def test_a_number_that_comes_before_its_delivery_completed_waits_for_it(
    hub_factory: Any, tmp_path: Path
) -> None:
    # The Fachverfahren answers (by the application's id) while the hub still waits for its delivery to
    # answer: the second stage runs at once, and the receipt waits for the last delivery, whichever it is.
    hold = tmp_path / "hold"
    hold.touch()
    fv_settings = {"record_dir": str(tmp_path / "fv"), "hold_delivery_file": str(hold)}
    running = await hub_factory(connectors(fv=fv_settings), ROUTES)
    fv, efile, mailbox = parts(running)
    app_id = await submit(running, "bau-5")
    taken = Ledger(tmp_path / "fv" / "deliveries")
    await running.wait_for(lambda: taken.calls() == 1, what="the Fachverfahren took the record")
    fv.issue(
        Answer(answer_id="fv-1", application_id=app_id, status=AnswerStatus.ACCEPTED, case_number="63-9")
    )
    assert await fv.poll_answers() == 1
    await running.wait_for(lambda: app_id in efile.delivered, what="the Akte delivered")
    assert efile.delivered[app_id].file_number == "63-9"
    assert mailbox.receipts == {} and mailbox.statuses == {}  # the delivery to the Fachverfahren is open

    fv.release_deliveries()
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    await running.wait_all_final()
    assert mailbox.receipts[(app_id, "received")].file_number == "63-9"
    assert [r.file_number for r in mailbox.statuses.values()] == ["63-9"]
    events = await timeline(running, app_id)
    assert (events["file_number.assigned"], events["application.delivered"], events["receipt.sent"]) == (
        1,
        1,
        2,
    )


async def test_a_route_to_the_assigning_fachverfahren_only_tells_after_the_number(hub_factory: Any) -> None:
    route = {**ROUTES[0], "to": ["fv"], "on_answer": {"notify": "mailbox"}}
    running = await hub_factory(connectors(), [route])
    _, _, mailbox = parts(running)
    app_id = await submit(running, "bau-6")
    await awaiting(running, app_id)
    assert mailbox.receipts == {}
    await answer(running, app_id, "fv-1", "63-BA-2026-6")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    await running.wait_all_final()
    assert mailbox.receipts[(app_id, "received")].file_number == "63-BA-2026-6"
    assert [r.file_number for r in mailbox.statuses.values()] == ["63-BA-2026-6"]
    events = await timeline(running, app_id)
    assert (events["record.mapped"], events["application.delivered"], events["receipt.sent"]) == (2, 1, 2)
