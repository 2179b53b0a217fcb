"""The receiver's checks of one submission (docs.fitko.de, "Einreichung überprüfen").

Each check raises `Unacceptable` with the FIT-Connect problem (type and instance as FIT-Connect names
them) for what the sender got wrong: the source rejects the submission with it. What the hub cannot
decide now (a metadata schema version not installed here) raises `Undecidable`: not the sender's
fault, so never a reject; the submission waits and the operator is told.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import validators
from jsonschema.exceptions import SchemaError
from pydantic import ValidationError

from .config import FitConnectConfig
from .jose import JoseError, Keyring, authentication_tag, decrypt, unverified_claims, verify_event
from .wire import (
    METADATA_SCHEMA_PREFIX,
    PROBLEM_ATTACHMENTS_MISMATCH,
    PROBLEM_ENCRYPTION_ISSUE,
    PROBLEM_HASH_MISMATCH,
    PROBLEM_INCORRECT_AUTHENTICATION_TAG,
    PROBLEM_INVALID_EVENT_LOG,
    PROBLEM_MISSING_DATA,
    PROBLEM_MISSING_SCHEMA,
    PROBLEM_SCHEMA_VIOLATION,
    PROBLEM_SERVICE_MISMATCH,
    PROBLEM_SYNTAX_VIOLATION,
    PROBLEM_TECHNICAL_ERROR,
    PROBLEM_UNSUPPORTED_SCHEMA,
    SUBMIT_SUBMISSION,
    AuthenticationTags,
    EventClaims,
    MetadataEssentials,
    Problem,
    Submission,
    sha512_hex,
)

# Metadata without `$schema` is read as the first version (1.0.0 does not require the field).
METADATA_1_0_0 = METADATA_SCHEMA_PREFIX + "1.0.0/metadata.schema.json"
# Where installed schemas live in the schema directory: every JSON schema below it, found by its `$id`.
SCHEMA_FOLDER = "fit-connect"
TITLES = {
    PROBLEM_ENCRYPTION_ISSUE: "Entschlüsselungsfehler",
    PROBLEM_SYNTAX_VIOLATION: "Syntax-Fehler",
    PROBLEM_SCHEMA_VIOLATION: "Schema-Fehler",
    PROBLEM_MISSING_SCHEMA: "Schema-Referenz fehlt",
    PROBLEM_UNSUPPORTED_SCHEMA: "Schema nicht unterstützt",
    PROBLEM_INCORRECT_AUTHENTICATION_TAG: "Authentication-Tag ungültig",
    PROBLEM_HASH_MISMATCH: "Prüfsumme stimmt nicht",
    PROBLEM_MISSING_DATA: "Fachdatensatz fehlt",
    PROBLEM_ATTACHMENTS_MISMATCH: "Anlagen stimmen nicht überein",
    PROBLEM_SERVICE_MISMATCH: "Verwaltungsleistung stimmt nicht überein",
    PROBLEM_INVALID_EVENT_LOG: "Event-Log ungültig",
    PROBLEM_TECHNICAL_ERROR: "Technischer Fehler",
}


class Unacceptable(Exception):
    """The submission cannot be taken as sent: rejected with this FIT-Connect problem."""

    def __init__(self, problem_type: str, instance: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = Problem(
            type=problem_type, title=TITLES[problem_type], detail=detail, instance=instance
        )

    @property
    def code(self) -> str:
        """The problem's short name (the last part of its type), e.g. ``hash-mismatch``."""
        return self.problem.type.rsplit("/", 1)[-1]


class Undecidable(Exception):
    """The hub cannot check the submission now (e.g. its metadata schema is not installed here)."""


def submit_token(tokens: list[str], submission_id: str) -> str:
    """The submission's submit event in the case's event log (not yet verified)."""
    for token in tokens:
        try:
            claims = unverified_claims(token)
        except JoseError:
            continue
        events = claims.get("events")
        if (
            claims.get("sub") == f"submission:{submission_id}"
            and isinstance(events, dict)
            and SUBMIT_SUBMISSION in events
        ):
            return token
    raise Unacceptable(PROBLEM_INVALID_EVENT_LOG, "submission", "the event log holds no submit event")


