"""The `rest` sink against the simulated Fachverfahren: validation before sending, idempotency, answers."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hub_fachverfahren.rest import RestConfig
from hub_fachverfahren.rest.simulator import decision_sha256
from pydantic import ValidationError
from rest_helpers import StartFv, make_sink, record_for, start_fv

from hub import (
    Answer,
    AnswerOutcome,
    AnswerStatus,
    BadSubmission,
    ConnectorContext,
    Permanent,
    Retryable,
    UnknownApplication,
)
from hub.blobs import BlobStore
from hub.callbacks import callback_refusal
from hub.testing import delivery_context, make_application

__all__ = ["start_fv"]


async def test_case_number_is_a_correlation_never_the_file_number(
    start_fv: StartFv, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    fv = await start_fv()
    sink = make_sink(connector_context, fv.settings())
    app = await make_application(blobs, external_id="rest-1")
    delivery = await sink.deliver(record_for(app), delivery_context(app, blobs))
    (case,) = fv.state.cases.values()
    assert delivery.reference == case.id
    assert delivery.correlations == {"case_number": case.aktenzeichen}
    assert delivery.file_number is None
    assert case.request["aktenhubId"] == app.id
    assert fv.state.token_requests == 1  # the OAuth2 token is fetched once and reused


async def test_body_that_does_not_fit_the_description_is_permanent_and_never_sent(
    start_fv: StartFv, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    fv = await start_fv()
    sink = make_sink(connector_context, fv.settings())
    app = await make_application(blobs, external_id="rest-2")
    record = record_for(app, antragsteller={"vorname": "Jürgen"}, farbe="blau")
    with pytest.raises(Permanent) as refused:
        await sink.deliver(record, delivery_context(app, blobs))
    assert "nachname" in str(refused.value) and "farbe" in str(refused.value)
    assert fv.state.create_requests == 0 and fv.state.token_requests == 0


async def test_lost_checkpoint_repeats_with_the_same_idempotency_key_one_case(
    start_fv: StartFv, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    fv = await start_fv()
    sink = make_sink(connector_context, fv.settings())
    app = await make_application(blobs, external_id="rest-3")
    first = await sink.deliver(record_for(app), delivery_context(app, blobs))
    # A crash after the Fachverfahren answered but before the checkpoint: the request goes again.
    again = await sink.deliver(record_for(app), delivery_context(app, blobs))
    assert fv.state.create_requests == 2
    assert fv.cases_of(app.id) == 1
    assert again.reference == first.reference and again.duplicate


async def test_missing_payload_is_permanent_naming_the_mapping_key(
    start_fv: StartFv, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    fv = await start_fv()
    sink = make_sink(connector_context, fv.settings())
    app = await make_application(blobs, external_id="rest-4")
    with pytest.raises(Permanent, match=r"payloads\.contract"):
        await sink.deliver(record_for(app, target="other"), delivery_context(app, blobs))
    assert fv.state.create_requests == 0


async def test_configuration_names_an_unknown_operation_or_a_broken_jsonpath(start_fv: StartFv) -> None:
    fv = await start_fv()
    with pytest.raises(ValidationError, match="no operation 'createAntrag'"):
        RestConfig.model_validate(fv.settings(operation="createAntrag"))
    with pytest.raises(ValidationError, match="not JSONPath"):
        RestConfig.model_validate(fv.settings(case_number="$.[aktenzeichen"))


async def test_status_callback_with_decision_becomes_an_answer_with_the_pdf_in_the_blob_store(
    start_fv: StartFv, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def hub_callback(request: web.Request) -> web.Response:
        received.append((await request.read(), dict(request.headers)))
        return web.json_response({"accepted": 1})

    receiver = web.Application()
    receiver.router.add_post("/callback/contract", hub_callback)
    server = TestServer(receiver, host="127.0.0.1")
    await server.start_server()
    try:
        fv = await start_fv(
            callback_url=f"http://127.0.0.1:{server.port}/callback/contract",
            callback_secret="callback-secret-of-the-test-1",
        )
        sink = make_sink(connector_context, fv.settings())
        app = await make_application(blobs, external_id="rest-5")
        delivery = await sink.deliver(record_for(app), delivery_context(app, blobs))
        sent = await fv.set_status(
            delivery.reference or "", status="BESCHIEDEN", message="Bitte zahlen", bescheid=True
        )
    finally:
        await server.close()
    assert sent["hub_status"] == 200
    ((body, headers),) = received
    auth = sink.callback_auth()
    assert auth is not None and auth.secret.get_secret_value() == "callback-secret-of-the-test-1"
    assert callback_refusal(auth, body, headers, time.time()) is None
    (answer,) = await sink.callback_answers(body, headers)
    assert answer.answer_id == sent["event"]["eventId"]
    assert answer.reference == delivery.reference
    assert answer.status is AnswerStatus.DECIDED and answer.status_text == "BESCHIEDEN"
    assert answer.case_number == delivery.correlations["case_number"]
    assert answer.message == "Bitte zahlen"
    assert answer.decision is not None and answer.decision.sha256 == decision_sha256()
    assert hashlib.sha256(await blobs.read_bytes(answer.decision.blob)).hexdigest() == decision_sha256()


async def test_callback_with_an_unmapped_status_or_a_foreign_decision_url_is_refused(
    start_fv: StartFv, connector_context: ConnectorContext
) -> None:
    fv = await start_fv()
    sink = make_sink(connector_context, fv.settings())
    with pytest.raises(BadSubmission, match="unknown status"):
        await sink.callback_answers(b'{"eventId": "e1", "caseId": "V-1", "status": "GEHEIM"}', {})
    foreign = b'{"eventId": "e2", "caseId": "V-1", "status": "BESCHIEDEN", "decision": {"url": "http://evil.example/x"}}'
    with pytest.raises(BadSubmission, match="not below"):
        await sink.callback_answers(foreign, {})
    with pytest.raises(BadSubmission, match="not JSON"):
        await sink.callback_answers(b"<xml/>", {})


POLLING = {
    "answers": {
        "operation": "listAnswers",
        "acknowledge": "ackAnswer",
        "parameter": "antwortId",
        "interval": 5,
    },
    "answer_fields": {"each": "$.antworten[*]"},
}


async def test_polled_answers_are_acknowledged_only_after_the_return_channel_stored_them(
    start_fv: StartFv, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    stored: dict[str, Answer] = {}
    channel_down = True

    async def return_channel(connector: str, answer: Answer) -> AnswerOutcome:
        if channel_down:
            raise Retryable("journal unavailable")
        if answer.reference != case_id:
            raise UnknownApplication(answer.reference)
        duplicate = answer.answer_id in stored
        stored.setdefault(answer.answer_id, answer)
        return AnswerOutcome(application_id="app-1", duplicate=duplicate)

    fv = await start_fv()
    context = dataclasses.replace(connector_context, _answer=return_channel)
    sink = make_sink(context, fv.settings(**POLLING))
    assert sink.answer_poll_interval == 5
    app = await make_application(blobs, external_id="rest-poll")
    case_id = (await sink.deliver(record_for(app), delivery_context(app, blobs))).reference
    await fv.set_status(case_id or "", status="IN_BEARBEITUNG")
    await fv.set_status(case_id or "", status="BESCHIEDEN", bescheid=True)

    with pytest.raises(Retryable):
        await sink.poll_answers()
    assert len(fv.state.pending) == 2 and sum(fv.state.acknowledged.values()) == 0  # nothing lost

    channel_down = False
    assert await sink.poll_answers() == 2
    assert fv.state.pending == {} and sum(fv.state.acknowledged.values()) == 2
    assert [a.status for a in stored.values()] == [AnswerStatus.IN_PROGRESS, AnswerStatus.DECIDED]
    decision = list(stored.values())[1].decision
    assert decision is not None and decision.sha256 == decision_sha256()
    assert await sink.poll_answers() == 0


async def test_polled_answer_for_no_known_application_stays_upstream(
    start_fv: StartFv, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    async def return_channel(connector: str, answer: Answer) -> AnswerOutcome:
        raise UnknownApplication(answer.reference)

    fv = await start_fv()
    sink = make_sink(dataclasses.replace(connector_context, _answer=return_channel), fv.settings(**POLLING))
    app = await make_application(blobs, external_id="rest-unknown")
    case_id = (await sink.deliver(record_for(app), delivery_context(app, blobs))).reference
    await fv.set_status(case_id or "", status="IN_BEARBEITUNG")
    assert await sink.poll_answers() == 0
    assert len(fv.state.pending) == 1 and sum(fv.state.acknowledged.values()) == 0


async def test_documents_are_streamed_to_the_upload_operation_each_once(
    start_fv: StartFv, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    fv = await start_fv()
    upload = {"documents": {"operation": "uploadDocument", "parameter": "vorgangId", "field": "datei"}}
    sink = make_sink(connector_context, fv.settings(**upload))
    app = await make_application(blobs, external_id="rest-docs", files={"plan.pdf": b"%PDF-1.4 plan " * 5000})
    record = record_for(app)
    assert len(record.documents) >= 2
    store: dict[str, Any] = {}
    await fv.set_faults(fail_uploads=1)  # the case is created, its first document fails
    with pytest.raises(Retryable):
        await sink.deliver(record, delivery_context(app, blobs, store))
    await sink.deliver(record, delivery_context(app, blobs, store))
    await sink.deliver(record, delivery_context(app, blobs, store))  # all checkpointed: nothing sent
    assert fv.state.create_requests == 1
    assert fv.state.upload_requests == len(record.documents) + 1
    (case,) = fv.state.cases.values()
    expected = {
        (d.name, hashlib.sha256(await blobs.read_bytes(d.blob or "")).hexdigest()) for d in record.documents
    }
    assert set(case.documents.values()) == expected
    assert len(case.documents) == len(record.documents)
