"""The return channel's intake: answers stored once, by application id or reference, by poll or callback."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from hub.answers import Answer, CallbackAuth
from hub.callbacks import sign_callback
from hub.journal import ApplicationFilter
from hub.models import AnswerStatus, ApplicationState
from hub.testing.contracts import AnsweringSinkContract
from hub.testing.fakes import AnsweringSink
from hub.testing.harness import RunningHub

SECRET = "callback-secret-0123456789"
FAST_RETRY = {"initial_seconds": 0.05, "max_seconds": 0.1, "jitter_seconds": 0.01}


def connectors(**fv: Any) -> dict[str, Any]:
    return {
        "json": {"type": "test-json"},
        "efile": {"type": "test-efile", "file_number": "AZ-2026-1"},
        "fv": {
            "type": "test-answering",
            "answer_poll_seconds": 0.05,
            "callback_secret": SECRET,
            "retry": FAST_RETRY,
            **fv,
        },
        "mailbox": {"type": "test-notifier"},
    }


ROUTES: list[dict[str, Any]] = [{"name": "wasser", "from": "json", "to": ["efile", "fv"]}]


async def submit(running: RunningHub, ident: str) -> str:
    status, body = await running.post("/intake/json/wasserrecht", json={"id": ident, "form": {"a": "1"}})
    assert status == 202, body
    return str(body["application_id"])


def fv(running: RunningHub) -> AnsweringSink:
    sink = running.hub.connectors["fv"]
    assert isinstance(sink, AnsweringSink)
    return sink


async def callback(running: RunningHub, answers: list[dict[str, Any]], **headers: str) -> tuple[int, Any]:
    body = json.dumps({"answers": answers}).encode()
    auth = CallbackAuth(secret=SECRET)
    signed = {**sign_callback(auth, body, time.time()), "Content-Type": "application/json", **headers}
    return await running.post("/callback/fv", data=body, headers=signed)


class TestFakeAnsweringSink(AnsweringSinkContract):
    """The contract suite, run against the test kit's fake Fachverfahren (answers by poll)."""

    @pytest.fixture
    async def answering_hub(self, hub_factory: Any) -> RunningHub:
        running: RunningHub = await hub_factory(connectors(), ROUTES)
        return running

    async def submit(self, running: RunningHub, n: int) -> str:
        return await submit(running, f"contract-{n}")

    async def give_answer(
        self, running: RunningHub, application_id: str, n: int, status: AnswerStatus
    ) -> None:
        answer = Answer(answer_id=f"answer-{n}", reference=f"rec-{application_id}", status=status)
        fv(running).issue(answer)

    async def acknowledgements(self, running: RunningHub, application_id: str, n: int) -> int:
        return fv(running).acknowledged.count(f"answer-{n}")


class TestFakeAnsweringSinkByCallback(AnsweringSinkContract):
    """The contract suite again, the fake Fachverfahren answering by signed callback."""

    @pytest.fixture
    async def answering_hub(self, hub_factory: Any) -> RunningHub:
        self.answered_2xx: list[str] = []
        running: RunningHub = await hub_factory(connectors(answer_poll_seconds=None), ROUTES)
        return running

    async def submit(self, running: RunningHub, n: int) -> str:
        return await submit(running, f"contract-cb-{n}")

    async def give_answer(
        self, running: RunningHub, application_id: str, n: int, status: AnswerStatus
    ) -> None:
        answer = {"answer_id": f"answer-{n}", "reference": f"rec-{application_id}", "status": status.value}
        code, _ = await callback(running, [answer])
        if 200 <= code < 300:  # what the Fachverfahren learns: taken (else it sends the answer again)
            self.answered_2xx.append(f"answer-{n}")

    async def acknowledgements(self, running: RunningHub, application_id: str, n: int) -> int:
        return self.answered_2xx.count(f"answer-{n}")


async def test_answer_by_reference_records_case_number_never_the_aktenzeichen(hub_factory: Any) -> None:
    running = await hub_factory(connectors(), ROUTES)
    app_id = await submit(running, "ref-1")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    fv(running).issue(
        Answer(answer_id="a1", reference=f"rec-{app_id}", status=AnswerStatus.ACCEPTED, case_number="K3-77")
    )
    await running.wait_for(lambda: fv(running).acknowledged, what="the answer taken")
    app = await running.journal.get_application(app_id)
    assert app.correlations["fv.case_number"] == "K3-77"
    assert app.file_number == "AZ-2026-1"
    [stored] = await running.journal.answers(app_id)
    assert (stored.connector, stored.answer.answer_id, stored.answer.case_number) == ("fv", "a1", "K3-77")


