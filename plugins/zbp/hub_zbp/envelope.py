"""ZBP payloads and the signed envelope they travel in.

A payload (a mailbox message or an application status update) is serialised to a JSON string, the
envelope's ``content``. The envelope::

    {"content": "<payload JSON string>",
     "sha512sum": "<base64 RSA-SHA512 (PKCS#1 v1.5) signature of content's UTF-8 bytes>",
     "authorToken": "<RS512 JWT with iat, exp, signer, roles>",
     "authorCertificate": "<PEM of the author certificate>"}

Both signatures are made with the author key; the receiver checks both against the public key of
``authorCertificate`` (and whether it trusts that certificate). `seal` builds an envelope, `open_envelope`
checks one strictly (the simulator uses it; so can tests).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from hub.simulation import MalformedRequest, parse_json

from .keys import Author, AuthorError, common_name, fingerprint, load_certificate, subject, validity_problem

TOKEN_ALGORITHM = "RS512"  # noqa: S105 - an algorithm name, not a secret


class ZbpStatus(StrEnum):
    """The statuses a ZBP application status update may carry (there is no "rejected")."""

    INITIATED = "INITIATED"
    SUBMITTED = "SUBMITTED"
    RECEIVED = "RECEIVED"
    PROCESSING = "PROCESSING"
    ACTION_REQUIRED = "ACTION_REQUIRED"
    COMPLETED = "COMPLETED"


class PayloadKind(StrEnum):
    """What an envelope carries."""

    MESSAGE = "message"
    STATUS = "status"


def _with_german(value: dict[str, str]) -> dict[str, str]:
    if not value.get("de"):
        raise ValueError('a German text is required: {"de": "..."}')
    return value


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("createdDate needs a time zone (e.g. 2026-03-01T09:30:00Z)")
    return value


Text = Annotated[str, Field(min_length=1, max_length=1000)]
Localized = Annotated[dict[str, Text], AfterValidator(_with_german)]
# The ZBP keeps at most 50 characters of a status text (the public client's limit).
STATUS_DETAILS_MAX = 50
StatusDetails = Annotated[
    dict[str, Annotated[str, Field(min_length=1, max_length=STATUS_DETAILS_MAX)]],
    AfterValidator(_with_german),
]
# The ZBP identifies an application by a UUID (canonical, lower or upper case hex).
ApplicationId = Annotated[
    str, Field(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
]
_APPLICATION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:aktenhub:zbp:applicationId")


def application_uuid(application_id: str) -> str:
    """The ZBP ``applicationId`` of a hub application: a UUID derived from its id (same id, same UUID)."""
    return str(uuid.uuid5(_APPLICATION_NAMESPACE, application_id))


def status_text(text: str, limit: int = STATUS_DETAILS_MAX) -> str:
    """`text` cut to `limit` characters at a word boundary, marked with "…" when cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut and not text[limit - 1].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:-") + "…"


class _Payload(BaseModel):
    # The receiver refuses what it does not know: unknown keys and wrongly typed values are errors.
    model_config = ConfigDict(extra="forbid", strict=True)


class ZbpAttachment(_Payload):
    """A file sent with a message, as the signed content lists it (the file itself travels beside it).

    The shape of the ZBP message schema (``message_v6``) as deployed clients send it: the signature over
    the content covers each file's SHA-512 and length, so a file changed on the way is refused.
    """

    filename: str = Field(min_length=1, max_length=4000)
    sha512sum: str = Field(pattern=r"^[0-9a-f]{128}$", description="hex SHA-512 of the file")
    contentLength: int = Field(ge=1, description="the file's size in bytes")


class ZbpMessage(_Payload):
    """A message into the citizen's mailbox."""

    stork_qaa_level: int = Field(ge=1, le=4, description="STORK-QAA level needed to read it (1..4)")
    mailboxUuid: str = Field(min_length=1, max_length=200, description="the BundID Postkorb handle")
    sender: Text
    title: str = Field(min_length=1, max_length=255)
    content: str = Field(min_length=1, max_length=100_000)
    service: Text
    applicationId: ApplicationId
    reference: str = Field(max_length=200, description="e.g. the Aktenzeichen")
    attachments: list[ZbpAttachment] | None = Field(None, max_length=20, description="files sent along")


class ZbpStatusUpdate(_Payload):
    """An application status update shown with the citizen's applications."""

    applicationId: ApplicationId
    status: ZbpStatus
    publicServiceName: Localized
    senderName: Text
    createdDate: Annotated[dt.datetime, AfterValidator(_aware)]
    statusDetails: StatusDetails


