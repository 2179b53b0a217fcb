"""End to end through a hub: an application into the e-file and K3's import folder, the simulated K3
opens a case and later decides, and the return channel files each K3Rueckmeldung into the e-file and
tells the applicant, once each, the Aktenzeichen unchanged. A manifest K3 cannot read becomes a dead
delivery with K3's error text.

The e-file and the mailbox are the test kit's recording targets (`test-efile`, `test-notifier`); the K3
side is this plugin's connector and simulator, driven through the simulator's control endpoints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from hub_k3.simulator import make_app
from lxml import etree

from hub import AnswerStatus, ApplicationState
from hub.testing import RunningHub
from hub.testing.fakes import RecordingEfile, RecordingNotifier
from hub.testing.harness import stop_hub

TOKENS = {"OPERATOR_TOKEN": "o-secret-k3"}
SERVER = {
    "listen": "127.0.0.1:0",
    "admin_tokens": [{"name": "ops", "token": "${OPERATOR_TOKEN}", "role": "operator"}],
}
OPERATOR = {"Authorization": "Bearer o-secret-k3"}
AKTENZEICHEN = "66.2-2026-0001"  # the first the mapping draws
ON_ANSWER = {"update_akte": "efile", "notify": ["mailbox"], "decision": "both"}
# The route's mapping draws the Aktenzeichen (so K3's manifest carries it) and gives K3 its index data.
MAPPING = """
version: 1
title: Antrag auf wasserrechtliche Erlaubnis
file_number: {pattern: "66.2-{year}-{seq:04d}"}
documents:
  - {type: Originalantrag, content: original}
payloads:
  k3:
    fields:
      Benutzung: "{{ form.benutzung }}"
"""


def k3_section(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    """The operator's K3 section: only the two folders (and a fast poll for the test)."""
    section = {"type": "k3", "path": str(tmp_path / "import"), "answers": str(tmp_path / "export")}
    section["poll_seconds"] = 0.1
    return {**section, **settings}


async def start(
    hub_factory: Any,
    tmp_path: Path,
    section: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    **settings: Any,
) -> RunningHub:
    """A hub with the K3 target `section` (default: the import folder, `settings` over it)."""
    (tmp_path / "export").mkdir(exist_ok=True)
    connectors = {
        "json": {"type": "test-json"},
        "efile": {"type": "test-efile"},
        "k3": section or k3_section(tmp_path, **settings),
        "mailbox": {"type": "test-notifier"},
    }
    mapping = tmp_path / "wasserrecht.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    routes = [
        {"name": "r", "from": "json", "to": ["efile", "k3"], "map": str(mapping), "on_answer": ON_ANSWER}
    ]
    running: RunningHub = await hub_factory(connectors, routes, env={**TOKENS, **(env or {})}, server=SERVER)
    return running


