"""SAML metadata of the identity provider: its entity id and signing certificates."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from hub import utcnow

from .attributes import SAML_METADATA, XMLDSIG
from .xmlsafe import UnsafeXml, parse_xml

MAX_METADATA_BYTES = 4 * 1024**2
NS = {"md": SAML_METADATA, "ds": XMLDSIG}


class MetadataError(ValueError):
    """The metadata cannot be used: unreadable, malformed, or without a signing certificate."""


@dataclass(frozen=True)
class IdpMetadata:
    """What the verifier needs from the IdP's metadata."""

    entity_id: str
    certificates: tuple[x509.Certificate, ...]

    def expiring(self, within: timedelta, at: datetime | None = None) -> tuple[x509.Certificate, ...]:
        """The signing certificates expired at `at` (default: now) or expiring `within` after it."""
        limit = (at or utcnow()) + within
        return tuple(cert for cert in self.certificates if cert.not_valid_after_utc <= limit)

    def describe(self) -> dict[str, str]:
        """Operator-facing facts: entity id, certificate validity and fingerprints (never keys)."""
        details = {"idp_entity_id": self.entity_id, "signing_certificates": str(len(self.certificates))}
        for index, cert in enumerate(self.certificates, 1):
            fingerprint = cert.fingerprint(hashes.SHA256()).hex(":")
            details[f"certificate_{index}"] = (
                f"valid {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}, "
                f"SHA-256 {fingerprint}"
            )
        return details


def certificate_name(certificate: x509.Certificate) -> str:
    """How operators tell the IdP's signing certificates apart: the start of the SHA-256 fingerprint."""
    return "idp-signing-" + certificate.fingerprint(hashes.SHA256()).hex()[:16]


def parse_metadata(data: bytes) -> IdpMetadata:
    """Read an ``EntityDescriptor`` (or the first IdP one in an ``EntitiesDescriptor``)."""
    try:
        root = parse_xml(data, limit=MAX_METADATA_BYTES)
    except UnsafeXml as exc:
        raise MetadataError(f"IdP metadata: {exc}") from None
    if root.tag == f"{{{SAML_METADATA}}}EntityDescriptor":
        candidates = [root]
    elif root.tag == f"{{{SAML_METADATA}}}EntitiesDescriptor":
        candidates = root.findall(".//md:EntityDescriptor", NS)
    else:
        raise MetadataError("IdP metadata: the root is neither EntityDescriptor nor EntitiesDescriptor")
    for entity in candidates:
        idp = entity.find("md:IDPSSODescriptor", NS)
        if idp is None:
            continue
        entity_id = (entity.get("entityID") or "").strip()
        if not entity_id:
            raise MetadataError("IdP metadata: EntityDescriptor without entityID")
        certificates: list[x509.Certificate] = []
        for descriptor in idp.findall("md:KeyDescriptor", NS):
            if descriptor.get("use", "signing") != "signing":
                continue
            for node in descriptor.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS):
                certificates.append(_certificate("".join(node.itertext())))
        if not certificates:
            raise MetadataError("IdP metadata: no signing certificate in the IDPSSODescriptor")
        return IdpMetadata(entity_id=entity_id, certificates=tuple(certificates))
    raise MetadataError("IdP metadata: no IDPSSODescriptor")


def _certificate(text: str) -> x509.Certificate:
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
        return x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError):
        raise MetadataError("IdP metadata: a signing certificate cannot be read") from None


def load_metadata(path: Path) -> IdpMetadata:
    """Read the IdP metadata file."""
    try:
        if path.stat().st_size > MAX_METADATA_BYTES:
            raise MetadataError(f"IdP metadata {str(path)!r} is larger than {MAX_METADATA_BYTES} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise MetadataError(f"IdP metadata {str(path)!r} cannot be read: {exc.strerror}") from None
    return parse_metadata(data)