async def test_answer_naming_no_delivered_application_is_refused_and_stores_nothing(
    hub_factory: Any,
) -> None:
    running = await hub_factory(connectors(), ROUTES)
    app_id = await submit(running, "unknown-1")
    await running.wait_for_state(app_id)
    sink = fv(running)
    sink.issue(Answer(answer_id="x1", reference="rec-nobody", status=AnswerStatus.ACCEPTED))
    # An application of the hub, but never delivered to the efile-only connector asking: refused too.
    efile_answer = Answer(answer_id="x2", application_id="app_missing", status=AnswerStatus.ACCEPTED)
    sink.issue(efile_answer)
    await running.wait_for(lambda: len(sink.refused) == 2, what="both answers refused")
    assert await running.journal.answers(app_id) == []
    events = [e.type for e in await running.journal.events(app_id)]
    assert "answer.received" not in events


async def test_fachverfahren_delivery_finishing_last_keeps_the_aktenzeichen(hub_factory: Any) -> None:
    # The Fachverfahren is slow and brings its own number: it is an id of the case, not the Aktenzeichen.
    running = await hub_factory(connectors(file_number="FV-2026-9", delay_seconds=0.3), ROUTES)
    app_id = await submit(running, "last-1")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    app = await running.journal.get_application(app_id)
    assert app.file_number == "AZ-2026-1"
    assert app.correlations["fv.file_number"] == "FV-2026-9"
    assert [e.target for e in await running.journal.events(app_id) if e.type == "delivery.completed"] == [
        "efile",
        "fv",
    ]


async def test_signed_callback_is_stored_once_and_answered_after_the_commit(hub_factory: Any) -> None:
    running = await hub_factory(connectors(answer_poll_seconds=None), ROUTES)
    app_id = await submit(running, "cb-1")
    await running.wait_for_state(app_id)
    answer = {"answer_id": "cb-a1", "application_id": app_id, "status": "in_progress", "case_number": "K3-1"}
    status, body = await callback(running, [answer])
    assert status == 200, body
    assert body["answers"] == [{"answer_id": "cb-a1", "application_id": app_id, "duplicate": False}]
    status, body = await callback(running, [answer])
    assert status == 200
    assert body["answers"][0]["duplicate"] is True
    assert len(await running.journal.answers(app_id)) == 1
    assert [e.type for e in await running.journal.events(app_id)].count("answer.received") == 1
    _, metrics = await running.get("/metrics")
    assert 'aktenhub_answers_total{connector="fv",status="in_progress"} 1.0' in metrics
    assert 'aktenhub_answer_repeats_total{connector="fv"} 1.0' in metrics


async def test_callback_with_decision_stores_it_in_the_blob_store(hub_factory: Any) -> None:
    running = await hub_factory(connectors(answer_poll_seconds=None), ROUTES)
    app_id = await submit(running, "cb-pdf")
    await running.wait_for_state(app_id)
    pdf = b"%PDF-1.4 Bescheid\n"
    decision = {"name": "bescheid.pdf", "content_base64": "JVBERi0xLjQgQmVzY2hlaWQK"}
    answer = {"answer_id": "d1", "application_id": app_id, "status": "decided", "decision": decision}
    status, body = await callback(running, [answer])
    assert status == 200, body
    [stored] = await running.journal.answers(app_id)
    assert stored.answer.decision is not None
    assert await running.hub.blobs.read_bytes(stored.answer.decision.blob) == pdf


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-Signature": "sha256=" + "0" * 64}, "X-Signature"),
        ({"X-Timestamp": str(int(time.time()) - 3600)}, "X-Timestamp"),
        ({"X-Timestamp": "yesterday"}, "X-Timestamp"),
        ({"X-Signature": ""}, "X-Signature"),
    ],
)
async def test_callback_not_authentic_is_401_and_changes_nothing(
    hub_factory: Any, headers: dict[str, str], reason: str
) -> None:
    running = await hub_factory(connectors(answer_poll_seconds=None), ROUTES)
    app_id = await submit(running, "cb-bad")
    await running.wait_for_state(app_id)
    answer = {"answer_id": "bad", "application_id": app_id, "status": "decided"}
    status, body = await callback(running, [answer], **headers)
    assert status == 401
    assert reason in body["error"] and SECRET not in body["error"]
    assert await running.journal.answers(app_id) == []


