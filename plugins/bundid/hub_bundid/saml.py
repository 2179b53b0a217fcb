"""Verification of a BundID SAML response (HTTP-POST binding), independent of the hub.

What is required (see the plugin README):

- the document is parsed hardened (no DTD, no entities, no network, size limit);
- the Response carries status Success and exactly one Assertion, as its direct child; anything else
  (a second assertion anywhere, an assertion moved elsewhere) is refused as signature wrapping;
- the **Assertion** carries a valid enveloped signature by a signing certificate of the IdP metadata,
  whose single reference is that very Assertion; every later read uses only the signed element signxml
  returns (`VerifyResult.signed_xml`), never the received tree;
- a signature on the Response is verified when present, and required with `require_response_signature`;
- Issuer, Audience, Destination/Recipient, NotBefore/NotOnOrAfter (Conditions and bearer
  SubjectConfirmationData, with clock skew) are checked against the time the application was received.

Failures raise `SamlRejected` with a code (`hub.RejectionCode`), a reason in German fit for the
applicant (never our configuration) and a technical detail for the operator's log (never personal data).

The IdP's signing certificate is pinned by the metadata: its validity dates are not enforced (SAML
metadata practice: the metadata, not the certificate's dates, says which key is trusted). An expired
certificate is reported to the operator (check, metrics, log), it does not fail every login.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from lxml import etree
from signxml.exceptions import InvalidDigest, SignXMLException
from signxml.verifier import SignatureConfiguration, VerifyResult, XMLVerifier

from hub import RejectionCode, TrustLevel

from .attributes import (
    AKDB,
    ATTRIBUTE_LEVELS,
    BEARER,
    BY_OID,
    SAML_ASSERTION,
    SAML_PROTOCOL,
    STATUS_SUCCESS,
    XMLDSIG,
    stork_level,
)
from .xmlsafe import UnsafeXml, parse_xml

NS = {"samlp": SAML_PROTOCOL, "saml": SAML_ASSERTION, "ds": XMLDSIG}
RESPONSE = f"{{{SAML_PROTOCOL}}}Response"
ASSERTION = f"{{{SAML_ASSERTION}}}Assertion"
# encrypted content the hub cannot read: refused rather than silently skipped (an attribute missing)
ENCRYPTED = tuple(
    f"{{{SAML_ASSERTION}}}{name}"
    for name in ("EncryptedAssertion", "EncryptedID", "EncryptedAttribute", "NewEncryptedID")
)
SIGNATURE = f"{{{XMLDSIG}}}Signature"
TRUST_LEVEL_ATTRIBUTE = f"{{{AKDB}}}TrustLevel"
ENTITY_FORMAT = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
KNOWN_CONDITIONS = frozenset(
    f"{{{SAML_ASSERTION}}}{name}" for name in ("AudienceRestriction", "OneTimeUse", "ProxyRestriction")
)
# SAML core 5.4.4: an enveloped signature and canonicalisation, nothing else. signxml skips transforms
# it does not know (XSLT, XPath) instead of failing, so they are refused before it runs.
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
CANONICALISATIONS = frozenset(
    {
        "http://www.w3.org/2001/10/xml-exc-c14n#",
        "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
        "http://www.w3.org/2006/12/xml-c14n11",
        "http://www.w3.org/2006/12/xml-c14n11#WithComments",
    }
)
ALLOWED_TRANSFORMS = CANONICALISATIONS | {ENVELOPED}
XINCLUDE_NAMESPACES = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")
ID_ATTRIBUTES = frozenset({"ID", "Id", "id"})  # local names a DSig library may resolve a reference by
_XINCLUDE_PREFIXES = tuple(f"{{{ns}}}" for ns in XINCLUDE_NAMESPACES)
# xs:dateTime as SAML writes it (fromisoformat alone also takes dates and ISO basic format)
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


MALFORMED = RejectionCode.MALFORMED
BAD_SIGNATURE = RejectionCode.BAD_SIGNATURE


class SamlRejected(Exception):
    """The response is not acceptable: `code`, a `reason` for the applicant, a `detail` for the log."""

    def __init__(self, code: RejectionCode, reason: str, detail: str = "") -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.detail = detail or reason


@dataclass(frozen=True)
class Expectations:
    """What the response must match: our side of the federation and the IdP's keys."""

    idp_entity_id: str
    sp_entity_id: str
    acs_url: str
    certificates: Sequence[x509.Certificate]
    clock_skew: timedelta = timedelta(minutes=2)
    grace: timedelta = timedelta(0)
    require_response_signature: bool = False
    max_bytes: int = 512 * 1024


