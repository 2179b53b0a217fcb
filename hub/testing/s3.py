"""An S3-compatible server for tests: moto's server, one per test session, a fresh bucket per test.

moto (``moto[server]`` from PyPI) stands in for the object stores operators run (Ceph RGW, Garage,
SeaweedFS, MinIO, a provider's S3): the hub talks to it over HTTP with the real S3 API, nothing is
patched in the process under test. It runs as a subprocess (``python -m hub.testing.moto_server``:
moto's server, answering each multipart upload's real start time) on 127.0.0.1 on a free port.
Without moto the tests that need it are skipped, with the reason, except in CI (``CI=true``), where
they fail: the dev dependencies install it.

Fixtures (loaded with the test kit's pytest plugin):

- ``s3_server``: the session's `S3Server`;
- ``s3_bucket``: a fresh, empty bucket for one test, as an `S3Bucket` (its ``url`` goes into
  ``blobs:``), with credentials in the environment for that test only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from hub.testing.servers import free_port, stop_process, unavailable

if TYPE_CHECKING:
    from types_aiobotocore_s3.type_defs import ObjectTypeDef

__all__ = ["S3Bucket", "S3Server", "S3Unavailable", "free_port", "s3_bucket", "s3_server"]

START_TIMEOUT = 30.0  # seconds the server gets to answer
# Credentials of the test server: moto takes any; they only ever live in a test's environment.
ACCESS_KEY = "aktenhub-test-access"
SECRET_KEY = "aktenhub-test-secret"  # noqa: S105 - a throw-away test server's
REGION = "eu-central-1"


class S3Unavailable(RuntimeError):
    """moto's server is not installed or did not start."""


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


@dataclass
class S3Server:
    """A running moto server at `endpoint`."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint(self) -> str:
        """The server's URL."""
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        """A synchronous botocore S3 client, to set up and inspect buckets from tests."""
        import botocore.session

        return botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def stop(self) -> None:
        """Stop the server (it is thrown away with its content)."""
        stop_process(self.process)


def start_server(attempts: int = 3) -> S3Server:
    """Start moto's server on a free port of 127.0.0.1 (retries when the port was taken meanwhile)."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise S3Unavailable("moto's S3 server is not installed: pip install 'moto[server]'")
    error = "no attempt"
    for _ in range(attempts):
        port = free_port()
        # The server logs a line per request on stderr: into an unlinked file, never into a pipe nobody
        # reads (it fills after some hundred requests and the server stops answering mid-session).
        with tempfile.TemporaryFile() as output:  # the child keeps its own descriptor of it
            process = subprocess.Popen(
                # moto's server, with each multipart upload's real start time (see the module)
                [sys.executable, "-m", "hub.testing.moto_server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=output,
            )
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and process.poll() is None:
                if _answers(port):
                    return S3Server(process, port)
                time.sleep(0.05)  # polling a subprocess's port: there is no event to wait on
            S3Server(process, port).stop()
            output.seek(0)
            stderr = output.read().decode(errors="replace")
        error = stderr.strip()[-800:] or f"no answer on port {port} within {START_TIMEOUT:g}s"
    raise S3Unavailable(f"moto's S3 server did not start: {error}")


@dataclass
class S3Bucket:
    """A fresh bucket on the test server: `url` is what ``blobs:`` takes."""

    server: S3Server
    name: str
    prefix: str = "hub"

    @property
    def url(self) -> str:
        """``s3://<bucket>/<prefix>?endpoint=...&region=...``."""
        return f"s3://{self.name}/{self.prefix}?endpoint={self.server.endpoint}&region={REGION}"

    def objects(self, under: str = "") -> list[ObjectTypeDef]:
        """Every object whose key starts with ``<prefix>/<under>``."""
        client = self.server.client()
        found: list[ObjectTypeDef] = []
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=f"{self.prefix}/{under}"
        )
        for page in pages:
            found += page.get("Contents", [])
        return found

    def keys(self, under: str = "") -> list[str]:
        """The keys of `objects`."""
        return sorted(o["Key"] for o in self.objects(under))

    def open_uploads(self) -> list[str]:
        """Keys of the multipart uploads started and neither completed nor aborted."""
        uploads = self.server.client().list_multipart_uploads(Bucket=self.name).get("Uploads", [])
        return [u["Key"] for u in uploads]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server for the whole test session (skipped outside CI without moto)."""
    try:
        server = start_server()
    except S3Unavailable as exc:
        unavailable(f"{exc} (moto is a dev dependency)")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    """A fresh bucket for this test; the test's environment carries the credentials (and nothing else
    of an AWS configuration on this machine is read)."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    name = f"test-{secrets.token_hex(6)}"
    s3_server.client().create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return S3Bucket(s3_server, name)
