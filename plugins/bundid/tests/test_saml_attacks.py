"""An independent SAML attack suite against the BundID connector's real verify path.

Nothing here uses the IdP simulator or signxml to *build* responses: the test writes its own IdP key,
certificate and metadata, builds each response with lxml and signs it with its own XML-DSig signer
(exclusive C14N from lxml, RSA/HMAC from `cryptography`). That lets it produce what a well-behaved
library refuses to produce (wrapped signatures, XSLT transforms, MD5, HMAC keyed with the public key...)
and checks the verifier against the specifications, not against the simulator it was written with.

Every case states its outcome: refused with a specific `RejectionCode` (never an exception escaping),
or accepted where SAML says it must be (benign variations, an expired certificate pinned by metadata).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
from bundid_helpers import FIELD, make_identity, with_response
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from hub_bundid.metadata import load_metadata
from hub_bundid.saml import Expectations, SamlRejected, VerifiedAssertion, verify_response
from lxml import etree

from hub import ApplicationState, ConnectorContext, Rejection, RejectionCode, TrustLevel

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
AKDB = "https://www.akdb.de/request/2018/09"
NS = {"samlp": SAMLP, "saml": SAML, "ds": DS}

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
XPATH_FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_MD5 = "http://www.w3.org/2001/04/xmldsig-more#rsa-md5"
HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
HMAC_SHA1 = "http://www.w3.org/2000/09/xmldsig#hmac-sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
MD5 = "http://www.w3.org/2001/04/xmldsig-more#md5"
DIGESTS: dict[str, Callable[[bytes], Any]] = {
    "http://www.w3.org/2001/04/xmlenc#sha512": hashlib.sha512,
    SHA256: hashlib.sha256,
    SHA1: hashlib.sha1,
    MD5: hashlib.md5,
}
RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
RSA_HASHES: dict[str, hashes.HashAlgorithm] = {
    RSA_SHA512: hashes.SHA512(),
    RSA_SHA256: hashes.SHA256(),
    RSA_SHA1: hashes.SHA1(),
    RSA_MD5: hashes.MD5(),
}

XSI = "http://www.w3.org/2001/XMLSchema-instance"
EC = "http://www.w3.org/2001/10/xml-exc-c14n#"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
HOLDER_OF_KEY = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
SENDER_VOUCHES = "urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
ENTITY = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
IDP = "https://id.bund.example/idp"
SP = "https://antrag.kreis.example/sp"
ACS = "https://antrag.kreis.example/acs"
SKEW = timedelta(minutes=2)
AT = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)  # when the application arrived

GIVEN_NAME = "urn:oid:2.5.4.42"
SURNAME = "urn:oid:2.5.4.4"
BPK2 = "urn:oid:1.3.6.1.4.1.25484.494450.3"
PROVED_BY = "urn:oid:1.3.6.1.4.1.25484.494450.2"
MAIL = "urn:oid:0.9.2342.19200300.100.1.3"

R = RejectionCode
OK = "accepted"


# -- keys and metadata, the test's own ---------------------------------------------------------------


def key_pair(name: str, begin: datetime, days: int) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """An RSA key with a self-signed certificate valid `days` from `begin`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(begin)
        .not_valid_after(begin + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def der64(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


def metadata_xml(
    entity_id: str, *certificates: x509.Certificate, encryption: tuple[x509.Certificate, ...] = ()
) -> bytes:
    """An IdP EntityDescriptor as a federation publishes it."""
    keys = "".join(
        f'<md:KeyDescriptor use="{use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{der64(c)}'
        "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        for use, group in (("signing", certificates), ("encryption", encryption))
        for c in group
    )
    return (
        f'<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}" entityID="{entity_id}">'
        f'<md:IDPSSODescriptor protocolSupportEnumeration="{SAMLP}">{keys}'
        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        f'Location="{IDP}/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>'
    ).encode()


@dataclass(frozen=True)
class Kit:
    """The IdP's keys (current, rolled-over, expired), an attacker's, and metadata files for them."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    next_key: rsa.RSAPrivateKey
    next_certificate: x509.Certificate
    expired_key: rsa.RSAPrivateKey
    expired_certificate: x509.Certificate
    evil_key: rsa.RSAPrivateKey
    evil_certificate: x509.Certificate
    metadata: Path  # current + next (a rollover)
    expired_metadata: Path  # only the expired certificate
    encryption_metadata: Path  # the current certificate for signing, the attacker's "for encryption"

    def expect(self, metadata: Path | None = None, **changes: Any) -> Expectations:
        """Expectations as the connector builds them, from a metadata file."""
        loaded = load_metadata(metadata or self.metadata)
        return Expectations(
            idp_entity_id=loaded.entity_id,
            sp_entity_id=SP,
            acs_url=ACS,
            certificates=loaded.certificates,
            clock_skew=SKEW,
            **changes,
        )


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    now = datetime.now(UTC)
    key, cert = key_pair("BundID IdP signing", now - timedelta(days=400), 3650)
    next_key, next_cert = key_pair("BundID IdP signing 2", now - timedelta(days=1), 3650)
    old_key, old_cert = key_pair("BundID IdP signing (expired)", now - timedelta(days=800), 365)
    evil_key, evil_cert = key_pair("BundID IdP signing", now - timedelta(days=1), 365)  # same name
    where = tmp_path_factory.mktemp("saml-attacks")
    metadata = where / "idp.xml"
    metadata.write_bytes(metadata_xml(IDP, cert, next_cert))
    expired = where / "idp-expired.xml"
    expired.write_bytes(metadata_xml(IDP, old_cert))
    encryption = where / "idp-encryption.xml"
    encryption.write_bytes(metadata_xml(IDP, cert, encryption=(evil_cert,)))
    return Kit(
        key, cert, next_key, next_cert, old_key, old_cert, evil_key, evil_cert, metadata, expired, encryption
    )


# -- responses ---------------------------------------------------------------------------------------


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Attr:
    """One attribute as BundID sends it."""

    oid: str
    value: str | tuple[str, ...]
    trust: str | None = "HOCH"
    friendly: str = "x"


DEFAULT_ATTRIBUTES = (
    Attr(GIVEN_NAME, "Erika", friendly="givenName"),
    Attr(SURNAME, "Mustermann", friendly="surname"),
    Attr(BPK2, "BPK2-ERIKA-0001", friendly="bPK2"),
    Attr(PROVED_BY, "eID", friendly="AssertionProvedBy"),
    Attr(MAIL, "erika@example.org", trust="NORMAL", friendly="mail"),
)


@dataclass(frozen=True)
class Login:
    """The parameters of a response; every default is a valid BundID login received at `at`."""

    at: datetime = AT
    response_id: str = "_resp-7f3a"
    assertion_id: str = "_assert-91c2"
    request_id: str | None = "_req-0b44"
    scd_request_id: str | None = "_req-0b44"
    destination: str | None = ACS
    response_issuer: str | None = IDP
    status: str = SUCCESS
    sub_status: str | None = None
    issuer: str | None = IDP
    issuer_format: str | None = ENTITY
    name_id: str = "transient-5d1e"
    methods: tuple[str, ...] = (BEARER,)
    recipient: str | None = ACS
    scd_not_before: timedelta | None = None
    scd_valid: timedelta | None = timedelta(minutes=5)
    cond_not_before: timedelta | None = timedelta(minutes=-1)
    cond_valid: timedelta | None = timedelta(minutes=5)
    audiences: tuple[tuple[str, ...], ...] = ((SP,),)
    conditions: bool = True
    extra_condition: str = ""
    issued: timedelta = timedelta(seconds=-5)
    session_valid: timedelta | None = timedelta(hours=1)
    class_refs: tuple[str, ...] = ("STORK-QAA-Level-4",)
    attributes: tuple[Attr, ...] = DEFAULT_ATTRIBUTES
    extra_statement_attributes: tuple[Attr, ...] = ()
    p: str = "saml"  # the assertion namespace prefix ("" for the default namespace)
    pp: str = "samlp"
    typed: bool = False  # xsi:type="xs:string" on every AttributeValue, as many IdPs write it

    def xml(self) -> bytes:
        """The unsigned response."""

        def t(delta: timedelta | None) -> str | None:
            return None if delta is None else stamp(self.at + delta)

        def attrs(**values: str | None) -> str:
            return "".join(f" {name}={quoteattr(v)}" for name, v in values.items() if v is not None)

        a = f"{self.p}:" if self.p else ""
        q = f"{self.pp}:" if self.pp else ""
        a_ns = f'xmlns:{self.p}="{SAML}"' if self.p else f'xmlns="{SAML}"'
        q_ns = f'xmlns:{self.pp}="{SAMLP}"' if self.pp else f'xmlns="{SAMLP}"'
        status = f'<{q}StatusCode Value="{self.status}">' + (
            f'<{q}StatusCode Value="{self.sub_status}"/>' if self.sub_status else ""
        )
        confirmations = "".join(
            f'<{a}SubjectConfirmation Method="{method}"><{a}SubjectConfirmationData'
            + attrs(
                NotBefore=t(self.scd_not_before),
                NotOnOrAfter=t(self.scd_valid),
                Recipient=self.recipient,
                InResponseTo=self.scd_request_id,
            )
            + f"/></{a}SubjectConfirmation>"
            for method in self.methods
        )
        audiences = "".join(
            f"<{a}AudienceRestriction>"
            + "".join(f"<{a}Audience>{escape(x)}</{a}Audience>" for x in group)
            + f"</{a}AudienceRestriction>"
            for group in self.audiences
        )
        conditions = (
            f"<{a}Conditions"
            + attrs(NotBefore=t(self.cond_not_before), NotOnOrAfter=t(self.cond_valid))
            + f">{audiences}{self.extra_condition}</{a}Conditions>"
            if self.conditions
            else ""
        )
        authn = "".join(
            f"<{a}AuthnStatement"
            + attrs(
                AuthnInstant=stamp(self.at - timedelta(seconds=30)),
                SessionIndex="_s1",
                SessionNotOnOrAfter=t(self.session_valid),
            )
            + f"><{a}AuthnContext><{a}AuthnContextClassRef>{escape(ref)}</{a}AuthnContextClassRef>"
            f"</{a}AuthnContext></{a}AuthnStatement>"
            for ref in self.class_refs
        )
        statement = "".join(self._attribute(a, attr, self.typed) for attr in self.attributes)
        second = "".join(self._attribute(a, attr, self.typed) for attr in self.extra_statement_attributes)
        issuer = (
            f"<{a}Issuer{attrs(Format=self.issuer_format)}>{escape(self.issuer)}</{a}Issuer>"
            if self.issuer is not None
            else ""
        )
        response_issuer = (
            f"<{a}Issuer {a_ns}>{escape(self.response_issuer)}</{a}Issuer>"
            if self.response_issuer is not None
            else ""
        )
        return (
            f"<{q}Response {q_ns}"
            + attrs(
                ID=self.response_id,
                Version="2.0",
                IssueInstant=t(self.issued),
                Destination=self.destination,
                InResponseTo=self.request_id,
            )
            + f">{response_issuer}<{q}Status>{status}</{q}StatusCode></{q}Status>"
            f'<{a}Assertion {a_ns} xmlns:akdb="{AKDB}" xmlns:xs="http://www.w3.org/2001/XMLSchema"'
            + attrs(ID=self.assertion_id, Version="2.0", IssueInstant=t(self.issued))
            + f">{issuer}<{a}Subject><{a}NameID"
            ' Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient"'
            f">{escape(self.name_id)}</{a}NameID>{confirmations}</{a}Subject>{conditions}{authn}"
            f"<{a}AttributeStatement>{statement}</{a}AttributeStatement>"
            + (f"<{a}AttributeStatement>{second}</{a}AttributeStatement>" if second else "")
            + f"</{a}Assertion></{q}Response>"
        ).encode()

    @staticmethod
    def _attribute(a: str, attr: Attr, typed: bool = False) -> str:
        values = attr.value if isinstance(attr.value, tuple) else (attr.value,)
        xsi = f' xmlns:xsi="{XSI}" xsi:type="xs:string"' if typed else ""
        trust = f' akdb:TrustLevel="{attr.trust}"' if attr.trust is not None else ""
        return (
            f'<{a}Attribute Name="{attr.oid}" FriendlyName="{attr.friendly}"'
            f' NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri"{trust}>'
            + "".join(f"<{a}AttributeValue{xsi}>{escape(v)}</{a}AttributeValue>" for v in values)
            + f"</{a}Attribute>"
        )


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))


def assertion_of(root: etree._Element) -> etree._Element:
    found = root.find("saml:Assertion", NS)
    assert found is not None
    return found


# -- the test's own XML-DSig signer --------------------------------------------------------------------


@dataclass(frozen=True)
class Sign:
    """How to sign: everything a signer could choose (and an attacker could abuse)."""

    key: rsa.RSAPrivateKey | None = None  # None: the IdP's current key
    method: str = RSA_SHA256
    digest: str = SHA256
    transforms: tuple[tuple[str, str], ...] = ((ENVELOPED, ""), (EXC_C14N, ""))  # algorithm, inner XML
    c14n: str = EXC_C14N
    uri: str | None = None  # None: "#" + the ID of the signed element
    key_info: x509.Certificate | None = None
    hmac_secret: bytes = b""
    extra_references: tuple[str, ...] = ()
    prefix: str = "ds"
    prefix_list: tuple[str, ...] = ()  # exc-c14n InclusiveNamespaces (kept although not visibly used)
    key_info_xml: str = ""  # a raw KeyInfo child, e.g. an attacker's KeyValue


def canonical(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def sign(kit: Kit, holder: etree._Element, how: Sign = Sign(), target: etree._Element | None = None) -> None:
    """Put an enveloped signature into `holder` (after its Issuer) over `target` (default: itself)."""
    target = holder if target is None else target
    d = f"{how.prefix}:" if how.prefix else ""
    ns = f'xmlns:{how.prefix}="{DS}"' if how.prefix else f'xmlns="{DS}"'
    inclusive_ns = (
        f'<ec:InclusiveNamespaces xmlns:ec="{EC}" PrefixList="{" ".join(how.prefix_list)}"/>'
        if how.prefix_list
        else ""
    )
    transforms = "".join(
        f'<{d}Transform Algorithm="{algorithm}">{inner or (inclusive_ns if algorithm == EXC_C14N else "")}'
        f"</{d}Transform>"
        for algorithm, inner in how.transforms
    )
    uri = f"#{target.get('ID')}" if how.uri is None else how.uri
    references = "".join(
        f'<{d}Reference URI="{u}"><{d}Transforms>{transforms}</{d}Transforms>'
        f'<{d}DigestMethod Algorithm="{how.digest}"/><{d}DigestValue/></{d}Reference>'
        for u in (uri, *how.extra_references)
    )
    key_info = (
        f"<{d}KeyInfo><{d}X509Data><{d}X509Certificate>{der64(how.key_info)}</{d}X509Certificate>"
        f"</{d}X509Data></{d}KeyInfo>"
        if how.key_info is not None
        else f"<{d}KeyInfo>{how.key_info_xml}</{d}KeyInfo>"
        if how.key_info_xml
        else ""
    )
    signature = etree.fromstring(
        f"<{d}Signature {ns}><{d}SignedInfo>"
        f'<{d}CanonicalizationMethod Algorithm="{how.c14n}"/><{d}SignatureMethod Algorithm="{how.method}"/>'
        f"{references}</{d}SignedInfo><{d}SignatureValue/>{key_info}</{d}Signature>"
    )
    # the digest is over the target without this signature (the enveloped-signature transform)
    inclusive = any(algorithm == C14N for algorithm, _ in how.transforms)
    content = (
        etree.tostring(target, method="c14n")
        if inclusive
        else etree.tostring(
            target, method="c14n", exclusive=True, inclusive_ns_prefixes=list(how.prefix_list) or None
        )
    )
    digest = base64.b64encode(DIGESTS[how.digest](content).digest()).decode()
    first = holder[0] if len(holder) else None
    holder.insert(1 if first is not None and first.tag == f"{{{SAML}}}Issuer" else 0, signature)
    for value in signature.iter(f"{{{DS}}}DigestValue"):
        value.text = digest
    signed_info = signature.find("ds:SignedInfo", NS)
    assert signed_info is not None
    data = canonical(signed_info)
    if how.method in (HMAC_SHA256, HMAC_SHA1):
        algorithm = hashlib.sha256 if how.method == HMAC_SHA256 else hashlib.sha1
        value = hmac.new(how.hmac_secret, data, algorithm).digest()
    else:
        key = how.key or kit.key
        try:
            value = key.sign(data, padding.PKCS1v15(), RSA_HASHES[how.method])
        except (UnsupportedAlgorithm, ValueError):  # MD5 refused by this OpenSSL: the value is junk
            value = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    signature_value = signature.find("ds:SignatureValue", NS)
    assert signature_value is not None
    signature_value.text = base64.b64encode(value).decode()


def signed(
    kit: Kit, login: Login = Login(), how: Sign = Sign(), response: Sign | None = None
) -> etree._Element:
    """The response with a signed assertion (and a signed Response if `response` says how)."""
    root = parse(login.xml())
    sign(kit, assertion_of(root), how)
    if response is not None:
        sign(kit, root, response)
    return root


def xml(root: etree._Element) -> bytes:
    return etree.tostring(root)


# -- the cases -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A document to verify and its expected outcome (a code, or OK with a check of what was read)."""

    build: Callable[[Kit], bytes]
    expected: str
    check: Callable[[VerifiedAssertion], None] | None = None
    expect: Callable[[Kit], Expectations] = field(default=lambda kit: kit.expect())
    at: datetime = AT


CASES: dict[str, Case] = {}


def case(
    name: str,
    expected: str,
    check: Callable[[VerifiedAssertion], None] | None = None,
    expect: Callable[[Kit], Expectations] | None = None,
    at: datetime = AT,
) -> Callable[[Callable[[Kit], bytes]], Callable[[Kit], bytes]]:
    def register(build: Callable[[Kit], bytes]) -> Callable[[Kit], bytes]:
        assert name not in CASES, name
        CASES[name] = Case(build, expected, check, expect or (lambda kit: kit.expect()), at)
        return build

    return register


def simple(name: str, expected: str, login: Login = Login(), how: Sign = Sign(), **kw: Any) -> None:
    """A case that is just a signed response with other parameters."""
    case(name, expected, **kw)(lambda kit: xml(signed(kit, login, how)))


def attribute(result: VerifiedAssertion, key: str) -> str | None:
    return result.value(key)


# valid responses and benign variations --------------------------------------------------------------


def _is_erika(result: VerifiedAssertion) -> None:
    assert (attribute(result, "given_name"), attribute(result, "family_name")) == ("Erika", "Mustermann")
    assert result.issuer == IDP and result.assertion_id == "_assert-91c2"
    assert result.level is TrustLevel.HOCH


simple("valid", OK, check=_is_erika)


@case("valid-signed-by-second-metadata-key", OK, check=_is_erika)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, how=Sign(key=kit.next_key)))


