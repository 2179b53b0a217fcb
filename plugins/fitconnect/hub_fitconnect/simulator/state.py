"""The FIT-Connect simulator's state: clients, tokens, destinations, submissions, cases, event logs.

Everything lives in memory. Time comes from a `Clock` the operator can move (``/_sim/clock``), so the
deadlines (notice after 3 days unfetched, automatic reject after 14 days in ``submitted``) are tested
without waiting; they are evaluated whenever the state is touched (`SimState.tick`), never by a timer.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from jwcrypto import jwk
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.simulation import FaultKnobs, SimulatedFaults

from .. import jose
from ..wire import (
    CREATE_SUBMISSION,
    PROBLEM_PREFIX,
    REJECT_SUBMISSION,
    SCOPE_SEND_DESTINATION,
    SCOPE_SEND_REGION,
    SCOPE_SUBSCRIBE,
    SET_PAYLOAD_SCHEMA,
    AuthenticationTags,
    Problem,
)
from .pki import Authority

NOTICE_AFTER = timedelta(days=3)
REJECT_AFTER = timedelta(days=14)
# The problem of the Zustelldienst's own reject after 14 days; docs.fitko.de names the deadline, not the
# problem type, so this one is the simulator's.
DEADLINE_PROBLEM = Problem(
    type=PROBLEM_PREFIX + "submission-expired",
    title="Einreichung nicht abgeholt",
    detail="Die Einreichung wurde nicht innerhalb von 14 Tagen angenommen oder zurückgewiesen.",
    instance="submission",
)
DEFAULT_SERVICE = "urn:de:fim:leika:leistung:99108008252000"
DEFAULT_SCHEMA = "https://schema.fitko.de/fim/s00000000009_1.0.0.schema.json"


class Knobs(FaultKnobs):
    """The simulator's faults (``/_sim/faults``): the common ones and FIT-Connect's own, each one-shot."""

    wrong_kid_next: int = Field(
        0, ge=0, description="the next N submissions' metadata JWE names an unknown kid"
    )
    corrupt_ciphertext_next: int = Field(
        0, ge=0, description="the next N submissions' data ciphertext altered"
    )
    metadata_hash_mismatch_next: int = Field(
        0, ge=0, description="the next N submissions' metadata name a data hash that does not match"
    )
    stale_callback_next: int = Field(0, ge=0, description="the next N callbacks carry a timestamp 10 min old")
    wrong_callback_mac_next: int = Field(0, ge=0, description="the next N callbacks carry a wrong HMAC")
    fail_events_next: int = Field(0, ge=0, description="answer the next N event posts 503, unprocessed")
    hold_events_next: int = Field(
        0, ge=0, description="hold the next N event posts until POST /_sim/held/release"
    )
    expire_tokens: bool = Field(False, description="expire every token issued so far (then turns itself off)")


class SimulatorOptions(BaseModel):
    """Options of the simulator (from a test, or ``aktenhub simulate fitconnect --option KEY=VALUE``)."""

    model_config = ConfigDict(extra="forbid")

    versions: tuple[str, ...] = Field(("v1", "v2"), description="API versions served (v1, v2)")
    issuer: str = Field("https://api.fitko.de/fit-connect/", description="iss of the Zustelldienst's events")
    key_size: int = Field(4096, ge=2048, description="RSA bits of keys the simulator generates")
    min_key_bits: int = Field(4096, ge=2048, description="smallest RSA key a destination may register")
    token_lifetime_seconds: int = Field(1800, ge=1, description="expires_in of access tokens")
    max_json_bytes: int = Field(16 * 1024**2, ge=1024, description="largest JSON request body")
    max_attachment_bytes: int = Field(64 * 1024**2, ge=1024, description="largest attachment JWE")
    callback_attempts: int = Field(5, ge=1, description="deliveries of a callback until it is given up")
    callback_retry_seconds: float = Field(2.0, ge=0, description="pause before the first retry (doubling)")
    callback_timeout_seconds: float = Field(10.0, gt=0, description="time a callback receiver has to answer")
    allow_http_callbacks: bool = Field(
        True, description="accept http:// callback URLs on loopback (the real one demands https)"
    )
    default_destination: bool = Field(False, description="create one destination (and its clients) at start")
    secrets_dir: str | None = Field(
        None, description="write the default destination's private keys and client secrets here"
    )
    fail_next: int = Field(0, ge=0, description="answer the next N API requests with 503")

    @field_validator("versions", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("versions")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or not set(value) <= {"v1", "v2"}:
            raise ValueError("versions are v1 and/or v2")
        return value


class Clock:
    """The simulator's time: the wall clock plus an offset the operator advances."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        """The simulated time (UTC)."""
        return datetime.now(UTC) + self.offset


@dataclass
class Client:
    """An OAuth client (client credentials) and the scopes granted to it."""

    client_id: str
    secret: str
    scopes: frozenset[str]


@dataclass
class Token:
    """An access token issued to a client."""

    client: Client
    scopes: frozenset[str]
    expires: datetime


