"""Connector base classes: the async side of the plugin contract.

A plugin provides connector classes (via the `aktenhub_connector_types` hook). Each class declares
`kind` (the `type:` in the configuration), a pydantic `Config` model and a `manifest`. The roles:

- `Source` takes submissions in (webhook or poll) and acknowledges them after the durable commit;
- `IdentityProvider` verifies who the applicant is and how strongly;
- `Sink` delivers a `FileRecord` into a target system, idempotently;
- `Notifier` answers the applicant or the portal.

Errors: raise `hub.errors.Retryable` or `hub.errors.Permanent`; the core owns retry timing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from hub.certificates import CarriesCertificates, CertificateInfo
from hub.errors import Permanent, Rejection
from hub.models import (
    Application,
    Delivery,
    FileRecord,
    FolderSpec,
    Identity,
    OriginalSubmission,
    Party,
    Receipt,
    TrustLevel,
)
from hub.resubmission import ChangedResend

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web

    from hub.answers import Answer, AnswerOutcome, AnswerRecord, CallbackAuth
    from hub.blobs import Blobs
    from hub.held import HeldMessages
    from hub.outbound import HttpEndpoint, Outbound

Role = Literal["source", "identity", "sink", "notifier"]
# (namespace, key, owner, until) -> the owner the key is bound to: `Journal.once`
OnceFunc = Callable[[str, str, str, datetime], Awaitable[str]]
# (connector name, answer) -> outcome, after the durable commit: the core's return channel
AnswerFunc = Callable[[str, "Answer"], Awaitable["AnswerOutcome"]]


class RetryPolicy(BaseModel):
    """How often and how patiently the core retries a connector's failing step."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(8, ge=1, le=1000)
    initial_seconds: float = Field(1.0, gt=0)
    max_seconds: float = Field(600.0, gt=0)
    jitter_seconds: float = Field(1.0, ge=0)


class CircuitPolicy(BaseModel):
    """When the core stops trying a failing target, and how it finds out that it works again."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    failure_threshold: int = Field(
        5, ge=1, le=10_000, description="consecutive retryable failures that open the circuit"
    )
    open_seconds: float = Field(30.0, gt=0, description="first cool-down before a probe is tried")
    max_open_seconds: float = Field(
        600.0, gt=0, description="the cool-down doubles after each failed probe, up to this"
    )
    probe_successes: int = Field(
        1, ge=1, le=100, description="probes in a row that must succeed before the circuit closes"
    )

    @model_validator(mode="after")
    def _cool_down_grows(self) -> CircuitPolicy:
        if self.max_open_seconds < self.open_seconds:
            raise ValueError("max_open_seconds must be at least open_seconds")
        return self


class ConnectorConfig(BaseModel):
    """Settings every connector has; a connector's own `Config` extends this."""

    model_config = ConfigDict(extra="forbid")

    type: str
    max_concurrency: int = Field(4, ge=1, le=1000, description="parallel tasks against this target")
    max_per_second: float | None = Field(
        None, gt=0, le=10_000, description="tasks started per second against this target (rate limit)"
    )
    retry: RetryPolicy = Field(default_factory=lambda: RetryPolicy())
    circuit: CircuitPolicy = Field(default_factory=lambda: CircuitPolicy())


