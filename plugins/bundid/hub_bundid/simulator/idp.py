"""The BundID IdP simulator's engine: signed SAML responses for the reference test persons.

Responses are built from the reference templates of the BundID simulator
(``bundid/saml_response_template.xml``, ``saml_response_error_template.xml``), the attribute table
(``field_definitions.yml``) and the test persons (``users.yml``) of the schema directory, which is never
copied into the repository. The simulator signs with a key pair it generates (or keeps in `key_file`).

Usable directly from tests and the demo::

    idp = IdpSimulator(sp_entity_id=..., acs_url=...)
    idp.write_metadata(tmp / "idp.xml")            # for the connector's `idp_metadata`
    form["bundid_saml_response"] = idp.response("U01", level=3)
    idp.response("U01", fault="expired")           # any of `Fault`
"""

from __future__ import annotations

import base64
import copy
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConstructionMethod,
    SignatureMethod,
)
from signxml.signer import XMLSigner

from hub import TrustLevel
from hub.schemas import schema_directory

from ..attributes import (
    ASSERTION_PROVED_BY_OID,
    MAILBOX_OID,
    SAML_ASSERTION,
    SAML_METADATA,
    SAML_PROTOCOL,
    XMLDSIG,
    means_level,
    parse_level,
)
from ..xmlsafe import parse_xml

DEFAULT_IDP_ENTITY_ID = "https://bundid-simulator.aktenhub.invalid/idp"
DEFAULT_SP_ENTITY_ID = "https://formulare.kreis.example/bundid/sp"
DEFAULT_ACS_URL = "https://formulare.kreis.example/bundid/acs"
OTHER_AUDIENCE = "https://other-service.example/sp"
OTHER_DESTINATION = "https://other-service.example/acs"
OTHER_ISSUER = "https://other-idp.example/idp"
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
POST_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
MAX_TEMPLATE_BYTES = 1024**2
BPK2_OID = "urn:oid:1.3.6.1.4.1.25484.494450.3"
BIRTHDATE_OID = "urn:oid:1.2.40.0.10.2.1.1.55"
# the means a login at that level is made with, when only the level is asked for
MEANS_FOR_RANK = {1: "Benutzername", 2: None, 3: "Elster", 4: "eID"}
LEVEL_NAMES = {
    TrustLevel.UNTERGEORDNET: "UNTERGEORDNET",
    TrustLevel.NORMAL: "NORMAL",
    TrustLevel.SUBSTANTIELL: "SUBSTANTIELL",
    TrustLevel.HOCH: "HOCH",
}
NS = {"samlp": SAML_PROTOCOL, "saml": SAML_ASSERTION, "ds": XMLDSIG}


class Fault(StrEnum):
    """The failure cases the simulator produces on request."""

    UNSIGNED = "unsigned"  # no signature at all
    OTHER_KEY = "other-key"  # signed by a key that is not in the metadata
    ALTERED = "altered"  # a value changed after signing
    WRAPPED = "wrapped"  # a forged unsigned assertion before the genuine signed one
    EXPIRED = "expired"  # issued a day ago: validity (and any forwarding grace) long over
    NOT_YET_VALID = "not-yet-valid"  # validity starts in an hour
    WRONG_AUDIENCE = "wrong-audience"  # issued for another service provider
    WRONG_DESTINATION = "wrong-destination"  # addressed to another ACS
    WRONG_ISSUER = "wrong-issuer"  # another IdP's entity id (signed with our key)
    STATUS_ERROR = "status-error"  # the login failed: error template, no assertion
    REPLAYED = "replayed"  # the previous response again, byte for byte
    LEVEL_TOO_LOW = "level-too-low"  # STORK-QAA-Level-1 by Benutzername
    DOCTYPE = "doctype"  # a DOCTYPE with an entity (for the hardened parser)
    MULTIVALUED = "multivalued"  # bPK2 with a second value (signed)
    DUPLICATED_ATTRIBUTE = "duplicated-attribute"  # the birth date twice, other value second (signed)


class SimulatorError(ValueError):
    """A request the simulator cannot serve (unknown person, level, fault)."""


@dataclass(frozen=True)
class FieldDefinition:
    """One row of the reference attribute table."""

    key: str  # the key in users.yml
    oid: str
    friendly_name: str
    trust_level: str