@case(
    "valid-expired-idp-certificate-pinned-by-metadata",
    OK,
    check=_is_erika,
    expect=lambda kit: kit.expect(kit.expired_metadata),
)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, how=Sign(key=kit.expired_key)))


@case("valid-signed-response-and-signed-assertion", OK, check=_is_erika)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, response=Sign()))


@case(
    "valid-signed-response-required",
    OK,
    check=_is_erika,
    expect=lambda kit: kit.expect(require_response_signature=True),
)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, response=Sign()))


simple("valid-other-prefixes", OK, Login(p="saml2", pp="saml2p"), Sign(prefix="dsig"), check=_is_erika)
simple("valid-default-namespaces", OK, Login(p=""), Sign(prefix=""), check=_is_erika)
simple("valid-keyinfo-with-the-metadata-certificate", OK, how=Sign(key_info=None), check=_is_erika)
simple("valid-without-response-issuer", OK, Login(response_issuer=None), check=_is_erika)
simple("valid-unsolicited-without-inresponseto", OK, Login(request_id=None, scd_request_id=None))
simple("valid-unsigned-response-without-destination", OK, Login(destination=None))
simple("valid-c14n-1.0-transform", OK, how=Sign(transforms=((ENVELOPED, ""), (C14N, ""))))
simple("valid-bearer-among-other-confirmations", OK, Login(methods=(HOLDER_OF_KEY, BEARER)), check=_is_erika)
simple("valid-audience-list-containing-ours", OK, Login(audiences=(("https://other.example/sp", SP),)))
simple("valid-within-skew-not-yet-valid", OK, Login(cond_not_before=SKEW - timedelta(seconds=1)))
simple("valid-not-before-exactly-at-skew", OK, Login(cond_not_before=SKEW))
simple("valid-expiry-one-second-inside-skew", OK, Login(cond_valid=-SKEW + timedelta(seconds=1)))
simple(
    "valid-within-forwarding-grace",
    OK,
    Login(cond_valid=-timedelta(minutes=30), scd_valid=-timedelta(minutes=30)),
    expect=lambda kit: kit.expect(grace=timedelta(hours=1)),
)
simple("valid-without-session-end", OK, Login(session_valid=None))
simple(
    "valid-inclusive-namespaces-prefix-list-and-xsi-type",
    OK,
    Login(typed=True),
    Sign(prefix_list=("xs",)),
    check=_is_erika,
)
simple("valid-xsi-typed-values-without-prefix-list", OK, Login(typed=True), check=_is_erika)
simple("valid-rsa-sha512", OK, how=Sign(method=RSA_SHA512, digest=SHA512), check=_is_erika)
simple("valid-swapped-prefixes", OK, Login(p="ds", pp="saml"), Sign(prefix="samlp"), check=_is_erika)