@dataclass(frozen=True)
class AttributeValue:
    """One attribute of the assertion, with its akdb:TrustLevel."""

    value: str
    level: TrustLevel | None


@dataclass
class VerifiedAssertion:
    """What a verified assertion says; read only from the signed element."""

    issuer: str
    assertion_id: str
    name_id: str | None
    level: TrustLevel | None
    valid_until: datetime  # the earliest NotOnOrAfter: after it the assertion is worthless
    attributes: dict[str, AttributeValue] = field(default_factory=dict)  # by our key (see attributes)

    def value(self, key: str) -> str | None:
        """The value of the attribute with our key `key`, None if absent or empty."""
        attribute = self.attributes.get(key)
        return attribute.value if attribute and attribute.value else None


def verify_response(document: bytes, expect: Expectations, at: datetime) -> VerifiedAssertion:
    """Verify a decoded SAML response as received at `at`; raise `SamlRejected` on any failure."""
    try:
        root = parse_xml(document, limit=expect.max_bytes)
    except UnsafeXml as exc:
        raise SamlRejected(MALFORMED, "Die BundID-Antwort ist kein zulässiges XML.", str(exc)) from None
    if root.tag != RESPONSE:
        raise SamlRejected(MALFORMED, "Die BundID-Antwort ist keine SAML-Antwort.", f"root {root.tag!r}")
    if any(isinstance(e.tag, str) and e.tag.startswith(_XINCLUDE_PREFIXES) for e in root.iter()):
        # never processed, but no SAML response carries one: whoever sends it is probing
        raise SamlRejected(MALFORMED, "Die BundID-Antwort ist kein zulässiges XML.", "XInclude element")
    if root.get("Version") != "2.0":
        raise SamlRejected(MALFORMED, "Die BundID-Antwort ist nicht SAML 2.0.", "Version is not 2.0")

    _check_status(root)
    response_issuer = root.find("saml:Issuer", NS)
    issuer = _text(response_issuer)
    if response_issuer is not None and (
        issuer != expect.idp_entity_id or response_issuer.get("Format", ENTITY_FORMAT) != ENTITY_FORMAT
    ):
        # SAML profiles 4.1.4.2: the Response's Issuer, if present, is the IdP's entity id
        raise _wrong_issuer(f"Response Issuer {issuer} (Format {response_issuer.get('Format')})")
    destination = root.get("Destination")
    if destination is not None and destination != expect.acs_url:
        raise _wrong_destination(f"Response Destination {destination!r}")

    assertion = _the_assertion(root)
    response_signature = root.find("ds:Signature", NS)
    if response_signature is not None or expect.require_response_signature:
        if response_signature is None:
            raise SamlRejected(
                BAD_SIGNATURE, "Die BundID-Antwort ist nicht signiert.", "Response signature required"
            )
        signed_response = _verify_signature(root, expect, at, "Response")
        if destination is None:
            raise _wrong_destination("signed Response without Destination")
        assertion_in_signed = signed_response.findall("saml:Assertion", NS)
        if len(assertion_in_signed) != 1 or assertion_in_signed[0].get("ID") != assertion.get("ID"):
            raise _wrapped("the signed Response holds another assertion")

    if assertion.find("ds:Signature", NS) is None:
        raise SamlRejected(BAD_SIGNATURE, "Die BundID-Anmeldung ist nicht signiert.", "Assertion unsigned")
    signed = _verify_signature(assertion, expect, at, "Assertion")
    return _read_assertion(signed, expect, at, root.get("InResponseTo"))