async def test_callback_signature_covers_the_body(hub_factory: Any) -> None:
    running = await hub_factory(connectors(answer_poll_seconds=None), ROUTES)
    app_id = await submit(running, "cb-body")
    await running.wait_for_state(app_id)
    signed = json.dumps({"answers": [{"answer_id": "s", "application_id": app_id, "status": "accepted"}]})
    headers = sign_callback(CallbackAuth(secret=SECRET), signed.encode(), time.time())
    tampered = signed.replace("accepted", "decided")
    status, _ = await running.post("/callback/fv", data=tampered, headers=headers)
    assert status == 401
    assert await running.journal.answers(app_id) == []


async def test_token_callback(hub_factory: Any) -> None:
    running = await hub_factory(connectors(answer_poll_seconds=None, callback_scheme="token"), ROUTES)
    app_id = await submit(running, "cb-token")
    await running.wait_for_state(app_id)
    body = {"answers": [{"answer_id": "t", "application_id": app_id, "status": "accepted"}]}
    status, _ = await running.post("/callback/fv", json=body, headers={"Authorization": "Bearer wrong"})
    assert status == 401
    status, _ = await running.post("/callback/fv", json=body, headers={"Authorization": f"Bearer {SECRET}"})
    assert status == 200
    assert len(await running.journal.answers(app_id)) == 1


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/callback/nobody", {"answers": []}, 404),  # no such connector
        ("/callback/efile", {"answers": []}, 404),  # a sink that takes no callbacks
        ("/callback/fv", {"answers": [{"answer_id": "x", "status": "no-such-status"}]}, 422),
        ("/callback/fv", {"answer": "not a list"}, 422),
        ("/callback/fv", None, 400),  # not JSON
        (
            "/callback/fv",
            {"answers": [{"answer_id": "u", "application_id": "app_x", "status": "decided"}]},
            422,
        ),
    ],
)
async def test_callback_refusals_change_nothing(
    hub_factory: Any, path: str, body: dict[str, Any] | None, expected: int
) -> None:
    running = await hub_factory(connectors(answer_poll_seconds=None), ROUTES)
    app_id = await submit(running, "cb-refused")
    await running.wait_for_state(app_id)
    raw = b"{not json" if body is None else json.dumps(body).encode()
    headers = sign_callback(CallbackAuth(secret=SECRET), raw, time.time())
    status, answer = await running.post(path, data=raw, headers=headers)
    assert status == expected, answer
    assert isinstance(answer, dict) and answer["error"]
    assert await running.journal.answers(app_id) == []
    assert [e.type for e in await running.journal.events(app_id)].count("answer.received") == 0


async def test_callback_body_is_bounded_like_intake(hub_factory: Any) -> None:
    running = await hub_factory(connectors(answer_poll_seconds=None), ROUTES, server={"max_body": 1024})
    raw = json.dumps({"answers": [], "pad": "x" * 4096}).encode()
    headers = sign_callback(CallbackAuth(secret=SECRET), raw, time.time())
    status, _ = await running.post("/callback/fv", data=raw, headers=headers)
    assert status == 413


async def test_failing_answer_poll_is_counted_and_the_hub_keeps_serving(hub_factory: Any) -> None:
    running = await hub_factory(connectors(), ROUTES)
    app_id = await submit(running, "poll-fail")
    await running.wait_for_state(app_id)
    sink = fv(running)
    calls: list[str] = []

    async def broken(connector: str, answer: Answer) -> Any:
        calls.append(answer.answer_id)
        raise RuntimeError("journal gone")

    stored, sink.context._answer = sink.context._answer, broken
    sink.issue(Answer(answer_id="p1", application_id=app_id, status=AnswerStatus.ACCEPTED))
    await running.wait_for(lambda: len(calls) >= 2, what="two failing polls")
    _, metrics = await running.get("/metrics")
    assert 'aktenhub_answer_polls_total{connector="fv",outcome="error"}' in metrics
    assert sink.acknowledged == []
    sink.context._answer = stored
    await running.wait_for(lambda: sink.acknowledged == ["p1"], what="the answer taken after all")
    assert len(await running.journal.answers(app_id)) == 1


ANSWERING_ROUTES: list[dict[str, Any]] = [
    {
        "name": "wasser",
        "from": "json",
        "to": ["efile", "fv"],
        "notify": ["mailbox"],
        "on_answer": {"update_akte": "efile", "notify": "mailbox", "decision": "both"},
    }
]


