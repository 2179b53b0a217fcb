"""End to end through a hub: an application delivered to the e-file and a Fachverfahren (import folder or
XÖV over XTA), the simulated Fachverfahren answers (case number, later the decision as a PDF), and the
return channel files each answer into the e-file and tells the applicant, once each, the Aktenzeichen
unchanged.

The e-file and the applicant's mailbox are the test kit's recording targets here (`test-efile`,
`test-notifier`); the Fachverfahren side is this plugin's transports and simulators.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hub_fachverfahren.xoev.simulator import make_app as xoev_fachverfahren
from importfolder_helpers import STATUS_MAP, XML_MANIFEST, simulator, write_template
from xoev_helpers import FV, TEMPLATE, Xta, make_config

from hub import AnswerStatus, ApplicationState
from hub.journal import ApplicationFilter
from hub.testing import RunningHub
from hub.testing.fakes import RecordingEfile, RecordingNotifier

AKTENZEICHEN = "AZ-2026-0815"
ON_ANSWER = {"update_akte": "efile", "notify": ["mailbox"], "decision": "both"}


def hub_connectors(fv: dict[str, Any]) -> dict[str, Any]:
    return {
        "json": {"type": "test-json"},
        "efile": {"type": "test-efile", "file_number": AKTENZEICHEN},
        "fv": fv,
        "mailbox": {"type": "test-notifier"},
    }


ROUTES = [{"name": "r", "from": "json", "to": ["efile", "fv"], "on_answer": ON_ANSWER}]


async def submit(running: RunningHub) -> str:
    status, body = await running.post(
        "/intake/json/jagdschein", json={"id": "e2e-1", "form": {"nachname": "Groß"}}
    )
    assert status == 202, body
    app_id = str(body["application_id"])
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    return app_id


async def settled(running: RunningHub, app_id: str, answers: int) -> None:
    """Wait until `answers` answers are filed and told and the application is completed again."""
    efile = running.hub.connectors["efile"]
    mailbox = running.hub.connectors["mailbox"]
    assert isinstance(efile, RecordingEfile) and isinstance(mailbox, RecordingNotifier)

    async def done() -> bool:
        summary = await running.journal.get_summary(app_id)
        return (
            len(efile.answered) == answers
            and len(mailbox.statuses) == answers
            and summary is not None
            and summary.state == ApplicationState.COMPLETED
        )

    await running.wait_for(done, what=f"{answers} answers filed and told")


async def check_outcome(running: RunningHub, app_id: str, case_number: str) -> None:
    """Both answers filed once and told once, the decision filed and sent, the Aktenzeichen unchanged."""
    efile = running.hub.connectors["efile"]
    mailbox = running.hub.connectors["mailbox"]
    assert isinstance(efile, RecordingEfile) and isinstance(mailbox, RecordingNotifier)
    assert efile.answer_calls == 2 and mailbox.status_calls == 2  # each exactly once
    filed = sorted(efile.answered.values(), key=lambda r: r.at)
    assert [r.status for r in filed] == [AnswerStatus.ACCEPTED, AnswerStatus.DECIDED]
    assert {r.case_number for r in filed} == {case_number}
    assert {r.file_number for r in filed} == {AKTENZEICHEN}
    (decision,) = filed[1].documents
    assert decision.blob is not None
    assert (await running.hub.blobs.read_bytes(decision.blob)).startswith(b"%PDF-1.4")
    told = [r for r in mailbox.statuses.values() if r.status == AnswerStatus.DECIDED]
    assert len(told) == 1 and told[0].documents  # the decision attached for the applicant
    app = await running.journal.get_application(app_id)
    assert app.file_number == AKTENZEICHEN
    assert app.correlations["fv.case_number"] == case_number
    events = [e.type for e in await running.journal.events(app_id)]
    assert events.count("answer.received") == 2


async def test_import_folder_round_trip(hub_factory: Any, tmp_path: Path) -> None:
    template = write_template(tmp_path, "k3-manifest.xml.j2", XML_MANIFEST)
    fv = {
        "type": "importfolder",
        "path": str(tmp_path / "import"),
        "answers": str(tmp_path / "export"),
        "manifest": {"template": str(template)},
        "poll_seconds": 0.1,
        "answer_format": {"status_map": STATUS_MAP, "settle_seconds": 0},
    }
    (tmp_path / "export").mkdir()
    running = await hub_factory(hub_connectors(fv), ROUTES)
    app_id = await submit(running)
    fachverfahren = simulator(tmp_path)

    assert fachverfahren.take_imports() == {"imported": [app_id], "refused": []}
    await settled(running, app_id, 1)
    case = fachverfahren.decide(app_id, "beschieden", "Bescheid erlassen", pdf=True)
    await settled(running, app_id, 2)

    await check_outcome(running, app_id, case.case_number)
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["done"]


async def test_xoev_round_trip(hub_factory: Any, tmp_path: Path, schema_dir: Path, xta: Xta) -> None:
    fv = make_config(xta.url, write_template(tmp_path, "k3-0101.xml.j2", TEMPLATE))
    fv["poll_seconds"] = 0.1
    running = await hub_factory(hub_connectors(fv), ROUTES, schemas=str(schema_dir))
    app_id = await submit(running)
    reference = (await running.journal.get_application(app_id)).correlations["fv"]
    app = xoev_fachverfahren(xta.url, FV, schema_dir, tmp_path / "fv-blobs")
    async with TestClient(TestServer(app, host="127.0.0.1")) as fachverfahren:
        received = await (await fachverfahren.post("/control/receive")).json()
        assert received == {"opened": [reference], "refused": []}
        await settled(running, app_id, 1)
        response = await fachverfahren.post("/control/decide", json={"reference": reference, "pdf": True})
        case_number = (await response.json())["case_number"]
        await settled(running, app_id, 2)

    await check_outcome(running, app_id, case_number)


async def test_an_import_the_fachverfahren_refuses_makes_its_delivery_dead_with_the_error(
    hub_factory: Any, tmp_path: Path
) -> None:
    # The manifest lacks the reference the Fachverfahren needs: it writes an error result.
    template = write_template(tmp_path, "k3-manifest.xml.j2", "<manifest><ref>{{ folder }}</ref></manifest>")
    fv = {
        "type": "importfolder",
        "path": str(tmp_path / "import"),
        "answers": str(tmp_path / "export"),
        "manifest": {"template": str(template)},
        "poll_seconds": 0.1,
        "answer_format": {"status_map": STATUS_MAP, "settle_seconds": 0},
    }
    (tmp_path / "export").mkdir()
    running = await hub_factory(hub_connectors(fv), ROUTES)
    app_id = await submit(running)

    assert simulator(tmp_path).take_imports() == {"imported": [], "refused": [app_id]}
    assert await running.wait_for_state(app_id, [ApplicationState.DEAD]) == ApplicationState.DEAD

    [task] = [t for t in await running.journal.tasks(app_id) if t.step == "deliver" and t.target == "fv"]
    assert task.error_code == "answer-failed"
    assert task.last_error is not None and "manifest names no reference" in task.last_error
    mailbox = running.hub.connectors["mailbox"]
    assert isinstance(mailbox, RecordingNotifier) and mailbox.status_calls == 0  # nobody is told

    # Replayed, the delivery writes the import anew (its checkpoint said "consumed" by the Fachverfahren):
    # here the Fachverfahren refuses it once more, which shows it was delivered again.
    assert await running.hub.bus.replay(ApplicationFilter(ids=(app_id,))) == [app_id]
    refused_again = await running.wait_for(
        lambda: (tmp_path / "import" / app_id).is_dir(), what="the import written again"
    )
    assert refused_again
    assert simulator(tmp_path).take_imports() == {"imported": [], "refused": [app_id]}
