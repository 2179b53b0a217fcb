"""The standard steps wired onto the bus: intake, identify, map, deliver, notify.

Each step reads what it needs from the journal, does its work, and returns a `Completion` holding the
next events and tasks, which the journal stores in the same transaction that ends the step.

Where a route's Fachverfahren assigns the Aktenzeichen (`file_number: {assigned_by: <target>}`), the
hub draws none: `map` gives that target the record without a number and leaves a `remap` step waiting
(event ``file_number.awaited``). The target's number, from its delivery (`Delivery.file_number`, else
its ``case_number`` correlation) or from its first answer with a case number (`hub.return_channel`),
becomes the Aktenzeichen once (`FileNumberAssigned`, event ``file_number.assigned``) and makes `remap`
due: the record mapped again with the number goes to the other targets, and after them the receipts.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from pydantic import BaseModel

from hub.blobs import BlobBackend
from hub.bus import Bus, BusSettings
from hub.config import RouteConfig
from hub.connectors import (
    Connector,
    DeliveryContext,
    IdentityProvider,
    Intake,
    IntakeOutcome,
    Notifier,
    Sink,
    Source,
)
from hub.errors import Permanent, Rejection
from hub.events import PRODUCED_IDS
from hub.journal import (
    AfterAll,
    ApplicationPatch,
    Completion,
    FileNumberAssigned,
    IntakeResult,
    Journal,
    Task,
    TaskSpec,
    TaskState,
)
from hub.mapping import MappingFile, default_record
from hub.metrics import Metrics
from hub.models import (
    Application,
    ApplicationState,
    Delivery,
    Event,
    FileRecord,
    FolderSpec,
    Identity,
    OriginalSubmission,
    Receipt,
    ReceiptKind,
    TrustLevel,
)
from hub.rejections import RejectionCode
from hub.render_helpers import RenderProcesses
from hub.resubmission import ChangedResend, content_fingerprint
from hub.routes import Router

log = logging.getLogger(__name__)

C = TypeVar("C", bound=Connector[Any])

IDENTIFY, MAP, REMAP, DELIVER, NOTIFY, NOTIFY_REJECTION = (
    "identify",
    "map",
    "remap",  # map again once a Fachverfahren assigned the Aktenzeichen (a route's `file_number`)
    "deliver",
    "notify",
    "notify-rejection",
)


class Pipeline:
    """The steps every application goes through."""

    def __init__(
        self,
        journal: Journal,
        blobs: BlobBackend,
        router: Router,
        connectors: Mapping[str, Connector[Any]],
        bus: Bus,
        metrics: Metrics,
        mappings: Mapping[str, MappingFile] | None = None,
        render_processes: int = 1,
    ) -> None:
        self.journal = journal
        self.blobs = blobs
        self.router = router
        self.connectors = connectors
        self.bus = bus
        self.metrics = metrics
        self.mappings = mappings or {}
        self.render_processes = render_processes
        self._render_helpers: RenderProcesses | None = None
        bus.handle(IDENTIFY, self.identify)
        bus.handle(MAP, self.map)
        bus.handle(REMAP, self.map)
        bus.handle(DELIVER, self.deliver)
        bus.handle(NOTIFY, self.notify)
        bus.handle(NOTIFY_REJECTION, self.notify)
        metrics.declare_steps(self.step_targets())

    def step_targets(self) -> set[tuple[str, str]]:
        """Every (step, target) the configured routes can create a task for."""
        pairs: set[tuple[str, str]] = set()
        for route in self.router.routes:
            if route.identity is not None:
                pairs.add((IDENTIFY, route.identity.via))
            pairs.add((MAP, self._map_task(route).target))
            if route.assigner is not None:
                pairs.add((REMAP, self._map_task(route).target))
            pairs.update((DELIVER, target) for target in route.to)
            for notifier in route.notify:
                pairs.update({(NOTIFY, notifier), (NOTIFY_REJECTION, notifier)})
        return pairs

    # -- intake ------------------------------------------------------------------------------------

    async def intake(self, intake: Intake) -> IntakeOutcome:
        """Store a submission durably; after this returns, the source may acknowledge upstream."""
        app = intake.application
        route = self.router.route_for(app.source, app.service)
        if route is None:
            raise Permanent(f"no route takes service {app.service!r} from {app.source!r}")
        app.route = route.name
        if app.fingerprint is None:
            app.fingerprint = content_fingerprint(app)
        received = Event(
            application_id=app.id,
            type="application.received",
            step="intake",
            data={
                "route": route.name,
                "service": app.service,
                "source": app.source,
                "attachments": len(app.attachments),
                # the ids its source gave it (the source's id, the message's, the portal's reference)
                **({PRODUCED_IDS: dict(app.correlations)} if app.correlations else {}),
            },
        )
        # The blobs stay if the application is stored: kept before the write, since a cancelled wait
        # cannot tell whether it was (what was kept for nothing, the orphan sweep removes later).
        holding = self.blobs.current_holding()
        if holding is not None:
            holding.keep(_blob_refs(app))
        try:
            result = await self._store_intake(app, route, intake, received)
        except Exception:
            if holding is not None:
                holding.unkeep()
            raise
        if result.duplicate and holding is not None:
            holding.unkeep()  # the stored application is the earlier one: this submission's files go
        self.metrics.intakes.labels(app.source, str(result.duplicate).lower()).inc()
        if result.conflict or (result.revision > 1 and not result.duplicate):
            self._resent(app, result)
        if not result.duplicate:
            log.info(
                "application received application=%s source=%s service=%s route=%s revision=%d",
                result.application_id,
                app.source,
                app.service,
                route.name,
                result.revision,
            )
        if result.events:
            self.bus.emit(result.events)
        return IntakeOutcome(
            application_id=result.application_id,
            duplicate=result.duplicate,
            conflict=result.conflict,
            revision=result.revision,
        )

    def _resent(self, app: Application, result: IntakeResult) -> None:
        """Count and log a changed re-send (refused or revised); ids only, never content."""
        action = ChangedResend.REFUSE if result.conflict else ChangedResend.REVISION
        self.metrics.intake_changed_resends.labels(app.source, action.value).inc()
        log.warning(
            "submission re-sent with changed content application=%s source=%s action=%s revision=%d",
            result.application_id,
            app.source,
            action.value,
            result.revision,
        )

    async def _store_intake(
        self, app: Application, route: RouteConfig, intake: Intake, received: Event
    ) -> IntakeResult:
        if intake.rejection is not None:
            # Taken in and refused at once (e.g. invalid against its schema): stored, answered, not filed.
            reason = intake.rejection.reason
            rejected = Event(
                application_id=app.id,
                type="application.rejected",
                step="intake",
                data={"reason": reason, "code": intake.rejection.code},
            )
            tasks = [self._task(NOTIFY_REJECTION, n) for n in route.notify]
            return await self.journal.intake(
                app,
                [received, rejected],
                tasks,
                ApplicationState.REJECTED,
                reason,
                intake.rejection.code,
                on_changed=intake.on_changed,
            )
        first = self._task(IDENTIFY, route.identity.via) if route.identity else self._map_task(route)
        return await self.journal.intake(app, [received], [first], on_changed=intake.on_changed)

    # -- steps -------------------------------------------------------------------------------------

    async def identify(self, task: Task) -> Completion:
        """Verify the applicant's identity, the route's minimum trust level and attribute levels."""
        app, route = await self._load(task)
        if route.identity is None:
            return Completion(tasks=[self._map_task(route)])
        provider = self._connector(task.target, IdentityProvider)
        # The credential (e.g. the forwarded SAML response) has served its purpose once this step
        # ends, whatever the outcome: no later step, sink or rendition gets it.
        spent = tuple(provider.credential_fields())
        minimum = route.identity.min_level
        try:
            verification = await provider.verify(app, minimum)
        except Rejection as rejection:
            # What failed verification is not trustworthy: nothing of it is kept.
            patch, redacted = await self._spend_credentials(app, spent)
            return self._rejected(app, route, task.target, rejection, patch, redacted)
        identity = verification.identity
        patch, redacted = await self._spend_credentials(app, spent)
        patch.identity, patch.applicant = identity, verification.applicant
        shortfall = _level_shortfall(identity, minimum, route.identity.attribute_levels)
        if shortfall is not None:
            # A verified identity below the service's level: kept, so the answer reaches its mailbox.
            return self._rejected(app, route, task.target, shortfall, patch, redacted)
        return Completion(
            patch=patch,
            events=[
                *redacted,
                Event(
                    application_id=app.id,
                    type="identity.verified",
                    step=IDENTIFY,
                    target=task.target,
                    data={
                        "level": identity.level.value if identity.level else None,
                        "means": identity.means,
                        "asserted_by": identity.asserted_by,
                    },
                ),
            ],
            tasks=[self._map_task(route)],
            state=ApplicationState.PROCESSING,
        )

    def _rejected(
        self,
        app: Application,
        route: RouteConfig,
        provider: str,
        rejection: Rejection,
        patch: ApplicationPatch | None = None,
        redacted: Sequence[Event] = (),
    ) -> Completion:
        self.metrics.identity_rejections.labels(provider, rejection.code).inc()
        notify = [self._task(NOTIFY_REJECTION, n) for n in route.notify]
        return Completion(
            patch=patch,
            events=[
                *redacted,
                Event(
                    application_id=app.id,
                    type="application.rejected",
                    step=IDENTIFY,
                    target=provider,
                    data={"reason": rejection.reason, "code": rejection.code},
                ),
            ],
            tasks=notify,
            state=ApplicationState.REJECTED,
            error=rejection.reason,
            error_code=rejection.code,
        )

    async def _spend_credentials(
        self, app: Application, fields: tuple[str, ...]
    ) -> tuple[ApplicationPatch, list[Event]]:
        """The patch removing spent credentials from the form and the original, and its event."""
        patch = ApplicationPatch(remove_fields=fields)
        carried = sorted(name for name in fields if name in app.form)
        original = app.original
        if not carried or original is None:
            return patch, []
        source = self.connectors.get(app.source)
        content = await source.redact_original(original, carried) if isinstance(source, Source) else None
        if content is None:
            # Kept for audit, marked: the mapping refuses to file it (see `hub.mapping`).
            patch.original = original.model_copy(
                update={"unredacted": sorted({*original.unredacted, *carried})}
            )
            event_type = "original.unredacted"
        elif hashlib.sha256(content).hexdigest() == original.sha256:
            return patch, []  # it never held them (e.g. the credential came in a header)
        else:
            # Content-addressed: a retried step writes the same blob. The unredacted one is no longer
            # referenced once this step commits; the orphan sweep removes it after its grace period.
            blob = await self.blobs.write_bytes(content)
            patch.original = OriginalSubmission(
                media_type=original.media_type,
                blob=blob.ref,
                size=blob.size,
                sha256=blob.sha256,
                redacted=True,
            )
            event_type = "original.redacted"
        patch.replaces_original = original.sha256
        log.info("%s application=%s fields=%s", event_type, app.id, ",".join(carried))
        event = Event(
            application_id=app.id,
            type=event_type,
            step=IDENTIFY,
            target=app.source,
            data={"credential_fields": carried},
        )
        return patch, [event]

    async def map(self, task: Task) -> Completion:
        """Turn the application into the record every target receives (the route's mapping file).

        While the target that assigns the Aktenzeichen has not, only it gets the record (without a
        number) and `remap` waits; as `remap` this step maps with the number for every target.
        """
        app, route = await self._load(task)
        awaited = route.assigner if not app.file_number else None
        mapping = self.mappings.get(route.name)
        if mapping is None:
            record = default_record(app)
        else:
            # Templates see an empty number until the Fachverfahren gave one.
            file_number = "" if awaited else await self._file_number(app, route, mapping)
            rendition = None
            if mapping.needs_rendition:
                rendition = await self._render(app, mapping, file_number)
            record = mapping.render(app, file_number, rendition)
            record = mapping.validate_payloads(record, self.payload_models(route))
        if app.revision > 1:
            record = record.model_copy(update={"revision": app.revision})
        targets = [awaited] if awaited else route.stages()[0]
        tasks = [self._task(DELIVER, target, _akte_key(target, record)) for target in targets]
        events = [
            Event(
                application_id=app.id,
                type="record.mapped",
                step=task.step,
                data={"documents": len(record.documents), "targets": targets},
            )
        ]
        if awaited:
            tasks.append(replace(self._map_task(route, REMAP), waiting=True))
            events.append(
                Event(application_id=app.id, type="file_number.awaited", step=task.step, target=awaited)
            )
        return Completion(
            result=record.model_dump(mode="json"),
            events=events,
            tasks=tasks,
            state=ApplicationState.PROCESSING,
            # Delivered to the assigning target only: the receipts go out now.
            after_all=self._delivered(app, route, await self.journal.tasks(app.id))
            if task.step == REMAP
            else None,
        )

    async def _file_number(self, app: Application, route: RouteConfig, mapping: MappingFile) -> str | None:
        """The application's one Aktenzeichen: decided once, before the rendition prints it.

        Decided here rather than when the e-file answers, because the rendition filed into the Akte
        shows it. An Akte the targets already hold for this applicant keeps its number (asked first);
        only otherwise is a number drawn, in the same transaction that records it on the application,
        so a retried or replayed step reuses it and the sequence has no gaps. Receipts read it from
        the application.
        """
        if app.file_number:
            return app.file_number
        akte = mapping.akte_lookup(app)
        found = None
        holder = self._akte_holder(route)
        if akte is not None and holder is not None:
            found = await holder.existing_file_number(akte)
        sequence = mapping.file_number_sequence(app)
        if sequence is None and found is None:
            return None
        key = None if akte is None else _akte_identity(akte)
        return await self.journal.assign_file_number(app.id, sequence, found=found, akte_key=key)

    async def deliver(self, task: Task) -> Completion:
        """Deliver the record to one target."""
        app, route = await self._load(task)
        sink = self._connector(task.target, Sink)
        record = await self._record(app)

        async def save(checkpoints: dict[str, Any]) -> None:
            await self.journal.save_checkpoints(task, checkpoints)

        ctx = DeliveryContext(app, self.blobs, task.checkpoints, save, task.attempts)
        delivery = await sink.deliver(record, ctx)
        correlations = {f"{task.target}.{k}": v for k, v in delivery.correlations.items()}
        if delivery.reference:
            correlations.setdefault(task.target, delivery.reference)
        # Where a Fachverfahren assigns the Aktenzeichen, an e-file's Akte never overrides it.
        file_number = delivery.file_number if sink.is_efile and route.assigner is None else None
        assigned = None
        if task.target == route.assigner:
            number = delivery.file_number or delivery.correlations.get("case_number")
            if number:
                assigned = file_number_assigned(app.id, task.target, number, DELIVER)
        if delivery.file_number and not sink.is_efile:
            # The Aktenzeichen is decided once (mapping, e-file): another system's number is an id of it.
            correlations.setdefault(f"{task.target}.file_number", delivery.file_number)
        elif delivery.file_number and app.file_number and delivery.file_number != app.file_number:
            # An Akte appeared after mapping (filed by hand meanwhile): the Akte's number wins for receipts,
            # the rendition already filed shows the decided one. Rare, so made visible.
            log.warning(
                "Akte has another Aktenzeichen than decided application=%s target=%s",
                app.id,
                task.target,
            )
        # The application's tasks as they are now, for the next stage and the receipts; a route with one
        # stage, no receipts and no assigning target uses none of it, so it is not read (one journal
        # read per delivery fewer).
        tasks: list[Task] = []
        if route.assigner is not None or route.notify or len(route.stages()) > 1:
            tasks = await self.journal.tasks(app.id)
        following = self._next_stage(route, task.target, record, tasks)
        # The last of this stage to finish starts the next one (route `after:`); the last stage's join
        # tells the applicant.
        after_all = (
            AfterAll(step=DELIVER, tasks=following) if following else self._delivered(app, route, tasks)
        )
        return Completion(
            result=delivery.model_dump(mode="json"),
            patch=ApplicationPatch(correlations=correlations, file_number=file_number),
            events=[
                Event(
                    application_id=app.id,
                    type="delivery.completed",
                    step=DELIVER,
                    target=task.target,
                    data={
                        "reference": delivery.reference,
                        "duplicate": delivery.duplicate,
                        "file_number": delivery.file_number,
                        **({"note": delivery.note} if delivery.note else {}),
                        PRODUCED_IDS: correlations,
                    },
                )
            ],
            assigned=assigned,
            after_all=after_all,
            checkpoints=ctx.completion_checkpoints,
        )

    def _delivered(self, app: Application, route: RouteConfig, tasks: Sequence[Task]) -> AfterAll:
        """The join of the deliveries: once every target has the record (a waiting `remap` has not),
        the receipts go out. `tasks`: the application's tasks as they are now."""
        # A delivery replayed after receipts went out (a Fachverfahren refused it afterwards) tells no one
        # again: the join then completes the application itself.
        told = {t.target for t in tasks if t.step == NOTIFY and t.state == TaskState.DONE}
        notify = [self._task(NOTIFY, n) for n in route.notify if n not in told]
        joined = [
            Event(
                application_id=app.id,
                type="application.delivered",
                step=DELIVER,
                data={"targets": route.to},
            )
        ]
        if not notify:
            joined.append(Event(application_id=app.id, type="application.completed"))
        return AfterAll(
            step=(DELIVER, REMAP),
            events=joined,
            tasks=notify,
            state=None if notify else ApplicationState.COMPLETED,
        )

    def _next_stage(
        self, route: RouteConfig, target: str, record: FileRecord, tasks: Sequence[Task]
    ) -> list[TaskSpec]:
        """The deliveries of the next stage after `target`'s (route `after:`) that do not exist yet."""
        if any(t.step == REMAP and t.state != TaskState.DONE for t in tasks):
            return []  # the record is mapped again with the assigned Aktenzeichen: `remap` starts the stages
        stages = route.stages()
        current = next((n for n, stage in enumerate(stages) if target in stage), len(stages))
        started = {t.target for t in tasks if t.step == DELIVER}
        for stage in stages[current + 1 :]:
            waiting = [later for later in stage if later not in started]
            if waiting:
                return [self._task(DELIVER, later, _akte_key(later, record)) for later in waiting]
        return []

    async def notify(self, task: Task) -> Completion:
        """Answer the applicant or the portal: receipt with file number, or the rejection."""
        app, _ = await self._load(task)
        notifier = self._connector(task.target, Notifier)
        summary = await self.journal.get_summary(app.id)
        rejected = task.step == NOTIFY_REJECTION
        deliveries = [
            Delivery.model_validate(t.result)
            for t in await self.journal.tasks(app.id)
            if t.step == DELIVER and t.result
        ]
        receipt = Receipt(
            application_id=app.id,
            kind=ReceiptKind.REJECTED if rejected else ReceiptKind.RECEIVED,
            file_number=app.file_number,
            reason=summary.error if (rejected and summary) else None,
            code=await self._rejection_code(app.id) if rejected else None,
            deliveries=deliveries,
        )
        sent = await notifier.notify(app, receipt)
        step = task.step
        ids = notified_ids(f"{task.target}.{receipt.kind.value}", sent)
        return Completion(
            patch=ids,
            events=[
                Event(
                    application_id=app.id,
                    type="receipt.sent",
                    step=step,
                    target=task.target,
                    data={"kind": receipt.kind.value, PRODUCED_IDS: ids.correlations if ids else {}},
                )
            ],
            after_all=AfterAll(
                step=step,
                events=() if rejected else [Event(application_id=app.id, type="application.completed")],
                state=None if rejected else ApplicationState.COMPLETED,
            ),
        )

    async def _render(self, app: Application, mapping: MappingFile, file_number: str | None) -> str:
        """The PDF rendition of the application, stored as a blob; returns its reference."""
        from hub.render import render_application  # loads the fonts lazily

        form = {k: v for k, v in app.form.items() if k not in mapping.spec.hidden}
        shown = app.model_copy(update={"file_number": file_number or app.file_number, "form": form})
        title = mapping.title(shown, file_number)
        labels = dict(mapping.spec.labels)
        if self.render_processes <= 0:
            pdf = await asyncio.to_thread(render_application, shown, labels, title)
        else:
            # A rendition costs ~3 ms of CPU (bench/render.py), all of it holding the GIL. In a process
            # of its own it uses another core and never holds this interpreter's lock against intake.
            if self._render_helpers is None:
                self._render_helpers = RenderProcesses(self.render_processes)
            pdf = await self._render_helpers.render(shown.model_dump_json(), labels, title)
        info = await self.blobs.write_bytes(pdf)
        return info.ref

    async def close(self) -> None:
        """Stop the rendering processes."""
        if self._render_helpers is not None:
            helpers, self._render_helpers = self._render_helpers, None
            await helpers.close()

    def _akte_holder(self, route: RouteConfig) -> Sink[Any] | None:
        """The route's first target that can tell an existing Akte's number, if its mapping has an Akte."""
        mapping = self.mappings.get(route.name)
        if mapping is None or not mapping.finds_akte:
            return None
        for target in route.to:
            sink = self.connectors.get(target)
            if isinstance(sink, Sink) and type(sink).existing_file_number is not Sink.existing_file_number:
                return sink
        return None

    def _map_task(self, route: RouteConfig, step: str = MAP) -> TaskSpec:
        # Mapping asks the e-file for an existing Akte: that target's retry policy and capacity govern it,
        # and a failure is shown against it.
        holder = self._akte_holder(route)
        return self._task(step, holder.name if holder is not None else "")

    # -- helpers -----------------------------------------------------------------------------------

    def payload_models(self, route: RouteConfig) -> dict[str, type[BaseModel] | None]:
        """The route's targets and the model each reads from the mapping's `payloads.<target>`."""
        return {
            target: type(sink).Payload if isinstance(sink := self.connectors.get(target), Sink) else None
            for target in route.to
        }

    def _task(self, step: str, target: str, key: str | None = None) -> TaskSpec:
        settings: BusSettings = self.bus.settings
        policy = settings.retry.get(target, settings.default_retry)
        return TaskSpec(step=step, target=target, max_attempts=policy.max_attempts, key=key)

    async def _load(self, task: Task) -> tuple[Application, RouteConfig]:
        app = await self.journal.get_application(task.application_id)
        if app is None:
            raise Permanent(f"application {task.application_id} is not in the journal")
        route = self.router.by_name(app.route or "")
        if route is None:
            raise Permanent(f"route {app.route!r} of this application is no longer configured")
        return app, route

    async def _rejection_code(self, application_id: str) -> str | None:
        codes = [
            e.data.get("code")
            for e in await self.journal.events(application_id)
            if e.type == "application.rejected"
        ]
        code = codes[-1] if codes else None
        return code if isinstance(code, str) else None

    async def _record(self, app: Application) -> FileRecord:
        """The mapped record: the one mapped again with an assigned Aktenzeichen, once there is one."""
        record = mapped_record(await self.journal.tasks(app.id))
        if record is None:
            raise Permanent("the application has no mapped record yet")
        return record

    def _connector(self, name: str, role: type[C]) -> C:
        connector = self.connectors.get(name)
        if connector is None:
            raise Permanent(f"connector {name!r} is no longer configured")
        if not isinstance(connector, role):
            raise Permanent(f"connector {name!r} is not a {role.role}")
        return connector


def mapped_record(tasks: Sequence[Task]) -> FileRecord | None:
    """The application's mapped record among its `tasks`: the latest map (or remap) that produced one."""
    mapped = [t.result for t in tasks if t.step in (MAP, REMAP) and t.result]
    return FileRecord.model_validate(mapped[-1]) if mapped else None


def file_number_assigned(application_id: str, target: str, file_number: str, via: str) -> FileNumberAssigned:
    """`target`'s number as the application's Aktenzeichen (if it has none yet), given `via` a step."""
    event = Event(
        application_id=application_id,
        type="file_number.assigned",
        step=via,
        target=target,
        data={"file_number": file_number},
    )
    return FileNumberAssigned(file_number, events=[event])


def notified_ids(prefix: str, ids: Mapping[str, str] | None) -> ApplicationPatch | None:
    """The correlations to keep for the ids a notifier's remote system gave what it sent."""
    if not ids:
        return None
    return ApplicationPatch(correlations={f"{prefix}.{key}": value for key, value in ids.items() if value})


def _level_shortfall(
    identity: Identity, minimum: TrustLevel | None, attribute_levels: Mapping[str, TrustLevel]
) -> Rejection | None:
    """The rejection for an identity below the route's level or attribute levels, None if it suffices."""
    level = identity.level
    if minimum is not None and (level is None or level.rank < minimum.rank):
        return Rejection(
            f"Vertrauensniveau zu niedrig: {level.value if level else 'keines'} erreicht, "
            f"{minimum.value} erforderlich",
            code=RejectionCode.LEVEL_TOO_LOW,
        )
    for name, required in sorted(attribute_levels.items()):
        achieved = identity.attribute_levels.get(name)
        if achieved is None or achieved.rank < required.rank:
            return Rejection(
                f"Angabe {name} nicht ausreichend bestätigt: {achieved.value if achieved else 'keines'} "
                f"erreicht, {required.value} erforderlich",
                code=RejectionCode.ATTRIBUTE_LEVEL_TOO_LOW,
            )
    return None


def _blob_refs(app: Application) -> list[str]:
    refs = [a.blob for a in app.attachments]
    if app.original is not None:
        refs.append(app.original.blob)
    return refs


def _akte_key(target: str, record: FileRecord) -> str | None:
    """Deliveries that look for the same Akte in the same target run one after the other.

    Otherwise two applications of one applicant, delivered at the same moment, would both miss the
    existing Akte and both create one.
    """
    if record.akte is None or not record.akte.search:
        return None
    return _akte_identity(record.akte, target)


def _akte_identity(akte: FolderSpec, *scope: str) -> str:
    """One Akte (its type and search fields), as a short key."""
    identity = json.dumps([*scope, akte.type, sorted(akte.search.items())], ensure_ascii=False)
    return "akte:" + hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]
