"""The example Fachverfahren sink against its simulator: the sink contract, resuming, answers, end to end."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_fachverfahren_example import plugin
from hub_fachverfahren_example.simulator import STATE, FachverfahrenState, StoredAnswer, make_app
from hub_fachverfahren_example.sink import STATUSES, ExampleFachverfahrenSink
from pydantic import ValidationError

from hub import (
    Answer,
    AnswerOutcome,
    AnswerStatus,
    Application,
    ApplicationState,
    Blobs,
    ConnectorContext,
    Document,
    DocumentContent,
    FileRecord,
    Permanent,
    Retryable,
    Sink,
    UnknownApplication,
)
from hub.outbound import basic_authorization
from hub.testing import Fault, SinkContract, make_application
from hub.testing.contracts import AnsweringSinkContract, delivery_context
from hub.testing.fakes import RecordingEfile, RecordingNotifier
from hub.testing.harness import RunningHub

USER = "aktenhub"
PASSWORD = "simulator-password-1"


@dataclass
class Fachverfahren:
    """A running simulator: where it listens, and what it holds."""

    url: str
    state: FachverfahrenState


StartFachverfahren = Callable[..., Awaitable[Fachverfahren]]


@pytest_asyncio.fixture
async def start_fachverfahren() -> AsyncIterator[StartFachverfahren]:
    """Start simulators on 127.0.0.1 with the given fault knobs; they stop at teardown."""
    servers: list[TestServer] = []

    async def start(**options: Any) -> Fachverfahren:
        app = make_app(username=USER, password=PASSWORD, **options)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Fachverfahren(f"http://127.0.0.1:{server.port}", app[STATE])

    yield start
    for server in reversed(servers):
        await server.close()


def make_sink(
    context: ConnectorContext, base_url: str, password: str = PASSWORD, **settings: Any
) -> ExampleFachverfahrenSink:
    """A sink built the way the hub builds it: configuration validated by its `Config`."""
    config = ExampleFachverfahrenSink.Config.model_validate(
        {
            "type": "fachverfahren-example",
            "base_url": base_url,
            "auth": {"type": "basic", "username": USER, "password": password},
            "timeout_seconds": 5,
            **settings,
        }
    )
    return ExampleFachverfahrenSink(config, context)


def closed_loopback_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def record_of(app: Application) -> FileRecord:
    """The record of an application without a mapping file: original submission, then attachments."""
    assert app.original is not None
    documents = [
        Document(
            type="original",
            name="antrag-original.txt",
            content=DocumentContent.ORIGINAL,
            blob=app.original.blob,
            media_type=app.original.media_type,
        )
    ]
    documents += [
        Document(
            type="attachment",
            name=a.name,
            content=DocumentContent.ATTACHMENT,
            blob=a.blob,
            media_type=a.media_type,
            attachment=a.name,
        )
        for a in app.attachments
    ]
    return FileRecord(application_id=app.id, service=app.service, documents=documents)


class TestExampleFachverfahrenContract(SinkContract):
    @pytest.fixture(autouse=True)
    def _environment(
        self, start_fachverfahren: StartFachverfahren, connector_context: ConnectorContext
    ) -> None:
        self.start_fachverfahren = start_fachverfahren
        self.context = connector_context
        self.targets: dict[str, FachverfahrenState] = {}  # base_url -> the simulator there

    async def _against_simulator(
        self, sink_settings: dict[str, Any] | None = None, **options: Any
    ) -> ExampleFachverfahrenSink:
        fachverfahren = await self.start_fachverfahren(**options)
        self.targets[fachverfahren.url] = fachverfahren.state
        sink = make_sink(self.context, fachverfahren.url, **(sink_settings or {}))
        await sink.start()
        return sink

    @pytest_asyncio.fixture
    async def sink(self, _environment: None) -> ExampleFachverfahrenSink:
        return await self._against_simulator()

    async def results(self, sink: Sink, application: Application) -> int:
        assert isinstance(sink, ExampleFachverfahrenSink)
        state = self.targets.get(sink.config.base_url)
        return 0 if state is None else len(state.cases_for(application.id))

    async def faulty_sink(self, fault: Fault) -> Sink | None:
        if fault is Fault.TIMEOUT:
            # The simulator answers after 60 s (or when it stops); the sink waits 0.2 s.
            return await self._against_simulator({"timeout_seconds": 0.2}, latency_seconds=60)
        if fault is Fault.SERVER_ERROR:
            return await self._against_simulator(fail_next=1000)
        if fault is Fault.UNREACHABLE:
            return make_sink(self.context, f"http://127.0.0.1:{closed_loopback_port()}")
        # The Fachverfahren insists on a form field the contract's applications do not have.
        return await self._against_simulator(required_form_fields=("aktenzeichen",))


@pytest.mark.parametrize("answer_lost", [False, True], ids=["upload-lost", "answer-lost"])
async def test_retry_after_dropped_upload_resumes(
    answer_lost: bool,
    start_fachverfahren: StartFachverfahren,
    connector_context: ConnectorContext,
    blobs: Blobs,
) -> None:
    # The second upload's connection drops: before the document is stored, or after (the answer is lost).
    fachverfahren = await start_fachverfahren(drop_upload=2, drop_after_store=answer_lost)
    sink = make_sink(connector_context, fachverfahren.url)
    app = await make_application(blobs, external_id="dropped-upload")
    record = record_of(app)
    checkpoints: dict[str, Any] = {}  # persists across attempts, as the journal's do

    with pytest.raises(Retryable, match="upload of document 1"):
        await sink.deliver(record, delivery_context(app, blobs, checkpoints))
    delivery = await sink.deliver(record, delivery_context(app, blobs, checkpoints))

    (case,) = fachverfahren.state.cases_for(app.id)
    assert delivery.reference == case.id
    assert delivery.correlations == {"case": case.id, "case_number": case.case_number}
    assert delivery.file_number is None  # the case number never becomes the Aktenzeichen
    assert case.status == "complete"
    assert [d.sha256 for d in case.documents] == [
        str(d.blob).removeprefix("sha256:") for d in record.documents
    ]
    assert [d.name for d in case.documents] == [d.name for d in record.documents]
    # Resumed, not repeated: document 0 went once, document 1 twice (the dropped try), document 2 once.
    assert fachverfahren.state.uploads == 4


async def test_lost_checkpoints_find_the_case_instead_of_a_second_one(
    start_fachverfahren: StartFachverfahren, connector_context: ConnectorContext, blobs: Blobs
) -> None:
    fachverfahren = await start_fachverfahren(drop_upload=3, drop_after_store=True)
    sink = make_sink(connector_context, fachverfahren.url)
    app = await make_application(blobs, external_id="lost-checkpoints")
    record = record_of(app)
    with pytest.raises(Retryable):
        await sink.deliver(record, delivery_context(app, blobs))
    # A crash before the checkpoints were saved: the next attempt knows nothing of the first one.
    checkpoints: dict[str, Any] = {}
    delivery = await sink.deliver(record, delivery_context(app, blobs, checkpoints))
    (case,) = fachverfahren.state.cases_for(app.id)
    assert delivery.reference == case.id
    assert len(case.documents) == len(record.documents) == 3
    assert case.status == "complete"

    again = await sink.deliver(record, delivery_context(app, blobs, checkpoints))
    assert again.duplicate and again.reference == case.id
    assert again.correlations["case_number"] == case.case_number
    assert len(fachverfahren.state.cases_for(app.id)) == 1


async def test_refusals_are_permanent_with_the_servers_reason(
    start_fachverfahren: StartFachverfahren, connector_context: ConnectorContext, blobs: Blobs
) -> None:
    fachverfahren = await start_fachverfahren(required_form_fields="aktenzeichen")
    app = await make_application(blobs, external_id="refused")
    wrong_password = make_sink(connector_context, fachverfahren.url, password="not-the-password")
    with pytest.raises(Permanent, match=r"refused user 'aktenhub' \(401\)"):
        await wrong_password.deliver(record_of(app), delivery_context(app, blobs))
    with pytest.raises(
        Permanent, match=r"refused the request \(422\): form field 'aktenzeichen' is mandatory"
    ):
        await make_sink(connector_context, fachverfahren.url).deliver(
            record_of(app), delivery_context(app, blobs)
        )
    assert fachverfahren.state.cases == {}


async def test_a_document_without_content_creates_nothing(
    start_fachverfahren: StartFachverfahren, connector_context: ConnectorContext, blobs: Blobs
) -> None:
    fachverfahren = await start_fachverfahren()
    app = await make_application(blobs, external_id="no-content")
    record = record_of(app)
    sink = make_sink(connector_context, fachverfahren.url)
    record.documents.append(Document(type="rendition", name="antrag.pdf", content=DocumentContent.RENDITION))
    with pytest.raises(Permanent, match=r"document 3 .* has no content"):
        await sink.deliver(record, delivery_context(app, blobs))
    record.documents[3].blob = "sha256:" + "0" * 64
    with pytest.raises(Permanent, match=r"document 3 .* not in the blob store"):
        await sink.deliver(record, delivery_context(app, blobs))
    record.documents[3].blob = "not-a-reference"
    with pytest.raises(Permanent, match=r"document 3 .* not in the blob store"):
        await sink.deliver(record, delivery_context(app, blobs))
    assert fachverfahren.state.cases == {}


async def test_check_reports_reachability_and_credentials(
    start_fachverfahren: StartFachverfahren, connector_context: ConnectorContext
) -> None:
    fachverfahren = await start_fachverfahren()
    good = await make_sink(connector_context, fachverfahren.url).check()
    assert good.ok and good.details["api_version"] == "1"
    refused = await make_sink(connector_context, fachverfahren.url, password="not-the-password").check()
    assert not refused.ok and "401" in refused.message
    gone = await make_sink(connector_context, f"http://127.0.0.1:{closed_loopback_port()}").check()
    assert not gone.ok and "connection" in gone.message


async def test_configuration_is_validated_and_the_password_never_shown(
    connector_context: ConnectorContext,
) -> None:
    with pytest.raises(ValidationError, match="base_url"):
        make_sink(connector_context, "ftp://fv.kreis.example")
    with pytest.raises(ValidationError, match="auth"):
        make_sink(connector_context, "https://fv.kreis.example", auth={"type": "basic", "username": USER})
    sink = make_sink(connector_context, "https://fv.kreis.example/")
    assert sink.http.url("/api/health") == "https://fv.kreis.example/api/health"
    assert PASSWORD not in repr(await sink.diagnostics())


async def test_simulator_is_strict(start_fachverfahren: StartFachverfahren) -> None:
    fachverfahren = await start_fachverfahren()
    url = fachverfahren.url + "/api/cases"
    auth = {"Authorization": basic_authorization(USER, PASSWORD)}
    case = {
        "service": "jagdschein",
        "application_id": "app_1",
        "applicant_name": "",
        "form": {},
        "documents": [{"name": "a.pdf", "type": "attachment", "media_type": "application/pdf"}],
    }
    key = {"Idempotency-Key": "app_1"}
    async with aiohttp.ClientSession() as http:

        async def post(body: Any, headers: dict[str, str]) -> tuple[int, Any]:
            async with http.post(url, json=body, headers=headers) as response:
                return response.status, await response.json()

        assert (await post(case, key))[0] == 401
        wrong = {"Authorization": basic_authorization(USER, "wrong")}
        assert (await post(case, {**key, **wrong}))[0] == 401
        status, answer = await post({k: v for k, v in case.items() if k != "service"}, {**key, **auth})
        assert status == 422 and answer["details"][0]["field"] == "service"
        assert (await post({**case, "extra": 1}, {**key, **auth}))[0] == 422
        assert (await post(case, auth))[0] == 400  # no Idempotency-Key
        created_status, created = await post(case, {**key, **auth})
        again_status, again = await post(case, {**key, **auth})
        assert (created_status, again_status) == (201, 200) and again["id"] == created["id"]
        assert (await post({**case, "application_id": "app_2"}, {**key, **auth}))[0] == 422
        documents = f"{url}/{created['id']}/documents"
        async with http.post(documents, params={"name": "a.pdf"}, data=b"%PDF", headers=auth) as response:
            assert response.status == 201
        async with http.post(documents, params={"name": "b.pdf"}, data=b"%PDF", headers=auth) as response:
            assert response.status == 409  # more documents than the case declared
        answers = fachverfahren.url + "/api/answers"
        async with http.get(answers) as response:
            assert response.status == 401
        for limit in ("0", "101", "x"):
            async with http.get(answers, params={"limit": limit}, headers=auth) as response:
                assert response.status == 400
        async with http.get(answers, headers=auth) as response:
            (queued,) = (await response.json())["answers"]
        assert (queued["status"], queued["case_number"]) == ("received", created["case_number"])
        async with http.delete(f"{answers}/{queued['id']}", headers=auth) as response:
            assert response.status == 204
        async with http.delete(f"{answers}/{queued['id']}", headers=auth) as response:
            assert response.status == 404  # acknowledged: gone from the queue
        clerk = f"{fachverfahren.url}/_sim/cases/{created['id']}/answers"
        async with http.post(clerk, json={"status": "approved"}) as response:
            assert response.status == 422
        # the shared knobs, at runtime: the next request fails, then it answers again
        async with http.post(f"{fachverfahren.url}/_sim/faults", json={"fail_next": 1}) as response:
            assert response.status == 200
        health = fachverfahren.url + "/api/health"
        for expected in (503, 200):
            async with http.get(health, headers=auth) as response:
                assert response.status == expected
    assert len(fachverfahren.state.cases) == 1


async def test_the_mappings_payload_shapes_the_case(
    start_fachverfahren: StartFachverfahren, connector_context: ConnectorContext, blobs: Blobs
) -> None:
    fachverfahren = await start_fachverfahren()
    sink = make_sink(connector_context, fachverfahren.url)
    app = await make_application(blobs, external_id="payload")
    record = record_of(app)
    record.payloads[sink.name] = {"verfahren": "JS-01", "subject": "Jahresjagdschein", "fields": {"art": "J"}}
    await sink.deliver(record, delivery_context(app, blobs))
    (case,) = fachverfahren.state.cases_for(app.id)
    assert (case.service, case.form) == ("JS-01", {"art": "J"})

    other = await make_application(blobs, external_id="payload-unfit")
    unfit = record_of(other)
    unfit.payloads[sink.name] = {"verfahren": "JS-01", "aktenplan": "32.3"}
    with pytest.raises(Permanent, match=f"payloads.{sink.name} does not fit"):
        await sink.deliver(unfit, delivery_context(other, blobs))
    assert fachverfahren.state.cases_for(other.id) == []


@dataclass
class ReturnChannel:
    """Answers as the core's return channel keeps them: one per (connector, answer id)."""

    known: set[str]  # application ids of the hub
    answers: dict[tuple[str, str], Answer] = dataclasses.field(default_factory=dict)

    async def __call__(self, connector: str, answer: Answer) -> AnswerOutcome:
        if answer.application_id not in self.known:
            raise UnknownApplication(answer.application_id or "")
        duplicate = (connector, answer.answer_id) in self.answers
        self.answers.setdefault((connector, answer.answer_id), answer)
        return AnswerOutcome(application_id=answer.application_id, duplicate=duplicate)