# -- structure -------------------------------------------------------------------------------------


def _check_status(root: etree._Element) -> None:
    code = root.find("samlp:Status/samlp:StatusCode", NS)
    value = code.get("Value") if code is not None else None
    if value == STATUS_SUCCESS:
        return
    if value is None:
        raise SamlRejected(MALFORMED, "Die BundID-Antwort enthält keinen Status.", "no StatusCode")
    codes = [value]
    assert code is not None
    codes += [sub.get("Value") or "" for sub in code.findall("samlp:StatusCode", NS)]
    names = "/".join(c.rsplit(":", 1)[-1] for c in codes if c)
    raise SamlRejected(
        RejectionCode.STATUS_NOT_SUCCESS,
        f"Die BundID meldet, dass die Anmeldung nicht gelungen ist ({names}).",
        f"status {' / '.join(codes)}",
    )


def _the_assertion(root: etree._Element) -> etree._Element:
    encrypted = next(root.iter(*ENCRYPTED), None)
    if encrypted is not None:
        raise SamlRejected(
            MALFORMED,
            "Die BundID-Antwort enthält verschlüsselte Angaben; das wird hier nicht unterstützt.",
            etree.QName(encrypted).localname,
        )
    assertions = list(root.iter(ASSERTION))
    if not assertions:
        raise SamlRejected(
            RejectionCode.MISSING, "Die BundID-Antwort enthält keine Anmeldung.", "no Assertion"
        )
    if len(assertions) > 1:
        raise _wrapped(f"{len(assertions)} Assertion elements")
    assertion = assertions[0]
    if assertion.getparent() is not root:
        raise _wrapped("the Assertion is not a direct child of the Response")
    return assertion


def _verify_signature(
    element: etree._Element, expect: Expectations, at: datetime, what: str
) -> etree._Element:
    """Verify the enveloped signature that is a direct child of `element`; return the signed copy.

    The signature must have exactly one reference, and it must be `element` itself. The certificate
    is pinned by the metadata; its validity dates are not enforced (see the module docstring).
    """
    _check_signature_shape(element, what)
    problems: list[str] = []
    altered = False
    for certificate in expect.certificates:
        # signxml checks the certificate's dates at `verification_time`: a moment inside them turns
        # that check off for this pinned certificate and nothing else.
        inside = min(max(at, certificate.not_valid_before_utc), certificate.not_valid_after_utc)
        # KeyInfo never chooses or vetoes the key: only the metadata's certificates count
        config = SignatureConfiguration(
            location="./",
            expect_references=1,
            verification_time=inside,
            ignore_ambiguous_key_info=True,
        )
        try:
            result = XMLVerifier().verify(
                element, x509_cert=certificate, expect_config=config, id_attribute="ID"
            )
        except InvalidDigest as exc:
            altered = True
            problems.append(str(exc))
            continue
        except SignXMLException as exc:
            problems.append(str(exc))
            continue
        except Exception as exc:  # e.g. an unknown algorithm URI: whatever breaks, it is not valid
            problems.append(f"{type(exc).__name__}: {exc}")
            continue
        if not isinstance(result, VerifyResult):  # expect_references=1 gives one result
            raise _wrapped(f"the {what} signature has several references")
        signed = result.signed_xml
        if signed is None or signed.tag != element.tag or signed.get("ID") != element.get("ID"):
            raise _wrapped(f"the {what} signature references another element")
        return signed
    german = "Antwort" if what == "Response" else "Anmeldung"
    if altered:
        reason = f"Die BundID-{german} wurde nach der Signatur verändert."
    else:
        reason = f"Die Signatur der BundID-{german} ist nicht gültig."
    raise SamlRejected(BAD_SIGNATURE, reason, f"{what}: {'; '.join(problems) or 'no certificate'}")


