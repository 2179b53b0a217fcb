"""`type: xoev`: any XÖV message over XTA, built by the operator's template or XSLT, validated against
its XSD from the schema directory before it is sent; answers read from the hub's XTA mailbox.

With `message: {forward: original}` it builds nothing: it sends the application's original message (the
content as the source received it, e.g. an XAusländer or XBau message taken from an XTA mailbox) byte
for byte with the application's attachments as they came, under the configured XTA service and message
type, else those the message came under (`hub_xta.XtaOrigin`, recorded by the XTA sources), else (for
the message type and payload schema) its root element's name and namespace, the XTA convention.

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
from typing import Annotated, Any, ClassVar, Literal

from hub_xta import (
    Leave,
    MailboxReader,
    MailboxSourceConfig,
    MessageLabels,
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
    XtaOrigin,
)
from lxml import etree
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from hub import (
    Application,
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


class XoevForwardSpec(BaseModel):
    """`forward: original`: the application's original message, unchanged, with its attachments."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    forward: Literal["original"] = Field(description="what is sent: the message as the source received it")
    schema_file: ConfigPath | None = Field(
        None,
        alias="schema",
        description="an XSD (relative to the schema directory) the original must meet to be forwarded",
    )
    message_type: str | None = Field(None, description="XTA MessageType code; default: the original's")
    payload_schema: str | None = Field(None, description="XTA PayloadSchema; default: the original's")
    service: str | None = Field(None, description="the XTA service (URI); default: the original's")
    business_scenario: str | None = Field(
        None, description="XTA BusinessScenario code (Undefined); default: the original's"
    )
    subject: str | None = None


def message_kind(value: Any) -> str:
    """`forward` for a forwarding message setting, `build` for a template's (the union's discriminator)."""
    forward = value.get("forward") if isinstance(value, dict) else getattr(value, "forward", None)
    return "forward" if forward is not None else "build"


MessageSpec = Annotated[
    Annotated[XoevMessageSpec, Tag("build")] | Annotated[XoevForwardSpec, Tag("forward")],
    Discriminator(message_kind),
]


class XoevAnswers(AnswerFormat):
    """Which messages in the hub's mailbox are this Fachverfahren's answers, and how to read them (XPath)."""

    message_types: list[str] = Field(
        description="XTA message types of the answers, e.g. ...EmpfangBestaetigen..."
    )
    status_by_type: dict[str, str] = Field(
        default_factory=dict, description="message type -> status value, for answers that carry none"
    )
    others: list[str] = Field(
        default_factory=list,
        description="XTA message types another connector reads from the same account: left in the "
        "mailbox, not held (other types are held in this connector's register)",
    )