def verified_submit(token: str, keys: Keyring, submission: Submission) -> EventClaims:
    """The submit event's claims, its signature checked against the submission service's keys."""
    try:
        claims = verify_event(token, keys)
    except JoseError as exc:
        raise Unacceptable(
            PROBLEM_INVALID_EVENT_LOG, "submission", f"the submit event does not verify: {exc.reason}"
        ) from None
    if claims.submission_id != submission.submissionId or claims.case_id != submission.caseId:
        raise Unacceptable(
            PROBLEM_INVALID_EVENT_LOG, "submission", "the submit event names another submission"
        )
    if claims.authentication_tags is None:
        raise Unacceptable(
            PROBLEM_INVALID_EVENT_LOG, "submission", "the submit event names no authentication tags"
        )
    return claims


def fetched_tags(submission: Submission) -> AuthenticationTags:
    """The authentication tags of the metadata and data fetched (attachments: `check_attachment_tag`)."""
    if submission.encryptedMetadata is None:
        raise Unacceptable(PROBLEM_MISSING_DATA, "metadata", "the submission holds no metadata")
    try:
        return AuthenticationTags(
            metadata=authentication_tag(submission.encryptedMetadata),
            data=authentication_tag(submission.encryptedData) if submission.encryptedData else None,
        )
    except JoseError as exc:
        raise Unacceptable(
            PROBLEM_ENCRYPTION_ISSUE, "submission", f"not a compact JWE: {exc.reason}"
        ) from None


def check_tags(submitted: AuthenticationTags, fetched: AuthenticationTags, attachment_ids: list[str]) -> None:
    """The metadata and data fetched are those the sender submitted (their tags match the submit
    event's), and the submit event names the attachments the submission holds."""
    if submitted.metadata != fetched.metadata:
        raise Unacceptable(PROBLEM_INCORRECT_AUTHENTICATION_TAG, "metadata", "the metadata was exchanged")
    if submitted.data != fetched.data:
        raise Unacceptable(PROBLEM_INCORRECT_AUTHENTICATION_TAG, "data", "the data was exchanged")
    if set(submitted.attachments) != set(attachment_ids):
        raise Unacceptable(
            PROBLEM_INCORRECT_AUTHENTICATION_TAG, "submission", "the submit event names other attachments"
        )


def check_attachment_tag(submitted: AuthenticationTags, attachment_id: str, token: str) -> str:
    """The attachment fetched is the one submitted; returns its tag."""
    try:
        tag = authentication_tag(token)
    except JoseError as exc:
        raise Unacceptable(
            PROBLEM_ENCRYPTION_ISSUE, f"attachment:{attachment_id}", f"not a compact JWE: {exc.reason}"
        ) from None
    if submitted.attachments.get(attachment_id) != tag:
        raise Unacceptable(
            PROBLEM_INCORRECT_AUTHENTICATION_TAG,
            f"attachment:{attachment_id}",
            f"attachment {attachment_id} was exchanged",
        )
    return tag


def decrypted(token: str, keyring: Keyring, instance: str) -> bytes:
    """The plaintext of one part; a JWE our keys cannot open is the sender's fault (wrong key, broken)."""
    try:
        return decrypt(token, keyring).plaintext
    except JoseError as exc:
        raise Unacceptable(PROBLEM_ENCRYPTION_ISSUE, instance, f"cannot be decrypted: {exc.reason}") from None


def check_hash(content: bytes, expected: str, algorithm: str, instance: str) -> None:
    """The content is what the metadata's sha512 says."""
    if algorithm != "sha512" or sha512_hex(content) != expected.lower():
        raise Unacceptable(PROBLEM_HASH_MISMATCH, instance, f"the {algorithm} hash does not match")


def check_attachments(metadata: MetadataEssentials, submission: Submission) -> None:
    """The metadata describes exactly the attachments the submission announced."""
    described = {a.attachmentId for a in metadata.contentStructure.attachments}
    if described != set(submission.attachments):
        raise Unacceptable(
            PROBLEM_ATTACHMENTS_MISMATCH,
            "metadata",
            f"the metadata describes {len(described)} attachments, the submission holds "
            f"{len(submission.attachments)} (or other ones)",
        )