@dataclass
class Destination:
    """A Zustellpunkt: public keys, services, callback; private keys only if the simulator made them."""

    destination_id: str
    encryption_key: jwk.JWK  # public
    signature_keys: jose.Keyring  # public, verify the receiver's events
    services: list[dict[str, Any]]
    metadata_versions: list[str]
    callback_url: str | None = None
    callback_secret: str | None = None
    status: str = "active"
    private: dict[str, Any] = field(default_factory=dict)  # what POST /_sim/destinations handed out

    def public_view(self) -> dict[str, Any]:
        """``GET /destinations/{id}`` (PublicDestination)."""
        return {
            "destinationId": self.destination_id,
            "encryptionKid": jose.key_id(self.encryption_key),
            "metadataVersions": self.metadata_versions,
            "services": self.services,
            "status": self.status,
        }

    def regions(self, service: str) -> list[str]:
        """The regions in which this destination offers `service` (empty: not offered)."""
        return [r for s in self.services if s["identifier"] == service for r in s["regions"]]


class Status(StrEnum):
    """Where a submission stands."""

    CREATED = "created"  # announced, not yet submitted
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass
class Submission:
    """A submission: announced attachments, what was uploaded, the encrypted parts, its state."""

    submission_id: str
    case_id: str
    destination_id: str
    service_type: dict[str, Any]
    announced: list[str]
    created: datetime
    sender: str
    attachments: dict[str, str] = field(default_factory=dict)
    encrypted_metadata: str | None = None
    encrypted_data: str | None = None
    status: Status = Status.CREATED
    submitted: datetime | None = None
    fetched: datetime | None = None
    noticed: datetime | None = None
    tags: AuthenticationTags | None = None
    faults: list[str] = field(default_factory=list)

    def reference(self) -> dict[str, str]:
        """The ids as the pickup list and callbacks show them."""
        return {
            "destinationId": self.destination_id,
            "submissionId": self.submission_id,
            "caseId": self.case_id,
        }

    def reduced(self) -> dict[str, Any]:
        """SubmissionReduced: ids, announced attachments and service."""
        return {**self.reference(), "attachments": list(self.announced), "serviceType": self.service_type}


@dataclass
class Case:
    """A case (Vorgang): its submissions and the event log (SETs, oldest first)."""

    case_id: str
    destination_id: str
    events: list[str] = field(default_factory=list)


@dataclass
class CallbackRecord:
    """One callback delivery attempt, as ``/_sim/callbacks`` shows it."""

    destination_id: str
    url: str
    body: dict[str, Any]
    attempt: int
    at: str
    status: int | None = None
    error: str | None = None
    faults: list[str] = field(default_factory=list)


@dataclass
class Notice:
    """A notice to the destination's technical contact (after 3 days unfetched)."""

    destination_id: str
    submission_id: str
    at: str
    reason: str


@functools.cache
def service_key(size: int) -> jwk.JWK:
    """The Zustelldienst's event signing key: one per process and size (simulators side by side share it)."""
    return jose.generate_signature_key(size=size)