class XoevConfig(MailboxSourceConfig):
    """Settings of an XÖV-over-XTA target."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    recipient: PartyId = Field(description="the Fachverfahren's XTA identity (its DVDV key): the reader")
    message: MessageSpec = Field(
        description="the message: built (`template` or `xslt`), or `forward: original`"
    )
    answers: XoevAnswers | None = None
    attachments: bool = Field(
        True,
        description="send the record's documents as XTA attachments (`files` in the template); "
        "forwarding: the application's attachments",
    )
    test: bool = Field(False, description="mark messages as test messages")


class _Sent(BaseModel):
    message_id: str
    process_id: str
    message_type: str | None = None  # None in checkpoints written before forwarding existed
    forwarded: bool = False  # the original sent on (a profile may forward some records, build others)
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
        "over XTA, or forwards the application's original message unchanged; the Fachverfahren's "
        "answer messages come back through the hub's XTA mailbox.",
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
        """The message's XSD (if any) is in the schema directory and the XTA account is active."""
        try:
            if self.config.message.schema_file is not None:
                self._schema(str(self.config.message.schema_file))
            client = self.client
        except Permanent as exc:
            return CheckResult(ok=False, message=str(exc))
        return await client.check()

    def _schema(self, relative: str) -> etree.XMLSchema:
        directory = require_schema_directory(
            self.context.schemas, containing=relative, purpose=f"xoev {self.name}"
        )
        return xml_schema(directory / relative)

    # -- delivery ------------------------------------------------------------------------------------

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        """Build (or take the original) and validate the message, reserve its XTA id, send it; a retry
        sends under the same id."""
        app = ctx.application
        earlier = ctx.checkpoints.get(CHECKPOINT)
        state = _Sent.model_validate(earlier) if earlier else None
        if state is not None and state.sent:
            return self._delivery(state, app, duplicate=True)
        process_id = str(uuid.uuid5(_PROCESS_IDS, revision_key(app.id, record.revision)))
        spec = self.message_spec(record)
        if isinstance(spec, XoevForwardSpec):
            outgoing = await self._forward(app, spec, ctx)
        else:
            outgoing = await self._build(record, spec, ctx, process_id)
        if state is None:
            state = _Sent(
                message_id=await self.client.create_message_id(),
                process_id=process_id,
                message_type=outgoing.message_type,
                forwarded=isinstance(spec, XoevForwardSpec),
            )
            await ctx.checkpoint(CHECKPOINT, state.model_dump())
        outgoing = outgoing.model_copy(
            update={"message_id": state.message_id, "process_requester": process_id, "test": self.config.test}
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
            "xoev message sent application=%s target=%s type=%s xta_message_id=%s forwarded=%s",
            app.id,
            self.name,
            outgoing.message_type,
            state.message_id,
            isinstance(spec, XoevForwardSpec),
        )
        return self._delivery(state, app, duplicate=duplicate)

    async def _build(
        self, record: FileRecord, spec: XoevMessageSpec, ctx: DeliveryContext, process_id: str
    ) -> OutgoingMessage:
        """The message the template (or XSLT) makes of the record, validated, its content stored."""
        attachments = await self._attachments(record, ctx, spec) if self.config.attachments else []
        content = spec.render(
            application=ctx.application,
            record=record,
            files=[file for file, _ in attachments],
            fields=self.message_fields(record),
            delivered_at=utcnow(),
            target=self.name,
            process_id=process_id,
            **self.template_values(),
        )
        self.validate_message(content, spec)
        info = await ctx.blobs.write_bytes(content)  # beside the documents: one store serves the send
        return OutgoingMessage(
            reader=self.config.recipient,
            service=spec.service,
            business_scenario=spec.business_scenario,
            message_type=spec.message_type,
            payload_schema=spec.payload_schema,
            subject=spec.subject,
            content=OutgoingContent(
                blob=info.ref,
                size=info.size,
                content_type="application/xml",
                filename=f"{spec.message_type}.xml",
            ),
            attachments=tuple(content for _, content in attachments),
        )

    async def _forward(
        self, app: Application, spec: XoevForwardSpec, ctx: DeliveryContext
    ) -> OutgoingMessage:
        """The application's original message and attachments, unchanged, under the right XTA labels."""
        original = app.original
        if original is None:
            raise Permanent(f"nothing to forward: the source {app.source!r} kept no original message")
        if original.redacted or original.unredacted:
            # Credentials were removed (or are still in it): not the message as it came, never sent on.
            raise Permanent("the original submission was redacted for credentials: it is not forwarded")
        if not await ctx.blobs.exists(original.blob):
            raise Permanent("the original message has no content in the blob store")
        origin = XtaOrigin.from_correlations(app.correlations)
        root: etree.QName | None = None
        if spec.schema_file is not None or (
            origin is None and not (spec.message_type and spec.payload_schema)
        ):
            if original.size > MAX_MESSAGE:
                raise Permanent(f"the original message ({original.size} bytes) is too large to read")
            data = await ctx.blobs.read_bytes(original.blob)
            label = spec.message_type or (origin.message_type if origin else "original")
            document = self._parse(data, label)
            if spec.schema_file is not None:
                self._check(document, str(spec.schema_file), label)
            root = etree.QName(document)
        labels = _labels(spec, origin, root, self.name)
        attachments: list[OutgoingContent] = []
        if self.config.attachments:
            for index, attachment in enumerate(app.attachments):
                if not await ctx.blobs.exists(attachment.blob):
                    raise Permanent(f"attachment {index} has no content in the blob store")
                size = (await ctx.blobs.info(attachment.blob)).size
                attachments.append(
                    OutgoingContent(
                        blob=attachment.blob,
                        size=size,
                        content_type=attachment.media_type,
                        filename=attachment.name,
                    )
                )
        return OutgoingMessage(
            **labels.model_dump(),
            reader=self.config.recipient,
            subject=spec.subject,
            content=OutgoingContent(
                blob=original.blob,
                size=(await ctx.blobs.info(original.blob)).size,
                content_type=original.media_type,
                filename=f"{labels.message_type}.xml",
            ),
            attachments=tuple(attachments),
        )

    def message_spec(self, record: FileRecord) -> XoevMessageSpec | XoevForwardSpec:
        """The message `record` is sent as (a profile with several message types picks per record)."""
        return self.config.message

    def message_fields(self, record: FileRecord) -> dict[str, str]:
        """The mapping's index data for the message (`fields` in the template)."""
        return self.payload(record, FieldsPayload).fields

    def template_values(self) -> dict[str, str]:
        """Further values for the message template (a profile's, e.g. its namespace)."""
        return {}

    def validate_message(self, content: bytes, spec: XoevMessageSpec) -> None:
        """Raise `Permanent` unless `content` is well-formed and meets the message's XSD."""
        self._validate(content, str(spec.schema_file), spec.message_type)

    async def _attachments(
        self, record: FileRecord, ctx: DeliveryContext, spec: XoevMessageSpec
    ) -> list[tuple[DroppedFile, OutgoingContent]]:
        """The record's documents as XTA attachments, with safe unique file names."""
        taken = {f"{spec.message_type}.xml".lower()}  # the message's own file name
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

    def _delivery(self, state: _Sent, app: Application, *, duplicate: bool) -> Delivery:
        message_type = state.message_type or self.config.message.message_type
        # A forwarded message keeps its own id (the source's external id, e.g. an XBau or XAusländer
        # message UUID), which the Fachverfahren's answers may name instead of the ProcessRef.
        forwarded = state.forwarded
        return Delivery(
            target=self.name,
            delivered_at=utcnow(),
            reference=state.process_id,
            duplicate=duplicate,
            details={"xta_message_id": state.message_id, "message_type": message_type},
            correlations={"original": app.external_id} if forwarded else {},
        )

    def _validate(self, content: bytes, schema_file: str, label: str) -> None:
        self._check(self._parse(content, label), schema_file, label)

    @staticmethod
    def _parse(content: bytes, label: str) -> etree._Element:
        try:
            return parse_xml(content, limit=MAX_MESSAGE)
        except UnsafeXml as exc:
            raise Permanent(f"the {label} message is not well-formed: {exc}") from None

    def _check(self, document: etree._Element, schema_file: str, label: str) -> None:
        schema = self._schema(schema_file)
        if not schema.validate(document):
            # Where and which rule, not lxml's message: that quotes the offending (personal) values.
            problems = "; ".join(f"line {e.line} {e.path}: {e.type_name}" for e in list(schema.error_log)[:3])
            raise Permanent(f"the {label} message does not meet {schema_file}: {problems}")

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

    def _screen(self, metadata: MessageMetaData) -> Refusal | Leave | None:
        assert self.config.answers is not None
        if metadata.message_type in self.config.answers.message_types:
            return None
        if metadata.message_type in self.config.answers.others:
            return Leave(f"message type {metadata.message_type!r} is another connector's")
        return Refusal("message_type", f"message type {metadata.message_type!r} is no answer of {self.name}")

    def screen_answer(self, content: bytes) -> Refusal | None:
        """Why an answer message is not taken (held for an operator) before it is read; None: take it."""
        return None

    async def _take(self, message: XtaMessage) -> Taken:
        assert self.config.answers is not None and self.results is not None
        data = await self.context.blobs.read_bytes(message.message.blob)
        refusal = self.screen_answer(data)
        if refusal is not None:
            raise NotTaken(refusal)
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


