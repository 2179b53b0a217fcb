"""A form server that posts like Form Solutions or a service portal: signed JSON, XML, or multipart.

Form Solutions hands a submission over as its "XML-Datensatz" plus the PDF of the filled form and the
applicant's attachments, identified by the process id (``Vorgangs-ID``, e.g. ``010040-aejFvrvs``); its
Submission-API answers JSON in which the BundID login's data sits under ``secureData`` (``FirstName``,
``LastName``, ``DateOfBirth`` as ``dd.mm.yyyy``, ``Street``, ``ZipCode``, ``City``, ``PostkorbId``,
``StorkQaaLevel``). Service portals post the same kind of content as JSON with base64 attachments. This
sender builds the three shapes from one `DogRegistration` (Anmeldung eines Hundes zur Hundesteuer):

- `json_body`: ``{"transactionId", "assistantId", "service", "data": {...}, "secureData": {...},
  "attachments": [{"filename", "mimeType", "content" (base64)}]}``;
- `xml_body`: ``<Antrag xmlns="urn:aktenhub:demo:formserver">`` with the same data and base64
  ``<Anlage filename=".." mimeType="..">`` elements;
- `multipart_body`: part ``xml`` (the XML data without attachments, a file ``antrag.xml``), part
  ``pdf`` (the form as PDF) and one part ``anlage`` per attachment.

Every post is signed as configured (`hub_webhook.auth.sign`): HMAC over ``"{timestamp}.{body}"`` or the
body alone, or a static token. The element and member names are this simulator's; a real sender's are
read by the connector's configured paths.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field

import aiohttp
from lxml import etree

from .auth import sign
from .config import HmacAuth

NAMESPACE = "urn:aktenhub:demo:formserver"


@dataclass(frozen=True)
class DogRegistration:
    """One "Anmeldung eines Hundes" as the citizen filled it in."""

    transaction_id: str
    given_name: str
    family_name: str
    birth_date: str  # dd.mm.yyyy, as BundID data arrives
    street: str
    postal_code: str
    city: str
    email: str
    dog_name: str
    breed: str
    chip: str
    since: str
    files: dict[str, bytes] = field(default_factory=dict)  # file name -> content (PDF)
    service: str = "hundeanmeldung"


def _secure_data(r: DogRegistration) -> dict[str, str]:
    return {
        "Origin": "BUNDID",
        "FirstName": r.given_name,
        "LastName": r.family_name,
        "DateOfBirth": r.birth_date,
        "Street": r.street,
        "ZipCode": r.postal_code,
        "City": r.city,
        "Email": r.email,
        "StorkQaaLevel": "STORK-QAA-Level-3",
    }


def _dog(r: DogRegistration) -> dict[str, str]:
    return {"name": r.dog_name, "rasse": r.breed, "chipnummer": r.chip, "haltungSeit": r.since}


def json_body(r: DogRegistration) -> bytes:
    """The registration as a JSON post with base64 attachments."""
    document = {
        "transactionId": r.transaction_id,
        "assistantId": "HUNDESTEUER-ANMELDUNG",
        "service": r.service,
        "data": {"hund": _dog(r)},
        "secureData": _secure_data(r),
        "attachments": [
            {"filename": name, "mimeType": "application/pdf", "content": base64.b64encode(content).decode()}
            for name, content in r.files.items()
        ],
    }
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def xml_body(r: DogRegistration, *, with_files: bool = True) -> bytes:
    """The registration as an XML data record (with base64 attachments unless `with_files` is off)."""
    ns = f"{{{NAMESPACE}}}"
    root = etree.Element(ns + "Antrag", nsmap={None: NAMESPACE})
    root.set("transactionId", r.transaction_id)
    root.set("service", r.service)
    person = etree.SubElement(root, ns + "Antragsteller")
    for key, value in _secure_data(r).items():
        etree.SubElement(person, ns + key).text = value
    dog = etree.SubElement(root, ns + "Hund")
    for key, value in _dog(r).items():
        etree.SubElement(dog, ns + key).text = value
    if with_files and r.files:
        files = etree.SubElement(root, ns + "Anlagen")
        for name, content in r.files.items():
            item = etree.SubElement(files, ns + "Anlage", filename=name, mimeType="application/pdf")
            item.text = base64.b64encode(content).decode()
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def multipart_body(r: DogRegistration, form_pdf: bytes) -> tuple[bytes, str]:
    """The registration as multipart/form-data: XML data part, the form as PDF, the attachments."""
    boundary = "----formserver" + uuid.uuid4().hex
    parts: list[bytes] = []

    def part(name: str, filename: str, media_type: str, content: bytes) -> None:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {media_type}\r\n\r\n"
        )
        parts.append(head.encode("utf-8") + content + b"\r\n")

    part("xml", "antrag.xml", "application/xml", xml_body(r, with_files=False))
    part("pdf", f"{r.transaction_id}.pdf", "application/pdf", form_pdf)
    for name, content in r.files.items():
        part("anlage", name, "application/pdf", content)
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@dataclass
class FormServer:
    """Posts registrations to a hub's webhook intake, signed with `key` as `hmac` says (else a token)."""

    session: aiohttp.ClientSession
    url: str  # the intake URL: {hub}/intake/<connector>/<service>
    key: str
    hmac: HmacAuth | None = None  # None: send `key` as a bearer token

    def headers(self, body: bytes, content_type: str, timestamp: int | None = None) -> dict[str, str]:
        """The headers of one post: content type and credentials."""
        headers = {"Content-Type": content_type}
        if self.hmac is not None:
            headers.update(sign(body, self.key, self.hmac, timestamp))
        else:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers

    async def post(self, body: bytes, content_type: str) -> tuple[int, dict[str, object]]:
        """Post one body; the hub's status and JSON answer."""
        async with self.session.post(self.url, data=body, headers=self.headers(body, content_type)) as resp:
            return resp.status, await resp.json()
