"""The author's credentials: the RSA key that signs envelopes and the certificate that proves it.

ZBP envelopes are signed twice with the same key (RSA-SHA512 over the content, and the RS512 author
token), and carry the author certificate so the receiver can check both. `Author` holds a loaded key and
certificate that belong together; `generate_author` makes a throw-away pair for tests and the demo.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

MIN_KEY_BITS = 2048
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


class AuthorError(ValueError):
    """The author key or certificate cannot be used; the message says why (never the key itself)."""


def load_private_key(pem: str, password: str | None = None) -> rsa.RSAPrivateKey:
    """An RSA private key (at least 2048 bits) from PEM text, decrypted with `password` if given."""
    try:
        key = serialization.load_pem_private_key(
            pem.encode("utf-8"), password=password.encode("utf-8") if password else None
        )
    except TypeError as exc:  # encrypted without password, or password for an unencrypted key
        raise AuthorError(f"the private key cannot be opened: {exc}") from None
    except ValueError:
        raise AuthorError(
            "not a PEM private key, or the password is wrong (expected -----BEGIN PRIVATE KEY----- "
            "or -----BEGIN RSA PRIVATE KEY-----)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AuthorError(f"the key must be an RSA key (RS512), not {type(key).__name__}")
    if key.key_size < MIN_KEY_BITS:
        raise AuthorError(f"the RSA key has {key.key_size} bits; at least {MIN_KEY_BITS} are required")
    return key


def load_certificate(pem: str) -> x509.Certificate:
    """An X.509 certificate from PEM text."""
    try:
        return x509.load_pem_x509_certificate(pem.encode("utf-8"))
    except ValueError:
        raise AuthorError("not a PEM X.509 certificate (expected -----BEGIN CERTIFICATE-----)") from None


def certificate_text(value: str) -> str:
    """The PEM text of a certificate setting: the PEM itself, or a path (``file:`` prefix optional)."""
    text = value.strip()
    if text.startswith(PEM_CERTIFICATE):
        return text + "\n"
    path = Path(text.removeprefix("file:")).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuthorError(f"cannot read the certificate file {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise AuthorError(f"{str(path)!r} is not a PEM file (DER certificates: convert to PEM)") from None


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 fingerprint of the certificate's DER encoding, hex."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def subject(certificate: x509.Certificate) -> str:
    """The certificate's subject as an RFC 4514 string."""
    return certificate.subject.rfc4514_string()


def common_name(certificate: x509.Certificate) -> str | None:
    """The certificate subject's common name (CN), None if it has none."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    value = names[0].value
    return value if isinstance(value, str) else value.decode("utf-8")


def validity_problem(certificate: x509.Certificate, now: dt.datetime | None = None) -> str | None:
    """Why the certificate is not valid at `now` (expired, not yet valid), or None."""
    now = now or dt.datetime.now(dt.UTC)
    if now > certificate.not_valid_after_utc:
        return f"expired on {certificate.not_valid_after_utc.isoformat()}"
    if now < certificate.not_valid_before_utc:
        return f"not valid before {certificate.not_valid_before_utc.isoformat()}"
    return None


@dataclass(frozen=True)
class Author:
    """A private key and the certificate of its public key, checked to belong together."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    certificate_pem: str

    @classmethod
    def load(cls, key_pem: str, certificate_pem: str, password: str | None = None) -> Author:
        """Load both and check that the certificate certifies this key."""
        key = load_private_key(key_pem, password)
        certificate = load_certificate(certificate_pem)
        public = certificate.public_key()
        if (
            not isinstance(public, rsa.RSAPublicKey)
            or public.public_numbers() != key.public_key().public_numbers()
        ):
            raise AuthorError(
                f"the author key does not belong to the author certificate ({subject(certificate)}, "
                f"sha256 {fingerprint(certificate)[:16]}…)"
            )
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        return cls(key=key, certificate=certificate, certificate_pem=pem)

    @property
    def subject(self) -> str:
        """The certificate's subject."""
        return subject(self.certificate)

    @property
    def fingerprint(self) -> str:
        """The certificate's SHA-256 fingerprint."""
        return fingerprint(self.certificate)


@dataclass(frozen=True)
class GeneratedAuthor:
    """A freshly generated key (PEM, unencrypted) with a self-signed certificate (PEM)."""

    key_pem: str
    certificate_pem: str

    def author(self) -> Author:
        """The pair, loaded."""
        return Author.load(self.key_pem, self.certificate_pem)

    def write(self, directory: Path, stem: str = "zbp-author") -> tuple[Path, Path]:
        """Write ``<stem>.key.pem`` (mode 0600) and ``<stem>.crt.pem``; returns both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        key_path = directory / f"{stem}.key.pem"
        certificate_path = directory / f"{stem}.crt.pem"
        key_path.touch(mode=0o600, exist_ok=True)
        key_path.chmod(0o600)
        key_path.write_text(self.key_pem, encoding="utf-8")
        certificate_path.write_text(self.certificate_pem, encoding="utf-8")
        return key_path, certificate_path


def generate_author(
    common_name: str = "Aktenhub ZBP Testabsender",
    *,
    organisation: str = "Aktenhub Test",
    valid_from: dt.datetime | None = None,
    valid_days: float = 365,
    key_size: int = MIN_KEY_BITS,
) -> GeneratedAuthor:
    """A new RSA key and a self-signed certificate for it: for tests and the demo, never production."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    start = valid_from or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return GeneratedAuthor(
        key_pem=key_pem,
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m hub_zbp.keys DIRECTORY``: write a test author key and certificate for the demo."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m hub_zbp.keys DIRECTORY", file=sys.stderr)
        return 2
    key_path, certificate_path = generate_author().write(Path(args[0]))
    print(f"author key:         {key_path}\nauthor certificate: {certificate_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
