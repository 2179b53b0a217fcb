"""Settings of a ``type: mailbox`` source: the IMAP account, its folders, the mapping, the acknowledgement."""

from __future__ import annotations

import ssl
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ByteSize, ConfigDict, Field, model_validator

from hub import BackOff, CertificateInfo, ConfigPath, ConnectorConfig, Permanent, Secret
from hub.outbound import ClientTls

from .mapping import MailMapping


class TlsMode(StrEnum):
    """How a mail connection is protected."""

    IMPLICIT = "implicit"  # TLS from the first byte (IMAPS 993, SMTPS 465)
    STARTTLS = "starttls"  # plain greeting, then STARTTLS before anything else is said
    PLAIN = "plain"  # no TLS at all: only for a loopback relay, and only when written out


class MailServer(BaseModel):
    """Where a mail server is and how the connection to it is protected."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(description="host name of the server (checked against its certificate)")
    port: int | None = Field(None, ge=1, le=65535, description="default: by protocol and `tls`")
    tls: TlsMode = Field(
        TlsMode.IMPLICIT,
        description="implicit (default), starttls, or plain (no TLS: must be written out, never a default)",
    )
    ca_file: ConfigPath | None = Field(
        None, description="PEM CA bundle to verify the server's certificate (default: the system's)"
    )
    timeout_seconds: float = Field(60.0, gt=0, le=3600, description="longest wait for the server")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context: certificate and host name verified (None for `plain`)."""
        if self.tls == TlsMode.PLAIN:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file is not None else None)

    def certificates(self, prefix: str) -> list[CertificateInfo]:
        """The CAs trusted for this server (`<prefix>-ca`), for `aktenhub check` and the expiry warning."""
        if self.ca_file is None:
            return []
        return ClientTls(ca=self.ca_file).certificates(prefix)


class ImapSettings(MailServer):
    """The IMAP account of the Funktionspostfach."""

    user: str = Field(description="login name")
    password: Secret = Field(description="login password (${ENV} or file:/path)")

    @property
    def resolved_port(self) -> int:
        """The port: configured, else 993 (implicit TLS) or 143."""
        return self.port or (993 if self.tls == TlsMode.IMPLICIT else 143)


class SmtpSettings(MailServer):
    """The SMTP relay the acknowledgement is sent through."""

    user: str | None = Field(None, description="login name, if the relay wants one")
    password: Secret | None = Field(None, description="login password (${ENV} or file:/path)")
    helo_name: str | None = Field(None, description="our name in EHLO (default: the sender address's domain)")

    @property
    def resolved_port(self) -> int:
        """The port: configured, else 465 (implicit TLS), 587 (STARTTLS) or 25."""
        return self.port or {TlsMode.IMPLICIT: 465, TlsMode.STARTTLS: 587, TlsMode.PLAIN: 25}[self.tls]

    @model_validator(mode="after")
    def _login_complete(self) -> Self:
        if (self.user is None) != (self.password is None):
            raise ValueError("set both `user` and `password`, or neither")
        return self


class AcknowledgementSettings(BaseModel):
    """The automatic acknowledgement (RFC 3834 auto-reply) to the sender of a message taken in."""

    model_config = ConfigDict(extra="forbid")

    smtp: SmtpSettings
    sender: str = Field(description="From: address of the acknowledgement (the Funktionspostfach)")
    own_addresses: list[str] = Field(
        default_factory=list,
        description="further addresses of ours: mail from them is never acknowledged (with `sender`)",
    )
    subject: str = Field(
        "Eingangsbestätigung: $subject",
        description="subject template; $application_id, $subject, $received_at are filled in",
    )
    body: str = Field(
        "Guten Tag,\n\nIhre Nachricht ist bei uns eingegangen und wird unter dem Vorgang "
        "$application_id bearbeitet.\n\nDies ist eine automatisch erzeugte Nachricht.\n",
        description="body template (plain text); the same placeholders as `subject`",
    )


class MailboxConfig(ConnectorConfig):
    """Settings of a ``type: mailbox`` source."""

    imap: ImapSettings
    folder: str = Field("INBOX", description="the folder read")
    done_folder: str = Field("Aktenhub-Erledigt", description="where a message goes after its durable intake")
    quarantine_folder: str = Field(
        "Aktenhub-Quarantaene", description="where a message the hub cannot take goes (held for an operator)"
    )
    create_folders: bool = Field(True, description="create the done and quarantine folders if missing")
    service: str = Field("email", description="service (Leistung) when the mapping names none")
    mapping: ConfigPath | None = Field(
        None, description="YAML file mapping sender and subject to service and form fields"
    )
    poll_seconds: float = Field(
        300.0, gt=0, le=86400, description="how often the folder is read (with IDLE: a safety net)"
    )
    idle: bool = Field(True, description="wait with IMAP IDLE when the server offers it: new mail at once")
    max_message_size: ByteSize = Field(
        ByteSize(50 * 1024**2),
        description="largest message taken (RFC822.SIZE, checked before the download; it is held in memory "
        "while read); the blob store's limit applies as well",
    )
    max_per_poll: int = Field(
        50,
        ge=1,
        le=10000,
        description="messages downloaded per poll at most (held ones passed over do not count)",
    )
    fetch_backoff: BackOff = Field(
        default_factory=BackOff,
        description="a message failing to download or to be read is tried again after a back-off, "
        "and quarantined after `max_fetches` tries",
    )
    acknowledgement: AcknowledgementSettings | None = Field(
        None, description="send an automatic acknowledgement after the durable intake (default: none)"
    )

    @model_validator(mode="after")
    def _distinct_folders(self) -> Self:
        if len({self.folder, self.done_folder, self.quarantine_folder}) != 3:
            raise ValueError("folder, done_folder and quarantine_folder must be three different folders")
        return self

    @model_validator(mode="after")
    def _mapping_readable(self) -> Self:
        # A broken mail rules file is a configuration error at start-up, not a failure of every poll.
        if self.mapping is not None:
            self.mail_rules()
        return self

    def mail_rules(self) -> MailMapping:
        """The mail rules (none configured: every e-mail taken with `service`); ValueError naming the file."""
        if self.mapping is None:
            return MailMapping()
        try:
            return MailMapping.load(self.mapping)
        except Permanent as exc:
            raise ValueError(str(exc)) from None

    def certificates(self) -> list[CertificateInfo]:
        """The CAs trusted for the IMAP server (`imap-ca`) and the SMTP relay (`smtp-ca`)."""
        found = self.imap.certificates("imap")
        if self.acknowledgement is not None:
            found += self.acknowledgement.smtp.certificates("smtp")
        return found
