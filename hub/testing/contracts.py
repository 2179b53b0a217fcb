"""Contract suites every source and sink must pass. Subclass them in the plugin's tests."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pytest

from hub.blobs import BlobStore
from hub.connectors import DeliveryContext, IntakeOutcome, Sink
from hub.errors import Permanent, Retryable
from hub.journal import ApplicationFilter
from hub.mapping import default_record
from hub.models import Application, FileRecord
from hub.testing.harness import RunningHub, make_application


class Fault(StrEnum):
    """Failure conditions a sink must classify."""

    TIMEOUT = "timeout"  # the target does not answer in time -> Retryable
    SERVER_ERROR = "server-error"  # 5xx -> Retryable
    UNREACHABLE = "unreachable"  # connection refused -> Retryable
    VALIDATION = "validation"  # the target refuses the content (4xx) -> Permanent


EXPECTED: dict[Fault, type[Exception]] = {
    Fault.TIMEOUT: Retryable,
    Fault.SERVER_ERROR: Retryable,
    Fault.UNREACHABLE: Retryable,
    Fault.VALIDATION: Permanent,
}


def delivery_context(
    app: Application, blobs: BlobStore, store: dict[str, Any] | None = None
) -> DeliveryContext:
    """A delivery context whose checkpoints persist in `store` across attempts, as the journal's do."""
    store = {} if store is None else store

    async def save(checkpoints: dict[str, Any]) -> None:
        store.clear()
        store.update(checkpoints)

    return DeliveryContext(app, blobs, dict(store), save, attempt=1)


class SinkContract:
    """What every sink must do. Provide in the subclass:

    - fixture ``sink``: a started sink whose context uses the ``blobs`` fixture's store;
    - ``async def results(self, sink, application) -> int``: how many results the target system holds
      for the application (read from the target, e.g. folders in the directory, objects in the DMS);
    - ``async def faulty_sink(self, fault) -> Sink | None``: a sink facing that fault (None: the fault
      cannot happen for this target; the case is skipped).
    """

    async def results(self, sink: Sink[Any], application: Application) -> int:
        raise NotImplementedError

    def record(self, application: Application) -> FileRecord:
        """The record the contract delivers; e-file sinks override it with a mapped one."""
        return default_record(application)

    async def faulty_sink(self, fault: Fault) -> Sink[Any] | None:
        return None

    async def test_delivers_one_result(self, sink: Sink[Any], blobs: BlobStore) -> None:
        app = await make_application(blobs, external_id="contract-1")
        delivery = await sink.deliver(self.record(app), delivery_context(app, blobs))
        assert delivery.target == sink.name
        assert await self.results(sink, app) == 1

    async def test_deliver_twice_one_result(self, sink: Sink[Any], blobs: BlobStore) -> None:
        app = await make_application(blobs, external_id="contract-2")
        record = self.record(app)
        store: dict[str, Any] = {}
        first = await sink.deliver(record, delivery_context(app, blobs, store))
        second = await sink.deliver(record, delivery_context(app, blobs, store))
        assert await self.results(sink, app) == 1
        assert second.reference == first.reference

    async def test_separate_applications_separate_results(self, sink: Sink[Any], blobs: BlobStore) -> None:
        a = await make_application(blobs, external_id="contract-a", form={"nachname": "A"})
        b = await make_application(blobs, external_id="contract-b", form={"nachname": "B"})
        await sink.deliver(self.record(a), delivery_context(a, blobs))
        await sink.deliver(self.record(b), delivery_context(b, blobs))
        assert await self.results(sink, a) == 1
        assert await self.results(sink, b) == 1

    @pytest.mark.parametrize("fault", list(Fault))
    async def test_faults_classified(self, fault: Fault, blobs: BlobStore) -> None:
        faulty = await self.faulty_sink(fault)
        if faulty is None:
            pytest.skip(f"{fault.value} does not apply to this sink")
        app = await make_application(blobs, external_id=f"contract-fault-{fault.value}")
        with pytest.raises(EXPECTED[fault]):
            await faulty.deliver(self.record(app), delivery_context(app, blobs))
        assert await self.results(faulty, app) == 0


class SourceContract:
    """What every source must do. Provide in the subclass:

    - fixture ``source_hub``: a `RunningHub` whose configuration has the source and a route from it;
    - ``async def submit(self, running, n) -> IntakeOutcome``: send submission number ``n`` through the
      real protocol (the same ``n`` means the same submission, re-sent);
    - ``async def submit_malformed(self, running) -> int``: send a malformed submission; return the
      HTTP status (or other refusal code) the sender got.
    """

    async def submit(self, running: RunningHub, n: int) -> IntakeOutcome:
        raise NotImplementedError

    async def submit_malformed(self, running: RunningHub) -> int:
        raise NotImplementedError

    async def _count(self, running: RunningHub) -> int:
        return len(await running.journal.list_applications(ApplicationFilter(), limit=10**6))

    async def test_intake_is_durable(self, source_hub: RunningHub) -> None:
        outcome = await self.submit(source_hub, 1)
        assert not outcome.duplicate
        stored = await source_hub.journal.get_application(outcome.application_id)
        assert stored is not None

    async def test_resent_submission_is_one_application(self, source_hub: RunningHub) -> None:
        first = await self.submit(source_hub, 2)
        again = await self.submit(source_hub, 2)
        assert again.application_id == first.application_id
        assert again.duplicate and not first.duplicate
        assert await self._count(source_hub) == 1

    async def test_distinct_submissions_are_distinct(self, source_hub: RunningHub) -> None:
        a = await self.submit(source_hub, 3)
        b = await self.submit(source_hub, 4)
        assert a.application_id != b.application_id
        assert await self._count(source_hub) == 2

    async def test_malformed_changes_nothing(self, source_hub: RunningHub) -> None:
        status = await self.submit_malformed(source_hub)
        assert 400 <= status < 500
        assert await self._count(source_hub) == 0
