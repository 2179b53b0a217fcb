"""`type: advis-intake`: XAusländer messages from OZG online services, taken from the Ausländerbehörde's
XTA mailbox (DVDV service ``xauslaender1211OZGPORTALABH``), as applications.

One poll lists the mailbox; each message of the configured kinds is fetched (content and attachments
streamed by the XTA client into the blob store), parsed (hardened, size-limited), validated against the
XAusländer XSDs (`hub_advis.schema`, the policy both directions share) and read by the configured
XPaths (`hub_advis.inbound_paths`): the applicant (familienname, vorname, geburtsdatum, ADVIS's person
id where the message carries it), the kind of application (the message type) and further details. The
application goes to the core's intake, idempotent on the message's nachrichtUUID (else the XTA message
id); only after that returned is the XTA message closed, so a crash in between fetches it again and the
intake takes it once. The route's mapping files it into the Ausländerakte (found by the person) with a
PDF rendition, and its `advis` target forwards the original unchanged to ADVIS.

A message that is not well-formed, does not meet the XSDs or names no applicant is held (quarantined,
`aktenhub held`) with the reason and left in the mailbox for an operator; the poll goes on with the
next one. Messages of other kinds (by their XTA metadata) are not downloaded (`hub_xta.MailboxReader`);
those of `others` (by default ADVIS's answers, should they share the account) are left alone entirely.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar, Final

from hub_xta import (
    Leave,
    MailboxReader,
    MailboxSourceConfig,
    MessageMetaData,
    NotTaken,
    Refusal,
    Taken,
    XtaClient,
    XtaMessage,
    XtaOrigin,
)
from pydantic import ByteSize, ConfigDict, Field

from hub import (
    Application,
    CheckResult,
    ConnectorConfig,
    ConnectorContext,
    Intake,
    IntakeFunc,
    Manifest,
    OriginalSubmission,
    Party,
    Permanent,
    Source,
)

from .answers import ANSWER_TYPE
from .inbound_paths import MessageValues, Unreadable, XAuslaenderPaths
from .schema import DEFAULT_VERSION, InvalidMessage, SchemaSettings, XAuslaenderSchemas, checked, load_schemas

log = logging.getLogger(__name__)

VERSION: Final = "0.1.0"
INVALID: Final = "invalid_message"  # not well-formed or not meeting the XAusländer XSDs
UNREADABLE: Final = "unreadable_message"  # valid, but the configured XPaths find no applicant
TOO_LARGE: Final = "oversize"


class AdvisIntakeConfig(MailboxSourceConfig, SchemaSettings):
    """Settings of the Ausländerbehörde's XTA mailbox for XAusländer messages from OZG services."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    service: str = Field(
        "aufenthaltstitel", description="the service (Leistung) of the applications, for the routes"
    )
    message_types: list[str] = Field(
        default_factory=list,
        description="take only these XTA message types (XAusländer message names); empty: every type",
    )
    services: list[str] = Field(
        default_factory=list,
        description="take only messages of these XTA services (URIs), e.g. the DVDV service "
        "xauslaender1211OZGPORTALABH's; empty: every service",
    )
    others: list[str] = Field(
        default_factory=lambda: [ANSWER_TYPE],
        description="XTA message types another connector reads from the same account (default: ADVIS's "
        "answers): left in the mailbox, neither fetched nor held",
    )
    xpaths: XAuslaenderPaths = Field(
        default_factory=XAuslaenderPaths,
        description="where the applicant and the details are in the message (XPath 1.0)",
    )
    max_message: ByteSize = Field(
        ByteSize(32 * 1024 * 1024), description="largest message content read (its attachments aside)"
    )


