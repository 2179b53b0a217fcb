"""Settings of a ``type: zbp`` notifier, validated completely when the configuration is loaded."""

from __future__ import annotations

import string
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hub import AnswerStatus, ConnectorConfig, Secret
from hub.outbound import Auth, BasicAuth, BearerAuth, ClientTls, HttpEndpoint

from .envelope import ZbpStatus
from .keys import Author, AuthorError, certificate_text, common_name, load_private_key

# Placeholders the texts may use (str.format syntax, e.g. "Aktenzeichen: {reference}").
PLACEHOLDERS = {
    "service": "the public name of the service (`services`, else the service id)",
    "sender": "`sender_name`",
    "file_number": "the Aktenzeichen (empty if none was assigned)",
    "reference": "the Aktenzeichen, else the application id",
    "reason": "the reason of a rejection in German (`hub.citizen_text` of its code; empty for receipts)",
    "application_id": "the hub's application id",
    "status_text": "answers: the new status in the applicant's words (`answered.status_texts`)",
    "case_number": "answers: the Fachverfahren's case number (empty if it gave none)",
    "message": "answers: the Fachverfahren's text for the applicant (empty if none)",
}


# The ZBP status an answer of the Fachverfahren becomes. `failed` (the Fachverfahren refused the import)
# is the authority's problem, not news for the applicant: nothing is sent.
STATUS_OF_ANSWER = {
    AnswerStatus.ACCEPTED: ZbpStatus.PROCESSING,
    AnswerStatus.IN_PROGRESS: ZbpStatus.PROCESSING,
    AnswerStatus.ACTION_REQUIRED: ZbpStatus.ACTION_REQUIRED,
    AnswerStatus.DECIDED: ZbpStatus.COMPLETED,
}


def check_template(value: str) -> str:
    """A text with only known ``{placeholder}`` fields (no attribute access, conversions or formats)."""
    try:
        fields = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(
            f"not a valid text template: {exc} (write {{{{ and }}}} for literal braces)"
        ) from None
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}}; known: {known}")
    return value