def _check_signature_shape(element: etree._Element, what: str) -> None:
    """SAML core 5.4: one reference, to the signing element's own ID, only enveloped + C14N transforms.

    A reference that is empty, external or an XPointer, an ID that occurs twice in the document, and
    transforms that rewrite the content before it is digested are refused before any cryptography.
    """
    signatures = element.findall("ds:Signature", NS)
    if len(signatures) != 1:
        raise _wrapped(f"{len(signatures)} Signature elements in the {what}")
    references = signatures[0].findall("ds:SignedInfo/ds:Reference", NS)
    if len(references) != 1:
        raise _wrapped(f"the {what} signature has {len(references)} references")
    element_id = element.get("ID")
    uri = references[0].get("URI")
    if not element_id or uri != f"#{element_id}":
        raise _wrapped(f"the {what} signature references {uri!r}, not its own ID")
    holders = [
        e
        for e in element.getroottree().iter()
        if isinstance(e.tag, str)
        and any(
            value == element_id and etree.QName(name).localname in ID_ATTRIBUTES
            for name, value in e.attrib.items()
        )
    ]
    if holders != [element]:
        raise _wrapped(f"the ID of the {what} occurs {len(holders)} times")
    transforms = [t.get("Algorithm") for t in references[0].findall("ds:Transforms/ds:Transform", NS)]
    method = signatures[0].find("ds:SignedInfo/ds:CanonicalizationMethod", NS)
    unknown = [t for t in transforms if t not in ALLOWED_TRANSFORMS]
    if method is None or method.get("Algorithm") not in CANONICALISATIONS:
        unknown.append(method.get("Algorithm") if method is not None else None)
    if unknown:
        raise SamlRejected(
            BAD_SIGNATURE,
            "Die Signatur der BundID-Anmeldung verwendet unzulässige Verfahren.",
            f"{what} signature: transforms or canonicalisation not allowed: {unknown!r}",
        )


def _wrapped(detail: str) -> SamlRejected:
    return SamlRejected(
        BAD_SIGNATURE,
        "Die BundID-Antwort ist nicht wie erforderlich signiert (die signierte Anmeldung ist nicht "
        "die vorgelegte).",
        f"signature wrapping: {detail}",
    )


def _wrong_issuer(found: str) -> SamlRejected:
    return SamlRejected(
        RejectionCode.WRONG_ISSUER,
        "Die BundID-Anmeldung stammt von einem Identitätsanbieter, dem hier nicht vertraut wird.",
        found,
    )


def _wrong_destination(detail: str) -> SamlRejected:
    return SamlRejected(
        RejectionCode.WRONG_DESTINATION,
        "Die BundID-Antwort war an einen anderen Empfänger gerichtet.",
        detail,
    )


# -- the signed assertion --------------------------------------------------------------------------


def _read_assertion(
    signed: etree._Element, expect: Expectations, at: datetime, in_response_to: str | None
) -> VerifiedAssertion:
    assertion_id = signed.get("ID") or ""
    if not assertion_id or signed.get("Version") != "2.0":
        raise SamlRejected(MALFORMED, "Die BundID-Anmeldung ist unvollständig.", "no ID or Version")
    issuer_element = signed.find("saml:Issuer", NS)
    issuer = _text(issuer_element)
    if issuer_element is None or issuer is None:
        raise SamlRejected(MALFORMED, "Die BundID-Anmeldung nennt keinen Aussteller.", "no Issuer")
    if issuer != expect.idp_entity_id or issuer_element.get("Format", ENTITY_FORMAT) != ENTITY_FORMAT:
        raise _wrong_issuer(f"{issuer} (Format {issuer_element.get('Format')})")
    issued = _instant(signed.get("IssueInstant"), "IssueInstant")
    if issued is None:
        raise SamlRejected(
            MALFORMED, "Die BundID-Anmeldung nennt keinen Ausstellungszeitpunkt.", "no IssueInstant"
        )
    if issued - expect.clock_skew > at:
        raise _not_yet_valid(f"IssueInstant {issued.isoformat()}")

    valid_until = _check_subject(signed, expect, at, in_response_to)
    valid_until = min(valid_until, _check_conditions(signed, expect, at) or valid_until)
    _check_authn_statements(signed, expect, at)
    level = _level(signed)
    name_id = _text(signed.find("saml:Subject/saml:NameID", NS))
    return VerifiedAssertion(
        issuer=issuer,
        assertion_id=assertion_id,
        name_id=name_id,
        level=level,
        valid_until=valid_until,
        attributes=_attributes(signed),
    )


