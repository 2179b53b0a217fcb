"""The async XTA 2 client: zeep builds and reads the SOAP, aiohttp carries it, MTOM content is streamed.

How a call works: zeep (WSDL and schemas from the schema directory, see `wsdl.py`) builds the request
envelope with its WS-Addressing headers (Action, MessageID, To). The envelope is posted with the hub's
shared aiohttp session, with the client certificate's SSL context. The answer is read as a stream:
a multipart/related (MTOM) answer part by part, each binary part straight into the blob store, only
the SOAP envelope into memory (up to `max_envelope`). The envelope is parsed with a hardened lxml
parser; faults become `XtaFault`s; header blocks and body are read into typed results through zeep's
schema types. zeep's own transports are not used: they would read a whole MTOM answer into memory.

The request goes through the hub's `Outbound` (shared session, client certificate, timeouts), which
classifies transport failures: timeouts and broken connections are `Retryable`, an untrusted server
certificate and unusable TLS settings `Permanent`. SOAP faults per the WSDL (see `errors.py`); answers
that are no SOAP follow HTTP's status classes (5xx, 408/425/429 `Retryable`, other 4xx `Permanent`);
malformed answers are `Permanent`.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import zeep
from aiohttp import BodyPartReader, hdrs
from lxml import etree
from pydantic import ValidationError

from hub import BlobInfo, Blobs, BlobTooLarge, CheckResult, ConnectorContext, Permanent, Retryable
from hub.outbound import Outbound, classify, read_bounded, server_message

from .config import XtaSettings
from .errors import (
    PermissionDeniedFault,
    XtaContentTooLarge,
    XtaFault,
    XtaProtocolError,
    XtaUnsupported,
    fault_class,
)
from .models import (
    MessageMetaData,
    OutgoingContent,
    OutgoingMessage,
    PartyId,
    StatusList,
    UnreadableEntry,
    XtaContent,
    XtaMessage,
)
from .mtom import (
    CHUNK,
    SOAP_TYPE,
    MtomError,
    OutgoingPart,
    Related,
    RootHandler,
    cid_of,
    content_type_params,
    href_of,
    new_cid,
    part_chunks,
    read_related,
    related_writer,
)
from .wsdl import MANAGEMENT, MSGBOX, SEND, XtaSchemaError, XtaWsdl, load_wsdl
from .xml import META, OSCI, SOAP12, WSA, XENC, XML, XOP, XTA, UnsafeXml, parse_xml, qname, text_of

log = logging.getLogger(__name__)

MAX_ERROR_TEXT = 300
_B64_SLICE = 4 * 64 * 1024  # characters of inline base64 decoded at a time (a multiple of 4)

OnPart = Callable[[str, BodyPartReader], Awaitable[None]]


class XtaClient:
    """An XTA 2 web service client for one account (MsgBox, SendXta and Management ports)."""

    def __init__(
        self,
        settings: XtaSettings,
        *,
        schemas: Path,
        http: aiohttp.ClientSession | Callable[[], aiohttp.ClientSession],
        blobs: Blobs | None = None,
    ) -> None:
        self.settings = settings
        self.wsdl: XtaWsdl = load_wsdl(schemas)
        self._http = http
        self.blobs = blobs
        self.outbound = Outbound(self._session, settings.endpoint(), system="the XTA server")
        self._request_ids: dict[str, str] = {}  # message id -> MsgBoxRequestID of its last fetch

    @classmethod
    def from_context(cls, settings: XtaSettings, context: ConnectorContext) -> XtaClient:
        """A client on a connector's shared HTTP session, blob store and schema directory."""
        if context.schemas is None:
            raise Permanent(
                "no schema directory configured (`schemas:` or $AKTENHUB_SCHEMAS): XTA needs its WSDL"
            )
        return cls(settings, schemas=context.schemas, http=lambda: context.http, blobs=context.blobs)

    @property
    def account(self) -> PartyId:
        """Our XTA identity."""
        return self.settings.account

    # -- Management port ---------------------------------------------------------------------------

    async def create_message_id(self) -> str:
        """A new message id from the server (createMessageId)."""
        envelope = await self._call(MANAGEMENT, "createMessageId", self._author())
        found = _body(envelope).find(qname(WSA, "MessageID"))
        value = self._parse(found, "createMessageId")
        message_id = str(value["_value_1"] or "").strip() if value is not None else ""
        if not message_id:
            raise XtaProtocolError("createMessageId: the answer holds no wsa:MessageID")
        return message_id

    async def check_account_active(self) -> None:
        """Return if the account is active; raise `PermissionDeniedFault` (or another error) if not."""
        await self._call(MANAGEMENT, "checkAccountActive", self._author())

    async def check(self) -> CheckResult:
        """For `aktenhub check`: can the XTA server be reached, and is our account active?"""
        address = self.settings.address(MANAGEMENT)
        try:
            await self.check_account_active()
        except PermissionDeniedFault as exc:
            return CheckResult(
                ok=False,
                message=f"XTA account {self.account} not usable: {exc.reason}",
                details={"code": exc.code or "", "address": address},
            )
        except (Permanent, Retryable) as exc:
            return CheckResult(ok=False, message=str(exc), details={"address": address})
        return CheckResult(
            ok=True, message=f"XTA account {self.account} active", details={"address": address}
        )

    # -- MsgBox port -------------------------------------------------------------------------------

    async def get_status_list(self, *, max_items: int | None = None) -> StatusList:
        """The first page of our mailbox's status list (metadata of the messages waiting)."""
        values = {
            "maxListItems": max_items or self.settings.page_size,
            "ListForm": "MessageMetaData",
            **self._author(),
        }
        envelope = await self._call(MSGBOX, "getStatusList", values)
        return self._status_list(envelope, "getStatusList")

    async def get_next_status_list(self, request_id: str, last_received: Sequence[str] = ()) -> StatusList:
        """The next page of a status list (getNextStatusList with the first page's MsgBoxRequestID)."""
        values = {
            "MsgBoxRequestID": request_id,
            # zeep would demand an entry although the schema's sequence is optional: skip it if empty.
            "LastMsgReceived": [{"_value_1": i} for i in last_received] or zeep.xsd.SkipValue,
            **self._author(),
        }
        envelope = await self._call(MSGBOX, "getNextStatusList", values)
        return self._status_list(envelope, "getNextStatusList")

    async def status_pages(self, *, limit: int = 10000) -> AsyncGenerator[StatusList, None]:
        """Our mailbox's status list, page by page as the server lists it (at most `limit` messages).

        A reader that stops early asks for no further page.
        """
        page = await self.get_status_list()
        count = 0
        while True:
            yield page.model_copy(update={"messages": page.messages[: max(limit - count, 0)]})
            count += len(page.messages)
            if not (page.pending > 0 and page.request_id and page.messages and count < limit):
                return
            page = await self.get_next_status_list(page.request_id, [page.messages[-1].message_id])

    async def list_messages(self, *, limit: int = 10000) -> list[MessageMetaData]:
        """Every message waiting in our mailbox (all pages, at most `limit`)."""
        return [m async for page in self.status_pages(limit=limit) for m in page.messages]

    async def get_message(
        self,
        message_id: str,
        *,
        blobs: Blobs | None = None,
        limit: int | None = None,
        total_limit: int | None = None,
    ) -> XtaMessage:
        """Fetch a message: metadata plus content, every content streamed into the blob store.

        `limit` caps each content (default `max_content`), `total_limit` all of them together (default
        `max_message`). Past either, reading stops at once and `XtaContentTooLarge` is raised: a content
        larger than allowed, or than the message declared, is never downloaded whole. End-to-end encrypted
        content raises `XtaUnsupported`, if the envelope comes first before any content is downloaded.
        The message stays in the mailbox until `close`; fetched again, it is delivered again.
        """
        store = self._blob_store(blobs)
        limit = limit if limit is not None else self.settings.max_content
        if total_limit is None:
            total_limit = self.settings.max_message if self.settings.max_message is not None else limit
        budget = _Budget(message_id, limit, total_limit)
        stored: dict[str, BlobInfo] = {}

        async def on_part(cid: str, part: BodyPartReader) -> None:
            stored[cid] = await _store_part(store, part, budget)

        def on_root(root: Related) -> None:
            try:
                envelope = parse_xml(root.root, limit=int(self.settings.max_envelope))
            except UnsafeXml:
                return  # said properly once the whole answer is read
            budget.screen(envelope)

        values = {"MsgSelector": {"MessageID": [{"_value_1": message_id}]}, **self._author()}
        envelope = await self._call(MSGBOX, "getMessage", values, on_part=on_part, on_root=on_root)
        if envelope is None:
            raise XtaProtocolError("getMessage: empty answer")
        header = _header(envelope)
        meta_element = header.find(qname(META, "MessageMetaData")) if header is not None else None
        if meta_element is None:
            raise XtaProtocolError("getMessage: the answer has no MessageMetaData header")
        metadata = _metadata(self._parse(meta_element, "getMessage"))
        if metadata.message_id != message_id:
            raise XtaProtocolError(
                f"getMessage: asked for {message_id!r}, the server answered {metadata.message_id!r}"
            )
        request_id, pending = self._msgbox_response(envelope, "getMessage")
        container = _body(envelope).find(qname(XTA, "GenericContentContainer"))
        if container is None:
            raise XtaProtocolError("getMessage: the answer has no GenericContentContainer")
        budget.screen(envelope)
        inner = container.find(qname(XTA, "ContentContainer"))
        message_element = inner.find(qname(XTA, "Message")) if inner is not None else None
        if inner is None or message_element is None:
            raise XtaProtocolError("getMessage: the answer has no ContentContainer/Message")
        elements = [message_element, *inner.findall(qname(XTA, "Attachment"))]
        blobs_of = [await self._content_blob(e, stored, store, budget) for e in elements]
        parsed = self._parse(container, "getMessage").ContentContainer  # types of the attributes
        labels = [parsed.Message, *parsed.Attachment]
        contents = [_content(info, label) for info, label in zip(blobs_of, labels, strict=True)]
        for content, label in zip(contents, labels, strict=True):
            # A content of another size than its envelope says was cut or padded on the way (or a lying
            # Content-Transfer-Encoding decoded it into something else): not what the sender sent.
            if label.size is not None and int(label.size) != content.size:
                raise XtaProtocolError(
                    f"getMessage: message {message_id}: content {content.filename or ''!r} declares "
                    f"{label.size} bytes, has {content.size}"
                )
        if request_id is not None:
            self._request_ids[message_id] = request_id
        log.info(
            "xta message fetched message_id=%s service=%s parts=%d bytes=%d",
            message_id,
            metadata.service,
            len(contents),
            sum(c.size for c in contents),
        )
        return XtaMessage(
            metadata=metadata,
            request_id=request_id,
            pending=pending,
            message=contents[0],
            attachments=tuple(contents[1:]),
        )

    async def close(self, message_ids: str | Sequence[str], *, request_id: str | None = None) -> None:
        """Confirm messages as received: they leave the mailbox (close with LastMsgReceived)."""
        ids = [message_ids] if isinstance(message_ids, str) else list(message_ids)
        if not ids:
            return
        request_id = request_id or self._request_ids.get(ids[0]) or f"urn:uuid:{uuid.uuid4()}"
        values = {
            "MsgBoxRequestID": request_id,
            "LastMsgReceived": [{"_value_1": i} for i in ids],
            **self._author(),
        }
        await self._call(MSGBOX, "close", values)
        for message_id in ids:
            self._request_ids.pop(message_id, None)
        log.info("xta messages closed message_ids=%s", ",".join(ids))

    # -- SendXta port ------------------------------------------------------------------------------

    async def send_message(self, message: OutgoingMessage, *, blobs: Blobs | None = None) -> MessageMetaData:
        """Send a message (sendMessage, MTOM): content streamed from the blob store. Returns its metadata."""
        store = self._blob_store(blobs)
        for content in (message.content, *message.attachments):
            if not await store.exists(content.blob):
                raise Permanent(f"sendMessage: content {content.blob} is not in the blob store")
        message_id = message.message_id or await self.create_message_id()
        total = message.content.size + sum(a.size for a in message.attachments)
        now = datetime.now(UTC).replace(microsecond=0)
        metadata = MessageMetaData(
            message_id=message_id,
            author=message.author or self.account,
            reader=message.reader,
            service=message.service,
            business_scenario=message.business_scenario,
            business_scenario_list_uri=message.business_scenario_list_uri,
            business_scenario_list_version=message.business_scenario_list_version,
            message_type=message.message_type,
            message_type_list_uri=message.message_type_list_uri,
            message_type_list_version=message.message_type_list_version,
            payload_schema=message.payload_schema,
            subject=message.subject,
            in_reply_to=message.in_reply_to,
            process_requester=message.process_requester,
            process_responder=message.process_responder,
            size=total or None,
            origin=now,
            test=message.test,
        )
        contents = [message.content, *message.attachments]
        parts = [
            OutgoingPart(new_cid("content"), c.content_type, store.read(c.blob, CHUNK), c.size)
            for c in contents
        ]
        values = {
            "ContentContainer": {
                "Message": _content_values(message.content),
                "Attachment": [_content_values(a) for a in message.attachments],
            },
            "_soapheaders": {"MessageMetaData": _metadata_values(metadata, now)},
        }

        def attach(envelope: etree._Element) -> list[OutgoingPart]:
            container = _body(envelope).find(
                f"{qname(XTA, 'GenericContentContainer')}/{qname(XTA, 'ContentContainer')}"
            )
            if container is None:
                raise XtaSchemaError("zeep built no ContentContainer")
            elements = [container.find(qname(XTA, "Message")), *container.findall(qname(XTA, "Attachment"))]
            for element, part in zip(elements, parts, strict=True):
                assert element is not None
                element.text = None
                include = etree.SubElement(element, qname(XOP, "Include"), nsmap={"xop": XOP})
                include.set("href", href_of(part.cid))
            return parts

        await self._call(SEND, "sendMessage", values, attach=attach)
        log.info(
            "xta message sent message_id=%s service=%s parts=%d bytes=%d",
            message_id,
            message.service,
            len(parts),
            total,
        )
        return metadata

    # -- the SOAP exchange -------------------------------------------------------------------------

    def _author(self) -> dict[str, Any]:
        return {"_soapheaders": {"AuthorIdentifier": _party_values(self.account)}}

    def _blob_store(self, blobs: Blobs | None) -> Blobs:
        store = blobs or self.blobs
        if store is None:
            raise RuntimeError("XtaClient needs a blob store for message content (blobs=...)")
        return store

    def _session(self) -> aiohttp.ClientSession:
        return self._http if isinstance(self._http, aiohttp.ClientSession) else self._http()

    async def _call(
        self,
        port: str,
        operation: str,
        values: dict[str, Any],
        *,
        attach: Callable[[etree._Element], list[OutgoingPart]] | None = None,
        on_part: OnPart | None = None,
        on_root: RootHandler | None = None,
    ) -> etree._Element | None:
        """One SOAP request/response; the answer's envelope (None: an empty 202/204 answer)."""
        address = self.settings.address(port)
        try:
            envelope, message_id = self.wsdl.envelope(port, operation, address, **values)
        except (TypeError, ValueError, zeep.exceptions.Error) as exc:  # values that do not fit the schema
            raise Permanent(f"{operation}: the request does not fit the XTA schema: {exc}") from None
        action = self.wsdl.action(port, operation)
        parts = attach(envelope) if attach is not None else []
        xml = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        data: bytes | aiohttp.MultipartWriter
        if parts:
            data = related_writer(xml, action, parts)
            content_type = data.headers[hdrs.CONTENT_TYPE]
        else:
            data = xml
            content_type = f'{SOAP_TYPE}; charset=utf-8; action="{action}"'
        headers: dict[str, str] = {
            hdrs.CONTENT_TYPE: content_type,
            hdrs.ACCEPT: f"{SOAP_TYPE}, multipart/related",
        }
        # The answer is read as a stream (MTOM parts straight into the blob store); the `Outbound`
        # classifies what goes wrong on the way, reading included.
        async with self.outbound.open("POST", address, operation, data=data, headers=headers) as response:
            return await self._answer(response, operation, address, message_id, on_part, on_root)

    async def _answer(
        self,
        response: aiohttp.ClientResponse,
        operation: str,
        address: str,
        message_id: str,
        on_part: OnPart | None,
        on_root: RootHandler | None = None,
    ) -> etree._Element | None:
        status = response.status
        media, _ = content_type_params(response.headers.get(hdrs.CONTENT_TYPE, ""))
        limit = int(self.settings.max_envelope)
        if status in (202, 204) or (200 <= status < 300 and response.content_length == 0):
            return None
        if media == "multipart/related":

            async def refuse(cid: str, part: BodyPartReader) -> None:
                raise XtaProtocolError(f"{operation}: unexpected MIME part {cid!r} in the answer")

            try:
                related = await read_related(
                    response.headers,
                    response.content,
                    envelope_limit=limit,
                    on_part=on_part or refuse,
                    on_root=on_root,
                )
            except MtomError as exc:
                raise XtaProtocolError(f"{operation}: {exc}") from None
            xml = related.root
        elif media in (SOAP_TYPE, "text/xml", "application/xml"):
            try:
                xml = await read_bounded(response, operation, limit)
            except Retryable as exc:  # the same envelope will be as large next time
                raise XtaProtocolError(str(exc)) from None
        else:
            text = await response.content.read(MAX_ERROR_TEXT)
            raise _http_error(operation, address, status, f"{media or 'no content type'}: ".encode() + text)
        try:
            envelope = parse_xml(xml, limit=limit)
        except UnsafeXml as exc:
            if status >= 500:
                raise Retryable(f"{operation}: HTTP {status} from {address} ({exc})") from None
            raise XtaProtocolError(f"{operation}: the answer is not usable XML: {exc}") from None
        if envelope.tag != qname(SOAP12, "Envelope"):
            raise XtaProtocolError(
                f"{operation}: the answer is no SOAP 1.2 envelope (root {etree.QName(envelope).text})"
            )
        fault = _body(envelope).find(qname(SOAP12, "Fault"))
        if fault is not None:
            raise self._fault(fault, operation)
        if status >= 300:
            raise _http_error(operation, address, status, b"SOAP answer without a fault")
        header = _header(envelope)
        relates = header.find(qname(WSA, "RelatesTo")) if header is not None else None
        if relates is not None and text_of(relates) not in (None, message_id):
            raise XtaProtocolError(
                f"{operation}: the answer relates to {text_of(relates)!r}, not to {message_id!r}"
            )
        return envelope

    def _fault(self, fault: etree._Element, operation: str) -> XtaFault:
        value = text_of(fault.find(f"{qname(SOAP12, 'Code')}/{qname(SOAP12, 'Value')}")) or "env:Receiver"
        soap_code = value.rpartition(":")[2] or "Receiver"
        texts = fault.findall(f"{qname(SOAP12, 'Reason')}/{qname(SOAP12, 'Text')}")
        reason = next((text_of(t) for t in texts if t.get(qname(XML, "lang"), "").startswith("de")), None)
        reason = (reason or (text_of(texts[0]) if texts else None) or "no reason given")[:MAX_ERROR_TEXT]
        exception = code = code_name = None
        detail = fault.find(qname(SOAP12, "Detail"))
        if detail is not None:
            for child in detail:
                if isinstance(child.tag, str) and etree.QName(child).namespace == XTA:
                    exception = etree.QName(child).localname
                    code = text_of(child.find(f"{qname(XTA, 'errorCode')}/code"))
                    code_name = text_of(child.find(f"{qname(XTA, 'errorCode')}/name"))
                    break
        cls = fault_class(exception, soap_code)
        log.warning("xta fault operation=%s exception=%s code=%s", operation, exception or soap_code, code)
        return cls(
            reason,
            exception=exception,
            code=code,
            code_name=code_name,
            soap_code=soap_code,
            operation=operation,
        )

    def _parse(self, element: etree._Element | None, operation: str) -> Any:
        if element is None:
            return None
        try:
            return self.wsdl.parse(element)
        except Exception as exc:  # zeep raises its own kinds for values that do not fit the schema
            raise XtaProtocolError(
                f"{operation}: {etree.QName(element).localname} does not fit the XTA schema: {exc}"
            ) from None

    def _msgbox_response(self, envelope: etree._Element, operation: str) -> tuple[str | None, int]:
        header = _header(envelope)
        element = header.find(qname(OSCI, "MsgBoxResponse")) if header is not None else None
        if element is None:
            return None, 0
        self._parse(element, operation)  # types checked; zeep drops a choice whose value is 0, so:
        pending = text_of(element.find(qname(OSCI, "ItemsPending")))
        return element.get("MsgBoxRequestID"), int(pending) if pending and pending.isdigit() else 0

    def _status_list(self, envelope: etree._Element | None, operation: str) -> StatusList:
        if envelope is None:
            raise XtaProtocolError(f"{operation}: empty answer")
        request_id, pending = self._msgbox_response(envelope, operation)
        found = _body(envelope).find(qname(OSCI, "MsgStatusList"))
        if found is None:
            raise XtaProtocolError(f"{operation}: the answer has no MsgStatusList")
        entries = found.findall(qname(META, "MessageMetaData"))
        if found.find(qname(OSCI, "MsgAttributes")) is not None and not entries:
            raise XtaProtocolError(f"{operation}: the server listed MsgAttributes instead of MessageMetaData")
        messages: list[MessageMetaData] = []
        unreadable: list[UnreadableEntry] = []
        for entry in entries:
            # Each entry on its own: one that does not fit the schema must not hide the others.
            try:
                messages.append(_metadata(self._parse(entry, operation)))
            except (XtaProtocolError, ValidationError, AttributeError, TypeError, ValueError) as exc:
                found_id = entry.findtext(f"{qname(META, 'MsgIdentification')}/{qname(WSA, 'MessageID')}")
                reason = f"{operation}: unreadable MessageMetaData: {exc}"[:MAX_ERROR_TEXT]
                if found_id and found_id.strip():
                    unreadable.append(UnreadableEntry(message_id=found_id.strip(), reason=reason))
                else:
                    log.warning("xta status list entry without a message id skipped: %s", reason)
        return StatusList(
            request_id=request_id, messages=tuple(messages), pending=pending, unreadable=tuple(unreadable)
        )

    async def _content_blob(
        self, element: etree._Element, stored: dict[str, BlobInfo], store: Blobs, budget: _Budget
    ) -> BlobInfo:
        """The blob of one Message/Attachment: its XOP part, or its inline base64 text, stored."""
        include = element.find(qname(XOP, "Include"))
        if include is not None:
            try:
                cid = cid_of(include.get("href", ""))
            except MtomError as exc:
                raise XtaProtocolError(f"getMessage: {exc}") from None
            element.remove(include)
            info = stored.get(cid)
            if info is None:
                raise XtaProtocolError(f"getMessage: xop:Include refers to a missing MIME part {cid!r}")
            return info
        text = element.text or ""
        element.text = None  # zeep need not decode it a second time
        writer = store.writer(budget.part_limit())
        try:
            compact = "".join(text.split())
            for start in range(0, len(compact), _B64_SLICE):
                writer.write(base64.b64decode(compact[start : start + _B64_SLICE], validate=True))
        except BlobTooLarge as exc:
            writer.abort()
            raise budget.too_large(exc.limit) from None
        except ValueError as exc:
            writer.abort()
            raise XtaProtocolError(f"getMessage: inline content is not base64: {exc}") from None
        info = await writer.commit()
        budget.spend(info.size)
        return info


