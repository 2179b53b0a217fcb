"""Certificates and keys: every one the hub uses or trusts, with its expiry, in `aktenhub check`,
`aktenhub diagnostics`, `GET /api/v1/certificates`, `/metrics` and the running hub's daily WARNING."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from prometheus_client.parser import text_string_to_metric_families

from hub import ClientTls, Connector, ConnectorConfig
from hub.certificates import CertificateUnreadable, read_certificates
from hub.cli import main
from hub.hookspecs import hookimpl
from hub.testing.fakes import RecordingSink, RecordingSinkConfig
from hub.testing.harness import base_settings
from hub.testing.pki import make_certificate

DAY = 86400
P12_PASSWORD = "p12-password-0123"
VIEWER_TOKEN = "viewer-token-0123456789"


class TlsSinkConfig(RecordingSinkConfig):
    """A target reached over mutual TLS: its certificates come from `tls` by the default listing."""

    tls: ClientTls


class TlsSink(RecordingSink):
    kind = "test-tls"
    Config: ClassVar[type[ConnectorConfig]] = TlsSinkConfig


class TlsPlugin:
    @hookimpl
    def aktenhub_connector_types(self) -> Sequence[type[Connector[Any]]]:
        return [TlsSink]


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Path]:
    """Certificates of every kind the hub reads: PEM, DER, PKCS#12; valid, expiring soon, expired."""
    directory = tmp_path / "certs"
    directory.mkdir()
    return {
        "client": make_certificate(directory, "client-soon", 5),
        "ca": make_certificate(directory, "trusted-ca", 400),
        "proxy": make_certificate(directory, "proxy", 400, encoding="der"),
        "old-ca": make_certificate(directory, "old-ca", -2, encoding="p12", password=P12_PASSWORD),
    }


def certificate_settings(certs: dict[str, Path], *names: str) -> dict[str, Any]:
    purposes = {"proxy": "tls-server", "old-ca": "ca", "client": "tls-client", "ca": "ca"}
    files = []
    for name in names:
        entry: dict[str, Any] = {"purpose": purposes[name], "path": str(certs[name])}
        if certs[name].suffix == ".p12":
            entry["password"] = "${P12_PASSWORD}"
        files.append(entry)
    return {"warn_days": 30, "files": files}


def fingerprint(path: Path) -> str:
    data = path.read_bytes()
    certificate = x509.load_pem_x509_certificate(data) if path.suffix == ".pem" else None
    if certificate is None:
        return read_certificates(path, "x", P12_PASSWORD)[0].fingerprint
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


# -- the running hub ------------------------------------------------------------------------------------


async def test_running_hub_reports_every_certificate(
    hub_factory: Any, certs: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hub")
    connectors = {
        "json": {"type": "test-json"},
        "fv": {"type": "test-tls", "tls": {"cert": str(certs["client"]), "ca": str(certs["ca"])}},
    }
    running = await hub_factory(
        connectors,
        [{"name": "r", "from": "json", "to": ["fv"]}],
        extra_plugins=(TlsPlugin(),),
        env={"P12_PASSWORD": P12_PASSWORD, "VIEWER_TOKEN": VIEWER_TOKEN},
        certificates=certificate_settings(certs, "proxy", "old-ca"),
        server={
            "listen": "127.0.0.1:0",
            "admin_tokens": [{"name": "dashboard", "token": "${VIEWER_TOKEN}", "role": "viewer"}],
        },
    )

    # The daily WARNING (first at start): one line per certificate expiring or expired, none for the rest.
    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("certificate ")]

    await running.wait_for(lambda: len(warnings()) >= 2, what="the certificate warnings at start")
    lines = warnings()
    assert len(lines) == 2, lines
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.getMessage() in lines)
    [soon] = [line for line in lines if "purpose=tls-client" in line]
    assert soon.startswith("certificate expires soon connector=fv ") and "subject=CN=client-soon" in soon
    assert "days_left=4" in soon  # 5 days less the moments since it was made
    [expired] = [line for line in lines if "purpose=ca" in line]
    assert expired.startswith("certificate has expired connector=hub ") and "subject=CN=old-ca" in expired

    # /metrics: seconds until not_after, per connector, purpose, subject (and fingerprint)
    status, text = await running.get("/metrics")
    assert status == 200
    [family] = [
        f for f in text_string_to_metric_families(text) if f.name == "aktenhub_certificate_expiry_seconds"
    ]
    found = {(s.labels["connector"], s.labels["purpose"], s.labels["subject"]): s for s in family.samples}
    expected = {
        ("fv", "tls-client", "CN=client-soon"): 5 * DAY,
        ("fv", "tls-ca", "CN=trusted-ca"): 400 * DAY,
        ("hub", "tls-server", "CN=proxy"): 400 * DAY,
        ("hub", "ca", "CN=old-ca"): -2 * DAY,
    }
    assert set(found) == set(expected)
    for key, seconds in expected.items():
        assert seconds - 300 < found[key].value <= seconds, (key, found[key].value)
    assert (
        found[("fv", "tls-client", "CN=client-soon")].labels["fingerprint"]
        == fingerprint(certs["client"])[:16]
    )
    if shutil.which("promtool") is not None:
        checked = await asyncio.to_thread(
            subprocess.run,
            ["promtool", "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")

    # The admin API: a viewer sees the list (public facts, no secret), soonest expiry first.
    status, body = await running.get(
        "/api/v1/certificates", headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}
    )
    assert status == 200, body
    assert body["warn_days"] == 30 and body["problems"] == []
    listed = [
        (c["connector"], c["purpose"], c["subject"], c["state"], c["days_left"]) for c in body["certificates"]
    ]
    assert listed == [
        ("hub", "ca", "CN=old-ca", "expired", -2),
        ("fv", "tls-client", "CN=client-soon", "expiring", 4),
        ("fv", "tls-ca", "CN=trusted-ca", "ok", 399),
        ("hub", "tls-server", "CN=proxy", "ok", 399),
    ]
    assert body["certificates"][1]["fingerprint"] == fingerprint(certs["client"])
    assert P12_PASSWORD not in str(body) and "PRIVATE" not in str(body)
    status, _ = await running.get("/api/v1/certificates")
    assert status == 401


