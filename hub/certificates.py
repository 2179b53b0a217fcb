"""Certificates the hub uses or trusts, with their expiry: read, assessed, reported.

Every connector lists the certificates it relies on (`Connector.certificates()`: by default those of
every part of its configuration that carries some, e.g. `ClientTls` and the XTA settings; a connector
with certificates of its own, such as BundID's IdP metadata or the ZBP author certificate, adds them).
The core adds its own (`certificates.files` in the configuration: a CA bundle, the TLS certificate of
the proxy in front of the hub). `aktenhub check`, `GET /api/v1/certificates`, `/metrics` and the daily
expiry warning of the running hub all read the same assessment (`assess`).

Only public facts leave this module: purpose, subject, expiry and SHA-256 fingerprint, never a key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from pydantic import BaseModel, ConfigDict, Field

from hub.secret import ConfigPath, Secret

# The connector label of the core's own certificates (`certificates.files`).
CORE = "hub"

State = Literal["ok", "expiring", "expired"]


@dataclass(frozen=True)
class CertificateInfo:
    """A certificate the hub relies on: what for, whose, until when, which one (SHA-256 of its DER)."""

    purpose: str  # e.g. "tls-client", "tls-ca", "xta-client", "idp-signing", "author"
    subject: str  # RFC 4514 form of the subject name
    not_after: datetime
    fingerprint: str  # SHA-256 of the DER encoding, lowercase hex

    @classmethod
    def of(cls, certificate: x509.Certificate, purpose: str) -> CertificateInfo:
        """The facts of a parsed certificate, for `purpose`."""
        der = certificate.public_bytes(serialization.Encoding.DER)
        return cls(
            purpose=purpose,
            subject=certificate.subject.rfc4514_string(),
            not_after=certificate.not_valid_after_utc,
            fingerprint=hashlib.sha256(der).hexdigest(),
        )


@runtime_checkable
class CarriesCertificates(Protocol):
    """A part of a connector's configuration that names certificate files (`ClientTls`, XTA settings)."""

    def certificates(self) -> Sequence[CertificateInfo]:
        """The certificates it names."""
        ...


class CertificateUnreadable(ValueError):
    """A certificate file that cannot be read or holds no certificate."""


def parse_certificates(data: bytes, password: bytes | None = None) -> list[x509.Certificate]:
    """The certificates in PEM (one or a bundle), DER or PKCS#12 data; `CertificateUnreadable` if none."""
    if b"-----BEGIN" in data:
        try:
            return x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise CertificateUnreadable(f"no PEM certificate: {exc}") from None
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        pass
    try:
        key_and_certificates = pkcs12.load_pkcs12(data, password)
    except ValueError as exc:
        raise CertificateUnreadable(f"neither PEM, DER nor PKCS#12 (or a wrong password): {exc}") from None
    found = [key_and_certificates.cert] if key_and_certificates.cert is not None else []
    found += key_and_certificates.additional_certs
    if not found:
        raise CertificateUnreadable("the PKCS#12 file holds no certificate")
    return [c.certificate for c in found]


def read_certificates(path: Path, purpose: str, password: str | None = None) -> list[CertificateInfo]:
    """The certificates of a PEM, DER or PKCS#12 file; `CertificateUnreadable` names the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateUnreadable(f"{purpose} certificate {path}: {exc.strerror}") from None
    try:
        certificates = parse_certificates(data, password.encode() if password is not None else None)
    except CertificateUnreadable as exc:
        raise CertificateUnreadable(f"{purpose} certificate {path}: {exc}") from None
    return [CertificateInfo.of(c, purpose) for c in certificates]


class CertificateFile(BaseModel):
    """A certificate file the core watches (a CA bundle, the TLS certificate of the proxy in front)."""

    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="what it is for, e.g. tls-server, ca")
    path: ConfigPath = Field(description="PEM (one or a bundle), DER or PKCS#12 file")
    password: Secret | None = Field(None, description="password of a PKCS#12 file")

    def certificates(self) -> list[CertificateInfo]:
        """The certificates in the file."""
        password = self.password.get_secret_value() if self.password is not None else None
        return read_certificates(self.path, self.purpose, password)


class CertificatesConfig(BaseModel):
    """Expiry warnings and the core's own certificates."""

    model_config = ConfigDict(extra="forbid")

    warn_days: int = Field(
        30, ge=0, le=3650, description="days before its expiry from which a certificate is warned about"
    )
    files: list[CertificateFile] = Field(
        default_factory=list, description="certificates of the hub itself to watch (CA bundle, TLS server)"
    )


class CertificateStatus(BaseModel):
    """One certificate as operators see it: whose, what for, and how long it still has."""

    connector: str = Field(description='the connector that relies on it ("hub": the core\'s own)')
    purpose: str
    subject: str
    not_after: datetime
    fingerprint: str = Field(description="SHA-256 of the DER encoding, hex")
    seconds_left: int = Field(description="until not_after; negative once expired")
    days_left: int
    state: State = Field(description="ok, expiring (within warn_days) or expired")


class CertificateReport(BaseModel):
    """Every certificate the hub relies on, soonest expiry first, and those that could not be read."""

    warn_days: int
    certificates: list[CertificateStatus]
    problems: list[str] = Field(default_factory=list, description="certificates that could not be read")

    def count(self, state: State) -> int:
        """How many certificates are in `state`."""
        return sum(1 for c in self.certificates if c.state == state)

    def has_errors(self) -> bool:
        """Whether a certificate has expired or could not be read (an expiring one is a warning)."""
        return self.count("expired") > 0 or bool(self.problems)

    def summary(self) -> str:
        """One line for operators, e.g. ``3 certificates: 1 expiring within 30 days, 1 expired``."""
        expiring, expired = self.count("expiring"), self.count("expired")
        parts = [f"{expiring} expiring within {self.warn_days} days"] if expiring else []
        parts += [f"{expired} expired"] if expired else []
        parts += [f"{len(self.problems)} unreadable"] if self.problems else []
        counted = f"{len(self.certificates)} certificates"
        return f"{counted}: {', '.join(parts)}" if parts else f"{counted}, all valid"


def assess(
    found: Mapping[str, Sequence[CertificateInfo]],
    warn_days: int,
    now: datetime,
    problems: Sequence[str] = (),
) -> CertificateReport:
    """The certificates of each connector (by name) as of `now`, soonest expiry first."""
    statuses = []
    for connector, infos in found.items():
        for info in infos:
            seconds = int((info.not_after - now).total_seconds())
            days = int(seconds / 86400)  # whole days, towards zero: -2 two days after it expired
            state: State = "expired" if seconds <= 0 else "expiring" if days < warn_days else "ok"
            statuses.append(
                CertificateStatus(
                    connector=connector,
                    purpose=info.purpose,
                    subject=info.subject,
                    not_after=info.not_after,
                    fingerprint=info.fingerprint,
                    seconds_left=seconds,
                    days_left=days,
                    state=state,
                )
            )
    statuses.sort(key=lambda s: (s.not_after, s.connector, s.purpose))
    return CertificateReport(warn_days=warn_days, certificates=statuses, problems=list(problems))


__all__ = [
    "CORE",
    "CarriesCertificates",
    "CertificateFile",
    "CertificateInfo",
    "CertificateReport",
    "CertificateStatus",
    "CertificateUnreadable",
    "CertificatesConfig",
    "assess",
    "parse_certificates",
    "read_certificates",
]
