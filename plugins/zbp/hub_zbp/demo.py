"""The BundID mailbox part of `aktenhub demo`: the ZBP simulator and notifier ``postfach``.

Scenarios that notify through it add their services' public names to ``connectors.postfach.services``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from hub import Application, ApplicationState
from hub.scenarios import DemoRun, DemoScenario, DemoSite

KEY_FILE = "zbp-author.key.pem"
CERTIFICATE_FILE = "zbp-author.crt.pem"


def write_author_key(directory: Path) -> None:
    """A key pair and self-signed certificate for the mailbox messages' signed envelope."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Aktenhub Demo Rhein-Sieg-Kreis")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path = directory / KEY_FILE
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (directory / CERTIFICATE_FILE).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


class ZbpScenario(DemoScenario):
    """The ZBP simulator and notifier ``postfach``; shows what each applicant's mailbox received."""

    name = "zbp"
    simulators = ("zbp",)
    outbound = "Postfach"
    columns = ("answer",)

    async def prepare(self, site: DemoSite) -> None:
        await asyncio.to_thread(write_author_key, site.data_dir)

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        return {
            "postfach": {
                "type": "zbp",
                "base_url": site.url("zbp"),
                "author_key": f"file:{site.data_dir / KEY_FILE}",
                "author_certificate": str(site.data_dir / CERTIFICATE_FILE),
                "sender_name": "Rhein-Sieg-Kreis",
            }
        }

    async def describe(
        self, application: Application, state: ApplicationState, run: DemoRun
    ) -> dict[str, str]:
        handle = application.applicant.mailbox
        if not handle:
            return {}
        async with run.http.get(f"{run.site.url('zbp')}/_sim/mailboxes/{handle}") as resp:
            if resp.status != 200:
                return {"answer": "0"}
            box = await resp.json()
        messages = box.get("messages", [])
        statuses = box.get("status_updates", box.get("statuses", []))
        return {"answer": f"{len(messages)} msg, {len(statuses)} status"}

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        return [("BundID mailboxes", f"curl {site.url('zbp')}/_sim/mailboxes")]