class ReceiptTexts(BaseModel):
    """What the citizen reads for one kind of receipt: the message's title and text, the status text."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=255)
    content: str = Field(min_length=1, max_length=10_000)
    status: str = Field(
        min_length=1,
        max_length=1000,
        description="statusDetails.de of the status update; cut to 50 characters at a word boundary",
    )

    @field_validator("title", "content", "status")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_template(value)


def _received_texts() -> ReceiptTexts:
    return ReceiptTexts(
        title="Eingangsbestätigung: {service}",
        content=(
            "Ihr Antrag ({service}) ist bei {sender} eingegangen und wird bearbeitet.\n"
            "Aktenzeichen: {reference}\n"
            "Bitte geben Sie dieses Aktenzeichen bei Rückfragen an."
        ),
        status="Eingegangen, Aktenzeichen {reference}",
    )


def _rejected_texts() -> ReceiptTexts:
    return ReceiptTexts(
        title="Ihr Antrag konnte nicht angenommen werden: {service}",
        content=(
            "Ihr Antrag ({service}) konnte von {sender} nicht angenommen werden.\n"
            "Grund: {reason}\n"
            "Vorgangsnummer: {reference}\n"
            "Sie können den Antrag erneut stellen, sobald der Grund behoben ist."
        ),
        status="{reason}",
    )


def _answered_texts() -> AnswerTexts:
    return AnswerTexts(
        title="{status_text}: {service}",
        content=(
            "Zu Ihrem Antrag ({service}) bei {sender} gibt es Neuigkeiten: {status_text}.\n"
            "{message}\n"
            "Aktenzeichen: {reference}"
        ),
        status="{status_text}, Aktenzeichen {reference}",
    )


class AnswerTexts(ReceiptTexts):
    """What the citizen reads when the Fachverfahren's case moves on (a receipt of kind ``status``).

    A line of `content` that is empty once filled in (no `{message}`) is left out.
    """

    status_texts: dict[AnswerStatus, str] = Field(
        default_factory=lambda: {
            AnswerStatus.ACCEPTED: "In Bearbeitung",
            AnswerStatus.IN_PROGRESS: "In Bearbeitung",
            AnswerStatus.ACTION_REQUIRED: "Bitte reichen Sie Unterlagen nach",
            AnswerStatus.DECIDED: "Bescheid erlassen",
        },
        description="{status_text} per status; a configured mapping replaces the whole default",
    )

    @field_validator("status_texts")
    @classmethod
    def _every_status(cls, value: dict[AnswerStatus, str]) -> dict[AnswerStatus, str]:
        missing = set(STATUS_OF_ANSWER) - set(value)
        if missing:
            raise ValueError(f"a text is missing for: {', '.join(sorted(s.value for s in missing))}")
        if any(not text.strip() for text in value.values()):
            raise ValueError("a status text is empty")
        return value


class Texts(BaseModel):
    """The texts per receipt kind."""

    model_config = ConfigDict(extra="forbid")

    received: ReceiptTexts = Field(default_factory=_received_texts)
    rejected: ReceiptTexts = Field(default_factory=_rejected_texts)
    answered: AnswerTexts = Field(default_factory=_answered_texts)


class ZbpConfig(ConnectorConfig):
    """Settings of a ``type: zbp`` connector."""

    # -- transport ---------------------------------------------------------------------------------
    transport: Literal["rest"] = Field(
        "rest", description="how envelopes reach the ZBP: rest (the ZBP REST endpoint); fit-connect later"
    )
    base_url: str = Field(description="root of the ZBP REST API, e.g. https://zbp.behoerde.example")
    messages_path: str = Field("/api/v1/messages", description="POST path for messages")
    status_path: str = Field("/api/v1/status", description="POST path for status updates")
    health_path: str = Field("/api/v1/health", description="GET path `aktenhub check` probes")
    token: Secret | None = Field(None, description="bearer token for the ZBP endpoint")
    username: str | None = Field(None, pattern=r"^[^:]+$", description="HTTP Basic user (instead of token)")
    password: Secret | None = Field(None, description="HTTP Basic password")
    timeout_seconds: float = Field(
        30.0, gt=0, le=600, description="longest wait for a connection or for data of one answer"
    )
    tls: ClientTls | None = Field(
        None, description="TLS towards the ZBP: ca (whom to trust), cert/key (client certificate)"
    )

    # -- author (signature) ------------------------------------------------------------------------
    author_key_password: Secret | None = Field(None, description="password of an encrypted author key")
    author_key: Secret = Field(description="the author's RSA private key (PEM): ${ENV} or file:/path")
    author_certificate: str = Field(
        description="the author certificate: PEM text, or a path to a PEM file (file: prefix optional)"
    )
    signer: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="`signer` claim of the author token; default: the author certificate's CN (the ZBP "
        "expects that)",
    )
    roles: list[str] = Field(default_factory=lambda: ["THIRD_PARTY"], min_length=1)
    token_lifetime_seconds: int = Field(300, ge=10, le=3600, description="author token lifetime (exp - iat)")

    # -- content -----------------------------------------------------------------------------------
    sender_name: str = Field(min_length=1, max_length=200, description="e.g. Rhein-Sieg-Kreis")
    services: dict[str, str] = Field(
        default_factory=dict, description="service id -> public name shown to the citizen"
    )
    rejection_status: Literal["COMPLETED", "ACTION_REQUIRED"] | None = Field(
        "COMPLETED",
        description="status update sent with a rejection message (ZBP has no 'rejected'); null: none",
    )
    require_verified_identity: bool = Field(
        True, description="send only when the identity (and so the mailbox handle) was verified"
    )
    send_documents: bool = Field(
        True,
        description="attach the documents an answer's receipt carries (the decision) to the mailbox "
        "message; false: the message only tells that there is news",
    )
    texts: Texts = Field(default_factory=Texts)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http(s) URL, e.g. https://zbp.behoerde.example")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("the URL takes no query, fragment or credentials (set token or username)")
        return value.rstrip("/")

    @field_validator("messages_path", "status_path", "health_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or "?" in value or "#" in value:
            raise ValueError("expected a path starting with /, without query, e.g. /api/v1/messages")
        return value

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        if not all(role.strip() for role in value):
            raise ValueError("roles must not be empty strings")
        return value

    @field_validator("author_key")
    @classmethod
    def _key(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        password = info.data.get("author_key_password")
        try:
            load_private_key(value.get_secret_value(), password.get_secret_value() if password else None)
        except AuthorError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("author_certificate")
    @classmethod
    def _certificate(cls, value: str) -> str:
        try:
            return certificate_text(value)
        except AuthorError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _consistent(self) -> ZbpConfig:
        if self.token is not None and self.username is not None:
            raise ValueError("set either token (bearer) or username/password (Basic), not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        try:
            author = self.author()
        except AuthorError as exc:
            raise ValueError(str(exc)) from None
        if self.signer is None and common_name(author.certificate) is None:
            raise ValueError("the author certificate has no common name (CN): set signer")
        return self

    def endpoint(self) -> HttpEndpoint:
        """The REST endpoint: `base_url`, a bearer `token` or Basic `username`/`password`, `tls`."""
        auth: Auth | None = None
        if self.token is not None:
            auth = BearerAuth(token=self.token)
        elif self.username is not None and self.password is not None:
            auth = BasicAuth(username=self.username, password=self.password)
        return HttpEndpoint(
            base_url=self.base_url, auth=auth, tls=self.tls, timeout_seconds=self.timeout_seconds
        )

    def author(self) -> Author:
        """The author key and certificate, loaded and checked to belong together."""
        password = self.author_key_password.get_secret_value() if self.author_key_password else None
        return Author.load(self.author_key.get_secret_value(), self.author_certificate, password)

    def signer_name(self) -> str:
        """The author token's `signer`: as configured, else the author certificate's CN."""
        if self.signer is not None:
            return self.signer
        name = common_name(self.author().certificate)
        if name is None:  # refused when the configuration was validated
            raise AuthorError("the author certificate has no common name (CN): set signer")
        return name

    def public_service_name(self, service: str) -> str:
        """The name the citizen knows the service by."""
        return self.services.get(service, service)
