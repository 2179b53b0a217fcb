"""TLS with a client certificate, as XTA requires (the WSDL's HttpsToken RequireClientCertificate)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from hub_xta import PermissionDeniedFault, XtaSource
from xta_helpers import AUTHORITY, PORTAL, StartXta, make_client

from hub import ConnectorContext, Permanent, Retryable
from hub.blobs import BlobStore
from hub.testing.pki import Pki, make_pki, server_context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate with an encrypted key."""
    return make_pki(tmp_path, prefix="xta", key_password="schluessel-passwort")


async def test_client_certificate(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore, pki: Pki
) -> None:
    xta = await start_xta(ssl_context=server_context(pki))
    client = make_client(
        xta.url,
        schema_dir,
        http,
        blobs,
        ca_file=str(pki.ca),
        client_cert=str(pki.client_cert),
        client_key=str(pki.client_key),
        client_key_password="schluessel-passwort",
    )
    assert (await client.check()).ok
    assert (await client.create_message_id()).startswith("urn:de:xta:messageid:")

    without_certificate = make_client(xta.url, schema_dir, http, blobs, ca_file=str(pki.ca))
    with pytest.raises((Retryable, Permanent)):
        await without_certificate.create_message_id()
    assert not (await without_certificate.check()).ok

    untrusting = make_client(xta.url, schema_dir, http, blobs)  # system CAs do not know the test CA
    with pytest.raises(Permanent, match="not trusted"):
        await untrusting.create_message_id()


async def test_unusable_key_is_permanent(
    http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore, pki: Pki
) -> None:
    client = make_client(
        "https://127.0.0.1:9",
        schema_dir,
        http,
        blobs,
        client_cert=str(pki.client_cert),
        client_key=str(pki.client_key),
        client_key_password="falsch",
    )
    with pytest.raises(Permanent, match="TLS settings unusable"):
        await client.check_account_active()


async def test_certificate_must_belong_to_the_account(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore, pki: Pki
) -> None:
    xta = await start_xta(ssl_context=server_context(pki), certificate_accounts={"xta-client": AUTHORITY})
    tls = {
        "ca_file": str(pki.ca),
        "client_cert": str(pki.client_cert),
        "client_key": str(pki.client_key),
        "client_key_password": "schluessel-passwort",
    }
    assert (await make_client(xta.url, schema_dir, http, blobs, **tls).check()).ok
    impostor = make_client(xta.url, schema_dir, http, blobs, account=PORTAL, **tls)
    with pytest.raises(PermissionDeniedFault) as refused:
        await impostor.create_message_id()
    assert refused.value.code == "9014"


def test_the_client_certificate_and_the_trusted_ca_are_listed(
    tmp_path: Path, blobs: BlobStore, pki: Pki
) -> None:
    settings = {
        "url": "https://127.0.0.1:9",
        "account": {"identifier": AUTHORITY},
        "ca_file": str(pki.ca),
        "client_cert": str(pki.client_cert),
        "client_key": str(pki.client_key),
        "client_key_password": "schluessel-passwort",
    }
    config = XtaSource.Config.model_validate({"type": "xta", "xta": settings})
    source = XtaSource(config, ConnectorContext(name="xta-in", blobs=blobs, schemas=None, data_dir=tmp_path))
    listed = {(c.purpose, c.subject) for c in source.certificates()}
    assert listed == {("xta-client", "CN=xta-client"), ("xta-ca", "CN=xta CA")}
    assert all(c.not_after > datetime.now(UTC) for c in source.certificates())
