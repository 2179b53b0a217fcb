"""`aktenhub demo --once` files every demo application in the Enaio simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner

from hub.cli import main
from hub.journal import ApplicationFilter, SqliteJournal
from hub.models import Application, ApplicationState


async def filed(journal_path: Path) -> list[Application]:
    journal = SqliteJournal(journal_path)
    await journal.open()
    try:
        rows = await journal.list_applications(ApplicationFilter(), limit=100)
        states = sorted(r.state for r in rows)
        assert states == sorted([ApplicationState.COMPLETED] * 21 + [ApplicationState.REJECTED] * 2)
        xbau, login = sorted(
            (r for r in rows if r.state == ApplicationState.REJECTED), key=lambda r: r.service
        )
        assert login.error == "Vertrauensniveau zu niedrig: untergeordnet erreicht, substantiell erforderlich"
        assert xbau.service == "bauantrag" and "schemakonform" in (xbau.error or "")
        apps = [await journal.get_application(r.id) for r in sorted(rows, key=lambda r: r.received_at)]
        return [a for a in apps if a is not None and a.id not in (login.id, xbau.id)]
    finally:
        await journal.close()


def test_demo_files_every_application(tmp_path: Path) -> None:
    args = ["demo", "--once", "--port", "0", "--enaio-port", "0"]
    result = CliRunner().invoke(main, [*args, "--data", str(tmp_path / "demo")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    apps = asyncio.run(filed(tmp_path / "demo" / "journal.db"))
    assert {a.service for a in apps} == {
        "jagdschein",
        "fischereischein",
        "grabungserlaubnis",
        "kindertagespflege",
        "bauantrag",
    }
    bauantraege = [a for a in apps if a.service == "bauantrag"]
    assert len(bauantraege) == 2
    for app in bauantraege:  # from Bauportal.NRW over XTA into the Bauakte and the xdomea DMS
        assert app.file_number and app.file_number.startswith("63/BA-")
        assert len(app.correlations["enaio.documents"].split(",")) == 5  # PDF, 3 Anlagen, original XML
        assert any(key.startswith("xdomea") for key in app.correlations)
    apps = [a for a in apps if a.service != "bauantrag"]
    for app in apps:
        assert app.file_number
        assert len(app.correlations["enaio.documents"].split(",")) == 4  # rendition, 2 attachments, original
        if app.service in ("jagdschein", "fischereischein"):  # BundID services: verified identity
            assert app.identity.verified and app.identity.level in ("substantiell", "hoch")
            assert app.applicant.mailbox
    # Maria Neumann (BundID test person U01) applied for a Jagdschein and later for its renewal
    first, renewal = [a for a in apps if a.applicant.family_name == "Neumann" and a.service == "jagdschein"]
    assert renewal.correlations["enaio.akte"] == first.correlations["enaio.akte"]
    assert renewal.correlations["enaio.vorgang"] != first.correlations["enaio.vorgang"]
    assert renewal.file_number == first.file_number
    log = (tmp_path / "demo" / "hub.log").read_text(encoding="utf-8")
    assert "Neumann" not in log and "Çelik" not in log and "Müßig" not in log  # no personal data