async def test_answers_reach_the_hub_once_then_leave_the_queue(
    start_fachverfahren: StartFachverfahren, connector_context: ConnectorContext, blobs: Blobs
) -> None:
    fachverfahren = await start_fachverfahren()
    app = await make_application(blobs, external_id="answered")
    channel = ReturnChannel(known={app.id})
    sink = make_sink(dataclasses.replace(connector_context, _answer=channel), fachverfahren.url)
    await sink.deliver(record_of(app), delivery_context(app, blobs))
    (case,) = fachverfahren.state.cases_for(app.id)
    decision = b"%PDF-1.4 Bescheid"
    fachverfahren.state.queue_answer(
        case, "decided", "Erlaubnis erteilt", ("Bescheid.pdf", "application/pdf", decision)
    )

    assert await sink.poll_answers() == 2
    received, decided = channel.answers.values()
    assert (received.status, received.case_number, received.application_id) == (
        AnswerStatus.ACCEPTED,
        case.case_number,
        app.id,
    )
    assert (decided.status, decided.message) == (AnswerStatus.DECIDED, "Erlaubnis erteilt")
    assert decided.decision is not None and decided.decision.name == "Bescheid.pdf"
    assert await blobs.read_bytes(decided.decision.blob) == decision
    assert fachverfahren.state.pending_answers() == []
    assert await sink.poll_answers() == 0

    # The acknowledgement's answer got lost: the answer comes again and changes nothing.
    fachverfahren.state.answers[1].acknowledged = False
    assert await sink.poll_answers() == 1
    assert len(channel.answers) == 2 and fachverfahren.state.pending_answers() == []


