"""BundID's vocabulary: attribute OIDs, trust levels, means of proof.

The OIDs are those of BundID's attribute table (``bundid/field_definitions.yml`` in the reference
directory; the test suite checks they agree) plus ``legacyPostkorbHandle`` (the mailbox handle), which
the table lacks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub import TrustLevel

SAML_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML_ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion"
SAML_METADATA = "urn:oasis:names:tc:SAML:2.0:metadata"
XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"
AKDB = "https://www.akdb.de/request/2018/09"

STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
URI_NAME_FORMAT = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"


@dataclass(frozen=True)
class AttributeSpec:
    """One BundID attribute: its OID name, its friendly name, and where it goes in the applicant."""

    oid: str
    friendly_name: str
    key: str  # our name: a `Party` field, an address part ("address.street") or an identity detail


ATTRIBUTES: tuple[AttributeSpec, ...] = (
    AttributeSpec("urn:oid:2.5.4.42", "givenName", "given_name"),
    AttributeSpec("urn:oid:2.5.4.4", "surname", "family_name"),
    AttributeSpec("urn:oid:1.2.40.0.10.2.1.1.55", "birthdate", "birth_date"),
    AttributeSpec("urn:oid:1.2.40.0.10.2.1.1.225566", "birthName", "birth_name"),
    AttributeSpec("urn:oid:1.3.6.1.5.5.7.9.2", "placeOfBirth", "birth_place"),
    AttributeSpec("urn:oid:2.5.4.16", "postalAddress", "address.street"),
    AttributeSpec("urn:oid:2.5.4.17", "postalCode", "address.postal_code"),
    AttributeSpec("urn:oid:2.5.4.7", "localityName", "address.city"),
    AttributeSpec("urn:oid:1.2.40.0.10.2.1.1.225599", "Country", "address.country"),
    AttributeSpec("urn:oid:0.9.2342.19200300.100.1.3", "mail", "email"),
    AttributeSpec("urn:oid:1.3.6.1.4.1.25484.494450.3", "bPK2", "bpk2"),
    AttributeSpec("urn:oid:2.5.4.18", "legacyPostkorbHandle", "mailbox"),
    AttributeSpec("urn:oid:1.3.6.1.4.1.33592.1.3.5", "gender", "gender"),
    AttributeSpec("urn:oid:1.3.6.1.4.1.25484.494450.2", "AssertionProvedBy", "means"),
)
MAILBOX_OID = "urn:oid:2.5.4.18"
ASSERTION_PROVED_BY_OID = "urn:oid:1.3.6.1.4.1.25484.494450.2"
BY_OID = {spec.oid: spec for spec in ATTRIBUTES}
BY_KEY = {spec.key: spec for spec in ATTRIBUTES}

# akdb:TrustLevel of an attribute
ATTRIBUTE_LEVELS = {
    "UNTERGEORDNET": TrustLevel.UNTERGEORDNET,
    "NORMAL": TrustLevel.NORMAL,
    "SUBSTANTIELL": TrustLevel.SUBSTANTIELL,
    "HOCH": TrustLevel.HOCH,
}

# AssertionProvedBy → the level that means of proof reaches at most (reference README)
MEANS_LEVELS = {
    "benutzername": TrustLevel.UNTERGEORDNET,
    "elster": TrustLevel.SUBSTANTIELL,
    "smart-eid": TrustLevel.SUBSTANTIELL,
    "eid": TrustLevel.HOCH,
    "eidas": TrustLevel.HOCH,
    "fink": TrustLevel.HOCH,
}

_STORK = re.compile(r"^STORK-QAA-Level-([1-4])$")
_LEVEL_WORDS = re.compile(r"^(?:stork[-_ ]?qaa[-_ ]?level[-_ ]?|level[-_ ]?)?([1-4])$")


def level_of_rank(rank: int) -> TrustLevel:
    """The trust level of STORK-QAA-Level-`rank` (1..4)."""
    return list(TrustLevel)[rank - 1]


def stork_level(class_ref: str) -> TrustLevel | None:
    """The trust level an ``AuthnContextClassRef`` states, or None if it is not a STORK level."""
    match = _STORK.match(class_ref.strip())
    return level_of_rank(int(match.group(1))) if match else None


def parse_level(text: str) -> TrustLevel | None:
    """A level as a form server may state it: "STORK-QAA-Level-3", "3", "substantiell", "HOCH" ..."""
    value = text.strip().lower()
    if not value:
        return None
    match = _LEVEL_WORDS.match(value)
    if match:
        return level_of_rank(int(match.group(1)))
    for level in TrustLevel:
        if value == level.value:
            return level
    return None


def means_level(means: str) -> TrustLevel | None:
    """The highest level a means of proof (AssertionProvedBy) can reach, None if unknown."""
    return MEANS_LEVELS.get(means.strip().lower())
