"""`type: xoev`: any XÖV message over XTA, built by the operator's template or XSLT, validated against
its XSD from the schema directory before it is sent; answers read from the hub's XTA mailbox.

Sending is idempotent: the XTA message id is reserved and checkpointed before the send, and a retry
sends under the same id (a server that already has it answers "MessageID is taken", which counts as
sent). Answers are matched by a reference the Fachverfahren echoes (by default the ProzessID the hub
gave), read by XPath; a message is closed only after the answer is stored (`hub_xta.MailboxReader`, as
the XTA and XBau sources do), and one that names no application is held for an operator.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any, ClassVar

from hub_xta import (
    MailboxReader,
    MailboxSourceConfig,
    MessageMetaData,
    NotTaken,
    OutgoingContent,
    OutgoingMessage,
    ParameterIsNotValidFault,
    PartyId,
    Refusal,
    Taken,
    XtaClient,
    XtaMessage,
)
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field

from hub import (
    Attachment,
    CheckResult,
    ConfigPath,
    ConnectorConfig,
    ConnectorContext,
    Delivery,
    DeliveryContext,
    FileRecord,
    IntakeOutcome,
    Manifest,
    Permanent,
    Sink,
    UnknownApplication,
    require_schema_directory,
    revision_key,
    utcnow,
    xml_schema,
)
from hub.xml import UnsafeXml, parse_xml

from ..importfolder.answers import AnswerFormat, ResultReader, Unreadable
from ..importfolder.folder import VERSION, DroppedFile
from ..importfolder.manifest import FieldsPayload, ManifestSpec
from ..importfolder.names import safe_file_name, unique_name

log = logging.getLogger(__name__)

CHECKPOINT = "xoev"
ID_TAKEN = "9024"  # ParameterIsNotValidException "MessageID is taken": the server has the message
UNKNOWN_APPLICATION = "unknown_application"
UNREADABLE = "unreadable_answer"
_PROCESS_IDS = uuid.UUID("6a4f3f0e-1d8c-4a53-9d55-0f1e7c1b9a01")  # namespace of the hub's ProzessIDs
MAX_MESSAGE = 64 * 1024 * 1024


class XoevMessageSpec(ManifestSpec):
    """The message: `template` or `xslt`, and the XSD (relative to the schema directory) it must meet."""

    schema_file: ConfigPath = Field(
        alias="schema",
        description="the message's XSD, relative to the schema directory, e.g. "
        "xdomea/3.0.0/xsd/xdomea-Nachrichten-InformationAustauschen.xsd",
    )
    message_type: str = Field(description="XTA MessageType code, e.g. Information.Information.0101")
    payload_schema: str = Field(description="the message's namespace URI (XTA PayloadSchema)")
    service: str = Field(description="the XTA service (URI) of the exchange")
    business_scenario: str = Field(description="XTA BusinessScenario code")
    subject: str | None = None


class XoevAnswers(AnswerFormat):
    """Which messages in the hub's mailbox are this Fachverfahren's answers, and how to read them (XPath)."""

    message_types: list[str] = Field(
        description="XTA message types of the answers, e.g. ...EmpfangBestaetigen..."
    )
    status_by_type: dict[str, str] = Field(
        default_factory=dict, description="message type -> status value, for answers that carry none"
    )


class XoevConfig(MailboxSourceConfig):
    """Settings of an XÖV-over-XTA target."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    recipient: PartyId = Field(description="the Fachverfahren's XTA identity (its DVDV key): the reader")
    message: XoevMessageSpec
    answers: XoevAnswers | None = None
    attachments: bool = Field(
        True, description="send the record's documents as XTA attachments (`files` in the template)"
    )
    test: bool = Field(False, description="mark messages as test messages")


class _Sent(BaseModel):
    message_id: str
    process_id: str
    sent: bool = False