class SimState(SimulatedFaults[Knobs]):
    """Everything the simulator knows; the HTTP layer only translates to and from it."""

    def __init__(self, options: SimulatorOptions) -> None:
        self.options = options
        self.knobs = Knobs(fail_next=options.fail_next)
        self.clock = Clock()
        self.clients: dict[str, Client] = {}
        self.tokens: dict[str, Token] = {}
        self.destinations: dict[str, Destination] = {}
        self.submissions: dict[str, Submission] = {}
        self.cases: dict[str, Case] = {}
        self.callbacks: list[CallbackRecord] = []
        self.notices: list[Notice] = []
        self.service_key = service_key(options.key_size)
        self.authority = Authority()
        self.held = 0
        self._hold: asyncio.Event | None = None

    async def hold(self) -> None:
        """Hold a request until the operator releases held requests (or the simulator stops)."""
        if self._hold is None:
            self._hold = asyncio.Event()
        waiting, self.held = self._hold, self.held + 1
        try:
            await waiting.wait()
        finally:
            self.held -= 1

    def release_held(self) -> None:
        """Let every held request go on."""
        if self._hold is not None:
            self._hold.set()
            self._hold = None

    def release(self) -> None:
        """End delays and holds (at shutdown, so no request outlives the server)."""
        super().release()
        self.release_held()

    # -- OAuth ----------------------------------------------------------------------------------------

    def add_client(self, scopes: set[str], client_id: str | None = None, secret: str | None = None) -> Client:
        """Register an OAuth client with these scopes (id and secret generated unless given)."""
        client = Client(
            client_id or str(uuid.uuid4()), secret or secrets.token_urlsafe(32), frozenset(scopes)
        )
        self.clients[client.client_id] = client
        return client

    def issue_token(self, client: Client, scopes: frozenset[str]) -> tuple[str, Token]:
        """A new access token for the client."""
        value = secrets.token_urlsafe(32)
        token = Token(
            client, scopes, self.clock.now() + timedelta(seconds=self.options.token_lifetime_seconds)
        )
        self.tokens[value] = token
        return value, token

    def token(self, value: str) -> Token | None:
        """The valid (known, unexpired) token, else None; the ``expire_tokens`` fault expires all at once."""
        if self.knobs.expire_tokens:
            self.tokens.clear()
            self.knobs.expire_tokens = False
        token = self.tokens.get(value)
        if token is not None and token.expires <= self.clock.now():
            del self.tokens[value]
            return None
        return token

    # -- destinations ---------------------------------------------------------------------------------

    def add_destination(
        self,
        encryption_key: jwk.JWK,
        signature_key: jwk.JWK,
        services: list[dict[str, Any]] | None = None,
        metadata_versions: list[str] | None = None,
    ) -> Destination:
        """Register a destination with its public keys."""
        destination = Destination(
            destination_id=str(uuid.uuid4()),
            encryption_key=encryption_key,
            signature_keys=jose.Keyring([signature_key]),
            services=services
            or [
                {
                    "identifier": DEFAULT_SERVICE,
                    "regions": ["DE"],
                    "submissionSchemas": [{"schemaUri": DEFAULT_SCHEMA, "mimeType": "application/json"}],
                }
            ],
            metadata_versions=metadata_versions or ["1.0.0"],
        )
        self.destinations[destination.destination_id] = destination
        return destination

    # -- submissions ----------------------------------------------------------------------------------

    def announce(
        self,
        destination: Destination,
        service_type: dict[str, Any],
        announced: list[str],
        case_id: str | None,
        sender: str,
    ) -> Submission:
        """A new submission (and a new case unless `case_id` names one), with a create event."""
        case = self.cases.get(case_id) if case_id else None
        if case is None:
            case = Case(case_id or str(uuid.uuid4()), destination.destination_id)
            self.cases[case.case_id] = case
        submission = Submission(
            submission_id=str(uuid.uuid4()),
            case_id=case.case_id,
            destination_id=destination.destination_id,
            service_type=service_type,
            announced=announced,
            created=self.clock.now(),
            sender=sender,
        )
        self.submissions[submission.submission_id] = submission
        self.service_event(submission, CREATE_SUBMISSION, {})
        return submission

    def service_event(self, submission: Submission, event: str, payload: dict[str, Any]) -> None:
        """Append an event the Zustelldienst signs itself to the submission's case."""
        claims = {
            "$schema": SET_PAYLOAD_SCHEMA,
            "jti": str(uuid.uuid4()),
            "iss": self.options.issuer,
            "iat": int(self.clock.now().timestamp()),
            "sub": f"submission:{submission.submission_id}",
            "txn": f"case:{submission.case_id}",
            "events": {event: payload},
        }
        self.cases[submission.case_id].events.append(jose.sign_event(claims, self.service_key))

    def tick(self) -> None:
        """Apply the deadlines at the simulated time: notices after 3 days unfetched, rejects after 14."""
        now = self.clock.now()
        for submission in self.submissions.values():
            if submission.status is not Status.SUBMITTED or submission.submitted is None:
                continue
            if now - submission.submitted >= REJECT_AFTER:
                self.finish(submission, Status.REJECTED)
                self.service_event(
                    submission,
                    REJECT_SUBMISSION,
                    {"problems": [DEADLINE_PROBLEM.model_dump(exclude_none=True)]},
                )
            elif (
                submission.fetched is None
                and submission.noticed is None
                and now - submission.submitted >= NOTICE_AFTER
            ):
                submission.noticed = now
                self.notices.append(
                    Notice(
                        submission.destination_id,
                        submission.submission_id,
                        now.isoformat(),
                        "unfetched-3-days",
                    )
                )

    def finish(self, submission: Submission, status: Status) -> None:
        """Accepted or rejected: the submission leaves the pickup list and its content is deleted."""
        submission.status = status
        submission.encrypted_metadata = None
        submission.encrypted_data = None
        submission.attachments.clear()

    def pickup(self, destination_ids: set[str]) -> list[Submission]:
        """Submissions ready for pickup at these destinations, oldest first."""
        ready = [
            s
            for s in self.submissions.values()
            if s.destination_id in destination_ids and s.status is Status.SUBMITTED
        ]
        return sorted(ready, key=lambda s: s.submitted or s.created)


def subscribed(scopes: frozenset[str]) -> set[str]:
    """The destination ids a token may subscribe to."""
    return {s.removeprefix(SCOPE_SUBSCRIBE) for s in scopes if s.startswith(SCOPE_SUBSCRIBE)}


def may_send(scopes: frozenset[str], destination: Destination, service: str) -> bool:
    """Whether a sender's scopes allow sending `service` to `destination` (by destination or region)."""
    if SCOPE_SEND_DESTINATION + destination.destination_id in scopes:
        return bool(destination.regions(service))
    prefixes = [s.removeprefix(SCOPE_SEND_REGION) for s in scopes if s.startswith(SCOPE_SEND_REGION)]
    return any(region.startswith(prefix) for region in destination.regions(service) for prefix in prefixes)
