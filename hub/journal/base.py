"""The journal protocol: what the bus needs from a store, whatever the backend.

Every write is one transaction: intake stores the application, its first events and the tasks they
trigger together; completing a task stores its result, the next events and the next tasks together. A
backend may group the commits of concurrent writers (one fsync for many), but each call's effects are
atomic and durable when its awaitable returns.

Time is plain POSIX seconds from the journal's clock (injectable for tests). Backends: `sqlite.py`
(embedded default, one process). A PostgreSQL backend implements the same protocol with
`FOR UPDATE SKIP LOCKED` claims; callers do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from hub.actions import Action, OperatorAction, TargetPause
from hub.alerts import AlertDraft, DeadTask
from hub.answers import Answer
from hub.dashboard import JournalFigures, LiveCounters
from hub.deadletters import DeadLetters, group_digest
from hub.held import BackOff, HeldFilter, HeldMessage, HeldState
from hub.leases import LeaseGrant
from hub.models import (
    Application,
    ApplicationState,
    Event,
    Identity,
    OriginalSubmission,
    Party,
    Purged,
)
from hub.resubmission import ChangedResend


class LeaseLost(Exception):
    """The task's lease expired and was taken by another worker; this worker's result is discarded."""


class JournalUnavailable(Exception):
    """The journal cannot be opened (read-only, unreadable, not a journal); says which file and why."""

    def __init__(self, path: str, cause: str) -> None:
        super().__init__(f"journal {path}: {cause}")
        self.path = path
        self.cause = cause


@dataclass(frozen=True)
class TaskSpec:
    """A task to create: run `step` for the application (against `target`, if any)."""

    step: str
    target: str = ""
    max_attempts: int = 8
    delay: float = 0.0
    # Tasks with the same key never run at the same time (e.g. two deliveries that would look for,
    # and else both create, the same Akte).
    key: str | None = None
    # What the task is about beyond its step and target: the journal's id of an answer for the answer
    # steps (one task per answer and target); "" for the application's own steps.
    subject: str = ""
    # Created `waiting` rather than due: an own step until a target assigns the Aktenzeichen (see
    # `FileNumberAssigned`). The journal also creates answer steps waiting on its own (see `store_answer`).
    waiting: bool = False


@dataclass(frozen=True)
class Task:
    """A task as stored; a claimed task carries its lease."""

    id: int
    application_id: str
    step: str
    target: str
    state: str  # pending | leased | done | dead
    attempts: int  # executions started, ever (never decreases)
    attempt_base: int  # `attempts` when last replayed: the retry budget counts from here
    max_attempts: int
    due_at: float
    lease_token: str | None
    lease_until: float | None
    last_error: str | None  # the detailed message: may quote personal data
    result: dict[str, Any] | None
    checkpoints: dict[str, Any]
    created_at: float
    updated_at: float
    error_code: str | None = None  # the safe part of `last_error` (the error class), shown to viewers
    subject: str = ""  # see `TaskSpec.subject`

    @property
    def attempts_since_replay(self) -> int:
        """Attempts that count against `max_attempts`."""
        return self.attempts - self.attempt_base


class TaskState:
    """Task states."""

    PENDING = "pending"
    LEASED = "leased"
    DONE = "done"
    DEAD = "dead"
    ABANDONED = "abandoned"  # ended by an admin with its application; never replayed
    # Not due yet: an own step until a target assigns the Aktenzeichen, an answer step until the
    # application's own steps are done (its receipts went out, its Akte exists).
    WAITING = "waiting"


@dataclass
class ApplicationPatch:
    """Changes to an application's document, merged inside the transaction that completes a step.

    Merging (rather than replacing the document) lets deliveries to several targets run concurrently
    without losing each other's correlation ids.
    """

    correlations: dict[str, str] = field(default_factory=dict)
    file_number: str | None = None
    identity: Identity | None = None
    applicant: Party | None = None
    remove_fields: tuple[str, ...] = ()  # form fields to drop (credentials once verified)
    # The original redacted of spent credentials, and the sha256 of the one it was made from: it
    # replaces only that one (a revision taken in meanwhile brought its own original).
    original: OriginalSubmission | None = None
    replaces_original: str | None = None

    def apply(self, app: Application) -> Application:
        """The application with this patch applied."""
        update: dict[str, Any] = {}
        if self.correlations:
            update["correlations"] = {**app.correlations, **self.correlations}
        if self.file_number is not None:
            update["file_number"] = self.file_number
        if self.identity is not None:
            update["identity"] = self.identity
        if self.applicant is not None:
            update["applicant"] = self.applicant
        current = app.original.sha256 if app.original is not None else None
        if self.original is not None and current == self.replaces_original:
            update["original"] = self.original
        if any(name in app.form for name in self.remove_fields):
            update["form"] = {k: v for k, v in app.form.items() if k not in self.remove_fields}
        return app.model_copy(update=update) if update else app


@dataclass(frozen=True)
class FileNumberSequence:
    """Where a new Aktenzeichen comes from: the next value of a named sequence in a period, composed."""

    name: str
    period: str
    compose: Callable[[int], str]  # sequence value -> Aktenzeichen (pure: runs inside the transaction)


@dataclass(frozen=True)
class IntakeResult:
    """The outcome of an intake: the application's id, and whether it already existed.

    `conflict`: it existed with other content and the re-send was refused (`duplicate` is true too:
    nothing of the re-send was stored). `revision`: the application's revision after the intake.
    """

    application_id: str
    duplicate: bool
    events: tuple[Event, ...] = ()
    conflict: bool = False
    revision: int = 1


@dataclass(frozen=True)
class AfterAll:
    """Applied in the completing transaction only if no other task of `step` is still unfinished.

    This joins parallel tasks (deliveries to several targets) without a race: exactly the last one to
    finish triggers what comes next. `step` None: no other task of the application at all; a tuple: no
    other task of any of these steps (a waiting task is unfinished).
    """

    step: str | tuple[str, ...] | None
    events: Sequence[Event] = ()
    tasks: Sequence[TaskSpec] = ()
    state: ApplicationState | None = None


@dataclass(frozen=True)
class FileNumberAssigned:
    """A target assigned the application's Aktenzeichen (a route's `file_number.assigned_by`).

    Applied in the transaction that stores it only if the application has no Aktenzeichen yet, so the
    first number wins and a later one (a repeated answer, a replayed delivery) changes nothing: then it
    is recorded on the application, `events` are appended, and the application's own steps that waited
    for it (`TaskSpec.waiting`) become due.
    """

    file_number: str
    events: Sequence[Event] = ()


@dataclass(frozen=True)
class ClaimRequest:
    """What a claim may lease (see `Journal.claim`)."""

    limit: int
    lease_seconds: float
    capacity: Mapping[str, int]
    starts: Mapping[str, int] | None = None


@dataclass(frozen=True)
class Completion:
    """A task's successful end: its result, the application changes, next events and tasks."""

    result: dict[str, Any] | None = None
    patch: ApplicationPatch | None = None
    events: Sequence[Event] = ()
    tasks: Sequence[TaskSpec] = ()
    state: ApplicationState | None = None  # new application state, if it changes
    error: str | None = None  # reason shown with the application (e.g. rejection reason)
    error_code: str | None = None  # its safe part (e.g. the rejection code), shown to viewers
    assigned: FileNumberAssigned | None = None  # applied after `tasks`, before `after_all`
    after_all: AfterAll | None = None
    # The task's checkpoints as they end (a delivery's `checkpoint_with_completion`); None: unchanged.
    checkpoints: dict[str, Any] | None = None