# -- helpers -------------------------------------------------------------------------------------------


class _Budget:
    """The size limits of one fetched message: per content, and for all contents together."""

    def __init__(self, message_id: str, limit: int | None, total: int | None) -> None:
        self.message_id = message_id
        self.limit = limit
        self.total = total
        self.used = 0

    def part_limit(self) -> int | None:
        """The most the next content may have."""
        left = None if self.total is None else max(self.total - self.used, 0)
        if left is None:
            return self.limit
        return left if self.limit is None else min(left, self.limit)

    def spend(self, size: int) -> None:
        """Count a stored content."""
        self.used += size

    def too_large(self, limit: int) -> XtaContentTooLarge:
        """The error for content past `limit` bytes."""
        return XtaContentTooLarge(
            f"message {self.message_id}: content larger than allowed ({limit} bytes); not downloaded whole"
        )

    def screen(self, envelope: etree._Element) -> None:
        """Refuse, from the envelope alone, encrypted content and content declared larger than allowed."""
        container = envelope.find(f"{qname(SOAP12, 'Body')}/{qname(XTA, 'GenericContentContainer')}")
        if container is None:
            return
        if container.find(qname(XENC, "EncryptedData")) is not None:
            raise XtaUnsupported(
                f"message {self.message_id}: end-to-end encrypted content (xenc:EncryptedData) "
                "is not supported"
            )
        declared = []
        for element in container.iter(qname(XTA, "Message"), qname(XTA, "Attachment")):
            size = (element.get("size") or "").strip()
            declared.append(int(size) if size.isdigit() else 0)
        if self.limit is not None and any(d > self.limit for d in declared):
            raise self.too_large(self.limit)
        if self.total is not None and sum(declared) > self.total:
            raise self.too_large(self.total)


