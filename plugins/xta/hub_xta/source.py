"""``type: xta``: an XTA mailbox as a generic source — every message (of the configured kinds) an application.

For XÖV messages no specialised plugin reads (a specialised one, e.g. Bauportal.NRW for XBau, uses
`XtaClient` itself). Each message becomes an application whose original is the message content and
whose attachments are the XTA attachments; its form carries the XTA metadata. The message is closed
only after the intake is durable: a crash in between fetches it again, and the intake, idempotent on
the XTA message id, takes it once. What cannot be taken (other types, too large, encrypted, failing) is
held in the journal and the poll goes on (`mailbox.py`). `check()` asks the server whether the account
is active.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pydantic import Field

from hub import (
    Application,
    CheckResult,
    ConnectorConfig,
    ConnectorContext,
    Intake,
    IntakeFunc,
    Manifest,
    OriginalSubmission,
    Permanent,
    Source,
)

from .client import XtaClient
from .config import MailboxSourceConfig
from .mailbox import MailboxReader, Refusal, Taken
from .models import MessageMetaData, XtaMessage
from .origin import XtaOrigin

log = logging.getLogger(__name__)

STANDARDS = ("XTA 2 Version 3.1 (http://xoev.de/transport/xta/211)", "OSCI-Transport 2.02 MessageMetaData")


class XtaSourceConfig(MailboxSourceConfig):
    """Settings of a ``type: xta`` source."""

    service: str | None = Field(
        None, description="service (Leistung) of the applications; default: the XTA message type"
    )
    message_types: list[str] = Field(
        default_factory=list, description="take only these message types (codes); empty: every type"
    )
    services: list[str] = Field(
        default_factory=list, description="take only messages of these XTA services (URIs); empty: all"
    )


class XtaSource(Source[XtaSourceConfig]):
    """Reads an XTA mailbox: fetch, durable intake, then close."""

    kind = "xta"
    manifest = Manifest(
        name="XTA 2 mailbox",
        version="0.1.0",
        standards=STANDARDS,
        description="XÖV messages from an XTA 2 mailbox as applications (MTOM content streamed)",
    )
    Config: ClassVar[type[ConnectorConfig]] = XtaSourceConfig

    def __init__(self, config: XtaSourceConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.poll_interval = config.poll_seconds
        self._client: XtaClient | None = None
        self.reader = MailboxReader()

    @property
    def client(self) -> XtaClient:
        """The XTA client (created on first use: it needs the schema directory)."""
        if self._client is None:
            self._client = XtaClient.from_context(self.config.xta, self.context)
        return self._client

    async def check(self) -> CheckResult:
        """Is the XTA server reachable and our account active?"""
        try:
            client = self.client
        except Permanent as exc:
            return CheckResult(ok=False, message=str(exc))
        return await client.check()

    def wanted(self, metadata: MessageMetaData) -> bool:
        """Whether this source takes a message of this type and service."""
        if self.config.message_types and metadata.message_type not in self.config.message_types:
            return False
        return not self.config.services or metadata.service in self.config.services

    def screen(self, metadata: MessageMetaData) -> Refusal | None:
        """Why a message is not taken, judged from its metadata alone (None: fetch it)."""
        if self.wanted(metadata):
            return None
        return Refusal(
            "message_type",
            f"message type {metadata.message_type!r} / service {metadata.service!r} "
            "is not taken by this source",
        )

    async def poll(self, intake: IntakeFunc) -> int:
        """Take the waiting messages in; close each after its durable intake. Returns how many were new.

        What cannot be taken is held (quarantined, with back-off for failing fetches) and the poll goes on.
        """

        async def take(message: XtaMessage) -> Taken:
            return Taken(await intake(Intake(self.application(message))))

        return await self.reader.poll(
            self.client,
            self.context.held.with_backoff(self.config.fetch_backoff),
            limit=self.config.max_per_poll,
            screen=self.screen,
            take=take,
        )

    async def close_upstream(self, message_id: str) -> None:
        """Close a held message in the XTA mailbox (an operator decided so)."""
        await self.reader.close_upstream(self.client, message_id)

    def application(self, message: XtaMessage) -> Application:
        """The application for a fetched message (content already in the blob store)."""
        meta = message.metadata
        content = message.message
        form: dict[str, Any] = {
            "xta_message_id": meta.message_id,
            "xta_author": meta.author.identifier,
            "xta_reader": meta.reader.identifier,
            "xta_service": meta.service,
            "xta_message_type": meta.message_type,
            "xta_payload_schema": meta.payload_schema,
        }
        if meta.subject:
            form["xta_subject"] = meta.subject
        if meta.process_requester:
            form["xta_process_requester"] = meta.process_requester
        attachments = [a.as_attachment(i) for i, a in enumerate(message.attachments, start=1)]
        return Application(
            source=self.name,
            external_id=meta.message_id,
            service=self.config.service or meta.message_type,
            form=form,
            attachments=attachments,
            original=OriginalSubmission(
                media_type=content.content_type, blob=content.blob, size=content.size, sha256=content.sha256
            ),
            correlations={"xta": meta.message_id, **XtaOrigin.of(meta).correlations()},
        )

    async def diagnostics(self) -> dict[str, Any]:
        """Redacted state: the configuration without secrets."""
        found = await super().diagnostics()
        found["account"] = str(self.config.xta.account)
        return found
