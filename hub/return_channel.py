"""The return channel: a Fachverfahren's answers stored durably, then filed and told, once each.

An answer (`hub.answers.Answer`) is stored by `ReturnChannel.answer` in one transaction with its event
on the application's timeline, the case number as a correlation (``<connector>.case_number``, never the
Aktenzeichen) and the tasks the route's `on_answer` setting asks for, one per answer and target:

- ``answer-file`` on the `update_akte` e-file target: `Sink.record_answer` sets the Akte's index fields
  and files the decision;
- ``answer-notify`` per notifier: `Notifier.notify` with a `Receipt` of kind ``status``.

Both run on the bus like every step (retried, dead and replayable, idempotent per answer id at the
target). An answer of status ``failed`` (the Fachverfahren refused the import) makes that delivery dead
with the system's error instead: the application shows it and a replay delivers again; nobody is told.

Where the route's `file_number.assigned_by` names the connector, its first case number becomes the
Aktenzeichen (see `hub.pipeline`); the steps of an answer that comes before the application's own steps
are done (the number's own answer, typically) wait for them (see `Journal.store_answer`).

State: an answer that creates steps makes its application ``processing`` (also after it was
``completed``: it stays open for answers); the answer step that ends last, with no other step of the
application left, makes it ``completed`` again; a dead answer step makes it ``dead`` like any step, and
a replay runs it again. An abandoned or rejected application keeps its answers on the timeline and
triggers nothing; so does one whose payload was purged after its retention period (`hub.retention`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from typing import Any

from hub.answers import Answer, AnswerOutcome, AnswerRecord
from hub.config import OnAnswer, RouteConfig
from hub.connectors import DeliveryContext, Notifier, Sink
from hub.errors import Permanent
from hub.events import PRODUCED_IDS
from hub.journal import (
    AfterAll,
    AnswerEffects,
    ApplicationPatch,
    Completion,
    ReceivedAnswer,
    Task,
    TaskFailure,
    TaskSpec,
)
from hub.models import (
    AnswerStatus,
    Application,
    ApplicationState,
    Document,
    DocumentContent,
    Event,
    Receipt,
    ReceiptKind,
)
from hub.pipeline import DELIVER, Pipeline, file_number_assigned, notified_ids

log = logging.getLogger(__name__)

ANSWER_FILE, ANSWER_NOTIFY = "answer-file", "answer-notify"
FAILED_CODE = "answer-failed"  # error code of a delivery the Fachverfahren refused afterwards
# States in which an answer is kept on the timeline but triggers nothing.
CLOSED = (ApplicationState.ABANDONED, ApplicationState.REJECTED)


class ReturnChannel:
    """Takes answers in and runs the steps they trigger, beside the pipeline (whose helpers it shares)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.journal = pipeline.journal
        self.bus = pipeline.bus
        self.metrics = pipeline.metrics
        self.bus.handle(ANSWER_FILE, self.file)
        self.bus.handle(ANSWER_NOTIFY, self.notify)
        self.metrics.declare_steps(self.step_targets())

    def step_targets(self) -> set[tuple[str, str]]:
        """Every (step, target) the routes' `on_answer` settings can create a task for."""
        pairs: set[tuple[str, str]] = set()
        for route in self.pipeline.router.routes:
            if route.on_answer is None:
                continue
            if route.on_answer.update_akte is not None:
                pairs.add((ANSWER_FILE, route.on_answer.update_akte))
            pairs.update((ANSWER_NOTIFY, n) for n in route.on_answer.notify)
        return pairs

    # -- intake ------------------------------------------------------------------------------------

    async def answer(self, connector: str, answer: Answer) -> AnswerOutcome:
        """Store an answer of `connector` with what it triggers; returns after the durable commit."""
        self.pipeline._connector(connector, Sink)
        # The decision the transport wrote stays. Never withdrawn, even for a repeat or a failure: a
        # callback may carry several answers, and withdrawing would drop those stored before; what was
        # kept for nothing, the orphan sweep removes later.
        holding = self.pipeline.blobs.current_holding()
        if holding is not None and answer.decision is not None:
            holding.keep([answer.decision.blob])
        stored = await self.journal.store_answer(connector, answer, partial(self._plan, connector, answer))
        if stored.duplicate:
            self.metrics.answer_repeats.labels(connector).inc()
        else:
            self.metrics.answers.labels(connector, answer.status.value).inc()
            log.info(
                "answer received application=%s connector=%s answer=%s status=%s",
                stored.application_id,
                connector,
                answer.answer_id,
                answer.status.value,
            )
        if stored.events:
            self.bus.emit(stored.events)
        return AnswerOutcome(application_id=stored.application_id, duplicate=stored.duplicate)

    def _plan(
        self, connector: str, answer: Answer, app: Application, state: ApplicationState, row: int
    ) -> AnswerEffects:
        """What the answer changes (runs inside the transaction that stores it)."""
        correlations = {f"{connector}.case_number": answer.case_number} if answer.case_number else {}
        received = Event(
            application_id=app.id,
            type="answer.received",
            step="answer",
            target=connector,
            data={
                "answer_id": answer.answer_id,
                "status": answer.status.value,
                "case_number": answer.case_number,
                "decision": answer.decision is not None,
                PRODUCED_IDS: {f"{connector}.answer_id": answer.answer_id, **correlations},
            },
        )
        patch = ApplicationPatch(correlations=correlations)
        if state in CLOSED:
            return AnswerEffects(patch=patch, events=[received])
        if app.purged is not None:
            # Its mapped record and the applicant's data are gone: nothing to file or tell with.
            log.warning(
                "answer for a purged application kept on its timeline only application=%s connector=%s",
                app.id,
                connector,
            )
            return AnswerEffects(patch=patch, events=[received])
        if answer.status is AnswerStatus.FAILED:
            reason = answer.error or answer.status_text or "no reason given"
            error = f"{connector} refused the import: {reason}"
            return AnswerEffects(
                patch=patch,
                events=[received],
                failed_task=TaskFailure(DELIVER, connector, error, FAILED_CODE),
                state=ApplicationState.DEAD,
            )
        route = self.pipeline.router.by_name(app.route or "")
        assigned = None
        if route is not None and route.assigner == connector and answer.case_number:
            # The Fachverfahren's case number is the Aktenzeichen (the journal keeps the first only).
            assigned = file_number_assigned(app.id, connector, answer.case_number, "answer")
        on_answer = route.on_answer if route is not None else None
        if on_answer is None:
            return AnswerEffects(patch=patch, events=[received], assigned=assigned)
        tasks = self._tasks(app, on_answer, row)
        return AnswerEffects(
            patch=patch,
            events=[received],
            tasks=tasks,
            state=ApplicationState.PROCESSING if tasks else None,
            assigned=assigned,
        )

    def _tasks(self, app: Application, on_answer: OnAnswer, row: int) -> list[TaskSpec]:
        targets = [(ANSWER_NOTIFY, n) for n in on_answer.notify]
        if on_answer.update_akte is not None:
            targets.insert(0, (ANSWER_FILE, on_answer.update_akte))
        # One answer at a time per application and target: statuses arrive in their order.
        return [
            replace(self.pipeline._task(step, target, f"answer:{app.id}:{target}"), subject=str(row))
            for step, target in targets
        ]

    # -- steps -------------------------------------------------------------------------------------

    async def file(self, task: Task) -> Completion:
        """Have the e-file target record what the answer changes (index fields, the decision)."""
        app, route, received = await self._load(task)
        sink = self.pipeline._connector(task.target, Sink)
        record = await self.answer_record(app, route, received)

        async def save(checkpoints: dict[str, Any]) -> None:
            await self.journal.save_checkpoints(task, checkpoints)

        ctx = DeliveryContext(app, self.pipeline.blobs, task.checkpoints, save, task.attempts)
        delivery = await sink.record_answer(record, ctx)
        prefix = f"{task.target}.answer-{received.row}"
        correlations = {f"{prefix}.{k}": v for k, v in delivery.correlations.items()}
        if delivery.reference:
            correlations.setdefault(prefix, delivery.reference)
        return Completion(
            result=delivery.model_dump(mode="json"),
            patch=ApplicationPatch(correlations=correlations),
            events=[
                Event(
                    application_id=app.id,
                    type="answer.filed",
                    step=ANSWER_FILE,
                    target=task.target,
                    data={
                        "answer_id": received.answer.answer_id,
                        "reference": delivery.reference,
                        "duplicate": delivery.duplicate,
                        "documents": len(record.documents),
                        PRODUCED_IDS: correlations,
                    },
                )
            ],
            after_all=_done(),
            checkpoints=ctx.completion_checkpoints,
        )

    async def notify(self, task: Task) -> Completion:
        """Tell the applicant the case's new status (with the decision, where the route allows)."""
        app, route, received = await self._load(task)
        notifier = self.pipeline._connector(task.target, Notifier)
        answer = received.answer
        on_answer = route.on_answer or OnAnswer()
        receipt = Receipt(
            application_id=app.id,
            kind=ReceiptKind.STATUS,
            file_number=app.file_number,
            answer_id=answer.answer_id,
            status=answer.status,
            case_number=answer.case_number,
            message=answer.message,
            documents=[answer.decision] if answer.decision and on_answer.attaches_decision else [],
        )
        sent = await notifier.notify(app, receipt)
        ids = notified_ids(f"{task.target}.status.{answer.answer_id}", sent)
        return Completion(
            patch=ids,
            events=[
                Event(
                    application_id=app.id,
                    type="receipt.sent",
                    step=ANSWER_NOTIFY,
                    target=task.target,
                    data={
                        "kind": receipt.kind.value,
                        "status": answer.status.value,
                        "answer_id": answer.answer_id,
                        PRODUCED_IDS: ids.correlations if ids else {},
                    },
                )
            ],
            after_all=_done(),
        )

    async def answer_record(
        self, app: Application, route: RouteConfig, received: ReceivedAnswer
    ) -> AnswerRecord:
        """What the answer changes in the e-file, from the route's mapping (`answers:`) or the default."""
        answer = received.answer
        mapped = await self.pipeline._record(app)
        on_answer = route.on_answer or OnAnswer()
        mapping = self.pipeline.mappings.get(route.name)
        fields: dict[str, str] = {}
        documents: list[Document] = []
        if mapping is not None:
            fields, documents = mapping.answer_changes(app, answer)
        if answer.decision is not None and on_answer.files_decision and not documents:
            documents = [_decision_document(answer)]
        elif not on_answer.files_decision:
            documents = []
        return AnswerRecord(
            application_id=app.id,
            answer_id=answer.answer_id,
            source=received.connector,
            status=answer.status,
            case_number=answer.case_number,
            file_number=app.file_number,
            akte=mapped.akte,
            vorgang=mapped.vorgang,
            akte_fields=fields,
            documents=documents,
            at=answer.at,
        )

    # -- helpers -----------------------------------------------------------------------------------

    async def _load(self, task: Task) -> tuple[Application, RouteConfig, ReceivedAnswer]:
        app, route = await self.pipeline._load(task)
        received = await self.journal.get_answer(int(task.subject or 0))
        if received is None or received.application_id != app.id:
            raise Permanent(f"answer {task.subject!r} of this task is not in the journal")
        return app, route, received


def _done() -> AfterAll:
    """Completed again once no step of the application is left (whichever step ends last)."""
    return AfterAll(step=None, state=ApplicationState.COMPLETED)


def _decision_document(answer: Answer) -> Document:
    """The decision, filed as a document of type Bescheid (when the mapping names none)."""
    decision = answer.decision
    assert decision is not None
    return Document(
        type="Bescheid",
        name=decision.name,
        content=DocumentContent.ATTACHMENT,
        blob=decision.blob,
        media_type=decision.media_type,
    )
