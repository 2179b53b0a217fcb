"""TLS with a client certificate, as XTA requires (the WSDL's HttpsToken RequireClientCertificate)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hub_xta import PermissionDeniedFault
from xta_helpers import AUTHORITY, PORTAL, StartXta, make_client

from hub import BlobStore, Permanent, Retryable


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate with an encrypted key."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("XTA Test CA", ca_key, None, ca=True)
    files: dict[str, Path] = {}

    def write(name: str, data: bytes) -> None:
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_bytes(data)

    write("ca", ca.public_bytes(serialization.Encoding.PEM))
    for role in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(f"xta-{role}", key, ("XTA Test CA", ca_key), ca=False)
        write(f"{role}-cert", cert.public_bytes(serialization.Encoding.PEM))
        encryption = (
            serialization.BestAvailableEncryption(b"schluessel-passwort")
            if role == "client"
            else serialization.NoEncryption()
        )
        write(
            f"{role}-key",
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption),
        )
    return files


def server_context(pki: dict[str, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca"]))
    context.load_cert_chain(str(pki["server-cert"]), str(pki["server-key"]))
    context.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no connection
    return context


async def test_client_certificate(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore, pki: dict[str, Path]
) -> None:
    xta = await start_xta(ssl_context=server_context(pki))
    client = make_client(
        xta.url,
        schema_dir,
        http,
        blobs,
        ca_file=str(pki["ca"]),
        client_cert=str(pki["client-cert"]),
        client_key=str(pki["client-key"]),
        client_key_password="schluessel-passwort",
    )
    assert (await client.check()).ok
    assert (await client.create_message_id()).startswith("urn:de:xta:messageid:")

    without_certificate = make_client(xta.url, schema_dir, http, blobs, ca_file=str(pki["ca"]))
    with pytest.raises((Retryable, Permanent)):
        await without_certificate.create_message_id()
    assert not (await without_certificate.check()).ok

    untrusting = make_client(xta.url, schema_dir, http, blobs)  # system CAs do not know the test CA
    with pytest.raises(Permanent, match="not trusted"):
        await untrusting.create_message_id()


async def test_unusable_key_is_permanent(
    http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore, pki: dict[str, Path]
) -> None:
    client = make_client(
        "https://127.0.0.1:9",
        schema_dir,
        http,
        blobs,
        client_cert=str(pki["client-cert"]),
        client_key=str(pki["client-key"]),
        client_key_password="falsch",
    )
    with pytest.raises(Permanent, match="TLS settings unusable"):
        await client.check_account_active()


async def test_certificate_must_belong_to_the_account(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore, pki: dict[str, Path]
) -> None:
    xta = await start_xta(ssl_context=server_context(pki), certificate_accounts={"xta-client": AUTHORITY})
    tls = {
        "ca_file": str(pki["ca"]),
        "client_cert": str(pki["client-cert"]),
        "client_key": str(pki["client-key"]),
        "client_key_password": "schluessel-passwort",
    }
    assert (await make_client(xta.url, schema_dir, http, blobs, **tls).check()).ok
    impostor = make_client(xta.url, schema_dir, http, blobs, account=PORTAL, **tls)
    with pytest.raises(PermissionDeniedFault) as refused:
        await impostor.create_message_id()
    assert refused.value.code == "9014"