class AdvisIntake(Source[AdvisIntakeConfig]):
    """Reads the Ausländerbehörde's XTA mailbox: fetch, validate, read, durable intake, then close."""

    kind = "advis-intake"
    Config: ClassVar[type[ConnectorConfig]] = AdvisIntakeConfig
    manifest = Manifest(
        name="XAusländer from OZG online services (Ausländerbehörde)",
        version=VERSION,
        standards=(f"XAusländer {DEFAULT_VERSION}", "XTA 2 Version 3.1"),
        description="XAusländer messages (e.g. an application for a residence title) from the "
        "Ausländerbehörde's XTA mailbox, validated, read by XPath into applications",
    )

    def __init__(self, config: AdvisIntakeConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.poll_interval = config.poll_seconds
        self.reader = MailboxReader()
        self._client: XtaClient | None = None
        self._schemas: XAuslaenderSchemas | None = None
        self._loaded = False

    @property
    def client(self) -> XtaClient:
        """The XTA client (created on first use: it needs the schema directory)."""
        if self._client is None:
            self._client = XtaClient.from_context(self.config.xta, self.context)
        return self._client

    def schemas(self) -> XAuslaenderSchemas | None:
        """The XAusländer XSDs (None: validation switched off); `Permanent` without them."""
        if not self._loaded:
            self._schemas = load_schemas(
                self.context.schemas, self.config, purpose=f"connector {self.name!r}"
            )
            self._loaded = True
        return self._schemas

    async def start(self) -> None:
        """Refuse to start without the XAusländer XSDs (unless `validate: false`, which warns)."""
        self.schemas()
        await super().start()

    async def check(self) -> CheckResult:
        """The XAusländer XSDs are in the schema directory and the XTA account is active."""
        try:
            self.schemas()
            client = self.client
        except Permanent as exc:
            return CheckResult(ok=False, message=str(exc))
        return await client.check()

    def screen(self, metadata: MessageMetaData) -> Refusal | Leave | None:
        """Why a message is not fetched, judged from its XTA metadata alone (None: fetch it)."""
        config = self.config
        if metadata.message_type in config.others:
            return Leave(f"message type {metadata.message_type!r} is another connector's")
        if config.message_types and metadata.message_type not in config.message_types:
            return Refusal("message_type", f"message type {metadata.message_type!r} is not taken here")
        if config.services and metadata.service not in config.services:
            return Refusal("message_type", f"service {metadata.service!r} is not taken here")
        return None

    async def poll(self, intake: IntakeFunc) -> int:
        """Take the waiting messages in; close each after its durable intake (`hub_xta.MailboxReader`)."""

        async def take(message: XtaMessage) -> Taken:
            outcome = await intake(Intake(await self.application(message)))
            if not outcome.duplicate:
                log.info(
                    "xauslaender message taken application=%s xta_message_id=%s",
                    outcome.application_id,
                    message.message_id,
                )
            return Taken(outcome)

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

    async def application(self, message: XtaMessage) -> Application:
        """The application a fetched message makes; `NotTaken` (held) if it cannot be read."""
        content = message.message
        limit = int(self.config.max_message)
        if content.size > limit:
            raise NotTaken(Refusal(TOO_LARGE, f"the message is {content.size} bytes, more than {limit}"))
        data = await self.context.blobs.read_bytes(content.blob)
        schemas = self.schemas()
        try:
            # Validating a large message takes a while: not on the event loop.
            root = await asyncio.to_thread(checked, schemas, data, limit=limit)
            values = self.config.xpaths.read(root)
        except InvalidMessage as exc:
            raise NotTaken(Refusal(INVALID, str(exc))) from None
        except Unreadable as exc:
            raise NotTaken(Refusal(UNREADABLE, str(exc))) from None
        meta = message.metadata
        return Application(
            source=self.name,
            # The message UUID: the same message sent again in another XTA message is one application.
            external_id=values.nachricht_uuid or meta.message_id,
            service=self.config.service,
            applicant=_applicant(values),
            form=_form(values),
            attachments=[a.as_attachment(i) for i, a in enumerate(message.attachments, start=1)],
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


def _applicant(values: MessageValues) -> Party:
    person = values.person
    return Party(
        given_name=person.vorname,
        family_name=person.familienname,
        birth_date=person.geburtsdatum,
        birth_name=person.geburtsname,
        birth_place=person.geburtsort,
    )


def _form(values: MessageValues) -> dict[str, Any]:
    """What the mapping reads: the message's identity and kind, the person, the details."""
    person = {k: v for k, v in values.person.model_dump().items() if v is not None}
    form: dict[str, Any] = {"nachrichtentyp": values.nachrichtentyp, "person": person}
    if values.nachricht_uuid:
        form["nachricht_uuid"] = values.nachricht_uuid
    if values.details:
        form["antrag"] = dict(values.details)
    return form