async def test_an_answer_for_no_application_of_the_hub_stays_in_the_queue(
    start_fachverfahren: StartFachverfahren, connector_context: ConnectorContext, blobs: Blobs
) -> None:
    fachverfahren = await start_fachverfahren()
    app = await make_application(blobs, external_id="not-ours")
    sink = make_sink(
        dataclasses.replace(connector_context, _answer=ReturnChannel(known=set())), fachverfahren.url
    )
    await sink.deliver(record_of(app), delivery_context(app, blobs))
    assert await sink.poll_answers() == 0
    assert [a.status for a in fachverfahren.state.pending_answers()] == ["received"]


async def test_a_failing_answer_queue_is_retryable(
    start_fachverfahren: StartFachverfahren, connector_context: ConnectorContext
) -> None:
    fachverfahren = await start_fachverfahren(fail_next=1)
    with pytest.raises(Retryable, match="answer fetch"):
        await make_sink(connector_context, fachverfahren.url).poll_answers()


def test_plugin_offers_the_sink_and_the_simulator() -> None:
    assert list(plugin.aktenhub_connector_types()) == [ExampleFachverfahrenSink]
    (simulator,) = plugin.aktenhub_simulators()
    assert simulator.name == "fachverfahren-example"
    assert STATE in simulator.make_app(fail_next="2")