class ApplicationSummary(BaseModel):
    """An application as listed for operators: metadata, not payload."""

    id: str
    source: str
    external_id: str
    service: str
    route: str | None
    state: ApplicationState
    received_at: datetime
    updated_at: datetime
    file_number: str | None
    error: str | None  # the detailed reason: may quote personal data, so operators only
    error_code: str | None = None  # its safe part: error class or rejection code
    purged_at: datetime | None = None  # its payload was deleted after its retention period ...
    purge_policy: str | None = None  # ... by this retention policy (hub.retention)


@dataclass(frozen=True)
class ApplicationFilter:
    """Which applications to list or replay."""

    state: ApplicationState | None = None
    route: str | None = None
    service: str | None = None
    q: str | None = None  # free text: id, external id, service, file number, applicant name
    ids: tuple[str, ...] = ()
    # False: `q` matches ids, external ids, service and file number only, never personal data (viewers).
    q_personal: bool = True
    # Exactly one of the ids any system gave the application: its id, external id, Aktenzeichen, or a
    # correlation value (e-file ids, case numbers, message ids). Looked up by index, never scanned.
    find: str | None = None
    # Received at or after `received_from` and before `received_until` (UTC; the console's date range).
    received_from: datetime | None = None
    received_until: datetime | None = None
    # Dead letters (`hub.deadletters`): applications with a dead step of this target, error code ("":
    # none recorded), normalised error text, gone dead in [dead_from, dead_to). A replay with any of
    # these replays those steps only, not the application's other dead steps.
    target: str | None = None
    error_code: str | None = None
    error_group: str | None = None
    dead_from: datetime | None = None
    dead_to: datetime | None = None

    def dead_step_filter(self) -> bool:
        """Whether the filter selects dead steps (target, error, when), not only applications."""
        return any(
            v is not None
            for v in (self.target, self.error_code, self.error_group, self.dead_from, self.dead_to)
        )

    def describe(self) -> str:
        """The filter in one line for the audit trail, e.g. ``state=dead route=bauamt``."""
        dated = self.received_from or self.received_until
        only_ids = not any((self.state, self.route, self.service, self.q, self.find, dated))
        if len(self.ids) == 1 and only_ids and not self.dead_step_filter():
            return self.ids[0]
        parts = [
            f"{k}={v}"
            for k, v in (
                ("state", self.state),
                ("route", self.route),
                ("service", self.service),
                ("q", self.q),
                ("find", self.find),
                ("received_from", self.received_from and self.received_from.isoformat()),
                ("received_until", self.received_until and self.received_until.isoformat()),
                ("target", self.target),
                ("error_code", self.error_code),
                # The audit trail outlives the applications' purge: a digest, never the text itself.
                ("error", None if self.error_group is None else group_digest(self.error_group)),
                ("dead_from", self.dead_from and self.dead_from.isoformat(timespec="seconds")),
                ("dead_to", self.dead_to and self.dead_to.isoformat(timespec="seconds")),
            )
            if v is not None and (v or k == "error_code")
        ]
        if self.ids:
            parts.append(f"ids={len(self.ids)}")
        return " ".join(parts) or "all"