class Manifest(BaseModel):
    """What a connector is and which standards (with versions) it speaks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str
    standards: tuple[str, ...] = ()
    description: str = ""


class CheckResult(BaseModel):
    """The answer of `Connector.check()`: can the remote system be reached and used?"""

    ok: bool
    message: str
    details: dict[str, str] = Field(default_factory=dict)


@dataclass
class ConnectorContext:
    """What the core hands every connector: its name, the blob store, shared resources."""

    name: str
    blobs: Blobs
    schemas: Path | None
    data_dir: Path
    _http: Callable[[], aiohttp.ClientSession] | None = None
    _once: OnceFunc | None = None
    _held: HeldMessages | None = None
    _answer: AnswerFunc | None = None
    _routed: Callable[[str], bool] | None = None
    _overdue: Callable[[float], None] | None = None

    def routed(self, service: str) -> bool:
        """Whether a route takes `service` from this connector (a source that reads the service from
        the submission refuses one no route takes, as the intake route does for the URL's)."""
        return True if self._routed is None else self._routed(service)

    @property
    def http(self) -> aiohttp.ClientSession:
        """The hub's shared HTTP client session (one connection pool for all connectors)."""
        if self._http is None:
            raise RuntimeError("no HTTP client session in this context")
        return self._http()

    def outbound(self, endpoint: HttpEndpoint, *, system: str) -> Outbound:
        """An `Outbound` to `endpoint` on the shared session: auth, bounded reads, errors classified."""
        from hub.outbound import Outbound

        return Outbound(lambda: self.http, endpoint, system=system)

    async def answer(self, answer: Answer) -> AnswerOutcome:
        """Store a Fachverfahren's answer durably; acknowledge it upstream only after this returns.

        Idempotent on (this connector, `answer.answer_id`). Raises `hub.answers.UnknownApplication`
        when the answer names no application of the hub (then nothing is stored).
        """
        if self._answer is None:
            raise RuntimeError("no return channel in this context")
        return await self._answer(self.name, answer)

    async def once(self, namespace: str, key: str, owner: str, until: datetime) -> bool:
        """Use `key` once: False if another owner used it in `namespace` before (until `until`).

        The record lives in the journal, shared by every connector of the hub: connectors that trust
        the same issuer use the same `namespace` (e.g. the issuer's entity id) and so refuse a key used
        through any of them. The same owner again (a retried step) is allowed.
        """
        if self._once is None:
            raise RuntimeError("no journal in this context to record used keys")
        return await self._once(namespace, key, owner, until) == owner

    def overdue(self, count: int) -> None:
        """Report how many submissions wait upstream unacknowledged past the source's warning age.

        The metric ``aktenhub_source_overdue{source}`` shows the last count (a polled source reports it
        after each poll); without a hub (a test context) nothing is recorded.
        """
        if self._overdue is not None:
            self._overdue(count)

    @property
    def held(self) -> HeldMessages:
        """A polled source's register of messages it could not take (see `hub.held`)."""
        if self._held is None:
            raise RuntimeError("no register of held messages in this context")
        return self._held


def _parts(value: object) -> list[CarriesCertificates]:
    """The parts of a configuration that name certificates, depth first (a part's own parts not)."""
    # A setting merely named `certificates` (a list, say) is no such part: the method must be callable.
    if isinstance(value, CarriesCertificates) and not isinstance(value, type):
        return [value] if callable(value.certificates) else []
    if isinstance(value, BaseModel):
        return [p for name in type(value).model_fields for p in _parts(getattr(value, name))]
    if isinstance(value, list | tuple):
        return [p for item in value for p in _parts(item)]
    if isinstance(value, dict):
        return [p for item in value.values() for p in _parts(item)]
    return []


ConfigT = TypeVar("ConfigT", bound=ConnectorConfig)
PayloadT = TypeVar("PayloadT", bound=BaseModel)


class Connector(Generic[ConfigT]):
    """Base of every connector class, generic in its configuration model.

    A plugin writes ``class EnaioSink(Sink[EnaioConfig])`` with ``Config = EnaioConfig``: the core
    validates the `connectors.<name>` section with `Config` and hands the instance as `self.config`,
    typed, so no plugin downcasts its configuration.
    """

    kind: ClassVar[str]
    role: ClassVar[Role]
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    manifest: ClassVar[Manifest]

    def __init__(self, config: ConfigT, context: ConnectorContext) -> None:
        self.config: ConfigT = config
        self.context = context

    @property
    def name(self) -> str:
        """The connector's name in the configuration."""
        return self.context.name

    async def start(self) -> None:
        """Acquire resources when the hub starts (default: nothing)."""

    async def stop(self) -> None:
        """Release resources when the hub stops (default: nothing)."""

    async def check(self) -> CheckResult:
        """Can the remote system be reached and used with this configuration?"""
        return CheckResult(ok=True, message="nothing to check")

    def certificates(self) -> Sequence[CertificateInfo]:
        """The certificates this connector relies on (default: those its configuration names).

        A part of the configuration that names certificate files says so with a `certificates()`
        method (`ClientTls`, the XTA settings); a connector with certificates of another kind (e.g.
        from a metadata document) adds them. `CertificateUnreadable` for a file that cannot be read.
        """
        return [info for part in _parts(self.config) for info in part.certificates()]

    async def diagnostics(self) -> dict[str, Any]:
        """Redacted state for operators: never secrets, never personal data."""
        secrets = {name for name, value in self.config if isinstance(value, SecretStr)}
        return {"kind": self.kind, "config": self.config.model_dump(mode="json", exclude=secrets)}

    async def blob_references(self) -> set[str]:
        """Blobs this connector keeps outside the journal (the orphan sweep spares them; default: none)."""
        return set()

    async def forget(self, application_ids: Sequence[str]) -> set[str]:
        """These applications' payloads were purged (`hub.retention`): drop what this connector keeps
        of them outside the journal (e.g. sent messages in a store of its own) and return the blob
        references it no longer keeps, which the purge then deletes unless something else keeps them.

        Called after the journal committed the purge, again after a crash or failure: idempotent.
        Default: nothing is kept.
        """
        return set()


@dataclass
class StagedFile:
    """A file the source has streamed into the blob store while parsing a submission."""

    name: str
    media_type: str
    blob: str
    size: int
    sha256: str
    field: str | None = None


@dataclass
class Intake:
    """What a source hands the core: one application, its files already durable in the blob store.

    With `rejection`, the submission is taken in but refused as a business outcome (e.g. a message
    invalid against its schema): it is stored as `rejected` with the reason, and the route's
    notifiers answer the sender; nothing is filed.

    `on_changed` is the source's `on_changed_resend` setting: what a re-send under a known external id
    with changed content does (see `hub.resubmission`).
    """

    application: Application
    rejection: Rejection | None = None
    on_changed: ChangedResend = ChangedResend.REFUSE


@dataclass
class IntakeOutcome:
    """The core's answer to an intake: the application id, and whether it was a re-sent submission.

    `conflict`: re-sent with changed content and refused (then `duplicate` is true as well: nothing was
    stored). `revision`: the application's revision after this intake (above 1: it was revised).
    """

    application_id: str
    duplicate: bool
    conflict: bool = False
    revision: int = 1


IntakeFunc = Callable[[Intake], Awaitable[IntakeOutcome]]
"""The core's intake a source calls with each submission; it returns after the durable commit."""


@dataclass
class WebhookRoute:
    """An extra HTTP route a source serves under `/intake/<connector>/`."""

    method: str
    path: str  # relative to /intake/<connector>/
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]


