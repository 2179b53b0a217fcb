"""The standard pipeline end to end on a real hub with fake connectors."""

from __future__ import annotations

from typing import Any

from hub.models import ApplicationState
from hub.testing.fakes import RecordingNotifier, RecordingSink

CONNECTORS: dict[str, Any] = {
    "json": {"type": "test-json"},
    "rec": {"type": "test-recording"},
    "poison": {"type": "test-recording", "poison": True},
    "flaky": {
        "type": "test-recording",
        "fail_first": 2,
        "retry": {"initial_seconds": 0.05, "max_seconds": 0.1, "jitter_seconds": 0.01},
    },
    "mailbox": {"type": "test-notifier"},
    "idp": {"type": "test-identity"},
}


def routes(**extra: Any) -> list[dict[str, Any]]:
    return [
        {"name": "poisoned", "from": "json", "when": {"service": "gift"}, "to": ["poison"]},
        {"name": "flaky", "from": "json", "when": {"service": "wackelig"}, "to": ["flaky", "rec"]},
        {
            "name": "identified",
            "from": "json",
            "when": {"service": ["waffenschein"]},
            "identity": {"via": "idp", "min_level": "substantiell"},
            "to": ["rec"],
            "notify": ["mailbox"],
        },
        {"name": "plain", "from": "json", "to": ["rec"], "notify": ["mailbox"], **extra},
    ]


async def submit(running: Any, service: str, ident: str, **form: Any) -> str:
    status, body = await running.post(f"/intake/json/{service}", json={"id": ident, "form": form})
    assert status == 202, body
    return str(body["application_id"])


async def test_application_is_delivered_and_answered(hub_factory: Any) -> None:
    running = await hub_factory(CONNECTORS, routes())
    app_id = await submit(running, "jagdschein", "a1", vorname="Jürgen")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    sink = running.hub.connectors["rec"]
    assert isinstance(sink, RecordingSink)
    assert list(sink.delivered) == [app_id]
    notifier = running.hub.connectors["mailbox"]
    assert isinstance(notifier, RecordingNotifier)
    assert (app_id, "received") in notifier.receipts
    types = [e.type for e in await running.journal.events(app_id)]
    assert types == [
        "application.received",
        "record.mapped",
        "delivery.completed",
        "application.delivered",
        "receipt.sent",
        "application.completed",
    ]


async def test_resent_submission_is_answered_200_duplicate(hub_factory: Any) -> None:
    running = await hub_factory(CONNECTORS, routes())
    first = await submit(running, "jagdschein", "same")
    status, body = await running.post("/intake/json/jagdschein", json={"id": "same", "form": {}})
    assert status == 200
    assert body == {"application_id": first, "duplicate": True}


async def test_unknown_service_without_route_is_refused(hub_factory: Any) -> None:
    running = await hub_factory(
        CONNECTORS, [{"name": "only", "from": "json", "when": {"service": "a"}, "to": ["rec"]}]
    )
    status, body = await running.post("/intake/json/b", json={"id": "x", "form": {}})
    assert status == 404
    assert "no route" in body["error"]


async def test_retryable_failures_are_retried_until_filed(hub_factory: Any) -> None:
    running = await hub_factory(CONNECTORS, routes())
    app_id = await submit(running, "wackelig", "f1")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    flaky = running.hub.connectors["flaky"]
    assert isinstance(flaky, RecordingSink)
    assert flaky.attempts[app_id] == 3
    tasks = {t.target: t for t in await running.journal.tasks(app_id) if t.step == "deliver"}
    assert tasks["flaky"].attempts == 3
    assert tasks["rec"].attempts == 1
    failed = [e for e in await running.journal.events(app_id) if e.type == "step.failed"]
    assert len(failed) == 2


