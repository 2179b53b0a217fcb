"""What operators do, in one place for the CLI, the admin API and the console.

Each action here does the same thing whichever face calls it: it changes the journal and writes its
audit row (`hub.actions`) and its timeline events in one transaction, names the operator (the admin
token's name, or the CLI's ``--operator``) and the reason, tells observers (`aktenhub_event`) and wakes
the workers. The metrics of operator actions and pauses are read from the journal on scrape.

The CLI works on the journal directly through this layer. While a hub holds a SQLite journal, the CLI
opens it as a guest (`open_journal(..., guest=True)`: no lock, no recovery, short transactions that
SQLite serialises with the hub's); the running hub notices within ``workers.idle_poll_seconds``: its
claims find replayed tasks due, and its gate reads pauses again at that pace. Nothing the CLI commits is
lost, and the hub needs no API token for its own operators' commands.

Refusals are exceptions the faces translate: `NotFound` (404, exit 1), `Invalid` (400, usage error),
`Refused` (409, exit 1: the action does not apply to the state things are in).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from hub.actions import MAX_REASON, Action, OperatorAction, TargetPause
from hub.application_files import ApplicationFile, application_files, file_kind
from hub.blobs import BlobNotFound
from hub.certificates import CORE, CertificateInfo, CertificateReport, assess
from hub.config import ProcessRole
from hub.connectors import CheckResult
from hub.dashboard import (
    WINDOW_SECONDS,
    BlobUsage,
    BlobUsageCache,
    JournalFigures,
    LiveCounters,
    TargetWork,
    Window,
)
from hub.deadletters import DeadLetters
from hub.diagnostics import ConnectorDiagnostics, collect
from hub.errors import Permanent, Retryable
from hub.gate import TargetStatus
from hub.held import Decision, HeldConflict, HeldFilter, HeldMessage, HeldNotFound, decide
from hub.journal import (
    Abandoned,
    ActionRefused,
    ApplicationFilter,
    ApplicationSummary,
    Journal,
    JournalInUse,
    Task,
    open_journal,
)
from hub.leases import LeaseGrant
from hub.models import Application, ApplicationState, Event
from hub.redaction import safe_error, target_view
from hub.retention import PurgeReport, replay_refusal

if TYPE_CHECKING:
    from hub.config import Configuration
    from hub.plugins import Plugins
    from hub.runtime import Hub

log = logging.getLogger(__name__)

# How a command opens the journal: see `operating`.
JournalAccess = Literal["write", "read", "none"]


class NotFound(LookupError):
    """No such application, held message or target."""


class Invalid(ValueError):
    """The request itself is unusable (e.g. no reason for a bulk replay)."""


class Refused(Exception):
    """The action does not apply to the state things are in (the message says why)."""


class UpstreamFailed(Exception):
    """A remote system refused or failed the action (e.g. closing a message upstream); nothing changed."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class ApplicationView:
    """One application as operators open it: metadata, timeline, tasks and the document."""

    summary: ApplicationSummary
    timeline: list[Event]
    tasks: list[Task]
    application: Application | None

    def files(self) -> list[ApplicationFile]:
        """Its rendition, attachments and original (without blobs once purged)."""
        return application_files(self.application, self.tasks) if self.application else []


class ConnectorCheck(BaseModel):
    """The outcome of one connector's check."""

    name: str
    kind: str
    ok: bool
    message: str


class BulkPreview(BaseModel):
    """What a bulk replay or abandon would touch now: shown before the operator confirms it with a reason."""

    count: int
    filter: str


# How many groups of dead steps a look at the dead letters shows at most.
MAX_DEAD_GROUPS = 200


def reason_text(reason: str | None, action: str) -> str | None:
    """An optional reason, stripped (None if blank); `Invalid` if it is too long."""
    text = (reason or "").strip()
    if len(text) > MAX_REASON:
        raise Invalid(f"the reason must be at most {MAX_REASON} characters")
    return text or None