def _check_subject(
    signed: etree._Element, expect: Expectations, at: datetime, in_response_to: str | None
) -> datetime:
    """Check the bearer confirmation; return its NotOnOrAfter.

    SAML profiles 4.1.4.2: the bearer confirmation names the request the Response answers (both
    InResponseTo equal, or both absent for an unsolicited login). Anything else is an assertion from
    another login exchange put into this Response.
    """
    confirmations = [
        c for c in signed.findall("saml:Subject/saml:SubjectConfirmation", NS) if c.get("Method") == BEARER
    ]
    if not confirmations:
        raise SamlRejected(
            MALFORMED,
            "Die BundID-Anmeldung enthält keine Bearer-Bestätigung.",
            "no bearer SubjectConfirmation",
        )
    first: SamlRejected | None = None
    for confirmation in confirmations:
        data = confirmation.find("saml:SubjectConfirmationData", NS)
        try:
            if data is None:
                raise SamlRejected(
                    MALFORMED, "Die BundID-Anmeldung ist unvollständig.", "no SubjectConfirmationData"
                )
            if data.get("InResponseTo") != in_response_to:
                raise _wrapped(
                    f"SubjectConfirmationData InResponseTo {data.get('InResponseTo')!r}, "
                    f"Response InResponseTo {in_response_to!r}"
                )
            recipient = data.get("Recipient")
            if recipient != expect.acs_url:
                raise _wrong_destination(f"SubjectConfirmationData Recipient {recipient!r}")
            until = _instant(data.get("NotOnOrAfter"), "SubjectConfirmationData NotOnOrAfter")
            if until is None:
                raise SamlRejected(
                    MALFORMED,
                    "Die BundID-Anmeldung nennt kein Ende ihrer Gültigkeit.",
                    "no SubjectConfirmationData NotOnOrAfter",
                )
            _check_window(
                _instant(data.get("NotBefore"), "SubjectConfirmationData NotBefore"),
                until,
                expect,
                at,
                "SubjectConfirmationData",
            )
            return until
        except SamlRejected as rejected:
            first = first or rejected
    assert first is not None
    raise first


def _check_conditions(signed: etree._Element, expect: Expectations, at: datetime) -> datetime | None:
    """Check Conditions (validity window, audience); return their NotOnOrAfter if any."""
    conditions = signed.find("saml:Conditions", NS)
    if conditions is None:
        raise _wrong_audience("no Conditions")
    unknown = [child.tag for child in conditions if child.tag not in KNOWN_CONDITIONS]
    if unknown:
        # SAML core 2.5.1.5: a condition of unknown type makes the assertion indeterminate.
        raise SamlRejected(
            MALFORMED, "Die BundID-Anmeldung enthält eine unbekannte Bedingung.", f"Conditions: {unknown!r}"
        )
    until = _instant(conditions.get("NotOnOrAfter"), "Conditions NotOnOrAfter")
    _check_window(
        _instant(conditions.get("NotBefore"), "Conditions NotBefore"), until, expect, at, "Conditions"
    )
    restrictions = conditions.findall("saml:AudienceRestriction", NS)
    if not restrictions:
        raise _wrong_audience("no AudienceRestriction")
    for restriction in restrictions:
        audiences = [_text(a) for a in restriction.findall("saml:Audience", NS)]
        if expect.sp_entity_id not in audiences:
            raise _wrong_audience(f"audiences {audiences!r}")
    return until


