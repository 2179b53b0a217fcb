"""XTA 2 for Aktenhub: an async client (zeep + aiohttp, MTOM streamed into the blob store) and a simulator.

A library for plugins that exchange XÖV messages over XTA (Bauportal.NRW/XBau, ADVIS, ...)::

    from hub_xta import XtaClient, XtaSettings

    client = XtaClient.from_context(settings, connector_context)
    for meta in await client.list_messages():
        message = await client.get_message(meta.message_id)   # content now in the blob store
        ...  # durable intake
        await client.close(meta.message_id)
"""

from __future__ import annotations

from .client import XtaClient
from .config import MailboxSourceConfig, XtaSettings
from .errors import (
    CancelDeniedFault,
    InvalidMessageIdFault,
    MessageSchemaViolationFault,
    MessageVirusDetectionFault,
    ParameterIsNotValidFault,
    PermissionDeniedFault,
    SyncAsyncFault,
    TechnicalProblemFault,
    XtaContentTooLarge,
    XtaFault,
    XtaPermanentFault,
    XtaProtocolError,
    XtaRetryableFault,
    XtaUnsupported,
)
from .mailbox import Leave, MailboxReader, NotTaken, Refusal, Taken
from .models import (
    PAYLOAD_ELEMENT_LIST,
    MessageLabels,
    MessageMetaData,
    OutgoingContent,
    OutgoingMessage,
    PartyId,
    StatusList,
    UnreadableEntry,
    XtaContent,
    XtaMessage,
)
from .origin import XtaOrigin
from .schema import XtaSchema, load_schema
from .source import STANDARDS, XtaSource, XtaSourceConfig
from .wsdl import XtaSchemaError, XtaWsdl, load_wsdl, xta_directory

__all__ = [
    "PAYLOAD_ELEMENT_LIST",
    "STANDARDS",
    "CancelDeniedFault",
    "InvalidMessageIdFault",
    "Leave",
    "MailboxReader",
    "MailboxSourceConfig",
    "MessageLabels",
    "MessageMetaData",
    "MessageSchemaViolationFault",
    "MessageVirusDetectionFault",
    "NotTaken",
    "OutgoingContent",
    "OutgoingMessage",
    "ParameterIsNotValidFault",
    "PartyId",
    "PermissionDeniedFault",
    "Refusal",
    "StatusList",
    "SyncAsyncFault",
    "Taken",
    "TechnicalProblemFault",
    "UnreadableEntry",
    "XtaClient",
    "XtaContent",
    "XtaContentTooLarge",
    "XtaFault",
    "XtaMessage",
    "XtaOrigin",
    "XtaPermanentFault",
    "XtaProtocolError",
    "XtaRetryableFault",
    "XtaSchema",
    "XtaSchemaError",
    "XtaSettings",
    "XtaSource",
    "XtaSourceConfig",
    "XtaUnsupported",
    "XtaWsdl",
    "load_schema",
    "load_wsdl",
    "xta_directory",
]