async def _start_hub(
    hub_factory: Any, fachverfahren: Fachverfahren, routes: list[dict[str, Any]] | None = None, **fv: Any
) -> RunningHub:
    connectors = {
        "json": {"type": "test-json"},
        "efile": {"type": "test-efile", "file_number": "32.3-2026-0001"},  # the test kit's e-file
        "mailbox": {"type": "test-notifier"},
        "fv": {
            "type": "fachverfahren-example",
            "base_url": fachverfahren.url,
            "auth": {"type": "basic", "username": USER, "password": "${FV_PASSWORD}"},
            "timeout_seconds": 5,
            "retry": {"max_attempts": 5, "initial_seconds": 0.05, "max_seconds": 0.1, "jitter_seconds": 0},
            **fv,
        },
    }
    routes = routes or [{"name": "to-fv", "from": "json", "to": ["fv"]}]
    # The template is not installed, so its plugin module is handed to the hub directly.
    running: RunningHub = await hub_factory(
        connectors, routes, extra_plugins=(plugin,), env={"FV_PASSWORD": PASSWORD}
    )
    return running


class TestExampleFachverfahrenAnswers(AnsweringSinkContract):
    """The return channel's contract: the simulator's clerk answers, the hub polls the answer queue."""

    answering_target = "fv"

    @pytest_asyncio.fixture
    async def answering_hub(self, hub_factory: Any, start_fachverfahren: StartFachverfahren) -> RunningHub:
        # Only the answers the contract gives: no automatic "received" for each new case.
        self.fachverfahren = await start_fachverfahren(answer_on_create=False)
        self.given: dict[int, StoredAnswer] = {}
        return await _start_hub(hub_factory, self.fachverfahren, answer_poll_seconds=0.05)

    async def submit(self, running: RunningHub, n: int) -> str:
        status, body = await running.post("/intake/json/jagdschein", json={"id": f"answers-{n}", "form": {}})
        assert status == 202, body
        return str(body["application_id"])

    async def give_answer(
        self, running: RunningHub, application_id: str, n: int, status: AnswerStatus
    ) -> None:
        earlier = self.given.get(n)
        if earlier is not None:
            earlier.acknowledged = False  # the Fachverfahren queues the same answer again
            return
        (case,) = self.fachverfahren.state.cases_for(application_id)
        wording = next(name for name, known in STATUSES.items() if known is status)
        self.given[n] = self.fachverfahren.state.queue_answer(case, wording)

    async def acknowledgements(self, running: RunningHub, application_id: str, n: int) -> int:
        given = self.given.get(n)
        return 0 if given is None else given.acknowledgements


