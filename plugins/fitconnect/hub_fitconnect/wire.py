"""FIT-Connect's wire shapes (Submission API 1.1.3, events, callbacks, metadata), shared by both sides.

The models follow the public OpenAPI (``/work/shared/reference/fit-connect``) and docs.fitko.de. They
accept unknown fields (``extra="allow"``) where FIT-Connect may add fields, so a newer Zustelldienst does
not break the receiver; the simulator checks requests against the OpenAPI itself.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EVENT_PREFIX = "https://schema.fitko.de/fit-connect/events/"
CREATE_SUBMISSION = EVENT_PREFIX + "create-submission"
SUBMIT_SUBMISSION = EVENT_PREFIX + "submit-submission"
NOTIFY_SUBMISSION = EVENT_PREFIX + "notify-submission"
FORWARD_SUBMISSION = EVENT_PREFIX + "forward-submission"
ACCEPT_SUBMISSION = EVENT_PREFIX + "accept-submission"
REJECT_SUBMISSION = EVENT_PREFIX + "reject-submission"
DELETE_SUBMISSION = EVENT_PREFIX + "delete-submission"
EVENTS = frozenset(
    {
        CREATE_SUBMISSION,
        SUBMIT_SUBMISSION,
        NOTIFY_SUBMISSION,
        FORWARD_SUBMISSION,
        ACCEPT_SUBMISSION,
        REJECT_SUBMISSION,
        DELETE_SUBMISSION,
    }
)

SET_PAYLOAD_SCHEMA = "https://schema.fitko.de/fit-connect/set-payload/1.0.0/set-payload.schema.json"
SUBMIT_EVENT_SCHEMA = (
    "https://schema.fitko.de/fit-connect/events/submit-submission/1.0.0/submit-submission.schema.json"
)
CALLBACK_NEW_SUBMISSIONS = "https://schema.fitko.de/fit-connect/submission-api/callbacks/new-submissions"
CALLBACK_NEW_EVENTS = "https://schema.fitko.de/fit-connect/submission-api/callbacks/new-events"
METADATA_SCHEMA_PREFIX = "https://schema.fitko.de/fit-connect/metadata/"
API_PROBLEM_PREFIX = "https://schema.fitko.de/fit-connect/submission-api/problems/"

# Problem types of a reject (docs.fitko.de, "Einreichung überprüfen"): `type` and `instance` are to be
# taken over exactly; `instance` names the part: "submission", "metadata", "data" or "attachment:<id>".
PROBLEM_PREFIX = EVENT_PREFIX + "problems/"
PROBLEM_ENCRYPTION_ISSUE = PROBLEM_PREFIX + "encryption-issue"
PROBLEM_SYNTAX_VIOLATION = PROBLEM_PREFIX + "syntax-violation"
PROBLEM_SCHEMA_VIOLATION = PROBLEM_PREFIX + "schema-violation"
PROBLEM_MISSING_SCHEMA = PROBLEM_PREFIX + "missing-schema"
PROBLEM_UNSUPPORTED_SCHEMA = PROBLEM_PREFIX + "unsupported-schema"
PROBLEM_INCORRECT_AUTHENTICATION_TAG = PROBLEM_PREFIX + "incorrect-authentication-tag"
PROBLEM_HASH_MISMATCH = PROBLEM_PREFIX + "hash-mismatch"
PROBLEM_MISSING_DATA = PROBLEM_PREFIX + "missing-data"
PROBLEM_ATTACHMENTS_MISMATCH = PROBLEM_PREFIX + "attachments-mismatch"
PROBLEM_SERVICE_MISMATCH = PROBLEM_PREFIX + "service-mismatch"
PROBLEM_INVALID_EVENT_LOG = PROBLEM_PREFIX + "invalid-event-log"
PROBLEM_TECHNICAL_ERROR = PROBLEM_PREFIX + "technical-error"

CALLBACK_AUTHENTICATION = "callback-authentication"
CALLBACK_TIMESTAMP = "callback-timestamp"
SCOPE_SUBSCRIBE = "subscribe:destination:"
SCOPE_SEND_DESTINATION = "send:destination:"
SCOPE_SEND_REGION = "send:region:"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class SubmissionForPickup(_Wire):
    """One submission ready for pickup (an item of the pickup list and of a callback)."""

    destinationId: str
    submissionId: str
    caseId: str


class SubmissionsForPickup(_Wire):
    """A page of ``GET /submissions``: ``limit`` at most 500, ``offset`` from 0."""

    count: int = 0
    offset: int = 0
    totalCount: int = 0
    submissions: list[SubmissionForPickup] = []


class ServiceType(_Wire):
    """The public service (Verwaltungsleistung), usually a LeiKa URN ``urn:de:fim:leika:leistung:...``."""

    identifier: str
    name: str | None = None
    description: str | None = None


class Callback(_Wire):
    """A callback as the API shows it (never with its secret)."""

    url: str


class Submission(_Wire):
    """``GET /submissions/{id}``: ids, announced attachment ids, service and the encrypted parts."""

    destinationId: str
    submissionId: str
    caseId: str
    attachments: list[str] = []
    serviceType: ServiceType
    callback: Callback | None = None
    encryptedMetadata: str | None = None
    encryptedData: str | None = None


class SubmissionCreated(_Wire):
    """The answer to announcing a submission (``POST /submissions``)."""

    destinationId: str
    submissionId: str
    caseId: str


class SubmissionSchema(_Wire):
    """A data schema a destination's service accepts."""

    schemaUri: str
    mimeType: Literal["application/json", "application/xml"]