@dataclass(frozen=True)
class KeyPair:
    """A signing key and its self-signed certificate."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


def default_reference() -> Path:
    """The schema directory holding BundID's reference templates ($AKTENHUB_SCHEMAS, else nearby)."""
    found = schema_directory(containing="bundid")
    if found is None:
        raise SimulatorError("reference directory not found: set AKTENHUB_SCHEMAS or pass reference=")
    return found


def _bundid_dir(reference: Path) -> Path:
    if (reference / "saml_response_template.xml").is_file():
        return reference
    return reference / "bundid"


def generate_key_pair(common_name: str, days: int = 730, start: datetime | None = None) -> KeyPair:
    """A fresh RSA-2048 key with a self-signed certificate valid `days` from `start` (default: now)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Aktenhub BundID simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    begin = start or datetime.now(UTC) - timedelta(days=1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(begin)
        .not_valid_after(begin + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key=key, certificate=certificate)


def load_or_create_key_pair(path: Path, common_name: str) -> KeyPair:
    """The key pair kept in `path` (PEM key + certificate), created there on first use."""
    if path.is_file():
        data = path.read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SimulatorError(f"{path}: not an RSA key")
        return KeyPair(key=key, certificate=x509.load_pem_x509_certificate(data))
    pair = generate_key_pair(common_name)
    pem = pair.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + pair.certificate.public_bytes(serialization.Encoding.PEM)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return pair


# -- the reference templates (a Thymeleaf text-mode subset) -----------------------------------------

_EACH = re.compile(r'\[#\s*th:each="(\w+)\s*:\s*\$\{(\w+)\}"\s*\](.*?)\[/\]', re.DOTALL)
_EXPRESSION = re.compile(r"\[\(\$\{(\w+)\.(\w+)\}\)\]")


def render_template(template: str, values: dict[str, Any]) -> str:
    """Fill ``[(${a.b})]`` and ``[# th:each="x: ${list}"]...[/]``; every value is XML-escaped."""

    def fill(text: str, scope: dict[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            holder, key = match.group(1), match.group(2)
            try:
                value = scope[holder][key]
            except (KeyError, TypeError):
                raise SimulatorError(f"template placeholder {match.group(0)} has no value") from None
            return escape(str(value), {'"': "&quot;"})

        return _EXPRESSION.sub(one, text)

    def each(match: re.Match[str]) -> str:
        var, collection, body = match.group(1), match.group(2), match.group(3)
        return "".join(fill(body, {**values, var: item}) for item in values.get(collection, []))

    return fill(_EACH.sub(each, template), values)


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _new_id() -> str:
    return f"_{uuid.uuid4().hex}"


class IdpSimulator:
    """A BundID identity provider: metadata, and signed responses for the reference test persons."""

    def __init__(
        self,
        reference: Path | None = None,
        *,
        entity_id: str = DEFAULT_IDP_ENTITY_ID,
        sp_entity_id: str = DEFAULT_SP_ENTITY_ID,
        acs_url: str = DEFAULT_ACS_URL,
        validity_seconds: float = 300.0,
        base_url: str = "http://127.0.0.1:8096",
        key_file: Path | None = None,
        keys: KeyPair | None = None,
        sign_response: bool = False,
    ) -> None:
        folder = _bundid_dir(reference or default_reference())
        self.entity_id = entity_id
        self.sp_entity_id = sp_entity_id
        self.acs_url = acs_url
        self.validity = timedelta(seconds=validity_seconds)
        self.base_url = base_url.rstrip("/")
        self.sign_response = sign_response
        self.template = self._read(folder / "saml_response_template.xml")
        self.error_template = self._read(folder / "saml_response_error_template.xml")
        self.fields = self._field_definitions(folder / "field_definitions.yml")
        self.persons = self._persons(folder / "users.yml")
        if keys is not None:
            self.keys = keys
        elif key_file is not None:
            self.keys = load_or_create_key_pair(key_file, entity_id)
        else:
            self.keys = generate_key_pair(entity_id)
        self._other_keys: KeyPair | None = None
        self.last_response: str | None = None
        self.last_assertion_id: str | None = None

    # -- reference data ----------------------------------------------------------------------------

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SimulatorError(f"cannot read {path}: {exc.strerror}") from None

    def _field_definitions(self, path: Path) -> list[FieldDefinition]:
        table = yaml.safe_load(self._read(path)) or {}
        rows = []
        for entry in table.get("fields", []):
            attributes = entry.get("attributes", {})
            rows.append(
                FieldDefinition(
                    key=str(entry["name"]),
                    # two rows of the reference table have a stray blank after "urn:oid:"
                    oid=str(attributes["name"]).replace(" ", ""),
                    friendly_name=str(attributes.get("friendlyName", entry["name"])),
                    trust_level=str(attributes.get("trustLevel") or ""),
                )
            )
        return rows

    def _persons(self, path: Path) -> dict[str, dict[str, str]]:
        users = (yaml.safe_load(self._read(path)) or {}).get("users", [])
        return {str(user["id"]): {str(k): str(v) for k, v in user.items() if v is not None} for user in users}

    def person(self, person_id: str) -> dict[str, str]:
        """The reference record of a test person (as in users.yml)."""
        try:
            return self.persons[person_id]
        except KeyError:
            known = ", ".join(self.persons)
            raise SimulatorError(f"unknown person {person_id!r}; known: {known}") from None

    @staticmethod
    def mailbox(person_id: str) -> str:
        """The person's BundID mailbox (Postkorb) handle: users.yml has none, so a stable UUID."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"aktenhub-bundid-simulator:{person_id}"))

    # -- metadata ----------------------------------------------------------------------------------

    @property
    def certificate(self) -> x509.Certificate:
        """The signing certificate the metadata publishes."""
        return self.keys.certificate

    def metadata_xml(self) -> bytes:
        """The IdP's SAML metadata: EntityDescriptor with the signing certificate and the SSO endpoint."""
        md = f"{{{SAML_METADATA}}}"
        ds = f"{{{XMLDSIG}}}"
        root = etree.Element(f"{md}EntityDescriptor", nsmap={"md": SAML_METADATA, "ds": XMLDSIG})
        root.set("entityID", self.entity_id)
        idp = etree.SubElement(root, f"{md}IDPSSODescriptor")
        idp.set("WantAuthnRequestsSigned", "false")
        idp.set("protocolSupportEnumeration", SAML_PROTOCOL)
        descriptor = etree.SubElement(idp, f"{md}KeyDescriptor", use="signing")
        data = etree.SubElement(etree.SubElement(descriptor, f"{ds}KeyInfo"), f"{ds}X509Data")
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        etree.SubElement(data, f"{ds}X509Certificate").text = base64.b64encode(der).decode()
        etree.SubElement(idp, f"{md}NameIDFormat").text = TRANSIENT
        sso = etree.SubElement(idp, f"{md}SingleSignOnService")
        sso.set("Binding", POST_BINDING)
        sso.set("Location", f"{self.base_url}/sso")
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    def write_metadata(self, path: Path) -> Path:
        """Write the metadata to `path` (for a connector's ``idp_metadata``); return the path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.metadata_xml())
        return path

    # -- responses ---------------------------------------------------------------------------------

    def response(
        self,
        person_id: str = "U01",
        *,
        level: int | str | TrustLevel | None = None,
        means: str | None = None,
        audience: str | None = None,
        destination: str | None = None,
        issuer: str | None = None,
        fault: Fault | str | None = None,
        assertion_id: str | None = None,
        now: datetime | None = None,
    ) -> str:
        """A base64 SAML response (HTTP-POST binding) for a test person, or a failure case `fault`."""
        fault = Fault(fault) if fault is not None else None
        if fault is Fault.REPLAYED:
            if self.last_response is None:
                raise SimulatorError("nothing to replay yet: ask for a response first")
            return self.last_response
        document = self.response_xml(
            person_id,
            level=level,
            means=means,
            audience=audience,
            destination=destination,
            issuer=issuer,
            fault=fault,
            assertion_id=assertion_id,
            now=now,
        )
        encoded = base64.b64encode(document).decode("ascii")
        self.last_response = encoded
        return encoded

    def response_xml(
        self,
        person_id: str = "U01",
        *,
        level: int | str | TrustLevel | None = None,
        means: str | None = None,
        audience: str | None = None,
        destination: str | None = None,
        issuer: str | None = None,
        fault: Fault | None = None,
        assertion_id: str | None = None,
        now: datetime | None = None,
    ) -> bytes:
        """The SAML response document itself (see `response`)."""
        person = self.person(person_id)
        achieved, means = self._level_and_means(level, means, fault)
        moment = now or datetime.now(UTC)
        if fault is Fault.EXPIRED:
            moment -= timedelta(days=1)
        elif fault is Fault.NOT_YET_VALID:
            moment += timedelta(hours=1)
        audience = OTHER_AUDIENCE if fault is Fault.WRONG_AUDIENCE else audience or self.sp_entity_id
        destination = OTHER_DESTINATION if fault is Fault.WRONG_DESTINATION else destination or self.acs_url
        issuer = OTHER_ISSUER if fault is Fault.WRONG_ISSUER else issuer or self.entity_id
        params = {
            "id": _new_id(),
            "requestId": f"ID_{uuid.uuid4()}",
            "created": _instant(moment),
            "ascUrl": destination,
            "idpId": issuer,
        }
        if fault is Fault.STATUS_ERROR:
            text = render_template(
                self.error_template,
                {
                    "params": params,
                    "status": {
                        "majorCode": "urn:oasis:names:tc:SAML:2.0:status:Responder",
                        "minorCode": "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed",
                        "message": "Authentifizierung abgebrochen",
                    },
                },
            )
            return self._finish(parse_xml(text.encode(), limit=MAX_TEMPLATE_BYTES), fault)
        the_id = assertion_id or _new_id()
        params.update(
            {
                "assertionId": the_id,
                "spEntityId": audience,
                "nameId": _new_id(),
                "subjectConfirmationNotOnOrAfter": _instant(moment + self.validity),
                "subjectConfirmationRecipient": destination,
                "authnInstant": _instant(moment),
                "sessionIndex": _new_id(),
                "userAuthnLevel": f"STORK-QAA-Level-{achieved.rank}",
                "sessionNotOnOrAfter": _instant(moment + timedelta(hours=8)),
            }
        )
        attributes = self._attributes(person_id, person, achieved, means)
        text = render_template(self.template, {"params": params, "attributes": attributes})
        root = parse_xml(text.encode(), limit=MAX_TEMPLATE_BYTES)
        assertion = root.find("saml:Assertion", NS)
        assert assertion is not None
        # The reference template has no validity window on Conditions; BundID's responses do.
        conditions = assertion.find("saml:Conditions", NS)
        if conditions is not None:
            conditions.set("NotBefore", _instant(moment - timedelta(seconds=5)))
            conditions.set("NotOnOrAfter", _instant(moment + self.validity))
        if fault is Fault.MULTIVALUED:
            self._second_value(assertion, BPK2_OID, copy_attribute=False)
        elif fault is Fault.DUPLICATED_ATTRIBUTE:
            self._second_value(assertion, BIRTHDATE_OID, copy_attribute=True)
        if fault is not Fault.UNSIGNED:
            keys = self._other_key_pair() if fault is Fault.OTHER_KEY else self.keys
            signed = self._sign(assertion, keys)
            root.replace(assertion, signed)
            assertion = signed
        if fault is Fault.ALTERED:
            self._alter(assertion)
        elif fault is Fault.WRAPPED:
            self._wrap(root, assertion)
        if self.sign_response and fault is not Fault.UNSIGNED:
            root = self._sign(root, self.keys)
        self.last_assertion_id = the_id
        return self._finish(root, fault)

    def custom_response(
        self, mutate: Callable[[etree._Element], None], person_id: str = "U01", **kwargs: Any
    ) -> str:
        """A base64 response whose Assertion `mutate` changed before it was signed with the IdP's key.

        For what a correctly signing IdP (or a test toolchain holding its key) could still get wrong:
        odd conditions, missing statements, malformed times. `kwargs` as for `response`.
        """
        document = self.response_xml(person_id, fault=Fault.UNSIGNED, **kwargs)
        root = parse_xml(document, limit=MAX_TEMPLATE_BYTES)
        assertion = root.find("saml:Assertion", NS)
        assert assertion is not None
        mutate(assertion)
        root.replace(assertion, self._sign(assertion, self.keys))
        encoded = base64.b64encode(self._finish(root, None)).decode("ascii")
        self.last_response = encoded
        return encoded

    def _finish(self, root: etree._Element, fault: Fault | None) -> bytes:
        body: bytes = etree.tostring(root, encoding="UTF-8")
        if fault is Fault.DOCTYPE:
            prolog = b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE r [<!ENTITY name "Mallory">]>\n'
            return prolog + body.replace(b"</saml:Issuer>", b"&name;</saml:Issuer>", 1)
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body

    def _level_and_means(
        self, level: int | str | TrustLevel | None, means: str | None, fault: Fault | None
    ) -> tuple[TrustLevel, str | None]:
        if fault is Fault.LEVEL_TOO_LOW:
            return TrustLevel.UNTERGEORDNET, "Benutzername"
        if level is None:
            if means is None:
                return TrustLevel.HOCH, "eID"
            return means_level(means) or TrustLevel.HOCH, means
        if isinstance(level, TrustLevel):
            achieved = level
        else:
            parsed = parse_level(str(level))
            if parsed is None:
                raise SimulatorError(f"unknown level {level!r}: 1..4 or untergeordnet..hoch")
            achieved = parsed
        return achieved, means if means is not None else MEANS_FOR_RANK[achieved.rank]

    def _attributes(
        self, person_id: str, person: dict[str, str], level: TrustLevel, means: str | None
    ) -> list[dict[str, str]]:
        default_level = LEVEL_NAMES[level]
        rows = [
            {
                "friendlyName": row.friendly_name,
                "name": row.oid,
                "trustLevel": row.trust_level or default_level,
                "value": person[row.key],
            }
            for row in self.fields
            if person.get(row.key)
        ]
        rows.append(
            {
                "friendlyName": "legacyPostkorbHandle",
                "name": MAILBOX_OID,
                "trustLevel": "NORMAL",
                "value": self.mailbox(person_id),
            }
        )
        if means:
            rows.append(
                {
                    "friendlyName": "AssertionProvedBy",
                    "name": ASSERTION_PROVED_BY_OID,
                    "trustLevel": "NORMAL",
                    "value": means,
                }
            )
        return rows

    def _other_key_pair(self) -> KeyPair:
        if self._other_keys is None:
            self._other_keys = generate_key_pair(self.entity_id)  # same name, other key
        return self._other_keys

    @staticmethod
    def _sign(element: etree._Element, keys: KeyPair) -> etree._Element:
        """Sign `element` (enveloped, RSA-SHA256, exclusive c14n), the signature right after Issuer."""
        issuer = element.find("saml:Issuer", NS)
        placeholder = etree.Element(f"{{{XMLDSIG}}}Signature", Id="placeholder", nsmap={"ds": XMLDSIG})
        if issuer is not None:
            issuer.addnext(placeholder)
        else:
            element.insert(0, placeholder)
        signer = XMLSigner(
            method=SignatureConstructionMethod.enveloped,
            signature_algorithm=SignatureMethod.RSA_SHA256,
            digest_algorithm=DigestAlgorithm.SHA256,
            c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        )
        signed: etree._Element = signer.sign(
            element, key=keys.key, cert=[keys.certificate], reference_uri=f"#{element.get('ID')}"
        )
        return signed

    @staticmethod
    def _second_value(assertion: etree._Element, oid: str, *, copy_attribute: bool) -> None:
        """Give the attribute `oid` a second, different value: in it, or in a copy of it after it."""
        for attribute in assertion.findall("saml:AttributeStatement/saml:Attribute", NS):
            if attribute.get("Name") != oid:
                continue
            target = copy.deepcopy(attribute) if copy_attribute else attribute
            first = target.find("saml:AttributeValue", NS)
            if first is None:
                continue
            value = copy.deepcopy(first)
            value.text = "1970-01-01" if oid == BIRTHDATE_OID else "Mallory-" + (value.text or "")
            if copy_attribute:  # the copy carries only the other value
                target.remove(first)
                attribute.addnext(target)
            target.append(value)
            return
        raise SimulatorError(f"the person has no attribute {oid} to duplicate")

    @staticmethod
    def _alter(assertion: etree._Element) -> None:
        """Change the family name (or the first attribute value) after signing."""
        values = assertion.findall("saml:AttributeStatement/saml:Attribute/saml:AttributeValue", NS)
        for value in values:
            attribute = value.getparent()
            if attribute is not None and attribute.get("Name") == "urn:oid:2.5.4.4":
                value.text = "Mallory"
                return
        if values:
            values[0].text = "Mallory"

    @staticmethod
    def _wrap(root: etree._Element, genuine: etree._Element) -> None:
        """Put a forged, unsigned copy (level 4, other name) before the genuine signed assertion."""
        forged = copy.deepcopy(genuine)
        forged.set("ID", _new_id())
        for signature in forged.findall("ds:Signature", NS):
            forged.remove(signature)
        for ref in forged.findall("saml:AuthnStatement/saml:AuthnContext/saml:AuthnContextClassRef", NS):
            if (ref.text or "").startswith("STORK-QAA-Level-"):
                ref.text = "STORK-QAA-Level-4"
        for value in forged.findall("saml:AttributeStatement/saml:Attribute/saml:AttributeValue", NS):
            attribute = value.getparent()
            if attribute is not None and attribute.get("Name") == "urn:oid:2.5.4.4":
                value.text = "Mallory"
        genuine.addprevious(forged)