@case("valid-seven-digit-fractions-and-offsets", OK, check=_is_erika)
def _(kit: Kit) -> bytes:
    # xs:dateTime allows any number of fraction digits (ADFS writes seven) and a zone offset
    text = Login().xml().decode()
    end = stamp(AT + timedelta(minutes=5))
    text = text.replace(f'"{end}"', f'"{end[:-1]}.1234567Z"').replace(
        f'"{stamp(AT + timedelta(hours=1))}"',
        '"' + (AT + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+01:00") + '"',
    )
    root = parse(text.encode())
    sign(kit, assertion_of(root))
    return xml(root)


@case("valid-utf-8-bom", OK, check=_is_erika)
def _(kit: Kit) -> bytes:
    return b"\xef\xbb\xbf" + etree.tostring(signed(kit), encoding="UTF-8", xml_declaration=True)


@case("valid-utf-16-document", OK, check=_is_erika)
def _(kit: Kit) -> bytes:
    return etree.tostring(signed(kit), encoding="UTF-16", xml_declaration=True)


@case("valid-idp-key-with-an-attacker-keyvalue", OK, check=_is_erika)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, how=Sign(key_info_xml=key_value(kit.evil_key))))


simple(
    "valid-lowest-of-two-levels",
    OK,
    Login(class_refs=("STORK-QAA-Level-4", "STORK-QAA-Level-2")),
    check=lambda r: _level(r, TrustLevel.NORMAL),
)
simple(
    "valid-unknown-class-ref-gives-no-level",
    OK,
    Login(class_refs=("urn:oasis:names:tc:SAML:2.0:ac:classes:Password",)),
    check=lambda r: _level(r, None),
)


def _level(result: VerifiedAssertion, level: TrustLevel | None) -> None:
    assert result.level is level


@case("valid-comment-in-nameid-and-attribute-reads-the-whole-signed-value", OK)
def _(kit: Kit) -> bytes:
    # Duo's 2018 class of bug: a comment splits a text node; the signature (comments dropped by
    # C14N) stays valid and a reader that takes the first text node sees "user@example.org"
    root = parse(Login(name_id="user@example.org.evil.example").xml())
    assertion = assertion_of(root)
    name_id = assertion.find("saml:Subject/saml:NameID", NS)
    given = assertion.find(
        f"saml:AttributeStatement/saml:Attribute[@Name='{GIVEN_NAME}']/saml:AttributeValue", NS
    )
    assert name_id is not None and given is not None
    sign(kit, assertion)
    name_id.text = "user@example.org"
    name_id.append(etree.Comment(""))
    name_id[-1].tail = ".evil.example"
    given.text = "Eri"
    given.append(etree.Comment("x"))
    given[-1].tail = "ka"
    return xml(root)


def _comment_check(result: VerifiedAssertion) -> None:
    assert result.name_id == "user@example.org.evil.example"
    assert attribute(result, "given_name") == "Erika"