def required_reason(reason: str | None, action: str) -> str:
    """The reason `action` needs, stripped; `Invalid` if it is missing or too long."""
    text = reason_text(reason, action)
    if text is None:
        raise Invalid(f"{action} needs a reason (kept in the audit trail)")
    return text


class ProcessStatus(BaseModel):
    """What this hub process does (several may share one journal) and how its workers are."""

    roles: list[ProcessRole] = Field(
        description="intake: takes submissions and answers (intake.enabled); workers: runs the steps "
        "(workers.enabled); every process serves the admin API, the console and /metrics"
    )
    worker: str = Field(description="the name this process's workers hold task leases under")
    workers_running: bool
    busy_tasks: int = Field(description="steps running in this process now")


class TargetHealth(BaseModel):
    """A target as the dashboard shows it: its gate (circuit, pause, rate limit) and its steps."""

    status: TargetStatus
    work: TargetWork


class RetentionFigures(BaseModel):
    """Purges so far, and when the running hub purges next."""

    configured: bool
    purged_applications: int
    purged_blobs: int
    purged_bytes: int
    last_run: datetime | None
    next_run: datetime | None = Field(description="None: no scheduled purge in this process")


class Dashboard(BaseModel):
    """Everything the console's dashboard shows, as of `now`."""

    now: datetime
    window: Window
    figures: JournalFigures
    targets: list[TargetHealth]
    certificates: CertificateReport
    blobs: BlobUsage | None = Field(description="None until the first walk of the store has finished")
    retention: RetentionFigures

    def for_viewer(self) -> Dashboard:
        """The dashboard without what may quote personal data: error texts (codes stay), pause reasons."""

        def work(w: TargetWork) -> TargetWork:
            return w.model_copy(update={"last_error": safe_error(w.last_error, w.last_error_code)})

        figures = self.figures.model_copy(
            update={"targets": {name: work(w) for name, w in self.figures.targets.items()}}
        )
        targets = [
            TargetHealth(status=target_view(t.status, personal=False), work=work(t.work))
            for t in self.targets
        ]
        return self.model_copy(update={"figures": figures, "targets": targets})


# The name `check` gives the alert mails' SMTP server beside the connectors.
MAILER_CHECK = "alerts"
BLOBS_CHECK = "blobs"  # the blob store, checked beside the connectors

# How long the certificates read from files and connectors stay as read: every /metrics scrape and API
# call assesses them, and reading (a PKCS#12 decrypted, every file parsed) on each would block the loop.
CERTIFICATES_REREAD_SECONDS = 300.0