class Source(Connector[ConfigT]):
    """Takes submissions in: by webhook (`receive`) and/or by polling (`poll`)."""

    role: ClassVar[Role] = "source"
    # Seconds between polls for polled sources (None: webhook only); an instance may set it from its
    # configuration in __init__.
    poll_interval: float | None = None
    # Set by the core where it schedules this source's polls: runs the next poll at once (e.g. an IMAP
    # IDLE heard of new mail), under the same lease. None: no scheduled polls in this process.
    wake_poll: Callable[[], None] | None = None

    async def receive(self, request: web.Request, service: str) -> Intake:
        """Turn a webhook request to `POST /intake/<connector>/<service>` into an `Intake`.

        Raise `hub.errors.BadSubmission` for a request that must be refused (it then changes nothing).
        """
        from hub.errors import BadSubmission

        raise BadSubmission(f"connector {self.name!r} does not take webhook submissions", 404)

    def routes(self, intake: IntakeFunc) -> list[WebhookRoute]:
        """Extra webhook routes (default: none)."""
        return []

    async def poll(self, intake: IntakeFunc) -> int:
        """Fetch new submissions, hand each to `intake`, acknowledge upstream after it returns.

        Returns the number taken in. Called one at a time, every `poll_interval` seconds.
        """
        return 0

    async def acknowledge(self, application: Application, outcome: IntakeOutcome) -> None:
        """Tell the remote system its submission is safe (default: the HTTP answer does it)."""

    async def close_upstream(self, message_id: str) -> None:
        """Remove a held message upstream for good (an operator closed it); idempotent.

        Default: a source without such messages has nothing to remove.
        """

    async def redact_original(self, original: OriginalSubmission, fields: Sequence[str]) -> bytes | None:
        """The original submission without these form fields (spent credentials); None: cannot redact.

        Called when the identity step ends, with the credential fields the application carried. Return
        the original's content with those fields (names and values) removed and everything else as it
        was, or the content unchanged if it never held them (e.g. a credential sent in a header). The
        core stores the result as the application's original. A source that returns None (the default)
        keeps its original, marked: `content: original` then refuses to file it.
        """
        return None