async def decision(running: RunningHub) -> Any:
    from hub.models import Attachment

    info = await running.hub.blobs.write_bytes(b"%PDF-1.4 Bescheid\n")
    return Attachment(
        name="bescheid.pdf", media_type="application/pdf", size=info.size, sha256=info.sha256, blob=info.ref
    )


async def test_answer_updates_the_akte_and_tells_the_applicant_once(hub_factory: Any) -> None:
    running = await hub_factory(connectors(), ANSWERING_ROUTES)
    app_id = await submit(running, "steps-1")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    answer = Answer(
        answer_id="b1",
        reference=f"rec-{app_id}",
        status=AnswerStatus.DECIDED,
        case_number="K3-5",
        decision=await decision(running),
    )
    sink = fv(running)
    sink.issue(answer)
    await running.wait_for(lambda: sink.acknowledged, what="the answer taken")
    sink.issue(answer)  # given again: changes nothing again
    await running.wait_for(lambda: len(sink.acknowledged) == 2, what="the repeat taken")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED

    async def told() -> bool:
        return any(
            e.type == "receipt.sent" and e.step == "answer-notify"
            for e in await running.journal.events(app_id)
        )

    await running.wait_for(told, what="the applicant told")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    efile = running.hub.connectors["efile"]
    mailbox = running.hub.connectors["mailbox"]
    [record] = efile.answered.values()  # type: ignore[attr-defined]
    assert (record.case_number, record.file_number) == ("K3-5", "AZ-2026-1")
    assert [(d.type, d.name) for d in record.documents] == [("Bescheid", "bescheid.pdf")]
    assert efile.answer_calls == 1  # type: ignore[attr-defined]
    receipt = mailbox.statuses[(app_id, "b1")]  # type: ignore[attr-defined]
    assert receipt.status == AnswerStatus.DECIDED and [d.name for d in receipt.documents] == ["bescheid.pdf"]
    assert mailbox.status_calls == 1  # type: ignore[attr-defined]
    app = await running.journal.get_application(app_id)
    assert app.file_number == "AZ-2026-1"
    assert app.correlations["efile.answer-1.decision"] == "doc-b1"
    # The ids the notifier's system gave its messages find the application.
    assert app.correlations["mailbox.status.b1.message"] == f"msg-{app_id}-b1"
    assert app.correlations["mailbox.received.message"] == f"msg-{app_id}-received"
    for any_id in (f"msg-{app_id}-b1", "doc-b1", "K3-5", f"rec-{app_id}"):
        found = await running.journal.list_applications(ApplicationFilter(find=any_id))
        assert [a.id for a in found] == [app_id], any_id


async def test_failed_answer_shows_the_delivery_dead_and_replay_delivers_again(hub_factory: Any) -> None:
    running = await hub_factory(connectors(), ANSWERING_ROUTES)
    app_id = await submit(running, "failed-1")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    sink = fv(running)
    sink.issue(
        Answer(
            answer_id="f1", reference=f"rec-{app_id}", status=AnswerStatus.FAILED, error="Leistung unbekannt"
        )
    )
    assert await running.wait_for_state(app_id, [ApplicationState.DEAD]) == ApplicationState.DEAD
    summary = await running.journal.get_summary(app_id)
    assert summary.error == "fv refused the import: Leistung unbekannt"
    assert summary.error_code == "answer-failed"
    [deliver] = [t for t in await running.journal.tasks(app_id) if t.step == "deliver" and t.target == "fv"]
    assert deliver.state == "dead"
    mailbox = running.hub.connectors["mailbox"]
    assert mailbox.statuses == {}  # type: ignore[attr-defined]
    assert sink.attempts[app_id] == 1
    assert await running.hub.bus.replay(ApplicationFilter(ids=(app_id,))) == [app_id]
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    assert sink.attempts[app_id] == 2


async def test_on_answer_names_must_be_connectors_of_the_right_role(hub_factory: Any) -> None:
    from hub.errors import ConfigError

    bad = [{**ANSWERING_ROUTES[0], "on_answer": {"update_akte": "fv", "notify": ["efile"]}}]
    with pytest.raises(ConfigError) as refused:
        await hub_factory(connectors(), bad)
    text = str(refused.value)
    assert "'fv' cannot update an Akte" in text
    assert "'efile' is a sink, expected a notifier" in text


