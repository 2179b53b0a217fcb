"""Aktenhub: integration hub for German public administration.

This module is the public API plugin authors import: the hook marker, the connector base classes, the
models and the errors, each listed in docs/plugin-api.md. Everything else in `hub` is the core's own
business. It is built from leaf modules only: importing it (or `hub.errors`, ...) loads neither the
configuration nor Jinja2 nor pluggy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.answers import Answer, AnswerOutcome, AnswerRecord, CallbackAuth, UnknownApplication
from hub.blobs import BlobInfo, BlobNotFound, Blobs, BlobTooLarge, BlobWriter
from hub.callbacks import sign_callback
from hub.certificates import CertificateInfo
from hub.connectors import (
    CheckResult,
    Connector,
    ConnectorConfig,
    ConnectorContext,
    DeliveryContext,
    IdentityProvider,
    Intake,
    IntakeFunc,
    IntakeOutcome,
    Manifest,
    Notifier,
    RetryPolicy,
    Simulator,
    Sink,
    Source,
    Verification,
    WebhookRoute,
)
from hub.errors import BadSubmission, Permanent, Rejection, Retryable, StorageFull, transient_http_status
from hub.held import BackOff, HeldMessage, HeldMessages, HeldState
from hub.models import (
    Address,
    AnswerStatus,
    Application,
    ApplicationState,
    Attachment,
    Delivery,
    Document,
    DocumentContent,
    Event,
    FileRecord,
    FolderSpec,
    Identity,
    OriginalSubmission,
    Party,
    Receipt,
    ReceiptKind,
    TrustLevel,
    utcnow,
)
from hub.outbound import (
    BasicAuth,
    BearerAuth,
    ClientTls,
    HttpAnswer,
    HttpEndpoint,
    OAuth2ClientCredentials,
    Outbound,
    Refusal,
    server_message,
)
from hub.rejections import CITIZEN_TEXTS_MAX, RejectionCode, citizen_text
from hub.resubmission import ChangedResend, content_fingerprint, revision_key, submission_fingerprint
from hub.scenarios import DemoRun, DemoScenario, DemoSite, Expectation, Tally
from hub.schemas import SchemaDirectoryMissing, require_schema_directory, schema_directory, xml_schema
from hub.secret import ConfigPath, Secret

if TYPE_CHECKING:
    from hub.hookspecs import hookimpl

__all__ = [
    "CITIZEN_TEXTS_MAX",
    "Address",
    "Answer",
    "AnswerOutcome",
    "AnswerRecord",
    "AnswerStatus",
    "Application",
    "ApplicationState",
    "Attachment",
    "BackOff",
    "BadSubmission",
    "BasicAuth",
    "BearerAuth",
    "BlobInfo",
    "BlobNotFound",
    "BlobTooLarge",
    "BlobWriter",
    "Blobs",
    "CallbackAuth",
    "CertificateInfo",
    "ChangedResend",
    "CheckResult",
    "ClientTls",
    "ConfigPath",
    "Connector",
    "ConnectorConfig",
    "ConnectorContext",
    "Delivery",
    "DeliveryContext",
    "DemoRun",
    "DemoScenario",
    "DemoSite",
    "Document",
    "DocumentContent",
    "Event",
    "Expectation",
    "FileRecord",
    "FolderSpec",
    "HeldMessage",
    "HeldMessages",
    "HeldState",
    "HttpAnswer",
    "HttpEndpoint",
    "Identity",
    "IdentityProvider",
    "Intake",
    "IntakeFunc",
    "IntakeOutcome",
    "Manifest",
    "Notifier",
    "OAuth2ClientCredentials",
    "OriginalSubmission",
    "Outbound",
    "Party",
    "Permanent",
    "Receipt",
    "ReceiptKind",
    "Refusal",
    "Rejection",
    "RejectionCode",
    "RetryPolicy",
    "Retryable",
    "SchemaDirectoryMissing",
    "Secret",
    "Simulator",
    "Sink",
    "Source",
    "StorageFull",
    "Tally",
    "TrustLevel",
    "UnknownApplication",
    "Verification",
    "WebhookRoute",
    "citizen_text",
    "content_fingerprint",
    "hookimpl",
    "require_schema_directory",
    "revision_key",
    "schema_directory",
    "server_message",
    "sign_callback",
    "submission_fingerprint",
    "transient_http_status",
    "utcnow",
    "xml_schema",
]


def __getattr__(name: str) -> Any:
    # The hook marker needs pluggy: loaded when a plugin module marks its hooks, not by every
    # `import hub.errors` (which runs this module first).
    if name == "hookimpl":
        from hub.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'hub' has no attribute {name!r}")