def _check_authn_statements(signed: etree._Element, expect: Expectations, at: datetime) -> None:
    """The Web SSO profile requires an AuthnStatement; a login session that had ended is expired."""
    statements = signed.findall("saml:AuthnStatement", NS)
    if not statements:
        raise SamlRejected(
            MALFORMED, "Die BundID-Anmeldung enthält keine Authentifizierung.", "no AuthnStatement"
        )
    for statement in statements:
        until = _instant(statement.get("SessionNotOnOrAfter"), "AuthnStatement SessionNotOnOrAfter")
        _check_window(None, until, expect, at, "AuthnStatement SessionNotOnOrAfter")


def _check_window(
    not_before: datetime | None,
    not_on_or_after: datetime | None,
    expect: Expectations,
    at: datetime,
    where: str,
) -> None:
    if not_before is not None and at + expect.clock_skew < not_before:
        raise _not_yet_valid(f"{where} NotBefore {not_before.isoformat()}")
    if not_on_or_after is not None and at - expect.clock_skew - expect.grace >= not_on_or_after:
        raise SamlRejected(
            RejectionCode.EXPIRED,
            "Die BundID-Anmeldung war abgelaufen, als der Antrag einging.",
            f"{where} NotOnOrAfter {not_on_or_after.isoformat()}, received {at.isoformat()}",
        )


def _not_yet_valid(detail: str) -> SamlRejected:
    return SamlRejected(
        RejectionCode.NOT_YET_VALID, "Die BundID-Anmeldung war beim Eingang noch nicht gültig.", detail
    )


def _wrong_audience(detail: str) -> SamlRejected:
    return SamlRejected(
        RejectionCode.WRONG_AUDIENCE,
        "Die BundID-Anmeldung wurde für einen anderen Dienst ausgestellt.",
        detail,
    )


def _level(signed: etree._Element) -> TrustLevel | None:
    """The achieved level: the lowest STORK level any AuthnStatement states (None: none stated)."""
    levels = [
        level
        for ref in signed.findall("saml:AuthnStatement/saml:AuthnContext/saml:AuthnContextClassRef", NS)
        if (level := stork_level(_text(ref) or "")) is not None
    ]
    return min(levels, key=lambda level: level.rank) if levels else None


def _attributes(signed: etree._Element) -> dict[str, AttributeValue]:
    """The identity attributes by our key; one attribute twice, or with two values, is refused.

    Taking "the first" of two values would let whoever can add one choose which counts.
    """
    found: dict[str, AttributeValue] = {}
    for attribute in signed.findall("saml:AttributeStatement/saml:Attribute", NS):
        spec = BY_OID.get("".join((attribute.get("Name") or "").split()))
        if spec is None:
            continue
        values = attribute.findall("saml:AttributeValue", NS)
        if spec.key in found or len(values) > 1:
            raise SamlRejected(
                RejectionCode.ATTRIBUTE_MULTIVALUED,
                f"Die BundID-Anmeldung enthält die Angabe {spec.friendly_name} mehrfach.",
                f"attribute {spec.oid} ({spec.friendly_name}): "
                + ("repeated" if spec.key in found else f"{len(values)} values"),
            )
        value = _text(values[0]) if values else None
        level = ATTRIBUTE_LEVELS.get((attribute.get(TRUST_LEVEL_ATTRIBUTE) or "").strip().upper())
        found[spec.key] = AttributeValue(value=value or "", level=level)
    return found


# -- values ----------------------------------------------------------------------------------------


def _text(element: etree._Element | None) -> str | None:
    """The element's whole text (all text nodes, so a comment cannot cut it short), stripped."""
    if element is None:
        return None
    return "".join(element.itertext()).strip()


def _instant(value: str | None, what: str) -> datetime | None:
    """An xs:dateTime as SAML uses it (UTC); None if absent."""
    if value is None:
        return None
    try:
        if not _DATE_TIME.match(value.strip()):
            raise ValueError("not an xs:dateTime")
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise SamlRejected(
            MALFORMED, "Die BundID-Anmeldung enthält eine ungültige Zeitangabe.", what
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # SAML times are UTC
    return parsed.astimezone(UTC)