async def test_an_unreadable_certificate_is_reported_and_hides_no_other(
    hub_factory: Any, certs: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    running = await hub_factory(
        {"json": {"type": "test-json"}},
        [],
        certificates={
            "files": [
                {"purpose": "ca", "path": str(broken)},
                {"purpose": "tls-server", "path": str(certs["proxy"])},
            ]
        },
    )
    report = running.hub.operations.certificates()
    assert [(c.purpose, c.subject) for c in report.certificates] == [("tls-server", "CN=proxy")]
    [problem] = report.problems
    assert problem.startswith(f"hub: ca certificate {broken}: no PEM certificate")
    assert report.has_errors()


# -- reading certificate files --------------------------------------------------------------------------


def test_reads_pem_bundles_der_and_pkcs12(certs: dict[str, Path], tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(certs["client"].read_bytes() + certs["ca"].read_bytes())
    assert [c.subject for c in read_certificates(bundle, "ca")] == ["CN=client-soon", "CN=trusted-ca"]
    [der] = read_certificates(certs["proxy"], "tls-server")
    assert der.subject == "CN=proxy"
    [p12] = read_certificates(certs["old-ca"], "ca", P12_PASSWORD)
    assert p12.subject == "CN=old-ca"
    with pytest.raises(CertificateUnreadable, match="wrong password"):
        read_certificates(certs["old-ca"], "ca", "not the password")
    with pytest.raises(CertificateUnreadable, match=r"missing\.pem"):
        read_certificates(tmp_path / "missing.pem", "ca")


# -- the CLI -------------------------------------------------------------------------------------------


def run_cli(config: dict[str, Any], tmp_path: Path, *args: str) -> Result:
    path = tmp_path / "aktenhub.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {"P12_PASSWORD": P12_PASSWORD, "COLUMNS": "200"}
    return CliRunner().invoke(main, [*args, "-c", str(path)], env=env, catch_exceptions=False)


def cli_config(tmp_path: Path, certificates: dict[str, Any]) -> dict[str, Any]:
    connectors = {"import": {"type": "filedrop", "path": str(tmp_path / "import")}}
    settings = base_settings(tmp_path / "hub", connectors, [])
    return {**settings, "certificates": certificates}


def test_check_warns_of_certificates_about_to_expire(certs: dict[str, Path], tmp_path: Path) -> None:
    result = run_cli(cli_config(tmp_path, certificate_settings(certs, "proxy", "client")), tmp_path, "check")
    assert result.exit_code == 0, result.output  # a warning, not an error
    assert "certificates (warning from 30 days before expiry)" in result.output
    rows = {line.split("│")[3].strip(): line for line in result.output.splitlines() if "CN=" in line}
    assert set(rows) == {"CN=proxy", "CN=client-soon"}
    assert "WARNING" in rows["CN=client-soon"] and "│ 4 " in rows["CN=client-soon"]
    assert "ok" in rows["CN=proxy"] and "WARNING" not in rows["CN=proxy"]

    diagnostics = run_cli(
        cli_config(tmp_path, certificate_settings(certs, "proxy", "client")), tmp_path, "diagnostics"
    )
    assert diagnostics.exit_code == 0, diagnostics.output
    assert "certificates: 2 certificates: 1 expiring within 30 days" in diagnostics.output


def test_check_fails_on_an_expired_or_unreadable_certificate(certs: dict[str, Path], tmp_path: Path) -> None:
    result = run_cli(cli_config(tmp_path, certificate_settings(certs, "proxy", "old-ca")), tmp_path, "check")
    assert result.exit_code == 1, result.output
    [row] = [line for line in result.output.splitlines() if "CN=old-ca" in line]
    assert "EXPIRED" in row and "│ -2 " in row

    garbage = tmp_path / "garbage.der"
    garbage.write_bytes(b"\x30\x03not a certificate")
    settings = {"files": [{"purpose": "ca", "path": str(garbage)}]}
    result = run_cli(cli_config(tmp_path, settings), tmp_path, "check")
    assert result.exit_code == 1, result.output
    assert "certificate unreadable:" in result.output and "garbage.der" in result.output


def test_check_passes_without_certificate_problems(certs: dict[str, Path], tmp_path: Path) -> None:
    result = run_cli(cli_config(tmp_path, certificate_settings(certs, "proxy")), tmp_path, "check")
    assert result.exit_code == 0, result.output
    assert os.fspath(certs["proxy"]) not in result.output  # the table names certificates, not files