class DestinationService(_Wire):
    """A service a destination offers, the regions (``DE`` + ARS) and its data schemas."""

    identifier: str
    regions: list[str]
    submissionSchemas: list[SubmissionSchema]


class Destination(_Wire):
    """``GET /destinations/{id}`` (the public view)."""

    destinationId: str
    encryptionKid: str
    metadataVersions: list[str]
    services: list[DestinationService]
    status: Literal["created", "active", "inactive", "decommissioned"]


class EventLog(_Wire):
    """``GET /cases/{caseId}/events``: the SETs, oldest first."""

    count: int = 0
    offset: int = 0
    totalCount: int = 0
    eventLog: list[str] = []


class Problem(_Wire):
    """An RFC 7807 problem: an API error body, or one entry of a reject event's ``problems``."""

    type: str
    title: str
    status: int | None = None
    detail: str | None = None
    instance: str | None = None


class CallbackBody(_Wire):
    """The body of a callback: new submissions to pick up (or new events)."""

    type: str
    submissions: list[SubmissionForPickup] = []
    submissionIds: list[str] | None = None


class AuthenticationTags(BaseModel):
    """The authentication tags (last JWE segment) of a submission's metadata, data and attachments."""

    model_config = ConfigDict(extra="forbid")

    metadata: str
    data: str | None = None
    attachments: dict[str, str] = {}


class EventClaims(BaseModel):
    """The claims of a verified SET: issuer, subject ``submission:<id>``, ``case:<id>``, one event."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    jti: str
    iss: str
    iat: int
    sub: str
    txn: str
    events: dict[str, dict[str, Any]]
    schema_: str | None = Field(default=None, alias="$schema")

    @property
    def event(self) -> str:
        """The one event's URI."""
        return next(iter(self.events))

    @property
    def payload(self) -> dict[str, Any]:
        """The one event's payload."""
        return self.events[self.event]

    @property
    def submission_id(self) -> str:
        """The submission id from ``sub`` (empty when the subject is not a submission)."""
        kind, _, value = self.sub.partition(":")
        return value if kind == "submission" else ""

    @property
    def case_id(self) -> str:
        """The case id from ``txn`` (empty when it is not ``case:<id>``)."""
        kind, _, value = self.txn.partition(":")
        return value if kind == "case" else ""

    @property
    def authentication_tags(self) -> AuthenticationTags | None:
        """The event's authentication tags (submit and accept events carry them), or None."""
        tags = self.payload.get("authenticationTags")
        return AuthenticationTags.model_validate(tags) if isinstance(tags, dict) else None

    @property
    def problems(self) -> list[Problem]:
        """The problems of a reject event (empty for other events)."""
        return [Problem.model_validate(p) for p in self.payload.get("problems", [])]


class Hash(_Wire):
    """A content hash in the metadata (``sha512``, hex)."""

    type: str
    content: str


class ContentStructureData(_Wire):
    """Where the data part is described: its hash and schema reference."""

    hash: Hash
    submissionSchema: SubmissionSchema


class MetadataAttachment(_Wire):
    """An attachment as the metadata describes it."""

    attachmentId: str
    hash: Hash
    purpose: str
    filename: str | None = None
    description: str | None = None
    mimeType: str


class ContentStructure(_Wire):
    """The metadata's ``contentStructure``: the data (optional) and the attachments."""

    data: ContentStructureData | None = None
    attachments: list[MetadataAttachment] = []


class MetadataEssentials(_Wire):
    """What a receiver reads from the decrypted metadata (1.x and 2.x; ``$schema`` names the version)."""

    schema_: str | None = Field(default=None, alias="$schema")
    contentStructure: ContentStructure
    publicServiceType: ServiceType | None = None  # metadata 1.x
    publicService: ServiceType | None = None  # metadata 2.x
    authenticationInformation: list[dict[str, Any]] | None = None
    replyChannel: dict[str, Any] | None = None
    additionalReferenceInfo: dict[str, Any] | None = None

    @property
    def service(self) -> ServiceType | None:
        """The public service the metadata names (1.x ``publicServiceType``, 2.x ``publicService``)."""
        return self.publicService or self.publicServiceType


def callback_mac(secret: str, timestamp: str, body: bytes) -> str:
    """The callback's ``callback-authentication``: hex HMAC-SHA512 over ``"{timestamp}.{raw body}"``."""
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha512).hexdigest()


def callback_mac_matches(secret: str, timestamp: str, body: bytes, mac: str) -> bool:
    """Whether ``mac`` is the callback's HMAC, compared in constant time."""
    return hmac.compare_digest(callback_mac(secret, timestamp, body), mac.strip().lower())


def sha512_hex(content: bytes) -> str:
    """The metadata's hash of a content (``sha512``, hex)."""
    return hashlib.sha512(content).hexdigest()