async def test_trust_level_too_low_is_rejected_and_answered(hub_factory: Any) -> None:
    running = await hub_factory(CONNECTORS, routes())
    low = await submit(running, "waffenschein", "l1", level="normal")
    ok = await submit(running, "waffenschein", "l2", level="hoch")
    assert await running.wait_for_state(low) == ApplicationState.REJECTED
    assert await running.wait_for_state(ok) == ApplicationState.COMPLETED
    summary = await running.journal.get_summary(low)
    assert summary.error == "Vertrauensniveau zu niedrig: normal erreicht, substantiell erforderlich"
    notifier = running.hub.connectors["mailbox"]
    await running.wait_for(lambda: (low, "rejected") in notifier.receipts, what="rejection receipt")
    assert notifier.receipts[(low, "rejected")].reason == summary.error
    assert low not in running.hub.connectors["rec"].delivered
    stored = await running.journal.get_application(ok)
    assert stored.identity.level == "hoch"


async def test_max_concurrency_protects_a_slow_target(hub_factory: Any) -> None:
    connectors = {
        "json": {"type": "test-json"},
        "slow": {"type": "test-recording", "delay_seconds": 0.05, "max_concurrency": 2},
    }
    running = await hub_factory(connectors, [{"name": "r", "from": "json", "to": ["slow"]}])
    ids = [await submit(running, "jagdschein", f"c{i}") for i in range(10)]
    for app_id in ids:
        assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    slow = running.hub.connectors["slow"]
    assert isinstance(slow, RecordingSink)
    assert slow.max_in_flight == 2
    assert sorted(slow.delivered) == sorted(ids)


async def test_builtin_log_notifier_records_receipt_without_personal_data(
    hub_factory: Any, caplog: Any
) -> None:
    connectors = {
        "json": {"type": "test-json"},
        "rec": {"type": "test-recording"},
        "receipts": {"type": "log"},
    }
    running = await hub_factory(
        connectors, [{"name": "r", "from": "json", "to": ["rec"], "notify": ["receipts"]}]
    )
    caplog.set_level("INFO", logger="hub")
    app_id = await submit(running, "jagdschein", "log1", vorname="Jürgen", nachname="Groß")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    receipts = [r.getMessage() for r in caplog.records if r.name == "hub.receipts"]
    assert receipts == [
        f"receipt application={app_id} service=jagdschein kind=received file_number=- targets=rec"
    ]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "Jürgen" not in everything and "Groß" not in everything


async def test_intake_only_process_stores_without_processing(hub_factory: Any) -> None:
    running = await hub_factory(
        CONNECTORS, routes(), workers={"enabled": False, "concurrency": 4, "idle_poll_seconds": 0.2}
    )
    app_id = await submit(running, "jagdschein", "io1")
    status, body = await running.get("/readyz")
    assert (status, body["status"]) == (200, "ready")
    summary = await running.journal.get_summary(app_id)
    assert summary.state == ApplicationState.RECEIVED
    assert [t.state for t in await running.journal.tasks(app_id)] == ["pending"]


async def test_a_submission_rejected_at_intake_is_stored_answered_and_not_filed(hub_factory: Any) -> None:
    from hub.connectors import Intake
    from hub.errors import Rejection
    from hub.models import Application

    running = await hub_factory(CONNECTORS, routes())
    app = Application(source="json", external_id="x-invalid", service="jagdschein", form={"n": "1"})
    outcome = await running.hub.intake(
        Intake(app, rejection=Rejection("the message is not valid: element 'flur' missing", code="schema"))
    )
    assert await running.wait_for_state(outcome.application_id) == ApplicationState.REJECTED
    notifier = running.hub.connectors["mailbox"]
    await running.wait_for(lambda: (app.id, "rejected") in notifier.receipts, what="the rejection receipt")
    assert (
        notifier.receipts[(app.id, "rejected")].reason == "the message is not valid: element 'flur' missing"
    )
    assert app.id not in running.hub.connectors["rec"].delivered
    types = [e.type for e in await running.journal.events(app.id)]
    assert types[:2] == ["application.received", "application.rejected"]
    again = await running.hub.intake(Intake(app, rejection=Rejection("same message again")))
    assert again.duplicate and again.application_id == app.id