ZbpPayload = ZbpMessage | ZbpStatusUpdate


def payload_json(payload: ZbpPayload) -> str:
    """The payload as the envelope's content: compact JSON, UTF-8 characters kept."""
    data = payload.model_dump(mode="json", exclude_none=True)  # optional members only when set
    if isinstance(payload, ZbpStatusUpdate):
        # ISO 8601 in UTC with "Z" and milliseconds, as Java back ends parse it without fuss.
        moment = payload.createdDate.astimezone(dt.UTC)
        data["createdDate"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class Envelope(BaseModel):
    """The signed envelope (field names as on the wire)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    content: str
    sha512sum: str
    authorToken: str
    authorCertificate: str


# -- sealing -------------------------------------------------------------------------------------------


def sign_content(content: str, key: rsa.RSAPrivateKey) -> str:
    """The base64 RSA-SHA512 (PKCS#1 v1.5) signature of the content's UTF-8 bytes."""
    signature = key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA512())
    return base64.b64encode(signature).decode("ascii")


def author_token(
    author: Author,
    signer: str,
    roles: Sequence[str],
    *,
    lifetime_seconds: int,
    now: dt.datetime | None = None,
) -> str:
    """The RS512 author token: who signs (``signer``) in which ``roles``, valid for a short time."""
    issued = int((now or dt.datetime.now(dt.UTC)).timestamp())
    claims = {"iat": issued, "exp": issued + lifetime_seconds, "signer": signer, "roles": list(roles)}
    return jwt.encode(claims, author.key, algorithm=TOKEN_ALGORITHM, headers={"typ": "JWT"})


def seal(
    payload: ZbpPayload,
    author: Author,
    signer: str,
    roles: Sequence[str],
    *,
    lifetime_seconds: int = 300,
    now: dt.datetime | None = None,
) -> Envelope:
    """The payload in a signed envelope."""
    content = payload_json(payload)
    return Envelope(
        content=content,
        sha512sum=sign_content(content, author.key),
        authorToken=author_token(author, signer, roles, lifetime_seconds=lifetime_seconds, now=now),
        authorCertificate=author.certificate_pem,
    )


# -- opening (the receiver's side) ---------------------------------------------------------------------


class EnvelopeRefused(Exception):
    """The envelope or its payload is refused: HTTP status and a message for the sender."""

    def __init__(self, status: int, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []


@dataclass(frozen=True)
class OpenedEnvelope:
    """An envelope whose signatures verified: the payload and who signed it."""

    payload: ZbpPayload
    content: str
    signer: str
    roles: tuple[str, ...]
    issued_at: dt.datetime
    expires_at: dt.datetime
    certificate_subject: str
    certificate_sha256: str


@dataclass(frozen=True)
class Policy:
    """What the receiver accepts."""

    trusted: tuple[x509.Certificate, ...] = ()  # empty: any certificate (that verifies) is accepted
    required_role: str | None = None
    signer_is_common_name: bool = True  # the token's `signer` must be the certificate's CN
    leeway_seconds: float = 30.0
    max_token_lifetime_seconds: int = 3600


def open_envelope(body: Any, kind: PayloadKind, policy: Policy) -> OpenedEnvelope:
    """Check an envelope (the parsed JSON body) strictly; raise `EnvelopeRefused` with the reason.

    400: not an envelope; 401: certificate, signature or author token refused; 422: the payload does not
    follow the schema.
    """
    if not isinstance(body, dict):
        raise EnvelopeRefused(400, "the body must be a JSON object (the signed envelope)")
    if "content" in body and not isinstance(body["content"], str):
        raise EnvelopeRefused(400, "content must be the payload as a JSON string, not a JSON value")
    try:
        envelope = Envelope.model_validate(body)
    except ValidationError as exc:
        raise EnvelopeRefused(400, f"not a signed envelope: {_summary(exc)}") from None

    certificate = _certificate(envelope.authorCertificate, policy)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise EnvelopeRefused(401, "the author certificate must hold an RSA key")
    _check_content_signature(envelope, public_key)
    claims = _check_token(envelope.authorToken, public_key, policy)
    if policy.signer_is_common_name and claims["signer"] != common_name(certificate):
        raise EnvelopeRefused(
            401, "authorToken: signer must be the common name (CN) of the author certificate"
        )

    try:
        raw = parse_json(envelope.content.encode("utf-8"), "content")
    except MalformedRequest as bad:
        raise EnvelopeRefused(400, bad.message) from None
    if not isinstance(raw, dict):
        raise EnvelopeRefused(400, "content must hold a JSON object")
    model: type[ZbpMessage] | type[ZbpStatusUpdate] = (
        ZbpMessage if kind is PayloadKind.MESSAGE else ZbpStatusUpdate
    )
    try:
        payload = model.model_validate_json(envelope.content)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in err["loc"]) or "(content)", "message": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
        raise EnvelopeRefused(
            422, f"the {kind.value} does not follow the schema: {_summary(exc)}", details
        ) from None
    return OpenedEnvelope(
        payload=payload,
        content=envelope.content,
        signer=claims["signer"],
        roles=tuple(claims["roles"]),
        issued_at=dt.datetime.fromtimestamp(claims["iat"], dt.UTC),
        expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
        certificate_subject=subject(certificate),
        certificate_sha256=fingerprint(certificate),
    )


def _certificate(pem: str, policy: Policy) -> x509.Certificate:
    try:
        certificate = load_certificate(pem)
    except AuthorError as exc:
        raise EnvelopeRefused(400, f"authorCertificate: {exc}") from None
    problem = validity_problem(certificate)
    if problem:
        raise EnvelopeRefused(401, f"the author certificate is {problem}")
    if policy.trusted and fingerprint(certificate) not in {fingerprint(t) for t in policy.trusted}:
        raise EnvelopeRefused(401, f"the author certificate ({subject(certificate)}) is not trusted")
    return certificate


def _check_content_signature(envelope: Envelope, key: rsa.RSAPublicKey) -> None:
    try:
        signature = base64.b64decode(envelope.sha512sum, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeRefused(400, "sha512sum is not base64") from None
    try:
        signed = envelope.content.encode("utf-8")
    except UnicodeEncodeError:  # "\ud800" is valid JSON but no Unicode text: nothing was signed
        raise EnvelopeRefused(400, "content is not Unicode text (it holds a lone surrogate)") from None
    try:
        key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA512())
    except InvalidSignature:
        raise EnvelopeRefused(
            401,
            "sha512sum does not verify against the author certificate: the content was changed after "
            "signing, or signed with another key",
        ) from None


def _check_token(token: str, key: rsa.RSAPublicKey, policy: Policy) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise EnvelopeRefused(401, "authorToken is not a JWT") from None
    if header.get("alg") != TOKEN_ALGORITHM:
        raise EnvelopeRefused(401, f"authorToken must be signed with RS512, not {header.get('alg')!r}")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[TOKEN_ALGORITHM],
            options={"require": ["iat", "exp"]},
            leeway=policy.leeway_seconds,
        )
    except jwt.ExpiredSignatureError:
        raise EnvelopeRefused(401, "authorToken has expired") from None
    except jwt.ImmatureSignatureError:
        raise EnvelopeRefused(
            401, "authorToken was issued in the future (check the sender's clock)"
        ) from None
    except jwt.InvalidSignatureError:
        raise EnvelopeRefused(401, "authorToken does not verify against the author certificate") from None
    except jwt.MissingRequiredClaimError as exc:
        raise EnvelopeRefused(401, f"authorToken lacks the claim {exc.claim!r}") from None
    except jwt.InvalidTokenError as exc:
        raise EnvelopeRefused(401, f"authorToken is invalid: {exc}") from None
    if not isinstance(claims.get("iat"), int) or not isinstance(claims.get("exp"), int):
        raise EnvelopeRefused(401, "authorToken: iat and exp must be integer timestamps")
    if claims["exp"] - claims["iat"] > policy.max_token_lifetime_seconds:
        raise EnvelopeRefused(
            401, f"authorToken may live at most {policy.max_token_lifetime_seconds} s (exp - iat)"
        )
    signer = claims.get("signer")
    if not isinstance(signer, str) or not signer.strip():
        raise EnvelopeRefused(401, "authorToken lacks the claim 'signer' (a non-empty string)")
    roles = claims.get("roles")
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and r for r in roles):
        raise EnvelopeRefused(401, "authorToken lacks the claim 'roles' (a non-empty list of strings)")
    if policy.required_role and policy.required_role not in roles:
        raise EnvelopeRefused(403, f"the signer lacks the role {policy.required_role!r}")
    return claims


def _summary(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(value)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
