"""The `soap` sink against the simulated SOAP Fachverfahren: the sink contract, faults, arguments checked."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_fachverfahren.rest.simulator import decision_sha256
from hub_fachverfahren.soap import SoapSink
from hub_fachverfahren.soap.simulator import DEFAULT_USERS, PATH, STATE, WSDL, SoapFvState, make_app
from rest_helpers import closed_loopback_port

from hub import (
    Answer,
    AnswerOutcome,
    AnswerStatus,
    Application,
    ConnectorContext,
    FileRecord,
    Permanent,
    Retryable,
    Sink,
)
from hub.blobs import BlobStore
from hub.testing import Fault, SinkContract, default_record, delivery_context, make_application
from hub.testing.memory import MemoryBlobs

USER, PASSWORD = next(iter(DEFAULT_USERS.items()))
Started = tuple[str, SoapFvState]
StartSoap = Callable[..., Awaitable[Started]]


@pytest_asyncio.fixture
async def start_soap() -> AsyncIterator[StartSoap]:
    """Start simulated SOAP Fachverfahren; they stop at teardown."""
    servers: list[TestServer] = []

    async def start(**options: Any) -> Started:
        app = make_app(**options)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}{PATH}", app[STATE]

    yield start
    for server in reversed(servers):
        await server.close()


def settings(endpoint: str, **overrides: Any) -> dict[str, Any]:
    """The connector section an operator writes."""
    return {
        "type": "soap",
        "wsdl": str(WSDL),
        "operation": "VorgangAnlegen",
        "endpoint": endpoint,
        "auth": {"type": "basic", "username": USER, "password": PASSWORD},
        "case_number": "$.Aktenzeichen",
        "reference": "$.VorgangsId",
        "timeout_seconds": 5,
        **overrides,
    }


def make_sink(context: ConnectorContext, endpoint: str, **overrides: Any) -> SoapSink:
    return SoapSink(SoapSink.Config.model_validate(settings(endpoint, **overrides)), context)


def record_for(application: Application, **changes: Any) -> FileRecord:
    arguments = {
        "ExterneKennung": application.id,
        "Leistung": application.service,
        "Antragsteller": {
            "Vorname": application.form.get("vorname"),
            "Nachname": application.form["nachname"],
        },
        **changes,
    }
    return default_record(application).model_copy(update={"payloads": {"contract": arguments}})


class TestSoapContract(SinkContract):
    @pytest.fixture(autouse=True)
    def _environment(self, start_soap: StartSoap, connector_context: ConnectorContext) -> None:
        self.start_soap = start_soap
        self.context = connector_context
        self.targets: dict[str, SoapFvState] = {}

    async def _against_simulator(self, overrides: dict[str, Any] | None = None, **knobs: Any) -> Sink[Any]:
        endpoint, state = await self.start_soap(**knobs)
        self.targets[endpoint] = state
        return make_sink(self.context, endpoint, **(overrides or {}))

    @pytest_asyncio.fixture
    async def sink(self, _environment: None) -> Sink[Any]:
        return await self._against_simulator()

    def record(self, application: Application) -> FileRecord:
        return record_for(application)

    async def results(self, sink: Sink[Any], application: Application) -> int:
        state = self.targets.get(sink.config.endpoint)
        return 0 if state is None else int(application.id in state.cases)

    async def test_reads_blobs_only_through_the_protocol(self, sink: Sink[Any]) -> None:
        """The soap transport sends the mapped arguments only, no document content: on a store without
        a filesystem it delivers, and reads nothing."""
        blobs = MemoryBlobs()
        app = await make_application(blobs, external_id="contract-memory")
        await sink.deliver(self.record(app), delivery_context(app, blobs))
        assert await self.results(sink, app) == 1
        assert blobs.reads == 0

    async def faulty_sink(self, fault: Fault) -> Sink[Any] | None:
        if fault is Fault.TIMEOUT:
            return await self._against_simulator({"timeout_seconds": 0.2}, latency_seconds=60)
        if fault is Fault.SERVER_ERROR:
            return await self._against_simulator(fail_next=1000)
        if fault is Fault.UNREACHABLE:
            return make_sink(self.context, f"http://127.0.0.1:{closed_loopback_port()}{PATH}")
        return await self._against_simulator(users={"someone-else": "another-password-1"})


async def test_case_number_from_the_answer_is_a_correlation(
    start_soap: StartSoap, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    endpoint, state = await start_soap()
    app = await make_application(blobs, external_id="soap-1")
    delivery = await make_sink(connector_context, endpoint).deliver(
        record_for(app), delivery_context(app, blobs)
    )
    case = state.cases[app.id]
    assert delivery.reference == case["VorgangsId"]
    assert delivery.correlations == {"case_number": case["Aktenzeichen"]}
    assert delivery.file_number is None


async def test_arguments_that_do_not_fit_the_wsdl_are_permanent_and_never_sent(
    start_soap: StartSoap, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    endpoint, state = await start_soap()
    app = await make_application(blobs, external_id="soap-2")
    sink = make_sink(connector_context, endpoint)
    with pytest.raises(Permanent, match="Farbe"):
        await sink.deliver(record_for(app, Farbe="blau"), delivery_context(app, blobs))
    assert state.requests == 0


async def test_client_fault_is_permanent_with_the_fault_string(
    start_soap: StartSoap, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    endpoint, state = await start_soap()
    app = await make_application(blobs, external_id="soap-3")
    # zeep takes any string; the service's schema allows 100 characters: its client fault says so.
    record = record_for(app, Leistung="x" * 101)
    with pytest.raises(Permanent, match=r"answered a SOAP fault \(soap:Client\): .*Leistung"):
        await make_sink(connector_context, endpoint).deliver(record, delivery_context(app, blobs))
    assert state.requests == 1 and state.cases == {}


async def test_server_fault_is_retryable_with_the_fault_string(
    start_soap: StartSoap, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    endpoint, _ = await start_soap(fail_next=1)
    app = await make_application(blobs, external_id="soap-4")
    sink = make_sink(connector_context, endpoint)
    with pytest.raises(
        Retryable, match=r"answered a SOAP fault \(soap:Server\): service temporarily unavailable"
    ):
        await sink.deliver(record_for(app), delivery_context(app, blobs))
    delivery = await sink.deliver(record_for(app), delivery_context(app, blobs))
    assert delivery.reference is not None


SOAP_POLLING = {
    "answers": {
        "operation": "AntwortenAbholen",
        "arguments": {"MaxAnzahl": 10},
        "acknowledge": "AntwortQuittieren",
        "parameter": "AntwortId",
        "interval": 30,
    },
    "answer_fields": {
        "each": "$[*]",
        "answer_id": "$.AntwortId",
        "reference": "$.VorgangsId",
        "case_number": "$.Aktenzeichen",
        "status": "$.Status",
        "message": "$.Hinweis",
        "decision_content": "$.Bescheid.Inhalt",
        "decision_name": "$.Bescheid.Dateiname",
        "decision_url": None,
        "decision_media_type": None,
    },
    "status_map": {"IN_BEARBEITUNG": "in_progress", "BESCHIEDEN": "decided"},
}


async def test_polled_soap_answers_with_the_decision_are_acknowledged_after_storing(
    start_soap: StartSoap, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    stored: list[Answer] = []

    async def return_channel(connector: str, answer: Answer) -> AnswerOutcome:
        stored.append(answer)
        return AnswerOutcome(application_id="app-1", duplicate=False)

    endpoint, state = await start_soap()
    sink = make_sink(dataclasses.replace(connector_context, _answer=return_channel), endpoint, **SOAP_POLLING)
    assert sink.answer_poll_interval == 30
    app = await make_application(blobs, external_id="soap-poll")
    delivery = await sink.deliver(record_for(app), delivery_context(app, blobs))
    await _set_status(endpoint, app.id, status="IN_BEARBEITUNG")
    await _set_status(endpoint, app.id, status="BESCHIEDEN", message="Erteilt", bescheid=True)
    assert await sink.poll_answers() == 2
    assert state.pending == {} and sum(state.acknowledged.values()) == 2
    first, second = stored
    assert (first.reference, first.status) == (delivery.reference, AnswerStatus.IN_PROGRESS)
    assert first.case_number == delivery.correlations["case_number"] and first.decision is None
    assert second.status is AnswerStatus.DECIDED and second.message == "Erteilt"
    assert second.decision is not None and second.decision.sha256 == decision_sha256()
    assert await sink.poll_answers() == 0


async def _set_status(endpoint: str, kennung: str, **order: Any) -> None:
    base = endpoint.removesuffix(PATH)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/_sim/vorgaenge/{kennung}/status", json=order) as r,
    ):
        assert r.status == 200, await r.text()
