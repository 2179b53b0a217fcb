"""Aktenhub: integration hub for German public administration.

This module is the public API plugin authors import: the hook marker, the connector base classes, the
models and the errors. Everything else in `hub` is the core's own business.
"""

from __future__ import annotations

from hub.blobs import BlobInfo, BlobNotFound, BlobStore, BlobTooLarge
from hub.config import Secret
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
from hub.errors import BadSubmission, Permanent, Rejection, Retryable
from hub.hookspecs import hookimpl
from hub.models import (
    Address,
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
    new_id,
    utcnow,
)

__all__ = [
    "Address",
    "Application",
    "ApplicationState",
    "Attachment",
    "BadSubmission",
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "BlobTooLarge",
    "CheckResult",
    "Connector",
    "ConnectorConfig",
    "ConnectorContext",
    "Delivery",
    "DeliveryContext",
    "Document",
    "DocumentContent",
    "Event",
    "FileRecord",
    "FolderSpec",
    "Identity",
    "IdentityProvider",
    "Intake",
    "IntakeFunc",
    "IntakeOutcome",
    "Manifest",
    "Notifier",
    "OriginalSubmission",
    "Party",
    "Permanent",
    "Receipt",
    "ReceiptKind",
    "Rejection",
    "RetryPolicy",
    "Retryable",
    "Secret",
    "Simulator",
    "Sink",
    "Source",
    "TrustLevel",
    "Verification",
    "WebhookRoute",
    "hookimpl",
    "new_id",
    "utcnow",
]