class Verification(BaseModel):
    """What an identity provider found: the identity, and applicant data taken from it (if any)."""

    identity: Identity
    applicant: Party | None = None


class IdentityProvider(Connector[ConfigT]):
    """Verifies who the applicant is and how strongly."""

    role: ClassVar[Role] = "identity"

    async def verify(self, application: Application, minimum_level: TrustLevel | None) -> Verification:
        """Return the verified identity, or raise `hub.errors.Rejection` with a precise reason.

        The core checks the achieved level against `minimum_level` again: a provider need not. It also
        checks the route's `attribute_levels` against `Identity.attribute_levels`, which a provider
        fills with each attribute's own trust level, keyed by the `Party` / `Address` field name.
        Rejection codes are those of `hub.RejectionCode`.
        """
        raise NotImplementedError

    def credential_fields(self) -> Sequence[str]:
        """Form fields holding the credential this provider verifies (e.g. a forwarded SAML response).

        The core removes them from the application once the identity step has ended: sinks, mapping
        and rendition see the verified identity and applicant, never the raw credential.
        """
        return ()


class DeliveryContext:
    """Per-task context of a delivery: the application, the blob store, partial-progress checkpoints."""

    def __init__(
        self,
        application: Application,
        blobs: Blobs,
        checkpoints: Mapping[str, Any],
        save: Callable[[dict[str, Any]], Awaitable[None]],
        attempt: int,
    ) -> None:
        self.application = application
        self.blobs = blobs
        self.attempt = attempt
        self._checkpoints = dict(checkpoints)
        self._save = save
        self._with_completion: dict[str, Any] | None = None

    @property
    def checkpoints(self) -> Mapping[str, Any]:
        """Progress recorded by earlier attempts of this delivery (e.g. the folder already created)."""
        return self._checkpoints

    async def checkpoint(self, key: str, value: Any) -> None:
        """Durably record partial progress, so a retry resumes instead of repeating it."""
        await self.checkpoint_many({key: value})

    async def checkpoint_many(self, values: Mapping[str, Any]) -> None:
        """Durably record several pieces of progress in one journal write."""
        self._checkpoints.update(values)
        await self._save(dict(self._checkpoints))

    def checkpoint_with_completion(self, values: Mapping[str, Any]) -> None:
        """Record progress in the transaction that completes the delivery, without a write of its own.

        For the progress of an attempt that is about to return successfully: if the completion is never
        recorded (the hub stops first), neither is this, so only for progress the sink can find again
        without it (by lookups in the target).
        """
        self._checkpoints.update(values)
        self._with_completion = dict(self._checkpoints)

    @property
    def completion_checkpoints(self) -> dict[str, Any] | None:
        """What `checkpoint_with_completion` left for the completion to record (None: nothing)."""
        return self._with_completion