async def _store_part(store: Blobs, part: BodyPartReader, budget: _Budget) -> BlobInfo:
    writer = store.writer(budget.part_limit())
    try:
        async for chunk in part_chunks(part):
            writer.write(chunk)
            await writer.drain()
    except BlobTooLarge as exc:
        writer.abort()
        raise budget.too_large(exc.limit) from None
    except BaseException:
        writer.abort()
        raise
    info = await writer.commit()
    budget.spend(info.size)
    return info


def _http_error(operation: str, address: str, status: int, text: bytes) -> Exception:
    """The error of an answer that is no SOAP: HTTP's status classes, else a protocol error."""
    try:
        classify(status, text, operation, f"the XTA server at {address}")
    except (Retryable, Permanent) as exc:
        return exc
    return XtaProtocolError(f"{operation}: HTTP {status} from {address}: {server_message(text)}")


def _header(envelope: etree._Element) -> etree._Element | None:
    return envelope.find(qname(SOAP12, "Header"))


def _body(envelope: etree._Element | None) -> etree._Element:
    body = envelope.find(qname(SOAP12, "Body")) if envelope is not None else None
    if body is None:
        raise XtaProtocolError("the answer has no SOAP Body")
    return body


def _party(value: Any) -> PartyId:
    identifier = value.Identifier
    return PartyId(
        identifier=str(identifier._value_1 or "").strip(),
        type=identifier.type,
        name=identifier.name,
        category=identifier.category,
    )