@dataclass(frozen=True)
class Abandoned:
    """The outcome of abandoning an application."""

    application_id: str
    tasks: int  # open tasks ended
    already: bool = False  # it was abandoned before: nothing changed
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class TaskFailure:
    """A finished task made dead after the fact, with the error that makes it so (replay runs it again)."""

    step: str
    target: str
    error: str
    error_code: str


@dataclass(frozen=True)
class AnswerEffects:
    """What storing an answer changes, decided inside its transaction from the application it names."""

    patch: ApplicationPatch | None = None
    events: Sequence[Event] = ()
    tasks: Sequence[TaskSpec] = ()
    state: ApplicationState | None = None
    # The Fachverfahren refused the import: its delivery task is made dead with the system's error, so
    # the application shows it and a replay delivers again.
    failed_task: TaskFailure | None = None
    assigned: FileNumberAssigned | None = None  # the answer's case number is the Aktenzeichen


# (the application the answer names, its state, the journal's id of the stored answer) -> the effects;
# pure: it runs inside the transaction
AnswerPlan = Callable[[Application, ApplicationState, int], AnswerEffects]


@dataclass(frozen=True)
class StoredAnswer:
    """The outcome of storing an answer: for which application, whether it was a repeat."""

    application_id: str
    duplicate: bool
    answer_row: int  # the journal's id of the answer (the answer steps' task subject)
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class ReceivedAnswer:
    """An answer as the journal keeps it: which connector gave it, for which application."""

    row: int
    connector: str
    application_id: str
    answer: Answer
    received_at: datetime


class ActionRefused(Exception):
    """An operator action does not apply to the application as it stands (the message says why)."""