async def test_end_to_end_the_answers_update_the_akte_and_tell_the_applicant(
    hub_factory: Any, start_fachverfahren: StartFachverfahren
) -> None:
    fachverfahren = await start_fachverfahren()
    route = {
        "name": "jagdschein",
        "from": "json",
        "to": ["efile", "fv"],
        "on_answer": {"update_akte": "efile", "notify": "mailbox", "decision": "both"},
    }
    running = await _start_hub(hub_factory, fachverfahren, [route], answer_poll_seconds=0.05)
    status, body = await running.post("/intake/json/jagdschein", json={"id": "e2e-answer", "form": {}})
    assert status == 202, body
    application_id = body["application_id"]
    assert await running.wait_for_state(application_id) == ApplicationState.COMPLETED
    (case,) = fachverfahren.state.cases_for(application_id)
    decision = b"%PDF-1.4 Bescheid"
    fachverfahren.state.queue_answer(
        case, "decided", "Erlaubnis erteilt", ("Bescheid.pdf", "application/pdf", decision)
    )

    async def both_taken() -> bool:
        stored = await running.journal.answers(application_id)
        return len(stored) == 2 and not fachverfahren.state.pending_answers()

    await running.wait_for(both_taken, what="both answers stored and acknowledged")
    received, decided = (a.answer for a in await running.journal.answers(application_id))
    assert (received.status, received.case_number) == (AnswerStatus.ACCEPTED, case.case_number)
    assert (decided.status, decided.message) == (AnswerStatus.DECIDED, "Erlaubnis erteilt")
    assert decided.decision is not None
    assert await running.hub.blobs.read_bytes(decided.decision.blob) == decision
    stored = await running.journal.get_application(application_id)
    assert stored.correlations["fv.case_number"] == case.case_number
    assert stored.file_number == "32.3-2026-0001"  # the e-file's Aktenzeichen, unchanged by the answers
    assert [a.acknowledgements for a in fachverfahren.state.answers] == [1, 1]

    # What the route's on_answer asks: the Akte updated with the decision filed, the applicant told.
    efile, mailbox = running.hub.connectors["efile"], running.hub.connectors["mailbox"]
    assert isinstance(efile, RecordingEfile) and isinstance(mailbox, RecordingNotifier)
    await running.wait_for(
        lambda: len(mailbox.statuses) == 2 and len(efile.answered) == 2,
        what="the Akte updated and the applicant told of both answers",
    )
    filed = [r for r in efile.answered.values() if r.status is AnswerStatus.DECIDED]
    assert [(r.case_number, r.file_number) for r in filed] == [(case.case_number, "32.3-2026-0001")]
    assert [d.name for d in filed[0].documents] == ["Bescheid.pdf"]
    assert {r.status for r in mailbox.statuses.values()} == {AnswerStatus.ACCEPTED, AnswerStatus.DECIDED}