def service_of(config: FitConnectConfig, submission: Submission, metadata: MetadataEssentials) -> str:
    """The hub's service of the submission, from its LeiKa identifier and data schema."""
    leika = submission.serviceType.identifier
    named = metadata.service  # 1.x publicServiceType, 2.x publicService
    if named is not None and named.identifier != leika:
        raise Unacceptable(
            PROBLEM_SERVICE_MISMATCH, "metadata", "the metadata names another service than the submission"
        )
    data = metadata.contentStructure.data
    schema = data.submissionSchema.schemaUri if data is not None else None
    service = config.service_for(leika, schema)
    if service is not None:
        return service
    if any(m.leika == leika for m in config.services):
        raise Unacceptable(PROBLEM_UNSUPPORTED_SCHEMA, "data", f"data schema {schema} is not taken here")
    raise Unacceptable(PROBLEM_SERVICE_MISMATCH, "submission", f"service {leika} is not taken here")


class Schemas:
    """The JSON schemas installed in the schema directory (below ``fit-connect/``), by their ``$id``."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    @functools.cached_property
    def _files(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        root = self.directory / SCHEMA_FOLDER if self.directory is not None else None
        if root is None or not root.is_dir():
            return found
        for path in sorted(root.rglob("*.json")):
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(document, dict) and isinstance(document.get("$id"), str):
                found.setdefault(document["$id"], path)
        return found

    def installed(self, uri: str) -> bool:
        """Whether a schema with this ``$id`` is installed."""
        return uri in self._files

    @functools.cache  # noqa: B019 - one instance per connector, living as long as the hub
    def validator(self, uri: str) -> Any:
        """The validator of the installed schema ``uri``."""
        schema = json.loads(self._files[uri].read_text(encoding="utf-8"))
        cls = validators.validator_for(schema)
        try:
            cls.check_schema(schema)
        except SchemaError as exc:
            raise Undecidable(f"the installed schema {uri} is itself invalid: {exc.message}") from None
        return cls(schema)

    def metadata(self, plaintext: bytes, *, schema_required: bool = True) -> MetadataEssentials:
        """The metadata, checked against the schema its ``$schema`` names (1.x, 2.x).

        A FIT-Connect metadata version whose schema is not installed is `Undecidable`, unless
        `schema_required` is off: then only what the receiver reads (`MetadataEssentials`) is checked.
        """
        document = _json(plaintext, "metadata")
        uri = document.get("$schema", METADATA_1_0_0)
        if not isinstance(uri, str) or not uri.startswith(METADATA_SCHEMA_PREFIX):
            raise Unacceptable(
                PROBLEM_UNSUPPORTED_SCHEMA, "metadata", f"metadata schema {uri!r} is not FIT-Connect's"
            )
        if self.installed(uri):
            _validate(self.validator(uri), document, "metadata")
        elif schema_required:
            raise Undecidable(f"metadata schema {uri} is not installed in the schema directory")
        try:
            return MetadataEssentials.model_validate(document)
        except ValidationError as exc:
            raise Unacceptable(
                PROBLEM_SCHEMA_VIOLATION, "metadata", f"{exc.error_count()} fields in an unexpected shape"
            ) from None

    def data(self, plaintext: bytes, metadata: MetadataEssentials) -> Any:
        """The data checked against the metadata's hash and, when installed, its submission schema.

        Returns the parsed JSON data (None for XML data, which is kept as it is).
        """
        described = metadata.contentStructure.data
        if described is None:
            raise Unacceptable(PROBLEM_MISSING_SCHEMA, "metadata", "the metadata does not describe the data")
        check_hash(plaintext, described.hash.content, described.hash.type, "data")
        if described.submissionSchema.mimeType != "application/json":
            return None
        document = _json(plaintext, "data")
        uri = described.submissionSchema.schemaUri
        if self.installed(uri):
            _validate(self.validator(uri), document, "data")
        return document


def _json(plaintext: bytes, instance: str) -> Any:
    try:
        document = json.loads(plaintext)
    except ValueError:
        raise Unacceptable(PROBLEM_SYNTAX_VIOLATION, instance, "not JSON") from None
    if instance == "metadata" and not isinstance(document, dict):
        raise Unacceptable(PROBLEM_SYNTAX_VIOLATION, instance, "not a JSON object")
    return document


def _validate(validator: Any, document: Any, instance: str) -> None:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
        # The place, not the value: the value may be personal data.
        raise Unacceptable(
            PROBLEM_SCHEMA_VIOLATION, instance, f"{len(errors)} schema violations, the first at {where}"
        )