def _party_values(party: PartyId) -> dict[str, Any]:
    return {
        "Identifier": {
            "_value_1": party.identifier,
            "type": party.type,
            "name": party.name,
            "category": party.category,
        }
    }


def _field(value: Any, name: str) -> Any:
    """A child of a zeep object; None if the object is None (zeep gives None for an empty element)."""
    return None if value is None else value[name]


def _metadata(value: Any) -> MessageMetaData:
    """MessageMetaData (a zeep object of the OSCI schema) as the typed model."""
    delivery = value.DeliveryAttributes
    identification = value.MsgIdentification
    qualifier = value.Qualifier
    scenario = qualifier.BusinessScenario
    defined = scenario.Defined
    process = identification.ProcessRef
    message_type = qualifier.MessageType
    return MessageMetaData(
        message_id=str(identification.MessageID._value_1 or "").strip(),
        author=_party(value.Originators.Author),
        sender=_party(value.Originators.Sender) if value.Originators.Sender is not None else None,
        reader=_party(value.Destinations.Reader),
        service=qualifier.Service,
        business_scenario=defined.code if defined is not None else scenario.Undefined,
        business_scenario_list_uri=defined.listURI if defined is not None else None,
        business_scenario_list_version=defined.listVersionID if defined is not None else None,
        message_type=message_type.code,
        message_type_list_uri=message_type.listURI,
        message_type_list_version=message_type.listVersionID,
        payload_schema=message_type.payloadSchema,
        subject=qualifier.Subject,
        in_reply_to=tuple(str(r._value_1) for r in identification["In-Reply-To"] or ()),
        process_requester=_field(_field(process, "Requester"), "_value_1"),
        process_responder=_field(_field(process, "Responder"), "_value_1"),
        size=value.MsgSize,
        origin=_field(delivery, "Origin"),
        delivered=_field(delivery, "Delivery"),
        initial_fetch=_field(delivery, "InitialFetch"),
        test=str(value.TestMsg).lower() in ("true", "1"),
    )