CASES["valid-comment-in-nameid-and-attribute-reads-the-whole-signed-value"] = replace(
    CASES["valid-comment-in-nameid-and-attribute-reads-the-whole-signed-value"], check=_comment_check
)


@case("valid-whitespace-outside-the-signed-assertion", OK, check=_is_erika)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    root.text = "\n   "
    for child in root:
        child.tail = "\n\t  \n"
    return xml(root)


@case("valid-reordered-attributes-and-empty-element-forms", OK, check=_is_erika)
def _(kit: Kit) -> bytes:
    # C14N sorts attributes and writes empty elements as start/end pairs: the digest is the same
    text = xml(signed(kit)).decode()
    text = text.replace('ID="_assert-91c2" Version="2.0"', 'Version="2.0"  ID="_assert-91c2"', 1)
    assert text.count("/></saml:SubjectConfirmation>") == 1
    text = text.replace(
        "/></saml:SubjectConfirmation>", "></saml:SubjectConfirmationData></saml:SubjectConfirmation>"
    )
    # base64 may be wrapped (xs:base64Binary); the SignatureValue is outside SignedInfo
    return text.replace("<ds:SignatureValue>", "<ds:SignatureValue>\n", 1).encode()


@case("valid-character-references-and-cdata", OK, check=_is_erika)
def _(kit: Kit) -> bytes:
    text = xml(signed(kit)).decode()
    text = text.replace(">Erika<", ">&#69;ri&#x6b;a<", 1).replace(
        ">Mustermann<", "><![CDATA[Mustermann]]><", 1
    )
    return text.encode()


@case("valid-iso-8859-1-document", OK, check=lambda r: _surname(r, "Müller"))
def _(kit: Kit) -> bytes:
    login = Login(attributes=(*DEFAULT_ATTRIBUTES[:1], Attr(SURNAME, "Müller"), *DEFAULT_ATTRIBUTES[2:]))
    root = signed(kit, login)
    return etree.tostring(root, encoding="ISO-8859-1", xml_declaration=True)


def _surname(result: VerifiedAssertion, name: str) -> None:
    assert attribute(result, "family_name") == name


@case("valid-extra-unused-namespace-declarations", OK, check=_is_erika)
def _(kit: Kit) -> bytes:
    # exclusive C14N leaves out namespaces the signed element does not use, also inside it
    text = xml(signed(kit)).decode()
    text = text.replace("<samlp:Response ", '<samlp:Response xmlns:evil="urn:evil" xmlns:x="urn:x" ', 1)
    return text.replace("<saml:Assertion ", '<saml:Assertion xmlns:y="urn:y" ', 1).encode()