@dataclass(frozen=True)
class JournalStats:
    """Counts for /metrics and /readyz."""

    applications_by_state: dict[str, int]
    tasks_by_step_target_state: dict[tuple[str, str, str], int]
    write_transactions: int = 0  # since this process opened the journal
    write_operations: int = 0  # more operations than transactions: commits were grouped
    # held inbound messages (hub.held) by (source, state, reason code)
    held_by_source_state_reason: dict[tuple[str, str, str], int] = field(default_factory=dict)
    operator_actions: dict[str, int] = field(default_factory=dict)  # subjects acted on, by action
    paused_targets: tuple[str, ...] = ()
    purged_applications: int = 0  # applications whose payload was purged (hub.retention)
    last_purge_at: float | None = None  # when the last purge run ended (any process)
    purged_blobs: int = 0  # files purge runs deleted, ever
    purged_blob_bytes: int = 0  # their size
    unsent_alerts: int = 0  # alert mails waiting to be sent (hub.mailer)


# Application states in which nothing more happens by itself: after its retention period such an
# application's payload may be purged. Dead is not final: it waits for an operator's replay.
PURGEABLE_STATES = (ApplicationState.COMPLETED, ApplicationState.REJECTED, ApplicationState.ABANDONED)


@dataclass(frozen=True)
class PurgeCandidate:
    """An application that may be purged: final, unpurged, no step open (what policies match on)."""

    id: str
    route: str | None
    service: str
    final_since: float  # when it last changed (its retention period counts from here)


@dataclass(frozen=True)
class QueuedAlert:
    """A mail in the alert outbox (`hub.mailer`), waiting to be sent."""

    id: int
    key: str
    kind: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    created_at: float
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class PurgeOrder:
    """Purge this application by `purged.policy` if it still qualifies: final and unchanged since `cutoff`."""

    application_id: str
    purged: Purged
    cutoff: float  # it must not have changed after this (an answer may have reopened it meanwhile)
    retention_days: float
    operator: str | None = None


@dataclass(frozen=True)
class PurgedApplication:
    """One application purged: the blob references its rows held (now candidates for deletion)."""

    application_id: str
    policy: str
    blobs: frozenset[str]


CircuitState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class CircuitRecord:
    """A target's circuit as of its last change, kept so a restart, `aktenhub diagnostics` and (later)
    other hub processes see it (`hub.gate`)."""

    target: str
    state: CircuitState
    failures: int  # retryable failures in a row when it last changed
    open_seconds: float  # the cool-down in force: it doubles after each failed probe
    open_until: float | None  # when the next probe may run (open only)
    changed_at: float
    error_code: str | None = None  # the class of the failure that opened it