def _labels(
    spec: XoevForwardSpec, origin: XtaOrigin | None, root: etree.QName | None, target: str
) -> MessageLabels:
    """What a forwarded message travels under: as configured, else as it came, else by its root element."""
    found: dict[str, Any] = origin.model_dump(exclude_none=True) if origin is not None else {}
    if root is not None:
        found.setdefault("message_type", root.localname)  # the XTA convention (PAYLOAD_ELEMENT_LIST)
        if root.namespace:
            found.setdefault("payload_schema", root.namespace)
    if spec.message_type is not None:  # a code of the element-name list, not of the original's list
        found.pop("message_type_list_uri", None)
        found.pop("message_type_list_version", None)
        found["message_type"] = spec.message_type
    if spec.business_scenario is not None:  # Undefined, as a built message's
        found.pop("business_scenario_list_uri", None)
        found.pop("business_scenario_list_version", None)
        found["business_scenario"] = spec.business_scenario
    found.update(
        {k: v for k, v in {"service": spec.service, "payload_schema": spec.payload_schema}.items() if v}
    )
    missing = [
        k for k in ("service", "business_scenario", "message_type", "payload_schema") if not found.get(k)
    ]
    if missing:
        raise Permanent(
            f"the application's message came under no known XTA {', '.join(missing)}: "
            f"set {', '.join(f'`{k}`' for k in missing)} in the `message` of {target}"
        )
    return MessageLabels.model_validate(found)
