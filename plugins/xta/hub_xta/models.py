"""Typed XTA data: parties, message metadata, status lists, fetched and outgoing messages."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub import Attachment

# The XTA convention for MessageType: the code is the payload's root element name.
PAYLOAD_ELEMENT_LIST = "urn:de:payloadSchema:elementName"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartyId(_Model):
    """An XTA party (author, sender or reader): its identifier, e.g. a DVDV authority key."""

    identifier: str = Field(min_length=1, description="e.g. 'vbe:010010100000' or a DVDV Behördenkennung")
    type: str = Field("xoev", min_length=1, description="how to read the identifier, e.g. 'xoev'")
    name: str | None = Field(None, description="friendly name, informational")
    category: str | None = Field(None, description="role in the business scenario, informational")

    def __str__(self) -> str:
        return f"{self.type}:{self.identifier}" if self.type != "xoev" else self.identifier


class MessageMetaData(_Model):
    """The OSCI/XTA metadata of a message: who wrote it to whom, which service, which message type."""

    message_id: str
    author: PartyId
    sender: PartyId | None = None
    reader: PartyId
    service: str = Field(description="the 'Dienste-URI'")
    business_scenario: str = Field(description="the code (Defined) or free text (Undefined)")
    business_scenario_list_uri: str | None = Field(None, description="None: an Undefined scenario")
    business_scenario_list_version: str | None = None
    message_type: str = Field(description="code of the message type, e.g. 'baugenehmigung.antrag.0200'")
    message_type_list_uri: str = PAYLOAD_ELEMENT_LIST
    message_type_list_version: str = "1.0"
    payload_schema: str = Field(
        description="namespace of the payload, e.g. http://www.xleitstelle.de/xbau/2/6"
    )
    subject: str | None = None
    in_reply_to: tuple[str, ...] = ()
    process_requester: str | None = Field(None, description="ProcessRef/Requester, e.g. an Aktenzeichen")
    process_responder: str | None = None
    size: int | None = Field(None, description="MsgSize: the message's size in bytes, if given")
    origin: datetime | None = None
    delivered: datetime | None = Field(None, description="entry into the reader's mailbox")
    initial_fetch: datetime | None = None
    test: bool = False

    @field_validator("origin", "delivered", "initial_fetch")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.astimezone(UTC) if value is not None and value.tzinfo is not None else value


class UnreadableEntry(_Model):
    """A status list entry whose metadata does not fit the schema: its message id, and why."""

    message_id: str
    reason: str


class StatusList(_Model):
    """One page of a mailbox's status list."""

    request_id: str | None = Field(description="MsgBoxRequestID, for getNextStatusList")
    messages: tuple[MessageMetaData, ...]
    pending: int = Field(0, description="ItemsPending: entries left for getNextStatusList")
    unreadable: tuple[UnreadableEntry, ...] = Field(
        (), description="entries that could not be read (one broken entry spoils no page)"
    )


class XtaContent(_Model):
    """A content of a fetched message (the message itself or an attachment), stored in the blob store."""

    blob: str
    size: int
    sha256: str
    content_type: str
    filename: str | None = None
    description: str | None = None
    encoding: str | None = None
    id: str | None = None
    lang: str | None = None

    def as_attachment(self, number: int) -> Attachment:
        """This content as an application's attachment, by its file name (unnamed: ``anlage-<number>``)."""
        return Attachment(
            name=self.filename or f"anlage-{number}",
            media_type=self.content_type,
            size=self.size,
            sha256=self.sha256,
            blob=self.blob,
        )


class XtaMessage(_Model):
    """A fetched message: metadata, the message content and its attachments (all in the blob store)."""

    metadata: MessageMetaData
    request_id: str | None = Field(description="MsgBoxRequestID of the fetch, to close with")
    pending: int | None = None
    message: XtaContent
    attachments: tuple[XtaContent, ...] = ()

    @property
    def message_id(self) -> str:
        """The message's id (what `close` takes)."""
        return self.metadata.message_id


class OutgoingContent(_Model):
    """A content to send: a blob and how to label it."""

    blob: str = Field(description="blob reference (sha256:...) in the client's blob store")
    size: int = Field(ge=0)
    content_type: str = Field(min_length=1)
    filename: str | None = None
    description: str | None = None
    encoding: str | None = None
    id: str | None = None
    lang: str | None = None


class MessageLabels(_Model):
    """Under which service, business scenario and message type a message travels."""

    service: str
    business_scenario: str
    business_scenario_list_uri: str | None = None
    business_scenario_list_version: str | None = None
    message_type: str
    message_type_list_uri: str = PAYLOAD_ELEMENT_LIST
    message_type_list_version: str = "1.0"
    payload_schema: str


class OutgoingMessage(MessageLabels):
    """A message to send with `XtaClient.send_message`."""

    reader: PartyId
    subject: str | None = None
    message_id: str | None = Field(None, description="None: the client asks the server (createMessageId)")
    in_reply_to: tuple[str, ...] = ()
    process_requester: str | None = None
    process_responder: str | None = None
    author: PartyId | None = Field(None, description="None: the client's own account")
    test: bool = False
    content: OutgoingContent
    attachments: tuple[OutgoingContent, ...] = ()
