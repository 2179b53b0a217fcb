"""SOAP 1.2 envelopes of the simulator, built with lxml straight from the XTA/OSCI schemas.

Deliberately independent of zeep (which the client uses), so a misreading of the schemas on one side is
not mirrored on the other; the tests validate everything built here against the XSDs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from lxml import etree

from ..models import MessageMetaData, PartyId
from ..xml import META, OSCI, SOAP11, SOAP12, WSA, XENC, XML, XOP, XTA, qname
from .state import StoredContent

NSMAP = {"env": SOAP12, "wsa": WSA, "osci": OSCI, "oscimeta": META, "xta": XTA}
MAX_NOT_UNDERSTOOD = 20

# wsa:Action -> (port, operation). The WSDL gives every output and fault the input's action.
OSCI_TYPES = "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/"
OPERATIONS: dict[str, tuple[str, str]] = {
    OSCI_TYPES + "MsgBoxStatusListRequest": ("MsgBoxPort", "getStatusList"),
    OSCI_TYPES + "MsgBoxGetNextListRequest": ("MsgBoxPort", "getNextStatusList"),
    OSCI_TYPES + "MsgBoxFetchRequest": ("MsgBoxPort", "getMessage"),
    OSCI_TYPES + "MsgBoxGetNextMsgRequest": ("MsgBoxPort", "getNextMessage"),
    OSCI_TYPES + "MsgBoxCloseRequest": ("MsgBoxPort", "close"),
    "http://www.xta.de/XTA/SendMessage": ("SendXtaPort", "sendMessage"),
    "http://www.xta.de/XTA/SendMessageSync": ("SendXtaPort", "sendMessageSync"),
    "http://www.xta.de/XTA/CreateMessageID": ("ManagementPort", "createMessageId"),
    "http://www.xta.de/XTA/CheckAccountActive": ("ManagementPort", "checkAccountActive"),
    "http://www.xta.de/XTA/IsServiceAvailable": ("ManagementPort", "lookupService"),
    "http://www.xta.de/XTA/GetTransportReport": ("ManagementPort", "getTransportReport"),
    "http://www.xta.de/XTA/CancelMessage": ("ManagementPort", "cancelMessage"),
}

# Fehlernummern of the XTA-WS code list (XTA-Webservice-Datentypen.xsd, Codelist.Fehlernummer).
ERROR_NAMES = {
    "9000": "Unspezifizierter Fehler, als Freitext beschrieben",
    "9011": "Account ist gesperrt.",
    "9012": "Account nicht vorhanden.",
    "9014": "Authentisierung/Zertifikat passt nicht zur Absenderkennung.",
    "9020": "Keine Parameter vorhanden",
    "9022": "Ungültige Parameterkombination",
    "9023": "Die Nachricht überschreitet die Größenbeschränkung.",
    "9024": "MessageID ist bereits vergeben.",
    "9030": "Interner Fehler beim XTA-Server bzw. XTA-Dienstleister",
    "9070": "MessageID für den Account nicht bekannt.",
    "9080": "Der Dienst wird nur asynchron angeboten.",
    "9100": "Der durch den Schalter NotBefore gesetzte Termin ist verstrichen.",
    "9101": "Der Schalter NotBefore wurde nicht gesetzt.",
}


def _e(namespace: str, local: str, text: str | None = None, **attributes: str | None) -> etree._Element:
    element = etree.Element(qname(namespace, local), nsmap=NSMAP)
    if text is not None:
        element.text = text
    for key, value in attributes.items():
        if value is not None:
            element.set(key, value)
    return element


def _sub(
    parent: etree._Element,
    namespace: str | None,
    local: str,
    text: str | None = None,
    **attributes: str | None,
) -> etree._Element:
    tag = qname(namespace, local) if namespace else local
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    for key, value in attributes.items():
        if value is not None:
            element.set(key, value)
    return element


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def envelope(
    action: str, relates_to: str | None, headers: list[etree._Element], body: list[etree._Element]
) -> etree._Element:
    """An answer envelope with its WS-Addressing headers (Action, MessageID, RelatesTo)."""
    root = _e(SOAP12, "Envelope")
    header = _sub(root, SOAP12, "Header")
    _sub(header, WSA, "Action", action)
    _sub(header, WSA, "MessageID", f"urn:uuid:{uuid.uuid4()}")
    if relates_to:
        _sub(header, WSA, "RelatesTo", relates_to)
    header.extend(headers)
    body_element = _sub(root, SOAP12, "Body")
    body_element.extend(body)
    return root


def fault(
    action: str | None,
    relates_to: str | None,
    *,
    soap_code: str,
    reason: str,
    exception: str | None = None,
    code: str | None = None,
    subcode: str | None = None,
    subsubcode: str | None = None,
    not_understood: Sequence[str] = (),
) -> etree._Element:
    """A SOAP 1.2 fault; with an XTA exception element (errorCode from the code list) as detail.

    `not_understood`: Clark names of header blocks for ``env:NotUnderstood`` (an env:MustUnderstand fault).
    """
    element = _e(SOAP12, "Fault")
    code_element = _sub(element, SOAP12, "Code")
    _sub(code_element, SOAP12, "Value", f"env:{soap_code}")
    if subcode is not None:
        sub = _sub(code_element, SOAP12, "Subcode")
        _sub(sub, SOAP12, "Value", subcode)
        if subsubcode is not None:
            _sub(_sub(sub, SOAP12, "Subcode"), SOAP12, "Value", subsubcode)
    reason_element = _sub(element, SOAP12, "Reason")
    text = _sub(reason_element, SOAP12, "Text", reason)
    text.set(qname(XML, "lang"), "de")
    if exception is not None:
        detail = _sub(element, SOAP12, "Detail")
        xta_exception = _sub(detail, XTA, exception)
        error_code = _sub(
            xta_exception,
            XTA,
            "errorCode",
            listURI="urn:de:xta:webservice:codeliste:fehlernummer",
            listVersionID="1.0",
        )
        _sub(error_code, None, "code", code or "9000")
        _sub(error_code, None, "name", ERROR_NAMES.get(code or "9000", ERROR_NAMES["9000"]))
    headers = [upgrade()] if soap_code == "VersionMismatch" else []
    # A request of thousands of such blocks must not make an answer of thousands: the first ones do.
    for n, name in enumerate(not_understood[:MAX_NOT_UNDERSTOOD]):
        qn = etree.QName(name)
        prefix = f"nu{n}"
        namespaces = {"env": SOAP12, prefix: qn.namespace or ""}
        block = etree.Element(qname(SOAP12, "NotUnderstood"), nsmap=namespaces)
        block.set("qname", f"{prefix}:{qn.localname}")
        headers.append(block)
    return envelope(
        action or "http://www.w3.org/2005/08/addressing/soap/fault", relates_to, headers, [element]
    )


def upgrade() -> etree._Element:
    """env:Upgrade: the envelope versions this node supports (SOAP 1.2 only)."""
    element = etree.Element(qname(SOAP12, "Upgrade"), nsmap={"env": SOAP12})
    supported = etree.SubElement(element, qname(SOAP12, "SupportedEnvelope"), nsmap={"ns1": SOAP12})
    supported.set("qname", "ns1:Envelope")
    return element


def soap11_version_mismatch() -> etree._Element:
    """The SOAP 1.1 fault a SOAP 1.2 node answers a SOAP 1.1 request with (SOAP 1.2 part 1, annex A)."""
    root = etree.Element(qname(SOAP11, "Envelope"), nsmap={"env": SOAP11})
    etree.SubElement(root, qname(SOAP11, "Header")).append(upgrade())
    fault = etree.SubElement(etree.SubElement(root, qname(SOAP11, "Body")), qname(SOAP11, "Fault"))
    etree.SubElement(fault, "faultcode").text = "env:VersionMismatch"
    etree.SubElement(fault, "faultstring").text = "this XTA service speaks SOAP 1.2 only"
    return root


def _party(parent: etree._Element, local: str, party: PartyId) -> etree._Element:
    element = _sub(parent, META, local)
    _sub(
        element,
        META,
        "Identifier",
        party.identifier,
        type=party.type,
        name=party.name,
        category=party.category,
    )
    return element


def metadata(meta: MessageMetaData) -> etree._Element:
    """oscimeta:MessageMetaData of a message."""
    root = _e(META, "MessageMetaData", TestMsg="true" if meta.test else None)
    delivery = _sub(root, META, "DeliveryAttributes")
    for local, value in (
        ("Origin", meta.origin),
        ("Delivery", meta.delivered),
        ("InitialFetch", meta.initial_fetch),
    ):
        if value is not None:
            _sub(delivery, META, local, _time(value))
    originators = _sub(root, META, "Originators")
    _party(originators, "Author", meta.author)
    if meta.sender is not None:
        _party(originators, "Sender", meta.sender)
    destinations = _sub(root, META, "Destinations")
    _party(destinations, "Reader", meta.reader)
    identification = _sub(root, META, "MsgIdentification")
    _sub(identification, WSA, "MessageID", meta.message_id)
    for reference in meta.in_reply_to:
        _sub(identification, META, "In-Reply-To", reference)
    if meta.process_requester or meta.process_responder:
        process = _sub(identification, META, "ProcessRef")
        if meta.process_requester:
            _sub(process, META, "Requester", meta.process_requester)
        if meta.process_responder:
            _sub(process, META, "Responder", meta.process_responder)
    qualifier = _sub(root, META, "Qualifier")
    if meta.subject is not None:
        _sub(qualifier, META, "Subject", meta.subject)
    _sub(qualifier, META, "Service", meta.service)
    scenario = _sub(qualifier, META, "BusinessScenario")
    if meta.business_scenario_list_uri is not None:
        defined = _sub(
            scenario,
            META,
            "Defined",
            listURI=meta.business_scenario_list_uri,
            listVersionID=meta.business_scenario_list_version or "1",
        )
        _sub(defined, None, "code", meta.business_scenario)
    else:
        _sub(scenario, META, "Undefined", meta.business_scenario)
    message_type = _sub(
        qualifier,
        META,
        "MessageType",
        listURI=meta.message_type_list_uri,
        listVersionID=meta.message_type_list_version,
        payloadSchema=meta.payload_schema,
    )
    _sub(message_type, None, "code", meta.message_type)
    if meta.size:
        _sub(root, META, "MsgSize", str(meta.size))
    return root


def msgbox_response(request_id: str, pending: int | None, no_message: str | None = None) -> etree._Element:
    """osci:MsgBoxResponse: ItemsPending, or NoMessageAvailable with its reason."""
    element = _e(OSCI, "MsgBoxResponse", MsgBoxRequestID=request_id)
    if no_message is not None:
        _sub(
            element,
            OSCI,
            "NoMessageAvailable",
            reason=f"http://www.osci.eu/ws/2008/05/transport/MsgBox/reasons/{no_message}",
        )
    else:
        _sub(element, OSCI, "ItemsPending", str(pending or 0))
    return element


def status_list(metas: list[MessageMetaData]) -> etree._Element:
    """osci:MsgStatusList in the MessageMetaData list form."""
    element = _e(OSCI, "MsgStatusList")
    element.extend(metadata(m) for m in metas)
    return element


def content_container(contents: Sequence[tuple[StoredContent, str | None]]) -> etree._Element:
    """xta:GenericContentContainer: Message then Attachments, each an xop:Include (or inline base64)."""
    root = _e(XTA, "GenericContentContainer")
    container = _sub(root, XTA, "ContentContainer")
    for index, (content, reference) in enumerate(contents):
        element = _sub(
            container,
            XTA,
            "Message" if index == 0 else "Attachment",
            contentType=content.content_type,
            filename=content.filename,
            contentDescription=content.description,
            encoding=content.encoding,
            id=content.id,
            lang=content.lang,
            size=str(content.size) if content.size > 0 else None,
        )
        if reference is not None and reference.startswith("cid:"):
            include = etree.SubElement(element, qname(XOP, "Include"), nsmap={"xop": XOP})
            include.set("href", reference)
        else:
            element.text = reference or ""
    return root


def encrypted_container(cipher: tuple[StoredContent, str | None]) -> etree._Element:
    """xta:GenericContentContainer holding end-to-end encrypted content (xenc:EncryptedData)."""
    content, reference = cipher
    root = _e(XTA, "GenericContentContainer")
    encrypted = etree.SubElement(root, qname(XENC, "EncryptedData"), nsmap={"xenc": XENC})
    encrypted.set("MimeType", content.content_type)
    method = etree.SubElement(encrypted, qname(XENC, "EncryptionMethod"))
    method.set("Algorithm", "http://www.w3.org/2009/xmlenc11#aes256-gcm")
    cipher_data = etree.SubElement(encrypted, qname(XENC, "CipherData"))
    value = etree.SubElement(cipher_data, qname(XENC, "CipherValue"))
    if reference is not None and reference.startswith("cid:"):
        etree.SubElement(value, qname(XOP, "Include"), nsmap={"xop": XOP}).set("href", reference)
    else:
        value.text = reference or ""
    return root


def lookup_results(results: Sequence[tuple[PartyId, str, bool]]) -> etree._Element:
    """xta:LookupServiceResponse: per (reader, service) whether the service is offered."""
    root = _e(XTA, "LookupServiceResponse")
    listing = _sub(root, XTA, "LookupServiceResultList")
    for reader, service, available in results:
        result = _sub(listing, XTA, "LookupServiceResult")
        _party(result, "Reader", reader)
        _sub(result, XTA, "ServiceType", service)
        value = _sub(result, XTA, "IsServiceAvailableValue")
        _sub(value, XTA, "ServiceIsAvailable", "true" if available else "false")
    return root


def transport_report(meta: MessageMetaData, status: int, server: str, at: datetime) -> etree._Element:
    """xta:TransportReport of a message: its metadata and the traffic-light status (0 open .. 3 red)."""
    root = _e(XTA, "TransportReport")
    root.append(metadata(meta))
    _sub(root, XTA, "ReportTime", _time(at))
    _sub(root, XTA, "XTAServerIdentity", server)
    _sub(_sub(root, XTA, "MessageStatus"), XTA, "Status", str(status))
    return root


def message_id(value: str) -> etree._Element:
    """wsa:MessageID as a body element (createMessageId's answer)."""
    return _e(WSA, "MessageID", value)


class MetadataError(ValueError):
    """A MessageMetaData header the simulator cannot use."""


def _text(element: etree._Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def read_party(element: etree._Element | None) -> PartyId | None:
    """An oscimeta party element (Author, Reader, ...) as the typed model; None if it has no identifier."""
    identifier = element.find(qname(META, "Identifier")) if element is not None else None
    if identifier is None or not _text(identifier):
        return None
    return PartyId(
        identifier=_text(identifier) or "",
        type=identifier.get("type", "xoev"),
        name=identifier.get("name"),
        category=identifier.get("category"),
    )


def read_not_before(element: etree._Element) -> datetime | None:
    """DeliveryAttributes/NotBefore of a MessageMetaData element, if set."""
    value = _text(element.find(f"{{{META}}}DeliveryAttributes/{{{META}}}NotBefore"))
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def read_metadata(element: etree._Element) -> MessageMetaData:
    """A (schema-valid) oscimeta:MessageMetaData element as the typed model."""

    def find(path: str) -> etree._Element | None:
        return element.find(path, namespaces={"m": META, "wsa": WSA})

    author = read_party(find("m:Originators/m:Author"))
    reader = read_party(find("m:Destinations/m:Reader"))
    message_id = _text(find("m:MsgIdentification/wsa:MessageID"))
    message_type = find("m:Qualifier/m:MessageType")
    if author is None or reader is None or message_id is None or message_type is None:
        raise MetadataError("MessageMetaData lacks Author, Reader, MessageID or MessageType")
    defined = find("m:Qualifier/m:BusinessScenario/m:Defined")

    def when(path: str) -> datetime | None:
        value = _text(find(path))
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None

    size = _text(find("m:MsgSize"))
    return MessageMetaData(
        message_id=message_id,
        author=author,
        sender=read_party(find("m:Originators/m:Sender")),
        reader=reader,
        service=_text(find("m:Qualifier/m:Service")) or "",
        business_scenario=(
            _text(defined.find("code"))
            if defined is not None
            else _text(find("m:Qualifier/m:BusinessScenario/m:Undefined"))
        )
        or "",
        business_scenario_list_uri=defined.get("listURI") if defined is not None else None,
        business_scenario_list_version=defined.get("listVersionID") if defined is not None else None,
        message_type=_text(message_type.find("code")) or "",
        message_type_list_uri=message_type.get("listURI", ""),
        message_type_list_version=message_type.get("listVersionID", ""),
        payload_schema=message_type.get("payloadSchema", ""),
        subject=_text(find("m:Qualifier/m:Subject")),
        in_reply_to=tuple(
            _text(e) or "" for e in element.findall(f"{{{META}}}MsgIdentification/{{{META}}}In-Reply-To")
        ),
        process_requester=_text(find("m:MsgIdentification/m:ProcessRef/m:Requester")),
        process_responder=_text(find("m:MsgIdentification/m:ProcessRef/m:Responder")),
        size=int(size) if size else None,
        origin=when("m:DeliveryAttributes/m:Origin"),
        test=element.get("TestMsg", "false") in ("true", "1"),
    )