@pytest_asyncio.fixture
async def k3(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    app = make_app(tmp_path / "import", tmp_path / "export", tmp_path / "k3-work")
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def submit(running: RunningHub) -> str:
    form = {"vorname": "Wilhelm", "nachname": "Weber", "benutzung": "Entnahme von Grundwasser"}
    status, body = await running.post("/intake/json/wasserrecht", json={"id": "k3-1", "form": form})
    assert status == 202, body
    app_id = str(body["application_id"])
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    return app_id


async def settled(running: RunningHub, app_id: str, answers: int) -> None:
    """Wait until `answers` answers are filed and told and the application is completed again."""
    efile, mailbox = running.hub.connectors["efile"], running.hub.connectors["mailbox"]
    assert isinstance(efile, RecordingEfile) and isinstance(mailbox, RecordingNotifier)

    async def done() -> bool:
        summary = await running.journal.get_summary(app_id)
        return (
            len(efile.answered) == answers
            and len(mailbox.statuses) == answers
            and summary is not None
            and summary.state == ApplicationState.COMPLETED
        )

    await running.wait_for(done, what=f"{answers} K3 answers filed and told")


async def test_k3_imports_answers_with_a_case_number_and_later_a_decision_once_each(
    hub_factory: Any, tmp_path: Path, k3: TestClient[Any, Any]
) -> None:
    running = await start(hub_factory, tmp_path)
    app_id = await submit(running)

    taken = await (await k3.post("/control/import")).json()
    assert taken == {"imported": [app_id], "refused": []}
    # K3 read its manifest: the e-file's Aktenzeichen and the files it names are there.
    manifest = etree.parse(str(tmp_path / "k3-work" / app_id / "k3-import.xml"))
    assert manifest.findtext("EAkte/Aktenzeichen") == AKTENZEICHEN
    assert manifest.findtext("Fachdaten/Feld[@name='Benutzung']") == "Entnahme von Grundwasser"
    assert manifest.findtext("Vorgang/Leistung") == "wasserrecht"
    assert manifest.xpath("/K3Import/Dateien/Datei/@name")
    await settled(running, app_id, 1)
    response = await k3.post(
        "/control/decide", json={"reference": app_id, "status": "beschieden", "pdf": True}
    )
    case_number = (await response.json())["case_number"]
    await settled(running, app_id, 2)

    efile, mailbox = running.hub.connectors["efile"], running.hub.connectors["mailbox"]
    assert isinstance(efile, RecordingEfile) and isinstance(mailbox, RecordingNotifier)
    assert efile.answer_calls == 2 and mailbox.status_calls == 2  # each exactly once
    filed = sorted(efile.answered.values(), key=lambda r: r.at)
    assert [r.status for r in filed] == [AnswerStatus.ACCEPTED, AnswerStatus.DECIDED]
    assert {r.case_number for r in filed} == {case_number}
    assert case_number.startswith("UWB-")
    assert {r.file_number for r in filed} == {AKTENZEICHEN}
    (decision,) = filed[1].documents
    assert decision.blob is not None
    assert (await running.hub.blobs.read_bytes(decision.blob)).startswith(b"%PDF-")
    app = await running.journal.get_application(app_id)
    assert app.file_number == AKTENZEICHEN
    assert app.correlations["k3.case_number"] == case_number


async def test_an_import_k3_refuses_is_a_dead_delivery_with_k3s_error_text_replayable_after_the_fix(
    hub_factory: Any, tmp_path: Path, k3: TestClient[Any, Any]
) -> None:
    # The operator's own manifest template lacks the Referenz K3 needs: K3 writes an error result.
    template = tmp_path / "mappings" / "k3-import.xml.j2"
    template.parent.mkdir()
    template.write_text("<K3Import><Vorgang/></K3Import>", encoding="utf-8")
    manifest = {"template": str(template), "name": "k3-import.xml"}
    running = await start(hub_factory, tmp_path, manifest=manifest)
    app_id = await submit(running)

    taken = await (await k3.post("/control/import")).json()
    assert taken == {"imported": [], "refused": [app_id]}
    assert await running.wait_for_state(app_id, [ApplicationState.DEAD]) == ApplicationState.DEAD
    [task] = [t for t in await running.journal.tasks(app_id) if t.step == "deliver" and t.target == "k3"]
    assert task.error_code == "answer-failed"
    assert task.last_error is not None and "manifest names no reference" in task.last_error
    mailbox = running.hub.connectors["mailbox"]
    assert isinstance(mailbox, RecordingNotifier) and mailbox.status_calls == 0

    # The operator drops the broken template (K3's own is the default again), restarts and replays.
    await stop_hub(running)
    running = await start(hub_factory, tmp_path)
    status, body = await running.post(f"/api/v1/applications/{app_id}/replay", headers=OPERATOR)
    assert status == 200, body
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    taken = await (await k3.post("/control/import")).json()
    assert taken == {"imported": [app_id], "refused": []}
    await settled(running, app_id, 1)