@case("id-attribute-collision-in-another-spelling", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    etree.SubElement(extensions, "{urn:evil}Decoy", Id="_assert-91c2").text = "Mallory"
    root.insert(1, extensions)
    return xml(root)


# signature wrapping ----------------------------------------------------------------------------------


def evil_assertion(kit: Kit, assertion_id: str = "_evil", name: str = "Mallory") -> etree._Element:
    login = Login(
        assertion_id=assertion_id,
        attributes=(Attr(GIVEN_NAME, name), Attr(SURNAME, "Evil"), Attr(BPK2, "BPK2-MALLORY")),
    )
    return assertion_of(parse(login.xml()))


@case("xsw1-signed-response-copied-into-its-own-signature", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    original = signed(kit, response=Sign())
    root = copy.deepcopy(original)
    root.set("ID", "_evil-response")
    root.replace(assertion_of(root), evil_assertion(kit))
    signature = root.find("ds:Signature", NS)
    assert signature is not None
    signature.append(original)
    return xml(root)


@case("xsw2-signed-response-detached-before-the-signature", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    original = signed(kit, response=Sign())
    root = copy.deepcopy(original)
    root.set("ID", "_evil-response")
    root.replace(assertion_of(root), evil_assertion(kit))
    signature = root.find("ds:Signature", NS)
    assert signature is not None
    signature.addprevious(original)
    return xml(root)


@case("xsw3-evil-assertion-before-the-signed-one", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    assertion_of(root).addprevious(evil_assertion(kit))
    return xml(root)


@case("xsw4-signed-assertion-inside-the-evil-one", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    genuine = assertion_of(root)
    evil = evil_assertion(kit)
    genuine.addprevious(evil)
    evil.append(genuine)
    return xml(root)


@case("xsw5-evil-assertion-with-copied-signature-genuine-appended", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    genuine = assertion_of(root)
    evil = evil_assertion(kit, assertion_id="_assert-91c2")
    signature = genuine.find("ds:Signature", NS)
    assert signature is not None
    evil.insert(1, copy.deepcopy(signature))
    root.replace(genuine, evil)
    root.append(genuine)
    return xml(root)


@case("xsw6-genuine-inside-the-copied-signature-of-the-evil-one", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    genuine = assertion_of(root)
    evil = evil_assertion(kit, assertion_id="_assert-91c2")
    signature = copy.deepcopy(genuine.find("ds:Signature", NS))
    assert signature is not None
    evil.insert(1, signature)
    root.replace(genuine, evil)
    genuine.remove(genuine.find("ds:Signature", NS))  # type: ignore[arg-type]
    obj = etree.SubElement(signature, f"{{{DS}}}Object")
    obj.append(genuine)
    return xml(root)


@case("xsw7-evil-assertion-in-extensions", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    extensions.append(evil_assertion(kit))
    root.insert(1, extensions)
    return xml(root)


@case("xsw7b-genuine-assertion-in-extensions-evil-outside", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    genuine = assertion_of(root)
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    root.replace(genuine, evil_assertion(kit))
    extensions.append(genuine)
    root.insert(1, extensions)
    return xml(root)


@case("xsw8-genuine-in-object-of-evil-signature", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    genuine = assertion_of(root)
    evil = evil_assertion(kit, assertion_id="_assert-91c2")
    signature = copy.deepcopy(genuine.find("ds:Signature", NS))
    assert signature is not None
    evil.insert(1, signature)
    obj = etree.SubElement(signature, f"{{{DS}}}Object")
    root.replace(genuine, evil)
    obj.append(genuine)  # genuine keeps its own signature
    return xml(root)


@case("evil-assertion-after-the-signed-one", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    assertion_of(root).addnext(evil_assertion(kit))
    return xml(root)


@case("id-collision-evil-before-genuine", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    assertion_of(root).addprevious(evil_assertion(kit, assertion_id="_assert-91c2"))
    return xml(root)


@case("id-collision-response-and-assertion-share-the-id", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, Login(response_id="_assert-91c2"), response=Sign()))


@case("id-attribute-collision-namespaced", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    decoy = etree.Element(f"{{{SAMLP}}}Extensions", {f"{{{wsu}}}Id": "_assert-91c2"})
    root.insert(1, decoy)
    return xml(root)


@case("two-validly-signed-assertions", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    other = parse(Login(assertion_id="_other", attributes=(Attr(GIVEN_NAME, "Mallory"),)).xml())
    second = assertion_of(other)
    sign(kit, second)
    assertion_of(root).addnext(second)
    return xml(root)


@case("evil-assertion-inside-the-signed-assertion-advice", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    genuine = assertion_of(root)
    advice = etree.SubElement(genuine, f"{{{SAML}}}Advice")
    advice.append(evil_assertion(kit))
    return xml(root)


@case("two-signatures-in-the-assertion", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    genuine = assertion_of(root)
    signature = genuine.find("ds:Signature", NS)
    assert signature is not None
    signature.addnext(copy.deepcopy(signature))
    return xml(root)


@case("evil-signature-first-genuine-second", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    genuine = assertion_of(root)
    other = parse(Login().xml())
    sign(kit, assertion_of(other), Sign(key=kit.evil_key))
    evil_signature = assertion_of(other).find("ds:Signature", NS)
    assert evil_signature is not None
    genuine.insert(1, evil_signature)
    return xml(root)


@case("signature-over-the-response-placed-in-the-assertion", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = parse(Login().xml())
    sign(kit, assertion_of(root), Sign(), target=root)
    return xml(root)


@case("signature-over-another-element-id", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = parse(Login().xml())
    assertion = assertion_of(root)
    subject = assertion.find("saml:Subject", NS)
    assert subject is not None
    subject.set("ID", "_subject")
    sign(kit, assertion, Sign(), target=subject)
    return xml(root)


@case("signature-with-two-references", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, how=Sign(extra_references=("#_resp-7f3a",))))


@case("signed-response-unsigned-evil-assertion", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = parse(Login().xml())
    sign(kit, root)  # the IdP signs only the Response; the Assertion must be signed itself
    return xml(root)


@case("signed-response-holding-another-assertion-than-the-signed-one", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    genuine = signed(kit, response=Sign())
    other = signed(kit, Login(assertion_id="_other-login", attributes=(Attr(GIVEN_NAME, "Mallory"),)))
    genuine.replace(assertion_of(genuine), assertion_of(other))
    return xml(genuine)


# references and transforms ---------------------------------------------------------------------------


simple("reference-uri-empty", R.BAD_SIGNATURE, how=Sign(uri=""))
simple("reference-uri-external", R.BAD_SIGNATURE, how=Sign(uri="https://evil.example/assertion.xml"))
simple("reference-uri-xpointer-root", R.BAD_SIGNATURE, how=Sign(uri="#xpointer(/)"))
simple("reference-uri-xpointer-id", R.BAD_SIGNATURE, how=Sign(uri="#xpointer(id('_assert-91c2'))"))
simple("reference-uri-other-id", R.BAD_SIGNATURE, how=Sign(uri="#_resp-7f3a"))
simple("reference-uri-unknown-id", R.BAD_SIGNATURE, how=Sign(uri="#_nowhere"))
XSL = (
    '<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0">'
    '<xsl:template match="/"><xsl:copy-of select="document(\'https://evil.example/x\')"/>'
    "</xsl:template></xsl:stylesheet>"
)
simple("transform-xslt", R.BAD_SIGNATURE, how=Sign(transforms=((ENVELOPED, ""), (XSLT, XSL), (EXC_C14N, ""))))
simple(
    "transform-xpath",
    R.BAD_SIGNATURE,
    how=Sign(
        transforms=((XPATH, f"<ds:XPath xmlns:ds='{DS}'>not(ancestor-or-self::ds:Signature)</ds:XPath>"),)
    ),
)
simple(
    "transform-xpath-filter2",
    R.BAD_SIGNATURE,
    how=Sign(
        transforms=(
            (ENVELOPED, ""),
            (
                XPATH_FILTER2,
                f'<dsig-xpath:XPath xmlns:dsig-xpath="{XPATH_FILTER2}" Filter="union">/</dsig-xpath:XPath>',
            ),
        )
    ),
)
simple("transform-base64", R.BAD_SIGNATURE, how=Sign(transforms=((ENVELOPED, ""), (DS + "base64", ""))))
simple("transform-without-enveloped", R.BAD_SIGNATURE, how=Sign(transforms=((EXC_C14N, ""),)))
simple("transform-unknown-c14n-uri", R.BAD_SIGNATURE, how=Sign(c14n="urn:evil:c14n"))

# algorithms and keys -----------------------------------------------------------------------------------

simple("digest-sha1", R.BAD_SIGNATURE, how=Sign(digest=SHA1))
simple("digest-md5", R.BAD_SIGNATURE, how=Sign(digest=MD5))
simple("signature-rsa-sha1", R.BAD_SIGNATURE, how=Sign(method=RSA_SHA1))
simple("signature-rsa-md5", R.BAD_SIGNATURE, how=Sign(method=RSA_MD5))


@case("signature-hmac-keyed-with-the-public-key-pem", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    secret = kit.certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return xml(signed(kit, how=Sign(method=HMAC_SHA256, hmac_secret=secret)))


@case("signature-hmac-keyed-with-the-certificate-der", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    secret = kit.certificate.public_bytes(serialization.Encoding.DER)
    return xml(signed(kit, how=Sign(method=HMAC_SHA1, hmac_secret=secret)))


@case("signature-hmac-keyed-with-the-certificate-pem", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    secret = kit.certificate.public_bytes(serialization.Encoding.PEM)
    return xml(signed(kit, how=Sign(method=HMAC_SHA256, hmac_secret=secret)))


@case("attacker-key-with-attacker-certificate-in-keyinfo", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, how=Sign(key=kit.evil_key, key_info=kit.evil_certificate)))


@case("attacker-key-with-the-idp-certificate-in-keyinfo", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, how=Sign(key=kit.evil_key, key_info=kit.certificate)))


def key_value(key: rsa.RSAPrivateKey) -> str:
    """A ds:KeyValue with the public key: what a verifier must never trust on its own."""
    numbers = key.public_key().public_numbers()

    def b64(n: int) -> str:
        return base64.b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).decode()

    return (
        f'<ds:KeyValue xmlns:ds="{DS}"><ds:RSAKeyValue><ds:Modulus>{b64(numbers.n)}</ds:Modulus>'
        f"<ds:Exponent>{b64(numbers.e)}</ds:Exponent></ds:RSAKeyValue></ds:KeyValue>"
    )


@case("attacker-key-with-its-keyvalue", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, how=Sign(key=kit.evil_key, key_info_xml=key_value(kit.evil_key))))


@case(
    "attacker-key-listed-for-encryption-only",
    R.BAD_SIGNATURE,
    expect=lambda kit: kit.expect(kit.encryption_metadata),
)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, how=Sign(key=kit.evil_key, key_info=kit.evil_certificate)))


@case("response-signature-with-an-xslt-transform", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, response=Sign(transforms=((ENVELOPED, ""), (XSLT, XSL), (EXC_C14N, "")))))


@case("response-signature-referencing-the-assertion", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, response=Sign(uri="#_assert-91c2")))


@case("attacker-key-without-keyinfo", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, how=Sign(key=kit.evil_key)))


@case("idp-key-with-an-attacker-certificate-in-keyinfo-is-judged-by-metadata", OK, check=_is_erika)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, how=Sign(key_info=kit.evil_certificate)))


@case("response-signed-by-attacker-assertion-by-idp", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, response=Sign(key=kit.evil_key)))


@case("unsigned", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    return Login().xml()


@case(
    "unsigned-response-required",
    R.BAD_SIGNATURE,
    expect=lambda kit: kit.expect(require_response_signature=True),
)
def _(kit: Kit) -> bytes:
    return xml(signed(kit))


@case("signature-stripped-response-still-signed", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    assertion = assertion_of(root)
    assertion.remove(assertion.find("ds:Signature", NS))  # type: ignore[arg-type]
    sign(kit, root)
    return xml(root)


def _mutate_signature(kit: Kit, change: Callable[[etree._Element], None]) -> bytes:
    root = signed(kit)
    signature = assertion_of(root).find("ds:Signature", NS)
    assert signature is not None
    change(signature)
    return xml(root)


def _set(path: str, value: str) -> Callable[[etree._Element], None]:
    def change(signature: etree._Element) -> None:
        node = signature.find(path, NS)
        assert node is not None
        node.text = value

    return change


case("signature-value-empty", R.BAD_SIGNATURE)(
    lambda kit: _mutate_signature(kit, _set("ds:SignatureValue", ""))
)
case("signature-value-not-base64", R.BAD_SIGNATURE)(
    lambda kit: _mutate_signature(kit, _set("ds:SignatureValue", "!!not base64!!"))
)
case("signature-value-truncated", R.BAD_SIGNATURE)(
    lambda kit: _mutate_signature(kit, _set("ds:SignatureValue", base64.b64encode(b"\x01" * 16).decode()))
)
case("digest-value-empty", R.BAD_SIGNATURE)(
    lambda kit: _mutate_signature(kit, _set("ds:SignedInfo/ds:Reference/ds:DigestValue", ""))
)


@case("signature-without-signedinfo", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    def change(signature: etree._Element) -> None:
        signature.remove(signature.find("ds:SignedInfo", NS))  # type: ignore[arg-type]

    return _mutate_signature(kit, change)


@case("whitespace-added-inside-signedinfo", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    def change(signature: etree._Element) -> None:
        node = signature.find("ds:SignedInfo/ds:SignatureMethod", NS)
        assert node is not None
        node.tail = "\n  "

    return _mutate_signature(kit, change)


@case("signature-prefix-bound-to-another-namespace", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    text = xml(signed(kit)).decode()
    return text.replace(f'xmlns:ds="{DS}"', 'xmlns:ds="http://www.w3.org/2000/09/xmldsig-evil#"').encode()


# tampering after signing ---------------------------------------------------------------------------


def tampered(kit: Kit, old: str, new: str) -> bytes:
    text = xml(signed(kit)).decode()
    assert old in text, old
    return text.replace(old, new, 1).encode()


for _name, _old, _new in (
    ("tampered-given-name", ">Erika<", ">Mallory<"),
    ("tampered-bpk2", ">BPK2-ERIKA-0001<", ">BPK2-MALLORY-0001<"),
    ("tampered-nameid", ">transient-5d1e<", ">transient-0000<"),
    ("tampered-class-ref", "STORK-QAA-Level-4", "STORK-QAA-Level-3"),
    ("tampered-trust-level", 'akdb:TrustLevel="NORMAL"', 'akdb:TrustLevel="HOCH"'),
    ("tampered-means", ">eID<", ">eIDAS<"),
    ("tampered-audience", f"<saml:Audience>{SP}<", "<saml:Audience>https://evil.example/sp<"),
    ("tampered-not-on-or-after", stamp(AT + timedelta(minutes=5)), stamp(AT + timedelta(days=5))),
    ("tampered-assertion-id", 'ID="_assert-91c2"', 'ID="_assert-91c3"'),
    ("tampered-whitespace-in-value", ">Mustermann<", "> Mustermann<"),
    ("tampered-attribute-removed", f'<saml:Attribute Name="{MAIL}"', f'<saml:Attribute Name="{MAIL}-x"'),
):
    case(_name, R.BAD_SIGNATURE)(lambda kit, o=_old, n=_new: tampered(kit, o, n))


@case("tampered-attribute-added", R.BAD_SIGNATURE)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    statement = assertion_of(root).find("saml:AttributeStatement", NS)
    assert statement is not None
    added = Login._attribute("saml", Attr(MAIL, "x@evil.example"))
    holder = f'<w xmlns:saml="{SAML}" xmlns:akdb="{AKDB}">{added}</w>'
    statement.append(etree.fromstring(holder)[0])
    return xml(root)


# attributes, duplicated and multi-valued (signed by the IdP) -------------------------------------------


simple(
    "duplicate-attribute",
    R.ATTRIBUTE_MULTIVALUED,
    Login(attributes=(*DEFAULT_ATTRIBUTES, Attr(GIVEN_NAME, "Mallory"))),
)
simple(
    "duplicate-attribute-value",
    R.ATTRIBUTE_MULTIVALUED,
    Login(attributes=(Attr(BPK2, ("BPK2-ERIKA-0001", "BPK2-MALLORY")), *DEFAULT_ATTRIBUTES[:2])),
)
simple(
    "duplicate-attribute-in-a-second-statement",
    R.ATTRIBUTE_MULTIVALUED,
    Login(extra_statement_attributes=(Attr(SURNAME, "Evil"),)),
)
simple(
    "duplicate-attribute-name-with-whitespace",
    R.ATTRIBUTE_MULTIVALUED,
    Login(attributes=(*DEFAULT_ATTRIBUTES, Attr(f" {GIVEN_NAME} ", "Mallory"))),
)

# issuer, audience, destination, recipient ------------------------------------------------------------

simple("wrong-assertion-issuer", R.WRONG_ISSUER, Login(issuer="https://evil.example/idp"))
simple("wrong-response-issuer", R.WRONG_ISSUER, Login(response_issuer="https://evil.example/idp"))
simple("issuer-in-other-case", R.WRONG_ISSUER, Login(issuer=IDP.upper(), response_issuer=None))
simple(
    "issuer-with-transient-format",
    R.WRONG_ISSUER,
    Login(issuer_format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient"),
)
simple("issuer-missing", R.MALFORMED, Login(issuer=None))


@case("response-issuer-with-transient-format", R.WRONG_ISSUER)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    issuer = root.find("saml:Issuer", NS)
    assert issuer is not None
    issuer.set("Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:transient")
    return xml(root)


simple("wrong-audience", R.WRONG_AUDIENCE, Login(audiences=(("https://evil.example/sp",),)))
simple("audience-missing", R.WRONG_AUDIENCE, Login(audiences=()))
simple(
    "second-audience-restriction-excludes-us",
    R.WRONG_AUDIENCE,
    Login(audiences=((SP,), ("https://other.example/sp",))),
)
simple("conditions-missing", R.WRONG_AUDIENCE, Login(conditions=False))
simple("audience-prefix-of-ours", R.WRONG_AUDIENCE, Login(audiences=((SP + "/evil",),)))
simple("unknown-condition", R.MALFORMED, Login(extra_condition=f'<saml:Condition xmlns:saml="{SAML}"/>'))
simple("wrong-destination", R.WRONG_DESTINATION, Login(destination="https://evil.example/acs"))
simple("wrong-recipient", R.WRONG_DESTINATION, Login(recipient="https://evil.example/acs"))
simple("recipient-missing", R.WRONG_DESTINATION, Login(recipient=None))


@case("signed-response-without-destination", R.WRONG_DESTINATION)
def _(kit: Kit) -> bytes:
    return xml(signed(kit, Login(destination=None), response=Sign()))


# times ---------------------------------------------------------------------------------------------

simple("expired-conditions", R.EXPIRED, Login(cond_valid=-timedelta(hours=1)))
simple("expired-subject-confirmation", R.EXPIRED, Login(scd_valid=-timedelta(hours=1)))
simple("expired-session", R.EXPIRED, Login(session_valid=-timedelta(hours=1)))
simple("expired-exactly-at-skew", R.EXPIRED, Login(cond_valid=-SKEW))
simple(
    "expired-beyond-forwarding-grace",
    R.EXPIRED,
    Login(cond_valid=-timedelta(minutes=63), scd_valid=-timedelta(minutes=63)),
    expect=lambda kit: kit.expect(grace=timedelta(hours=1)),
)
simple("not-yet-valid-conditions", R.NOT_YET_VALID, Login(cond_not_before=SKEW + timedelta(seconds=1)))
simple("not-yet-valid-subject-confirmation", R.NOT_YET_VALID, Login(scd_not_before=timedelta(hours=1)))
simple("issued-in-the-future", R.NOT_YET_VALID, Login(issued=timedelta(hours=1)))
simple("subject-confirmation-without-end", R.MALFORMED, Login(scd_valid=None))


@case("time-not-a-datetime", R.MALFORMED)
def _(kit: Kit) -> bytes:
    return tampered_unsigned(kit, stamp(AT + timedelta(minutes=5)), "tomorrow")


@case("time-date-only", R.MALFORMED)
def _(kit: Kit) -> bytes:
    return tampered_unsigned(kit, stamp(AT + timedelta(minutes=5)), "2026-11-21")


@case("time-basic-format", R.MALFORMED)
def _(kit: Kit) -> bytes:
    return tampered_unsigned(kit, stamp(AT + timedelta(minutes=5)), "20261120T103500Z")


def tampered_unsigned(kit: Kit, old: str, new: str) -> bytes:
    """Change the unsigned XML, then sign: the IdP itself sent this (a broken IdP, or a test)."""
    text = Login().xml().decode()
    assert old in text
    root = parse(text.replace(old, new).encode())
    sign(kit, assertion_of(root))
    return xml(root)


# subject confirmation and request correlation ---------------------------------------------------------

simple("holder-of-key-only", R.MALFORMED, Login(methods=(HOLDER_OF_KEY,)))
simple("sender-vouches-only", R.MALFORMED, Login(methods=(SENDER_VOUCHES,)))
simple("no-subject-confirmation", R.MALFORMED, Login(methods=()))
simple("inresponseto-differs-between-response-and-assertion", R.BAD_SIGNATURE, Login(request_id="_req-other"))
simple(
    "inresponseto-only-on-the-response-of-an-unsolicited-assertion",
    R.BAD_SIGNATURE,
    Login(scd_request_id=None),
)

# status, structure, encryption -----------------------------------------------------------------------

simple("status-requester", R.STATUS_NOT_SUCCESS, Login(status="urn:oasis:names:tc:SAML:2.0:status:Requester"))
simple(
    "status-responder-with-success-below",
    R.STATUS_NOT_SUCCESS,
    Login(status="urn:oasis:names:tc:SAML:2.0:status:Responder", sub_status=SUCCESS),
)
simple(
    "status-authn-failed",
    R.STATUS_NOT_SUCCESS,
    Login(
        status="urn:oasis:names:tc:SAML:2.0:status:Responder",
        sub_status="urn:oasis:names:tc:SAML:2.0:status:AuthnFailed",
    ),
)


@case("status-missing", R.MALFORMED)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    root.remove(root.find("samlp:Status", NS))  # type: ignore[arg-type]
    return xml(root)


@case("no-assertion", R.MISSING)
def _(kit: Kit) -> bytes:
    root = parse(Login().xml())
    root.remove(assertion_of(root))
    return xml(root)


@case("encrypted-assertion", R.MALFORMED)
def _(kit: Kit) -> bytes:
    root = parse(Login().xml())
    encrypted = etree.Element(f"{{{SAML}}}EncryptedAssertion")
    etree.SubElement(encrypted, "{http://www.w3.org/2001/04/xmlenc#}EncryptedData").text = "AAAA"
    root.replace(assertion_of(root), encrypted)
    return xml(root)


@case("encrypted-assertion-beside-a-signed-one", R.MALFORMED)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    encrypted = etree.Element(f"{{{SAML}}}EncryptedAssertion")
    etree.SubElement(encrypted, "{http://www.w3.org/2001/04/xmlenc#}EncryptedData").text = "AAAA"
    assertion_of(root).addnext(encrypted)
    return xml(root)


def _encrypted_inside(kit: Kit, path: str, name: str) -> bytes:
    """The IdP signed an assertion with an encrypted part the hub cannot read."""
    root = parse(Login().xml())
    parent = assertion_of(root).find(path, NS)
    assert parent is not None
    encrypted = etree.SubElement(parent, f"{{{SAML}}}{name}")
    etree.SubElement(encrypted, "{http://www.w3.org/2001/04/xmlenc#}EncryptedData").text = "AAAA"
    sign(kit, assertion_of(root))
    return xml(root)


case("encrypted-attribute", R.MALFORMED)(
    lambda kit: _encrypted_inside(kit, "saml:AttributeStatement", "EncryptedAttribute")
)
case("encrypted-nameid-beside-the-subject-confirmation", R.MALFORMED)(
    lambda kit: _encrypted_inside(kit, "saml:Subject", "EncryptedID")
)
case("unknown-encoding-declared", R.MALFORMED)(
    lambda kit: b'<?xml version="1.0" encoding="x-evil-7"?>' + xml(signed(kit))
)


@case("saml-1-assertion-namespace", R.MISSING)
def _(kit: Kit) -> bytes:
    return xml(signed(kit)).replace(
        f'xmlns:saml="{SAML}"'.encode(), b'xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion"'
    )


@case("response-in-another-namespace", R.MALFORMED)
def _(kit: Kit) -> bytes:
    return xml(signed(kit)).replace(f'xmlns:samlp="{SAMLP}"'.encode(), b'xmlns:samlp="urn:evil:protocol"')


@case("root-is-an-assertion", R.MALFORMED)
def _(kit: Kit) -> bytes:
    return xml(assertion_of(signed(kit)))


@case("version-1.1", R.MALFORMED)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    root.set("Version", "1.1")
    return xml(root)


# parser attacks -----------------------------------------------------------------------------------------


def _doctype(kit: Kit, dtd: str, reference: str = "") -> bytes:
    text = xml(signed(kit)).decode()
    if reference:
        text = text.replace(">transient-5d1e<", f">{reference}<", 1)
    return f"<?xml version='1.0'?>\n<!DOCTYPE samlp:Response [{dtd}]>\n{text}".encode()


case("xxe-external-file", R.MALFORMED)(
    lambda kit: _doctype(kit, '<!ENTITY x SYSTEM "file:///etc/passwd">', "&x;")
)
case("xxe-external-url", R.MALFORMED)(
    lambda kit: _doctype(kit, '<!ENTITY x SYSTEM "http://127.0.0.1:9/x">', "&x;")
)
case("xxe-parameter-entity", R.MALFORMED)(
    lambda kit: _doctype(kit, '<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;')
)
case("billion-laughs", R.MALFORMED)(
    lambda kit: _doctype(
        kit,
        '<!ENTITY l0 "ha">' + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)),
        "&l9;",
    )
)
case("internal-entity", R.MALFORMED)(lambda kit: _doctype(kit, '<!ENTITY n "Mallory">', "&n;"))
case("doctype-without-entities", R.MALFORMED)(lambda kit: _doctype(kit, "<!ELEMENT x ANY>"))


@case("xinclude-in-the-response", R.MALFORMED)
def _(kit: Kit) -> bytes:
    root = signed(kit)
    include = etree.Element(
        "{http://www.w3.org/2001/XInclude}include", href="file:///etc/passwd", parse="text"
    )
    root.insert(1, include)
    return xml(root)


@case("xinclude-inside-the-signed-assertion", R.MALFORMED)
def _(kit: Kit) -> bytes:
    root = parse(Login().xml())
    name_id = assertion_of(root).find("saml:Subject/saml:NameID", NS)
    assert name_id is not None
    name_id.append(
        etree.Element("{http://www.w3.org/2001/XInclude}include", href="file:///etc/hostname", parse="text")
    )
    sign(kit, assertion_of(root))
    return xml(root)


case("deeply-nested", R.MALFORMED)(
    lambda kit: xml(signed(kit)).replace(
        b"</samlp:Response>", b"<x>" * 5000 + b"</x>" * 5000 + b"</samlp:Response>"
    )
)
case("processing-instruction-and-comment-noise-outside", OK, check=_is_erika)(
    lambda kit: xml(signed(kit)).replace(b"<samlp:Status>", b"<?evil x?><!-- hi --><samlp:Status>", 1)
)
simple("destination-with-trailing-slash", R.WRONG_DESTINATION, Login(destination=ACS + "/"))
simple("recipient-in-other-case", R.WRONG_DESTINATION, Login(recipient=ACS.upper()))


@case("time-with-comma-fraction", R.MALFORMED)
def _(kit: Kit) -> bytes:
    end = stamp(AT + timedelta(minutes=5))
    return tampered_unsigned(kit, end, end[:-1] + ",5Z")


case("not-xml", R.MALFORMED)(lambda kit: b"PHNhbWw+ this is not xml")
case("empty-document", R.MALFORMED)(lambda kit: b"")
case("invalid-utf-8", R.MALFORMED)(lambda kit: xml(signed(kit)).replace(b"Erika", b"Er\xffka"))
case("truncated-document", R.MALFORMED)(lambda kit: xml(signed(kit))[:-40])
case("oversize-document", R.MALFORMED)(
    lambda kit: xml(signed(kit)).replace(
        b"</samlp:Response>", b"<!--" + b"x" * 600_000 + b"--></samlp:Response>"
    )
)
case("nul-byte", R.MALFORMED)(lambda kit: xml(signed(kit)).replace(b"Erika", b"Eri\x00ka"))


# -- running them ----------------------------------------------------------------------------------------


def outcome(document: bytes, expect: Expectations, at: datetime) -> str | VerifiedAssertion:
    """The verified assertion, or the code it was refused with (anything else escaping is a crash)."""
    try:
        return verify_response(document, expect, at)
    except SamlRejected as rejected:
        assert rejected.reason and rejected.detail  # a clear reason, for the applicant and the log
        return str(rejected.code)


@pytest.mark.parametrize("name", sorted(CASES))
def test_attack(name: str, kit: Kit) -> None:
    spec = CASES[name]
    result = outcome(spec.build(kit), spec.expect(kit), spec.at)
    if spec.expected == OK:
        assert isinstance(result, VerifiedAssertion), f"{name}: refused as {result}"
        if spec.check is not None:
            spec.check(result)
    else:
        assert result == spec.expected, f"{name}: {result if isinstance(result, str) else 'accepted'}"


def test_the_suite_is_large_enough() -> None:
    assert len(CASES) >= 90


# -- through the connector: base64, replay, levels --------------------------------------------------------


def encoded(root: etree._Element | bytes) -> str:
    data = root if isinstance(root, bytes) else xml(root)
    return base64.b64encode(data).decode()


@pytest.fixture
def connector_settings(kit: Kit) -> dict[str, Any]:
    return {"type": "bundid", "idp_metadata": str(kit.metadata), "sp_entity_id": SP, "acs_url": ACS}


async def code_of(context: ConnectorContext, settings: dict[str, Any], response: str, app_id: str) -> str:
    identity = make_identity(context, settings)
    try:
        await identity.verify(with_response(response, app_id=app_id), None)
    except Rejection as rejection:
        return str(rejection.code)
    return OK


def now_login(**changes: Any) -> Login:
    return Login(at=datetime.now(UTC), **changes)


@pytest.mark.parametrize(
    ("name", "response", "expected"),
    [
        ("base64-garbage", "%%%not base64%%%", R.MALFORMED),
        ("base64-of-binary", base64.b64encode(b"\x89PNG\r\n\x1a\n" * 10).decode(), R.MALFORMED),
        ("base64-padding-wrong", "PHNhbWxwOlJlc3BvbnNl=", R.MALFORMED),
        ("empty-field", "", R.MISSING),
        ("whitespace-only", "  \n ", R.MISSING),
        ("oversize-base64", "A" * (2 * 1024 * 1024), R.MALFORMED),
    ],
)
async def test_transport_encoding_attacks(
    name: str,
    response: str,
    expected: str,
    connector_context: ConnectorContext,
    connector_settings: dict[str, Any],
) -> None:
    assert await code_of(connector_context, connector_settings, response, "app-1") == expected


async def test_base64_with_line_breaks_is_accepted(
    kit: Kit, connector_context: ConnectorContext, connector_settings: dict[str, Any]
) -> None:
    text = encoded(signed(kit, now_login()))
    wrapped = "\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert await code_of(connector_context, connector_settings, wrapped, "app-1") == OK


async def test_replay_same_response_for_another_application(
    kit: Kit, connector_context: ConnectorContext, connector_settings: dict[str, Any]
) -> None:
    login = encoded(signed(kit, now_login()))
    assert await code_of(connector_context, connector_settings, login, "app-1") == OK
    assert await code_of(connector_context, connector_settings, login, "app-1") == OK  # a retried step
    assert await code_of(connector_context, connector_settings, login, "app-2") == R.REPLAYED


async def test_replay_same_assertion_id_with_a_new_signature_and_values(
    kit: Kit, connector_context: ConnectorContext, connector_settings: dict[str, Any]
) -> None:
    first = encoded(signed(kit, now_login()))
    # the same assertion ID, other values, signed by the other metadata key: still the same login
    again = encoded(signed(kit, now_login(name_id="other", response_id="_r2"), Sign(key=kit.next_key)))
    assert await code_of(connector_context, connector_settings, first, "app-1") == OK
    assert await code_of(connector_context, connector_settings, again, "app-2") == R.REPLAYED


async def test_replay_via_two_connectors_trusting_one_idp(
    kit: Kit, connector_context: ConnectorContext, connector_settings: dict[str, Any]
) -> None:
    login = encoded(signed(kit, now_login()))
    other = {**connector_settings, "sp_entity_id": SP, "clock_skew_seconds": 30}
    assert await code_of(connector_context, connector_settings, login, "app-1") == OK
    assert await code_of(connector_context, other, login, "app-2") == R.REPLAYED


async def test_replay_raced_by_concurrent_applications_admits_exactly_one(
    kit: Kit, connector_context: ConnectorContext, connector_settings: dict[str, Any]
) -> None:
    login = encoded(signed(kit, now_login()))
    codes = await asyncio.gather(
        *(code_of(connector_context, connector_settings, login, f"app-{n}") for n in range(8))
    )
    assert sorted(codes) == [OK] + [R.REPLAYED] * 7


async def test_a_refused_response_does_not_burn_the_assertion(
    kit: Kit, connector_context: ConnectorContext, connector_settings: dict[str, Any]
) -> None:
    genuine = signed(kit, now_login())
    wrapped = copy.deepcopy(genuine)
    assertion_of(wrapped).addprevious(evil_assertion(kit))
    assert await code_of(connector_context, connector_settings, encoded(wrapped), "app-1") == R.BAD_SIGNATURE
    assert await code_of(connector_context, connector_settings, encoded(genuine), "app-2") == OK


@pytest.mark.parametrize(
    ("means", "class_ref", "level"),
    [
        ("eID", "STORK-QAA-Level-4", TrustLevel.HOCH),
        ("Benutzername", "STORK-QAA-Level-4", TrustLevel.UNTERGEORDNET),  # never more than the means
        ("Elster", "STORK-QAA-Level-4", TrustLevel.SUBSTANTIELL),
        ("eID", "stork-qaa-level-4", None),  # not the STORK spelling: no level at all
        ("eID", "STORK-QAA-Level-5", None),
    ],
)
async def test_level_is_what_signed_means_and_class_ref_support(
    means: str,
    class_ref: str,
    level: TrustLevel | None,
    kit: Kit,
    connector_context: ConnectorContext,
    connector_settings: dict[str, Any],
) -> None:
    attributes = (*(a for a in DEFAULT_ATTRIBUTES if a.oid != PROVED_BY), Attr(PROVED_BY, means))
    login = encoded(signed(kit, now_login(class_refs=(class_ref,), attributes=attributes)))
    identity = make_identity(connector_context, connector_settings)
    verification = await identity.verify(with_response(login, app_id="app-1"), None)
    assert verification.identity.level is level


# -- end to end: FormCycle intake -> identity step -> journal ----------------------------------------------

TOKEN = "formcycle-saml-attacks-0123456789"


def _iter_e2e() -> Iterator[tuple[str, Callable[[Kit], str], str]]:
    yield "wrapped", lambda kit: encoded(_xsw3(kit)), R.BAD_SIGNATURE
    yield "expired", lambda kit: encoded(signed(kit, now_login(cond_valid=-timedelta(hours=3)))), R.EXPIRED
    yield (
        "hmac",
        lambda kit: encoded(
            signed(
                kit,
                now_login(),
                Sign(
                    method=HMAC_SHA256, hmac_secret=kit.certificate.public_bytes(serialization.Encoding.PEM)
                ),
            )
        ),
        R.BAD_SIGNATURE,
    )
    yield (
        "xxe",
        lambda kit: encoded(_doctype(kit, '<!ENTITY x SYSTEM "file:///etc/passwd">', "&x;")),
        R.MALFORMED,
    )


def _xsw3(kit: Kit) -> etree._Element:
    root = signed(kit, now_login())
    assertion_of(root).addprevious(evil_assertion(kit))
    return root


async def test_end_to_end_attacks_are_rejected_with_their_code(hub_factory: Any, kit: Kit) -> None:
    connectors = {
        "formcycle": {"type": "formcycle", "token": "${FORMCYCLE_TOKEN}", "id_field": "vorgang_id"},
        "bundid": {"type": "bundid", "idp_metadata": str(kit.metadata), "sp_entity_id": SP, "acs_url": ACS},
        "rec": {"type": "test-recording"},
    }
    routes = [{"name": "r", "from": "formcycle", "identity": {"via": "bundid"}, "to": ["rec"]}]
    running = await hub_factory(connectors, routes, env={"FORMCYCLE_TOKEN": TOKEN})

    async def submit(ident: str, login: str) -> str:
        status, body = await running.post(
            "/intake/formcycle/waffenschein",
            data={"vorgang_id": ident, FIELD: login, "anliegen": "Waffenschein"},
            headers={"X-Aktenhub-Token": TOKEN},
        )
        assert status == 202, body
        return str(body["application_id"])

    for name, build, expected in _iter_e2e():
        app_id = await submit(f"FC-{name}", build(kit))
        assert await running.wait_for_state(app_id) == ApplicationState.REJECTED, name
        (event,) = [e for e in await running.journal.events(app_id) if e.type == "application.rejected"]
        assert event.data["code"] == expected, name
        assert FIELD not in (await running.journal.get_application(app_id)).form

    good = await submit("FC-good", encoded(signed(kit, now_login())))
    assert await running.wait_for_state(good) == ApplicationState.COMPLETED
    replayed = await submit("FC-replayed", encoded(signed(kit, now_login())))
    assert await running.wait_for_state(replayed) == ApplicationState.REJECTED
    (event,) = [e for e in await running.journal.events(replayed) if e.type == "application.rejected"]
    assert event.data["code"] == R.REPLAYED