async def test_mapping_answers_section_sets_akte_fields_and_names_the_decision(
    hub_factory: Any, tmp_path: Path
) -> None:
    mapping = tmp_path / "wasser.yaml"
    mapping.write_text(
        "version: 1\n"
        "answers:\n"
        "  akte_fields:\n"
        '    FV_AZ: "{{ answer.case_number }}"\n'
        '    FV_Status: "{{ answer.status }} ({{ application.external_id }})"\n'
        "  decision:\n"
        "    type: Erlaubnis\n"
        '    name: "Bescheid {{ answer.case_number }}.pdf"\n'
    )
    routes = [{**ANSWERING_ROUTES[0], "map": str(mapping), "on_answer": {"update_akte": "efile"}}]
    running = await hub_factory(connectors(), routes)
    app_id = await submit(running, "mapped-1")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    answer = Answer(
        answer_id="m1",
        application_id=app_id,
        status=AnswerStatus.DECIDED,
        case_number="K3-9",
        decision=await decision(running),
    )
    fv(running).issue(answer)
    efile = running.hub.connectors["efile"]
    await running.wait_for(lambda: efile.answered, what="the answer filed")  # type: ignore[attr-defined]
    record = efile.answered["m1"]  # type: ignore[attr-defined]
    assert record.akte_fields == {"FV_AZ": "K3-9", "FV_Status": "decided (mapped-1)"}
    assert [(d.type, d.name, d.blob) for d in record.documents] == [
        ("Erlaubnis", "Bescheid K3-9.pdf", answer.decision.blob)  # type: ignore[union-attr]
    ]


async def test_dead_answer_step_is_visible_and_replayable(hub_factory: Any) -> None:
    running = await hub_factory(connectors(), ANSWERING_ROUTES)
    app_id = await submit(running, "dead-answer")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    efile = running.hub.connectors["efile"]
    efile.poison = True  # type: ignore[attr-defined]
    fv(running).issue(Answer(answer_id="z1", application_id=app_id, status=AnswerStatus.IN_PROGRESS))
    assert await running.wait_for_state(app_id, [ApplicationState.DEAD]) == ApplicationState.DEAD
    [dead] = [t for t in await running.journal.tasks(app_id) if t.state == "dead"]
    assert (dead.step, dead.target) == ("answer-file", "efile")
    assert "FV_AZ is unknown" in (dead.last_error or "")
    counted = 'aktenhub_dead_total{step="answer-file",target="efile"} 1.0'

    async def dead_counted() -> bool:
        # The metric is counted right after the commit the state is read from: wait for it.
        _, metrics = await running.get("/metrics")
        return counted in metrics

    assert await running.wait_for(dead_counted, what="the dead answer step counted")
    efile.poison = False  # type: ignore[attr-defined]  # the e-file was fixed
    assert await running.hub.bus.replay(ApplicationFilter(ids=(app_id,))) == [app_id]
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    assert list(efile.answered) == ["z1"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [AnswerStatus.DECIDED, AnswerStatus.FAILED])
async def test_answer_to_an_abandoned_application_is_kept_and_triggers_nothing(
    hub_factory: Any, status: AnswerStatus
) -> None:
    settings = connectors()
    settings["efile"]["poison"] = True  # filing failed; the Fachverfahren has the case
    running = await hub_factory(settings, ANSWERING_ROUTES)
    app_id = await submit(running, f"abandoned-{status.value}")
    assert await running.wait_for_state(app_id) == ApplicationState.DEAD

    async def fv_done() -> bool:
        tasks = await running.journal.tasks(app_id)
        return any(t.step == "deliver" and t.target == "fv" and t.state == "done" for t in tasks)

    await running.wait_for(fv_done, what="the delivery to the Fachverfahren")
    await running.hub.bus.abandon(app_id, "admin", "withdrawn by the applicant")
    sink = fv(running)
    sink.issue(Answer(answer_id="late", application_id=app_id, status=status))
    await running.wait_for(lambda: sink.acknowledged, what="the answer taken")
    assert [a.answer.answer_id for a in await running.journal.answers(app_id)] == ["late"]
    assert (await running.journal.get_summary(app_id)).state == ApplicationState.ABANDONED
    assert not [t for t in await running.journal.tasks(app_id) if t.step.startswith("answer-")]
    delivered = {t.target: t.state for t in await running.journal.tasks(app_id) if t.step == "deliver"}
    assert delivered == {"efile": "abandoned", "fv": "done"}
