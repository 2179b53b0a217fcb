"""Contract suites every source and sink must pass. Subclass them in the plugin's tests."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import pytest

from hub.answers import Answer, AnswerOutcome
from hub.blobs import Blobs
from hub.connectors import DeliveryContext, IntakeOutcome, Sink
from hub.errors import Permanent, Retryable, StorageFull
from hub.journal import ApplicationFilter, TaskState
from hub.mapping import default_record
from hub.models import AnswerStatus, Application, FileRecord
from hub.testing.harness import RunningHub, make_application
from hub.testing.memory import MemoryBlobs


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


def delivery_context(app: Application, blobs: Blobs, store: dict[str, Any] | None = None) -> DeliveryContext:
    """A delivery context whose checkpoints persist in `store` across attempts, as the journal's do."""
    store = {} if store is None else store

    async def save(checkpoints: dict[str, Any]) -> None:
        store.clear()
        store.update(checkpoints)

    return _StoredContext(app, blobs, dict(store), save, attempt=1, store=store)


class _StoredContext(DeliveryContext):
    """`delivery_context`'s: what goes with the completion is in `store` at once (the journal records it
    when the successful delivery that asked for it returns)."""

    def __init__(self, *args: Any, store: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._store = store

    def checkpoint_with_completion(self, values: Mapping[str, Any]) -> None:
        super().checkpoint_with_completion(values)
        self._store.clear()
        self._store.update(self.completion_checkpoints or {})


class SinkContract:
    """What every sink must do. Provide in the subclass:

    - fixture ``sink``: a started sink whose context uses the ``blobs`` fixture's store (a delivery
      reads content from its `DeliveryContext.blobs`, which the contract also sets to a `MemoryBlobs`);
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

    async def test_delivers_one_result(self, sink: Sink[Any], blobs: Blobs) -> None:
        app = await make_application(blobs, external_id="contract-1")
        delivery = await sink.deliver(self.record(app), delivery_context(app, blobs))
        assert delivery.target == sink.name
        assert await self.results(sink, app) == 1

    async def test_deliver_twice_one_result(self, sink: Sink[Any], blobs: Blobs) -> None:
        app = await make_application(blobs, external_id="contract-2")
        record = self.record(app)
        store: dict[str, Any] = {}
        first = await sink.deliver(record, delivery_context(app, blobs, store))
        second = await sink.deliver(record, delivery_context(app, blobs, store))
        assert await self.results(sink, app) == 1
        assert second.reference == first.reference

    async def test_separate_applications_separate_results(self, sink: Sink[Any], blobs: Blobs) -> None:
        a = await make_application(blobs, external_id="contract-a", form={"nachname": "A"})
        b = await make_application(blobs, external_id="contract-b", form={"nachname": "B"})
        await sink.deliver(self.record(a), delivery_context(a, blobs))
        await sink.deliver(self.record(b), delivery_context(b, blobs))
        assert await self.results(sink, a) == 1
        assert await self.results(sink, b) == 1

    async def test_reads_blobs_only_through_the_protocol(self, sink: Sink[Any]) -> None:
        """The sink streams content from the delivery's `Blobs`: a store without a filesystem serves it."""
        blobs = MemoryBlobs()
        app = await make_application(blobs, external_id="contract-memory")
        await sink.deliver(self.record(app), delivery_context(app, blobs))
        assert await self.results(sink, app) == 1
        assert blobs.reads > 0

    @pytest.mark.parametrize("fault", list(Fault))
    async def test_faults_classified(self, fault: Fault, blobs: Blobs) -> None:
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


class AnsweringSinkContract:
    """What every sink whose system answers (a Fachverfahren transport) must do. Provide in the subclass:

    - fixture ``answering_hub``: a `RunningHub` whose configuration has the sink under the name
      `answering_target` and a route delivering to it;
    - ``async def submit(self, running, n) -> str``: take application number ``n`` in (it is then
      delivered to the sink); return its id;
    - ``async def give_answer(self, running, application_id, n, status)``: make the remote system (its
      simulator) answer about the application, through the transport's own way back; the same ``n``
      means the same answer given again (a re-sent callback, the answer file written again);
    - ``async def acknowledgements(self, running, application_id, n) -> int``: how often the remote
      system learned that answer ``n`` was taken (file removed, row marked, callback answered 2xx).
    """

    answering_target = "fv"

    async def submit(self, running: RunningHub, n: int) -> str:
        raise NotImplementedError

    async def give_answer(
        self, running: RunningHub, application_id: str, n: int, status: AnswerStatus
    ) -> None:
        raise NotImplementedError

    async def acknowledgements(self, running: RunningHub, application_id: str, n: int) -> int:
        raise NotImplementedError

    async def _delivered(self, running: RunningHub, n: int) -> str:
        app_id = await self.submit(running, n)

        async def done() -> bool:
            return any(
                t.step == "deliver" and t.target == self.answering_target and t.state == TaskState.DONE
                for t in await running.journal.tasks(app_id)
            )

        await running.wait_for(done, what=f"delivery of {app_id} to {self.answering_target}")
        return app_id

    async def _acknowledged(self, running: RunningHub, app_id: str, n: int, times: int) -> None:
        async def enough() -> bool:
            return await self.acknowledgements(running, app_id, n) >= times

        await running.wait_for(enough, what=f"answer {n} acknowledged {times} time(s) upstream")

    async def _answers(self, running: RunningHub, app_id: str) -> list[Any]:
        return [a for a in await running.journal.answers(app_id) if a.connector == self.answering_target]

    async def test_answer_reaches_the_application(self, answering_hub: RunningHub) -> None:
        app_id = await self._delivered(answering_hub, 1)
        await self.give_answer(answering_hub, app_id, 1, AnswerStatus.ACCEPTED)
        await self._acknowledged(answering_hub, app_id, 1, 1)
        answers = await self._answers(answering_hub, app_id)
        assert [a.answer.status for a in answers] == [AnswerStatus.ACCEPTED]
        events = [e for e in await answering_hub.journal.events(app_id) if e.type == "answer.received"]
        assert [e.target for e in events] == [self.answering_target]

    async def test_answer_twice_changes_nothing_twice(self, answering_hub: RunningHub) -> None:
        app_id = await self._delivered(answering_hub, 2)
        await self.give_answer(answering_hub, app_id, 2, AnswerStatus.IN_PROGRESS)
        await self._acknowledged(answering_hub, app_id, 2, 1)
        await self.give_answer(answering_hub, app_id, 2, AnswerStatus.IN_PROGRESS)
        await self._acknowledged(answering_hub, app_id, 2, 2)
        assert len(await self._answers(answering_hub, app_id)) == 1
        events = [e for e in await answering_hub.journal.events(app_id) if e.type == "answer.received"]
        assert len(events) == 1

    async def test_acknowledged_only_after_stored(self, answering_hub: RunningHub) -> None:
        app_id = await self._delivered(answering_hub, 3)
        sink = answering_hub.hub.connectors[self.answering_target]
        stored = sink.context._answer
        assert stored is not None
        refused: list[str] = []

        async def journal_full(connector: str, answer: Answer) -> AnswerOutcome:
            refused.append(answer.answer_id)
            raise StorageFull("journal", "disk full (injected by the contract)")

        sink.context._answer = journal_full
        try:
            await self.give_answer(answering_hub, app_id, 3, AnswerStatus.DECIDED)
            await answering_hub.wait_for(lambda: refused, what="the answer to reach the hub")
            assert await self.acknowledgements(answering_hub, app_id, 3) == 0
        finally:
            sink.context._answer = stored
        # The system gives the unacknowledged answer again (or its next poll finds it still there).
        await self.give_answer(answering_hub, app_id, 3, AnswerStatus.DECIDED)
        await self._acknowledged(answering_hub, app_id, 3, 1)
        assert [a.answer.status for a in await self._answers(answering_hub, app_id)] == [AnswerStatus.DECIDED]