class Operations:
    """The operator actions of one hub (running, or built by a command to act on its journal)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.journal = hub.journal
        # When the certificates were read, what was found (per owner), and what could not be read.
        self._certificates: tuple[float, dict[str, list[CertificateInfo]], list[str]] | None = None
        self.blob_usage = BlobUsageCache(hub.blobs.usage, clock=hub.clock)

    # -- looking --------------------------------------------------------------------------------------

    async def applications(
        self, where: ApplicationFilter, limit: int = 100, offset: int = 0
    ) -> list[ApplicationSummary]:
        """Applications matching `where`, newest first."""
        return await self.journal.list_applications(where, limit=limit, offset=offset)

    async def find(self, key: str, limit: int = 100) -> list[ApplicationSummary]:
        """Applications that any system's id `key` names (id, external id, Aktenzeichen, correlations)."""
        return await self.journal.list_applications(ApplicationFilter(find=key), limit=limit)

    async def show(self, application_id: str) -> ApplicationView:
        """One application with its timeline, tasks and document; `NotFound` if there is none."""
        summary = await self.journal.get_summary(application_id)
        if summary is None:
            raise NotFound(f"no application {application_id}")
        return ApplicationView(
            summary=summary,
            timeline=await self.journal.events(application_id),
            tasks=await self.journal.tasks(application_id),
            application=await self.journal.get_application(application_id),
        )

    async def open_file(
        self, application_id: str, file_id: str
    ) -> tuple[ApplicationFile, AsyncIterator[bytes]]:
        """One file of an application with its size, and its content as a stream.

        `NotFound` if the application has no such file (or its blob is gone), `Refused` if a retention
        purge deleted it.
        """
        application = await self.journal.get_application(application_id)
        if application is None:
            raise NotFound(f"no application {application_id}")
        if application.purged is not None and file_kind(file_id) is not None:
            raise Refused(f"the files of application {application_id} were deleted after their retention")
        files = application_files(application, await self.journal.tasks(application_id))
        found = next((f for f in files if f.id == file_id and f.blob is not None), None)
        if found is None or found.blob is None:
            raise NotFound(f"application {application_id} has no file {file_id!r}")
        try:
            info = await self.hub.blobs.info(found.blob)
        except BlobNotFound:
            raise NotFound(f"the content of {file_id!r} is no longer in the blob store") from None
        return found.model_copy(update={"size": info.size}), self.hub.blobs.read(found.blob)

    async def audit(
        self,
        action: Action | None = None,
        operator: str | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
    ) -> list[OperatorAction]:
        """The audit trail of operator actions in [since, until), newest first."""
        return await self.journal.operator_actions(
            action, operator, limit, offset, since=since, until=until, before_id=before_id
        )

    async def dead_letters(
        self, where: ApplicationFilter, personal: bool, limit: int = MAX_DEAD_GROUPS
    ) -> DeadLetters:
        """The dead steps `where` selects, grouped by target and error code, and for those who may see
        personal data (`personal`) also by normalised error text (`hub.deadletters`)."""
        return await self.journal.dead_letters(where, by_text=personal, limit=limit)

    # -- replay and abandon ---------------------------------------------------------------------------

    async def replay(self, application_id: str, operator: str, reason: str | None = None) -> list[str]:
        """Replay the dead steps of one application."""
        why = reason_text(reason, "replay")
        summary = await self.journal.get_summary(application_id)
        if summary is None:
            raise NotFound(f"no application {application_id}")
        purged = replay_refusal(summary)
        if purged is not None:
            raise Refused(purged)
        ids = await self.hub.bus.replay(ApplicationFilter(ids=(application_id,)), operator, why)
        if not ids:
            raise Refused(f"application {application_id} has no dead step to replay")
        log.info("application replayed application=%s by=%s", application_id, operator)
        return ids

    async def replay_preview(self, where: ApplicationFilter) -> BulkPreview:
        """How many applications a bulk replay of `where` would replay now."""
        _need_filter(where)
        return BulkPreview(count=await self.journal.count_replayable(where), filter=where.describe())

    async def replay_bulk(
        self,
        where: ApplicationFilter,
        operator: str,
        reason: str | None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """Replay every dead application `where` selects, in one transaction, for the given reason."""
        why = required_reason(reason, "a bulk replay")
        _need_filter(where)
        total = await self.journal.count_replayable(where)
        if progress is not None:
            progress(0, total)
        ids = await self.hub.bus.replay(where, operator, why)
        if progress is not None:
            progress(len(ids), len(ids))
        log.info("bulk replay applications=%d filter=%s by=%s", len(ids), where.describe(), operator)
        return ids

    async def abandon_preview(self, where: ApplicationFilter) -> BulkPreview:
        """How many dead applications a bulk abandon of `where` would end now."""
        _need_filter(where)
        return BulkPreview(count=await self.journal.count_dead(where), filter=where.describe())

    async def abandon_bulk(self, where: ApplicationFilter, operator: str, reason: str | None) -> list[str]:
        """End every dead application `where` selects for good, in one transaction, for the given reason.

        An application with a step running at that moment is left out: abandon it alone afterwards.
        """
        why = required_reason(reason, "a bulk abandon")
        _need_filter(where)
        outcomes = await self.hub.bus.abandon_bulk(where, operator, why)
        log.info("bulk abandon applications=%d filter=%s by=%s", len(outcomes), where.describe(), operator)
        return [o.application_id for o in outcomes]

    async def abandon(self, application_id: str, operator: str, reason: str | None) -> Abandoned:
        """End an application for good: its open and dead steps never run."""
        why = required_reason(reason, "abandoning an application")
        try:
            return await self.hub.bus.abandon(application_id, operator, why)
        except KeyError:
            raise NotFound(f"no application {application_id}") from None
        except ActionRefused as exc:
            raise Refused(str(exc)) from None

    # -- held messages --------------------------------------------------------------------------------

    async def held_messages(self, where: HeldFilter, limit: int = 100, offset: int = 0) -> list[HeldMessage]:
        """Held inbound messages, most recently changed first (unredacted: `hub.redaction.held_view`)."""
        return await self.journal.list_held(where, limit=limit, offset=offset)

    async def held_message(self, held_id: int) -> HeldMessage | None:
        """One held inbound message by its id (unredacted)."""
        return await self.journal.held_get(held_id)

    async def decide_held(
        self, held_id: int, decision: Decision, operator: str, reason: str | None = None
    ) -> HeldMessage:
        """Close (upstream, for good) or keep (upstream, ignored) a held inbound message."""
        why = reason_text(reason, decision)
        try:
            return await decide(self.journal, self.hub.sources(), held_id, decision, operator, why)
        except HeldNotFound as exc:
            raise NotFound(str(exc)) from None
        except HeldConflict as exc:
            raise Refused(str(exc)) from None
        except Retryable as exc:
            raise UpstreamFailed(
                f"the message could not be closed upstream, try again later: {exc}", True
            ) from None
        except Permanent as exc:
            raise UpstreamFailed(f"the message could not be closed upstream: {exc}", False) from None

    # -- targets --------------------------------------------------------------------------------------

    async def targets(self) -> list[TargetStatus]:
        """Every target with its state in the gate; its pause as the journal holds it now."""
        pauses = await self.journal.paused_targets()
        return [s.model_copy(update={"paused": pauses.get(s.target)}) for s in self.hub.bus.gate.status()]

    def _target(self, name: str) -> str:
        known = self.hub.targets()
        if name not in known:
            raise NotFound(f"no target {name!r}; the targets are: {', '.join(known) or 'none'}")
        return name

    async def pause(self, target: str, operator: str, reason: str | None) -> TargetPause:
        """Start none of `target`'s tasks until it is resumed (persisted; survives a restart)."""
        why = required_reason(reason, "pausing a target")
        name = self._target(target)
        paused = await self.journal.pause_target(name, operator, why)
        self.hub.bus.gate.pauses_changed()
        if paused is None:
            current = (await self.journal.paused_targets()).get(name)
            if current is not None:
                return current  # paused already: the first pause (its operator, reason) stays
            raise Refused(f"target {name} was resumed meanwhile; pause it again")
        log.info("target paused target=%s by=%s", name, operator)
        return paused

    async def resume(self, target: str, operator: str, reason: str | None = None) -> TargetPause | None:
        """Let `target`'s tasks start again; the pause lifted (None: it was not paused)."""
        why = reason_text(reason, "resuming a target")
        name = self._target(target)
        lifted = await self.journal.resume_target(name, operator, why)
        self.hub.bus.gate.pauses_changed()
        if lifted is not None:
            log.info("target resumed target=%s by=%s", name, operator)
            self.hub.bus.wake()  # its backlog is due
        return lifted

    def process(self) -> ProcessStatus:
        """This process's roles and its workers' state."""
        bus = self.hub.bus
        return ProcessStatus(
            roles=list(self.hub.config.hub.roles),
            worker=bus.owner,
            workers_running=bus.alive,
            busy_tasks=bus.busy,
        )

    # -- connectors -----------------------------------------------------------------------------------

    async def diagnostics(self, timeout: float = 10.0) -> list[ConnectorDiagnostics]:
        """Every connector's redacted state, and as a target its gate (pause, circuit, rate limit)."""
        gate = self.hub.bus.gate
        if not self.hub.started:
            # A command: the circuits as the running hub (or the last one) saved them.
            async with self._saved_journal() as saved:
                if saved is not None:  # no journal yet: every circuit is closed
                    await gate.load(saved)
        return await collect(self.hub.connectors, timeout, gate.status())

    async def leases(self) -> list[LeaseGrant]:
        """Which hub process runs each singleton job (poll, purge, ...), since when, until when."""
        if self.hub.started:
            return await self.hub.journal.leases()
        async with self._saved_journal() as saved:  # a command: as the running hubs left them
            return [] if saved is None else await saved.leases()

    @contextlib.asynccontextmanager
    async def _saved_journal(self) -> AsyncIterator[Journal | None]:
        """The journal opened read-only beside any running hub; None if there is none yet."""
        saved = open_journal(self.hub.config.hub.store, read_only=True)
        try:
            await saved.open()
        except FileNotFoundError:
            yield None
            return
        try:
            yield saved
        finally:
            await saved.close()

    async def check(self, timeout: float = 15.0, name: str | None = None) -> list[ConnectorCheck]:
        """Whether every connector (or the one called `name`) can reach and use its system."""
        known = [*self.hub.connectors, BLOBS_CHECK, *([MAILER_CHECK] if self.hub.mailer is not None else [])]
        if name is not None and name not in known:
            raise NotFound(f"no connector {name!r}")

        async def one(checked: str) -> ConnectorCheck:
            connector = self.hub.connectors[checked]
            try:
                result = await asyncio.wait_for(connector.check(), timeout)
            except TimeoutError:
                result = CheckResult(ok=False, message=f"no answer within {timeout:g}s")
            except Exception as exc:
                result = CheckResult(ok=False, message=f"{type(exc).__name__}: {exc}")
            return ConnectorCheck(name=checked, kind=connector.kind, ok=result.ok, message=result.message)

        checks = [await one(n) for n in self.hub.connectors if name in (None, n)]
        if name in (None, BLOBS_CHECK):
            checks.append(await self._check_blobs(timeout))
        if self.hub.mailer is not None and name in (None, MAILER_CHECK):  # alert mails (`alerts.smtp`)
            ok, message = await self.hub.mailer.check()
            checks.append(ConnectorCheck(name=MAILER_CHECK, kind="smtp", ok=ok, message=message))
        return checks

    async def _check_blobs(self, timeout: float) -> ConnectorCheck:
        """Whether the blob store takes, gives back and lists content (messages name no credentials)."""
        blobs = self.hub.blobs
        kind = "s3" if self.hub.config.hub.blobs.s3 is not None else "directory"
        try:
            message, ok = await asyncio.wait_for(blobs.check(), timeout), True
        except TimeoutError:
            message, ok = f"{blobs.location}: no answer within {timeout:g}s", False
        except Exception as exc:
            message, ok = f"{type(exc).__name__}: {exc}", False
        return ConnectorCheck(name=BLOBS_CHECK, kind=kind, ok=ok, message=message)

    # -- certificates ---------------------------------------------------------------------------------

    def certificates(self) -> CertificateReport:
        """Every certificate the hub and its connectors use or trust, assessed as of now (read again
        after `CERTIFICATES_REREAD_SECONDS`, so a replaced file shows within minutes)."""
        settings = self.hub.config.hub.certificates
        clock = self.hub.clock()
        if self._certificates is None or clock - self._certificates[0] >= CERTIFICATES_REREAD_SECONDS:
            self._certificates = (clock, *self._read_certificates())
        _, found, problems = self._certificates
        now = datetime.fromtimestamp(clock, UTC)
        return assess(found, settings.warn_days, now, problems)

    def _read_certificates(self) -> tuple[dict[str, list[CertificateInfo]], list[str]]:
        settings = self.hub.config.hub.certificates
        found: dict[str, list[CertificateInfo]] = {}
        problems: list[str] = []
        owners: list[tuple[str, Callable[[], Sequence[CertificateInfo]]]] = [
            *((CORE, f.certificates) for f in settings.files),
            *((name, connector.certificates) for name, connector in self.hub.connectors.items()),
        ]
        for name, listed in owners:
            try:
                found.setdefault(name, []).extend(listed())
            except Exception as exc:  # one unreadable file must not hide every other certificate
                problems.append(f"{name}: {exc}")
        return found, problems

    # -- dashboard ------------------------------------------------------------------------------------

    async def dashboard(self, window: Window = "24h", now: float | None = None) -> Dashboard:
        """The dashboard's figures over the window up to `now` (default: the hub's clock)."""
        at = self.hub.clock() if now is None else now
        figures = await self.journal.dashboard_figures(at, WINDOW_SECONDS[window])
        targets = [
            TargetHealth(status=status, work=figures.targets.get(status.target, TargetWork()))
            for status in await self.targets()
        ]
        return Dashboard(
            now=datetime.fromtimestamp(at, UTC),
            window=window,
            figures=figures,
            targets=targets,
            certificates=self.certificates(),
            blobs=self.blob_usage.current(),
            retention=RetentionFigures(
                configured=self.hub.retention.configured,
                purged_applications=figures.purged_applications,
                purged_blobs=figures.purged_blobs,
                purged_bytes=figures.purged_bytes,
                last_run=figures.last_purge_at,
                next_run=self.hub.next_run("purge"),
            ),
        )

    async def live_counters(self, now: float | None = None) -> LiveCounters:
        """The dashboard's live counters as of `now` (default: the hub's clock)."""
        return await self.journal.live_counters(self.hub.clock() if now is None else now)

    # -- purge ----------------------------------------------------------------------------------------

    async def purge(
        self,
        operator: str | None,
        *,
        dry_run: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> PurgeReport:
        """Delete the payloads of applications past their retention (`hub.retention`)."""
        if not self.hub.retention.configured:
            raise Invalid("no retention policies configured (retention.policies): nothing is ever purged")
        report = await self.hub.retention.purge(dry_run=dry_run, operator=operator, progress=progress)
        if not dry_run:
            policies = ", ".join(f"{p}: {n}" for p, n in report.by_policy.items())
            await self.journal.record_action(
                operator, Action.PURGED, "retention", report.applications, reason=policies or None
            )
        return report


def _need_filter(where: ApplicationFilter) -> None:
    # An empty selection must not mean "everything": the operator says so explicitly.
    dated = where.received_from or where.received_until
    given = (where.state, where.route, where.service, where.q, where.ids, where.find, dated)
    if not any(given) and not where.dead_step_filter():
        raise Invalid('give a filter, e.g. state "dead" to replay every dead application')
    if where.state not in (None, ApplicationState.DEAD):
        raise Invalid("only dead applications are replayed: leave the state out or give dead")


@contextlib.asynccontextmanager
async def operating(
    config: Configuration, plugins: Plugins, journal: JournalAccess = "write"
) -> AsyncIterator[Operations]:
    """The operations of a command: the configured hub's connectors and its journal, not its workers.

    ``write``: the journal is taken as its owner when no hub runs, else as a guest beside the running
    hub. ``read``: opened read-only (no lock, nothing written). ``none``: not opened (check, diagnostics).
    """
    from hub.runtime import Hub

    store = config.hub.store
    opened = open_journal(store, read_only=journal == "read")
    if journal != "none":
        try:
            await opened.open()
        except JournalInUse:
            opened = open_journal(store, guest=True)
            await opened.open()
    hub = Hub(config, plugins, journal=opened)
    if journal == "write":
        hub.start_audit()
    try:
        yield Operations(hub)
    finally:
        await hub.close_http()
        await hub.blobs.close()
        if journal != "none":
            await opened.close()
        hub.stop_audit()


__all__ = [
    "ApplicationFile",
    "ApplicationView",
    "BulkPreview",
    "ConnectorCheck",
    "Dashboard",
    "Invalid",
    "JournalAccess",
    "NotFound",
    "Operations",
    "Refused",
    "RetentionFigures",
    "TargetHealth",
    "UpstreamFailed",
    "operating",
    "reason_text",
    "required_reason",
]