class Journal(Protocol):
    """The store behind the bus. All methods are safe to call concurrently from one event loop."""

    async def open(self) -> None:
        """Create or migrate the schema, make the store ready.

        A backend used by one process only takes an exclusive lock first and raises `JournalInUse` if
        another process holds it, before touching anything.
        """

    async def close(self) -> None:
        """Flush and release the store."""

    async def ping(self) -> None:
        """Raise if the store cannot be read and written."""

    async def recover(self) -> int:
        """After a crash of the only process using this store: release every lease. Returns count.

        Only backends used by a single process may do this at start (under the lock `open` took);
        shared backends rely on expiry.
        """

    async def intake(
        self,
        application: Application,
        events: Sequence[Event],
        tasks: Sequence[TaskSpec],
        state: ApplicationState = ApplicationState.RECEIVED,
        error: str | None = None,
        error_code: str | None = None,
        on_changed: ChangedResend = ChangedResend.REFUSE,
    ) -> IntakeResult:
        """Store a new application with its events and tasks; idempotent on (source, external_id).

        `state` and `error` set where it starts (a submission rejected at intake starts `rejected`).
        A re-send with the same `application.fingerprint` is a duplicate; one with another is refused
        or becomes a new revision, per `on_changed` (see `hub.resubmission`).
        """

    async def claim(
        self,
        owner: str,
        limit: int,
        lease_seconds: float,
        capacity: dict[str, int],
        starts: Mapping[str, int] | None = None,
    ) -> list[Task]:
        """Lease up to `limit` due tasks (pending, or leased with an expired lease).

        `capacity` caps live leases per target; a target not in it is uncapped. `starts` caps the
        tasks this claim may lease per target (the `hub.gate` decision: 0 while a target is paused or
        its circuit open); a target not in it is not capped. A task whose key is held by a live lease
        waits. Each claim counts an attempt.
        """

    async def complete_and_claim(
        self, task: Task, completion: Completion, request: ClaimRequest
    ) -> tuple[tuple[Event, ...], list[Task]]:
        """`complete`, then `claim` as `request` says, in one transaction: the returned events, and the
        tasks leased. The claim sees the completed task's lease let go, so a worker hands its slot of
        the target's capacity straight on to the next due task."""

    async def renew(self, task: Task, lease_seconds: float) -> Task:
        """Extend a held lease; raise `LeaseLost` if it is no longer held."""

    async def save_checkpoints(self, task: Task, checkpoints: dict[str, Any]) -> None:
        """Durably record a running task's partial progress; raise `LeaseLost` if not held."""

    async def complete(self, task: Task, completion: Completion) -> tuple[Event, ...]:
        """End a held task successfully and apply its completion atomically; `LeaseLost` if not held.

        Returns the appended events with their ids.
        """

    async def fail(
        self,
        task: Task,
        error: str,
        retry_at: float | None,
        events: Sequence[Event] = (),
        error_code: str | None = None,
        counted: bool = True,
    ) -> tuple[Event, ...]:
        """End a held task's attempt with an error: reschedule it at `retry_at`, or (None) make it dead.

        `counted=False` (a circuit's failed probe) leaves the attempt out of the retry budget.

        `error_code` is the error's safe part (its class), kept beside the detailed `error`.
        """

    async def replay(
        self, where: ApplicationFilter, operator: str | None = None, reason: str | None = None
    ) -> list[str]:
        """Make the dead tasks of the matching applications due again; returns the application ids.

        Completed steps and the original submission are kept; attempts keep counting upwards. Each
        replayed application gets an ``operator.replayed`` event naming `operator` and `reason`; the
        audit trail one row for the whole replay.
        """

    async def count_replayable(self, where: ApplicationFilter) -> int:
        """How many applications `replay(where)` would replay now (the preview of a bulk replay)."""

    async def abandon(self, application_id: str, operator: str, reason: str) -> Abandoned:
        """End an application's open tasks for good and mark it abandoned, with an operator event.

        Raises `KeyError` for an unknown application and `ActionRefused` while one of its steps is
        running or when it has nothing left to abandon (completed, rejected and answered).
        """

    async def count_dead(self, where: ApplicationFilter) -> int:
        """How many dead applications `where` selects (the preview of a bulk abandon)."""

    async def abandon_bulk(self, where: ApplicationFilter, operator: str, reason: str) -> list[Abandoned]:
        """Abandon every dead application `where` selects, in one transaction with one audit row.

        An application with a step running now is left out (it is abandoned alone once it ended).
        """

    async def dead_letters(self, where: ApplicationFilter, by_text: bool, limit: int) -> DeadLetters:
        """The dead steps `where` selects grouped by target, error code and (`by_text`) error text,
        the largest `limit` groups first."""

    async def record_action(
        self,
        operator: str | None,
        action: Action,
        subject: str,
        count: int,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> OperatorAction:
        """Add a row to the audit trail, for an action whose effect is stored elsewhere (e.g. a purge)."""

    async def operator_actions(
        self,
        action: Action | None = None,
        operator: str | None = None,
        limit: int = 100,
        offset: int = 0,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
    ) -> list[OperatorAction]:
        """The audit trail in [since, until) (and below row `before_id`), newest first."""

    async def pause_target(self, target: str, operator: str, reason: str) -> TargetPause | None:
        """Pause a target (with an audit row); None if it was paused already (that pause stays)."""

    async def resume_target(self, target: str, operator: str, reason: str | None) -> TargetPause | None:
        """Lift a target's pause (with an audit row); the pause lifted, None if there was none."""

    async def paused_targets(self) -> dict[str, TargetPause]:
        """Every paused target."""

    async def append(self, events: Sequence[Event]) -> tuple[Event, ...]:
        """Add events to their applications' timelines (e.g. an operator action); returns them stored."""

    async def get_application(self, application_id: str) -> Application | None:
        """The full application document."""

    async def get_summary(self, application_id: str) -> ApplicationSummary | None:
        """One application's metadata."""

    async def list_applications(
        self, where: ApplicationFilter, limit: int = 100, offset: int = 0
    ) -> list[ApplicationSummary]:
        """Applications, newest first."""

    async def events(self, application_id: str) -> list[Event]:
        """An application's timeline, oldest first."""

    async def tasks(self, application_id: str) -> list[Task]:
        """An application's tasks, in creation order."""

    async def next_due(self) -> float | None:
        """When the next pending task falls due (or a lease expires); None if nothing is waiting."""

    def watch_for_work(self, wake: Callable[[], None]) -> None:
        """From now on call `wake` when another process may have added due work (a hint, not a promise).

        The workers also look every `workers.idle_poll_seconds`: that is the guarantee, this shortens
        the wait. Work this process adds wakes its workers without the journal. `wake` must be called on
        the event loop's thread; a later call replaces it. A backend only one process uses hears of no
        other process and does nothing; a shared one listens (PostgreSQL: LISTEN/NOTIFY) until closed.
        """

    async def next_sequence(self, name: str, period: str) -> int:
        """The next number of a named sequence in a period (e.g. file numbers per year): 1, 2, ..."""

    async def assign_file_number(
        self,
        application_id: str,
        sequence: FileNumberSequence | None,
        *,
        found: str | None = None,
        akte_key: str | None = None,
    ) -> str | None:
        """Decide the application's Aktenzeichen once, in one transaction that also records it on it.

        Kept if the application has one already (a retried or replayed step draws nothing); else the
        number `found` on the existing Akte; else the number this journal gave the Akte `akte_key`
        earlier (its first application is not filed yet); else the next number of `sequence`.
        """

    async def store_answer(self, connector: str, answer: Answer, plan: AnswerPlan) -> StoredAnswer:
        """Store a Fachverfahren's answer with what it triggers, in one transaction.

        Idempotent on (connector, `answer.answer_id`): a repeat changes nothing and says `duplicate`.
        The plan's tasks are created `waiting` while a step of the application's own is unfinished
        (after `assigned` is applied): they become due when its last own step completes, so an answer
        that comes before the receipts (a Fachverfahren that assigns the Aktenzeichen answers first)
        is filed into the Akte and told after them.
        The application is the one `answer.application_id` names, else the one whose correlations with
        this connector (``<connector>`` or ``<connector>.<key>``) hold `answer.reference`; either way it
        must have a delivery to `connector`. Raises `hub.answers.UnknownApplication` otherwise (nothing
        is stored).
        """

    async def get_answer(self, row: int) -> ReceivedAnswer | None:
        """One stored answer by the journal's id of it."""

    async def answers(self, application_id: str) -> list[ReceivedAnswer]:
        """An application's answers, in the order they were received."""

    async def stats(self) -> JournalStats:
        """Counts by state for metrics."""

    async def circuits(self) -> dict[str, CircuitRecord]:
        """Every target's circuit as last saved, by target."""

    async def save_circuit(self, record: CircuitRecord) -> None:
        """Store a target's circuit after it changed state."""

    async def once(self, namespace: str, key: str, owner: str, until: datetime) -> str:
        """Bind `key` in `namespace` to `owner` until `until` unless bound already; return its owner.

        One atomic write: of concurrent callers exactly one binds the key (a replay store).
        """

    async def blob_references(self, excluding: Collection[str] = ()) -> set[str]:
        """Every blob reference (``sha256:<hex>``) any journal row holds (for the orphan sweep).

        `excluding`: application ids whose rows are not looked at (what a purge of them would free).
        """

    async def purge_candidates(
        self, changed_before: float, after: tuple[float, str] | None, limit: int
    ) -> list[PurgeCandidate]:
        """Final, unpurged applications without open steps, unchanged since `changed_before`.

        Oldest change first; `after` is the (final_since, id) of the last one of the previous page.
        """

    async def purge(self, orders: Sequence[PurgeOrder]) -> list[PurgedApplication]:
        """Erase the payload of each ordered application that still qualifies, in one transaction.

        Its rows keep metadata, ids and the timeline (see `hub.erasure`); an ``application.purged``
        event is added. An application changed, reopened or purged meanwhile is skipped.
        """

    async def record_purge_run(self, at: float, blobs: int, size: int, told_from: float | None) -> None:
        """Note when a purge run ended and add the files (`blobs`, `size` bytes) it deleted to the totals.

        Kept in the journal, so /metrics shows them whichever process ran the purge. `told_from`: the
        connectors know of every application purged before this time (None: unchanged).
        """

    async def purged_untold(self) -> list[str]:
        """Applications purged since connectors last heard of every purge (a run crashed or failed)."""

    async def probe_write(self) -> None:
        """Write and commit a row, to learn whether the journal can take writes again (disk full)."""

    async def unreported_dead(self) -> list[DeadTask]:
        """Dead steps no alert mail has reported yet (`hub.mailer`)."""

    async def queue_alerts(self, drafts: Sequence[AlertDraft]) -> int:
        """Queue alert mails not queued before (by key), each with the dead steps it reports, atomically."""

    async def prune_alerts(self, sent_before: float) -> None:
        """Forget which steps were reported once they are no longer dead, and mails sent before then."""

    async def due_alerts(self) -> list[QueuedAlert]:
        """Alert mails not sent yet whose next attempt is due, oldest first."""

    async def alert_sent(self, alert_id: int) -> None:
        """Mark an alert mail sent: the mail server accepted it."""

    async def alert_failed(self, alert_id: int, error: str, retry_at: float) -> None:
        """Note a failed attempt to send an alert mail; it is tried again at `retry_at`."""

    async def unsent_alerts(self) -> int:
        """How many alert mails wait to be sent."""

    async def dashboard_figures(self, now: float, window_seconds: int) -> JournalFigures:
        """The console dashboard's figures over the last `window_seconds` (`hub.dashboard`)."""

    async def live_counters(self, now: float) -> LiveCounters:
        """The dashboard's live counters as of `now`."""

    async def hold(
        self,
        source: str,
        message_id: str,
        sender: str | None,
        state: HeldState,
        code: str,
        reason: str,
        application_id: str | None = None,
    ) -> HeldMessage:
        """Record an inbound message as quarantined or rejected; an operator's decision stays."""

    async def held_fetch_failed(
        self, source: str, message_id: str, sender: str | None, code: str, reason: str, backoff: BackOff
    ) -> HeldMessage:
        """Count a failed fetch of an inbound message: back off, or quarantine after the last one."""

    async def held_taken(self, source: str, message_id: str) -> None:
        """Forget a `retrying` record: the message was taken after all."""

    async def held_decide(
        self, held_id: int, state: HeldState, by: str, reason: str | None = None
    ) -> HeldMessage:
        """Record an operator's decision (closed or kept) on a held message, with an audit row."""

    async def held_lookup(self, source: str, message_ids: Sequence[str]) -> dict[str, HeldMessage]:
        """The held records of these message ids of a source."""

    async def held_get(self, held_id: int) -> HeldMessage | None:
        """One held message by its id."""

    async def list_held(self, where: HeldFilter, limit: int = 100, offset: int = 0) -> list[HeldMessage]:
        """Held messages, most recently changed first."""

    async def take_lease(self, name: str, holder: str, seconds: float) -> LeaseGrant | None:
        """Take the singleton job's lease for `seconds` if it is free, expired or `holder`'s own (then
        renew it); None if another holder has it. A new holder gets the next fencing token."""

    async def release_lease(self, name: str, holder: str, token: int) -> bool:
        """Give the lease up at once (another process may take it now); False if `holder` lost it."""

    async def lease_holds(self, name: str, holder: str, token: int) -> bool:
        """Whether `holder` still holds the lease under `token`: a job asks before an irreversible write."""

    async def leases(self) -> list[LeaseGrant]:
        """Every singleton job's lease (expired ones too: who ran it last), by name."""
