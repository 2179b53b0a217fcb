"""`transport: importfolder`: Mikropro's import job reads a folder with its manifest (MikroproImport) and
writes MikroproRueckmeldung result files; only the two folders are configured. Through a hub: the
application is imported, its Aktenzeichen and later the decision come back once each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lxml import etree
from mikropro_helpers import Mikropro

from hub import AnswerStatus, ApplicationState
from hub.testing import RunningHub
from hub.testing.fakes import RecordingEfile, RecordingNotifier

MAPPING = """
version: 1
title: Baubeginnanzeige
file_number: {pattern: "63/BA-{year}-{seq:05d}"}
documents:
  - {type: Originalantrag, content: original, name: anzeige.json}
payloads:
  mikropro:
    fields:
      Verfahrensart: Baubeginnanzeige
      Baubeginn: "{{ form.baubeginn }}"
"""


async def answered(running: RunningHub, app_id: str, count: int) -> None:
    mailbox = running.hub.connectors["mailbox"]
    assert isinstance(mailbox, RecordingNotifier)

    async def done() -> bool:
        summary = await running.journal.get_summary(app_id)
        return len(mailbox.statuses) == count and summary is not None and summary.state.value == "completed"

    await running.wait_for(done, what=f"{count} result files of Mikropro carried out")


async def test_mikropro_through_its_import_folder_imports_and_answers_once_each(
    hub_factory: Any, tmp_path: Path, start_mikropro: Callable[..., Awaitable[Mikropro]]
) -> None:
    (tmp_path / "export").mkdir()
    mapping = tmp_path / "baubeginn.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    section = {
        "type": "mikropro",
        "transport": "importfolder",
        "path": str(tmp_path / "import"),
        "answers": str(tmp_path / "export"),
        "poll_seconds": 0.1,
    }
    connectors = {
        "json": {"type": "test-json"},
        "efile": {"type": "test-efile"},
        "mikropro": section,
        "mailbox": {"type": "test-notifier"},
    }
    on_answer = {"update_akte": "efile", "notify": ["mailbox"], "decision": "both"}
    routes = [
        {
            "name": "r",
            "from": "json",
            "to": ["efile", "mikropro"],
            "map": str(mapping),
            "on_answer": on_answer,
        }
    ]
    running: RunningHub = await hub_factory(connectors, routes)
    mikropro = await start_mikropro(
        transport="importfolder",
        import_dir=tmp_path / "import",
        answer_dir=tmp_path / "export",
        data_dir=tmp_path / "mikropro-work",
    )
    status, body = await running.post(
        "/intake/json/baubeginnanzeige", json={"id": "mp-1", "form": {"baubeginn": "2027-03-01"}}
    )
    assert status == 202, body
    app_id = str(body["application_id"])
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED

    assert await mikropro.control("import", {}) == {"imported": [app_id], "refused": []}
    manifest = etree.parse(str(tmp_path / "mikropro-work" / app_id / "mikropro-import.xml"))
    assert manifest.findtext("Vorgang/Referenz") == app_id
    assert manifest.findtext("Fachdaten/Feld[@name='Baubeginn']") == "2027-03-01"
    assert manifest.findtext("EAkte/Aktenzeichen") == "63/BA-2026-00001"
    await answered(running, app_id, 1)
    case = await mikropro.control("decide", {"reference": app_id, "status": "beschieden", "pdf": True})
    await answered(running, app_id, 2)

    efile = running.hub.connectors["efile"]
    assert isinstance(efile, RecordingEfile) and efile.answer_calls == 2
    filed = sorted(efile.answered.values(), key=lambda r: r.at)
    assert [r.status for r in filed] == [AnswerStatus.ACCEPTED, AnswerStatus.DECIDED]
    assert {r.case_number for r in filed} == {"63-BA-2026-00001"} == {case["case_number"]}
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["done"]