async def test_end_to_end_from_intake_to_case(
    hub_factory: Any, start_fachverfahren: StartFachverfahren
) -> None:
    fachverfahren = await start_fachverfahren(fail_next=2)  # the core retries past two 503 answers
    running = await _start_hub(hub_factory, fachverfahren)
    status, body = await running.post(
        "/intake/json/jagdschein", json={"id": "e2e-1", "form": {"vorname": "Erika"}}
    )
    assert status == 202, body
    application_id = body["application_id"]
    assert await running.wait_for_state(application_id) == ApplicationState.COMPLETED

    (case,) = fachverfahren.state.cases_for(application_id)
    assert (case.service, case.form, case.status) == ("jagdschein", {"vorname": "Erika"}, "complete")
    stored = await running.journal.get_application(application_id)
    assert stored.correlations["fv"] == stored.correlations["fv.case"] == case.id
    assert stored.correlations["fv.case_number"] == case.case_number
    assert stored.file_number != case.case_number


async def test_end_to_end_refused_case_waits_dead_with_the_reason(
    hub_factory: Any, start_fachverfahren: StartFachverfahren
) -> None:
    fachverfahren = await start_fachverfahren(required_form_fields="aktenzeichen")
    running = await _start_hub(hub_factory, fachverfahren)
    status, body = await running.post("/intake/json/jagdschein", json={"id": "e2e-2", "form": {}})
    assert status == 202, body
    assert await running.wait_for_state(body["application_id"]) == ApplicationState.DEAD
    summary = await running.journal.get_summary(body["application_id"])
    assert "form field 'aktenzeichen' is mandatory" in summary.error
    assert fachverfahren.state.cases == {}