class XoevSink(Sink[XoevConfig]):
    """Sends an XÖV message per application over XTA; reads the Fachverfahren's answers from the mailbox."""

    kind = "xoev"
    Config: ClassVar[type[ConnectorConfig]] = XoevConfig
    Payload = FieldsPayload
    manifest = Manifest(
        name="XÖV over XTA",
        version=VERSION,
        standards=("XTA 2 Version 3.1", "any XÖV message type with its XSD"),
        description="Builds an XÖV message (template or XSLT), validates it against its XSD and sends it "
        "over XTA; the Fachverfahren's answer messages come back through the hub's XTA mailbox.",
    )

    def __init__(self, config: XoevConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self._client: XtaClient | None = None
        self.reader = MailboxReader()
        self.results = ResultReader(config.answers) if config.answers is not None else None
        if config.answers is not None:
            self.answer_poll_interval = config.poll_seconds

    @property
    def client(self) -> XtaClient:
        """The XTA client (created on first use: it needs the schema directory)."""
        if self._client is None:
            self._client = XtaClient.from_context(self.config.xta, self.context)
        return self._client

    async def check(self) -> CheckResult:
        """The message's XSD is in the schema directory and the XTA account is active."""
        try:
            self._schema()
            client = self.client
        except Permanent as exc:
            return CheckResult(ok=False, message=str(exc))
        return await client.check()

    def _schema(self) -> etree.XMLSchema:
        relative = str(self.config.message.schema_file)
        directory = require_schema_directory(
            self.context.schemas, containing=relative, purpose=f"xoev {self.name}"
        )
        return xml_schema(directory / relative)

    # -- delivery ------------------------------------------------------------------------------------

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        """Build and validate the message, reserve its XTA id, send it; a retry sends under the same id."""
        app = ctx.application
        spec = self.config.message
        earlier = ctx.checkpoints.get(CHECKPOINT)
        state = _Sent.model_validate(earlier) if earlier else None
        if state is not None and state.sent:
            return self._delivery(state, duplicate=True)
        process_id = str(uuid.uuid5(_PROCESS_IDS, revision_key(app.id, record.revision)))
        attachments = await self._attachments(record, ctx) if self.config.attachments else []
        content = spec.render(
            application=app,
            record=record,
            files=[file for file, _ in attachments],
            fields=self.payload(record, FieldsPayload).fields,
            delivered_at=utcnow(),
            target=self.name,
            process_id=process_id,
        )
        self._validate(content)
        if state is None:
            state = _Sent(message_id=await self.client.create_message_id(), process_id=process_id)
            await ctx.checkpoint(CHECKPOINT, state.model_dump())
        info = await ctx.blobs.write_bytes(content)  # beside the documents: one store serves the send
        outgoing = OutgoingMessage(
            reader=self.config.recipient,
            service=spec.service,
            business_scenario=spec.business_scenario,
            message_type=spec.message_type,
            payload_schema=spec.payload_schema,
            subject=spec.subject,
            message_id=state.message_id,
            process_requester=process_id,
            test=self.config.test,
            content=OutgoingContent(
                blob=info.ref,
                size=info.size,
                content_type="application/xml",
                filename=f"{spec.message_type}.xml",
            ),
            attachments=tuple(content for _, content in attachments),
        )
        duplicate = False
        try:
            await self.client.send_message(outgoing, blobs=ctx.blobs)
        except ParameterIsNotValidFault as exc:
            if exc.code != ID_TAKEN or earlier is None:
                raise
            duplicate = True  # sent before a crash lost the confirmation
        state.sent = True
        await ctx.checkpoint(CHECKPOINT, state.model_dump())
        log.info(
            "xoev message sent application=%s target=%s type=%s xta_message_id=%s",
            app.id,
            self.name,
            spec.message_type,
            state.message_id,
        )
        return self._delivery(state, duplicate=duplicate)

    async def _attachments(
        self, record: FileRecord, ctx: DeliveryContext
    ) -> list[tuple[DroppedFile, OutgoingContent]]:
        """The record's documents as XTA attachments, with safe unique file names."""
        taken = {f"{self.config.message.message_type}.xml".lower()}  # the message's own file name
        found: list[tuple[DroppedFile, OutgoingContent]] = []
        for index, doc in enumerate(record.documents):
            if doc.blob is None or not await ctx.blobs.exists(doc.blob):
                raise Permanent(f"document {index} (type {doc.type!r}) has no content in the blob store")
            size = (await ctx.blobs.info(doc.blob)).size  # an MTOM part declares its size
            name = unique_name(safe_file_name(doc.name), taken)
            file = DroppedFile(
                name=name,
                original_name=doc.name,
                document_type=doc.type,
                content=doc.content,
                media_type=doc.media_type,
                size=size,
                sha256=doc.blob.removeprefix("sha256:"),
                fields=doc.fields,
            )
            found.append(
                (file, OutgoingContent(blob=doc.blob, size=size, content_type=doc.media_type, filename=name))
            )
        return found

    def _delivery(self, state: _Sent, *, duplicate: bool) -> Delivery:
        return Delivery(
            target=self.name,
            delivered_at=utcnow(),
            reference=state.process_id,
            duplicate=duplicate,
            details={"xta_message_id": state.message_id, "message_type": self.config.message.message_type},
        )

    def _validate(self, content: bytes) -> None:
        try:
            document = parse_xml(content, limit=MAX_MESSAGE)
        except UnsafeXml as exc:
            raise Permanent(
                f"the {self.config.message.message_type} message is not well-formed: {exc}"
            ) from None
        schema = self._schema()
        if not schema.validate(document):
            # Where and which rule, not lxml's message: that quotes the offending (personal) values.
            problems = "; ".join(f"line {e.line} {e.path}: {e.type_name}" for e in list(schema.error_log)[:3])
            raise Permanent(
                f"the {self.config.message.message_type} message does not meet "
                f"{self.config.message.schema_file}: {problems}"
            )

    # -- answers -------------------------------------------------------------------------------------

    async def poll_answers(self) -> int:
        """Read answer messages from the hub's XTA mailbox; close each after its answer is stored."""
        if self.config.answers is None:
            return 0
        return await self.reader.poll(
            self.client,
            self.context.held.with_backoff(self.config.fetch_backoff),
            limit=self.config.max_per_poll,
            screen=self._screen,
            take=self._take,
        )

    async def close_upstream(self, message_id: str) -> None:
        """Close a held answer message for good (an operator decided so)."""
        await self.reader.close_upstream(self.client, message_id)

    def _screen(self, metadata: MessageMetaData) -> Refusal | None:
        assert self.config.answers is not None
        if metadata.message_type in self.config.answers.message_types:
            return None
        return Refusal("message_type", f"message type {metadata.message_type!r} is no answer of {self.name}")

    async def _take(self, message: XtaMessage) -> Taken:
        assert self.config.answers is not None and self.results is not None
        data = await self.context.blobs.read_bytes(message.message.blob)
        try:
            values = self.results.values("xml", data)
            if (
                values.get("status") is None
                and message.metadata.message_type in self.config.answers.status_by_type
            ):
                values["status"] = self.config.answers.status_by_type[message.metadata.message_type]
            # By content, not by XTA message id: an answer the Fachverfahren sends again arrives under a
            # new message id, and must change nothing twice.
            answer_id = f"{message.metadata.message_type[:100]}:{hashlib.sha256(data).hexdigest()[:32]}"
            answer = self.results.answer(values, answer_id, _decision(message))
        except Unreadable as exc:
            raise NotTaken(Refusal(UNREADABLE, str(exc))) from None
        try:
            outcome = await self.context.answer(answer)
        except UnknownApplication as exc:
            raise NotTaken(Refusal(UNKNOWN_APPLICATION, str(exc))) from None
        return Taken(IntakeOutcome(application_id=outcome.application_id, duplicate=outcome.duplicate))

    async def diagnostics(self) -> dict[str, Any]:
        """Configuration (no secrets) and the XTA account."""
        state = await super().diagnostics()
        state["account"] = str(self.config.xta.account)
        return state


def _decision(message: XtaMessage) -> Attachment | None:
    """The first PDF attachment of an answer message: the decision."""
    for part in message.attachments:
        if part.content_type == "application/pdf":
            return Attachment(
                name=part.filename or "Bescheid.pdf",
                media_type=part.content_type,
                size=part.size,
                sha256=part.sha256,
                blob=part.blob,
            )
    return None
