"""A throw-away PKI for TLS tests: a CA, a server certificate for 127.0.0.1, a client certificate.

Tests of mutual TLS (the outbound helper, XTA) serve https on loopback with `server_context`, which
demands a client certificate signed by the CA, and give the client the PEM files of `Pki`. Tests of
certificate expiry take `make_certificate`: a self-signed certificate valid for a given number of days
(negative: expired), as PEM, DER or PKCS#12.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pki:
    """PEM files of a test CA, a server certificate (127.0.0.1) and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_key_password: str | None


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    days: float = 1,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=max(0.0, -days) + 1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path, *, prefix: str = "test", key_password: str | None = None) -> Pki:
    """A new CA with a server and a client certificate in `directory` (client key encrypted if asked)."""
    ca_name = f"{prefix} CA"
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(ca_name, ca_key, None, ca=True)
    files: dict[str, Path] = {}

    def write(name: str, data: bytes) -> None:
        files[name] = directory / f"{prefix}-{name}.pem"
        files[name].write_bytes(data)

    write("ca", ca.public_bytes(serialization.Encoding.PEM))
    for role in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(f"{prefix}-{role}", key, (ca_name, ca_key), ca=False)
        write(f"{role}-cert", cert.public_bytes(serialization.Encoding.PEM))
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
        if role == "client" and key_password is not None:
            encryption = serialization.BestAvailableEncryption(key_password.encode())
        write(
            f"{role}-key",
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption),
        )
    return Pki(
        ca=files["ca"],
        server_cert=files["server-cert"],
        server_key=files["server-key"],
        client_cert=files["client-cert"],
        client_key=files["client-key"],
        client_key_password=key_password,
    )


def server_context(pki: Pki) -> ssl.SSLContext:
    """The server's TLS context: its certificate, and no connection without a client certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def make_certificate(
    directory: Path,
    subject: str,
    days: float,
    *,
    encoding: Literal["pem", "der", "p12"] = "pem",
    password: str | None = None,
) -> Path:
    """A self-signed certificate for `subject` that expires in `days` (negative: expired that long ago).

    ``p12``: a PKCS#12 file with its key, encrypted with `password` if given.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _certificate(subject, key, None, ca=False, days=days)
    path = directory / f"{subject}.{encoding}"
    if encoding == "p12":
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
        if password is not None:
            encryption = serialization.BestAvailableEncryption(password.encode())
        path.write_bytes(
            pkcs12.serialize_key_and_certificates(subject.encode(), key, certificate, None, encryption)
        )
    else:
        der = encoding == "der"
        path.write_bytes(
            certificate.public_bytes(serialization.Encoding.DER if der else serialization.Encoding.PEM)
        )
    return path