def _metadata_values(metadata: MessageMetaData, now: datetime) -> dict[str, Any]:
    """The typed model as values for zeep's MessageMetaData element."""
    if metadata.business_scenario_list_uri is not None:
        scenario: dict[str, Any] = {
            "Defined": {
                "code": metadata.business_scenario,
                "listURI": metadata.business_scenario_list_uri,
                "listVersionID": metadata.business_scenario_list_version or "1",
            }
        }
    else:
        scenario = {"Undefined": metadata.business_scenario}
    process = None
    if metadata.process_requester or metadata.process_responder:
        process = {
            "Requester": {"_value_1": metadata.process_requester} if metadata.process_requester else None,
            "Responder": {"_value_1": metadata.process_responder} if metadata.process_responder else None,
        }
    return {
        "DeliveryAttributes": {"Origin": metadata.origin or now, "InitialSend": now},
        "Originators": {"Author": _party_values(metadata.author)},
        "Destinations": {"Reader": _party_values(metadata.reader)},
        "MsgIdentification": {
            "MessageID": {"_value_1": metadata.message_id},
            "In-Reply-To": [{"_value_1": r} for r in metadata.in_reply_to],
            "ProcessRef": process,
        },
        "Qualifier": {
            "Subject": metadata.subject,
            "Service": metadata.service,
            "BusinessScenario": scenario,
            "MessageType": {
                "code": metadata.message_type,
                "listURI": metadata.message_type_list_uri,
                "listVersionID": metadata.message_type_list_version,
                "payloadSchema": metadata.payload_schema,
            },
        },
        "MsgSize": metadata.size,
        "TestMsg": metadata.test or None,
    }


def _content_values(content: OutgoingContent) -> dict[str, Any]:
    return {
        "_value_1": b"",  # replaced by an xop:Include of the streamed part
        "contentType": content.content_type,
        "filename": content.filename,
        "contentDescription": content.description,
        "encoding": content.encoding,
        "id": content.id,
        "lang": content.lang,
        "size": content.size or None,
    }


def _content(info: BlobInfo, label: Any) -> XtaContent:
    return XtaContent(
        blob=info.ref,
        size=info.size,
        sha256=info.sha256,
        content_type=label.contentType,
        filename=label.filename,
        description=label.contentDescription,
        encoding=label.encoding,
        id=label.id,
        lang=label.lang,
    )