class Sink(Connector[ConfigT]):
    """Delivers a record into a target system. Must be idempotent: deliver twice, one result.

    A sink whose system answers (a Fachverfahren: case number, status, decision) hands each answer to
    `self.context.answer(...)`: from `poll_answers` (answer folder, status column, XTA mailbox) or from
    `callback_answers` (the core serves `POST /callback/<connector>` and checks its signature first).
    A sink that keeps the e-file (enaio) implements `record_answer` to file what an answer changes.
    """

    role: ClassVar[Role] = "sink"
    # The pydantic model of what this sink reads from the mapping's `payloads.<target>` (None: nothing).
    # The core validates every route's mapping output against it at start-up, in `aktenhub check` and
    # in `aktenhub mapping test`, and hands the sink the validated data in `FileRecord.payloads`.
    Payload: ClassVar[type[BaseModel] | None] = None
    # Seconds between `poll_answers` calls (None: this sink does not poll for answers); an instance may
    # set it from its configuration in __init__.
    answer_poll_interval: float | None = None
    # True for an e-file (DMS): the number of the Akte it files into is the application's Aktenzeichen.
    # Another sink's `Delivery.file_number` (a Fachverfahren's case number) is kept as the correlation
    # ``<target>.file_number`` and never replaces the Aktenzeichen.
    is_efile: ClassVar[bool] = False

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        """Deliver the record; return what was created (ids, file number)."""
        raise NotImplementedError

    def payload(self, record: FileRecord, model: type[PayloadT]) -> PayloadT:
        """This sink's `payloads.<its name>` from the record as an instance of its `Payload` model.

        ``self.payload(record, MyPayload)`` with ``Payload = MyPayload``: typed, no cast. The data was
        validated against the model when the record was mapped; a mapping without a payload for this
        target gives the model's defaults.
        """
        declared = type(self).Payload
        if declared is None or not issubclass(declared, model):
            raise TypeError(f"{type(self).__name__}.Payload is {declared!r}, not {model.__name__}")
        try:
            return model.model_validate(record.payloads.get(self.name, {}))
        except ValidationError as exc:  # a record mapped before the model changed
            raise Permanent(f"payloads.{self.name} does not fit {model.__name__}: {exc}") from None

    async def existing_file_number(self, akte: FolderSpec) -> str | None:
        """The Aktenzeichen of the Akte `akte.search` finds in the target, if one exists.

        Asked before an application's Aktenzeichen is decided, so that an existing Akte's number is the
        one printed on the rendition and sent in receipts. None: no such Akte, or the target cannot
        tell (the default). Raise `Retryable` when the target cannot be asked right now.
        """
        return None

    async def poll_answers(self) -> int:
        """Fetch the system's new answers, hand each to `context.answer`, acknowledge each after it.

        Returns the number taken. Called one at a time, every `answer_poll_interval` seconds.
        """
        return 0

    def callback_auth(self) -> CallbackAuth | None:
        """How callbacks to `POST /callback/<connector>` authenticate (None: this sink takes none)."""
        return None

    async def callback_answers(self, body: bytes, headers: Mapping[str, str]) -> Sequence[Answer]:
        """The answers in a callback the system sent to `POST /callback/<connector>` (already authenticated).

        Asynchronous, so that a decision carried in the body can be written to the blob store first.
        Raise `hub.errors.BadSubmission` for a body that is not an answer (the caller gets a 4xx). The
        core hands each answer to `context.answer` and answers the sender 2xx only after all are stored.
        """
        from hub.errors import BadSubmission

        raise BadSubmission(f"connector {self.name!r} takes no callbacks", 404)

    async def record_answer(self, record: AnswerRecord, ctx: DeliveryContext) -> Delivery:
        """File what an answer changes (Akte index fields, the decision into the Vorgang).

        Only for e-file targets named in a route's `on_answer.update_akte`. Idempotent per
        `record.answer_id`: the core runs it again after a crash or a lost lease, so an answer's
        decision must be filed once however often this is called (look for it before filing, or use
        checkpoints). The returned `Delivery.correlations` (e.g. the decision's document id) become ids
        that find the application.
        """
        raise NotImplementedError(f"connector {self.name!r} does not update an Akte")


class Notifier(Connector[ConfigT]):
    """Answers the applicant or the portal."""

    role: ClassVar[Role] = "notifier"

    async def notify(self, application: Application, receipt: Receipt) -> Mapping[str, str] | None:
        """Send the receipt; idempotent per (application, receipt kind).

        Returns the ids the remote system gave what was sent (e.g. ``{"status": <message id>}``): the
        core keeps them as correlations ``<notifier>.<receipt kind>.<key>`` (status receipts:
        ``<notifier>.status.<answer id>.<key>``), so that they find the application. None: no ids.

        A `status` receipt (a Fachverfahren's answer) is idempotent per (application,
        `receipt.answer_id`): the core sends one per answer and runs it again after a crash, so the
        applicant must learn each status once however often this is called.
        """
        raise NotImplementedError


@dataclass
class Simulator:
    """A simulator of a remote system, offered by a plugin for tests, the demo and `aktenhub simulate`."""

    name: str
    description: str
    # Builds the aiohttp application; options come from the command line or the test.
    make_app: Callable[..., web.Application]
    options: dict[str, Any] = field(default_factory=dict)
