"""End to end through the generic Fachverfahren transports and back, against the real targets.

FormCycle posts an application with a forwarded BundID login; the hub files it into the enaio simulator
and delivers it to a Fachverfahren through a generic transport, whose simulator takes it, opens a case
and later decides (the decision as a PDF). The answers come back the transport's own way (the import
folder's answer folder; XÖV messages in the hub's XTA mailbox), enaio records them (index fields, the
decision into the Vorgang), the ZBP simulator's mailbox gets the statuses and the decision: each once,
also when the Fachverfahren gives an answer again, and the Aktenzeichen never changes. The world (IdP,
enaio, ZBP, hub) is `test_e2e_answers.started_world` with the transport as connector `fv`.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestClient, TestServer
from hub_fachverfahren.importfolder.simulator import SimulatedFachverfahren
from hub_fachverfahren.xoev.simulator import make_app as xoev_app
from hub_xta.simulator import STATE as XTA_STATE
from hub_xta.simulator import make_app as xta_app
from test_e2e_answers import FAST_RETRY, World, started_world

from hub.models import ApplicationState

MANIFEST = Path(__file__).parents[1] / "config" / "mappings" / "k3-manifest.xml.j2"
MESSAGE = Path(__file__).parents[1] / "config" / "mappings" / "xdomea-0101.xml.j2"
K3_STATUS = {"eingegangen": "accepted", "in Bearbeitung": "in_progress", "beschieden": "decided"}


async def answered(world: World, app_id: str, answers: int) -> None:
    """Wait until `answers` answers are filed into enaio and the application is completed again."""

    async def done() -> bool:
        events = Counter(e.type for e in await world.running.journal.events(app_id))
        summary = await world.running.journal.get_summary(app_id)
        return (
            events["answer.filed"] == answers
            and summary is not None
            and summary.state == ApplicationState.COMPLETED
        )

    await world.running.wait_for(done, what=f"{answers} answer(s) filed and told")


async def check_round_trip(
    world: World, app_id: str, aktenzeichen: str, handle: str, case_number: str
) -> bytes:
    """enaio updated and the decision filed, the applicant told, each once; returns the decision."""
    (akte,) = await world.enaio_objects(type="Personenakte")
    assert akte["fields"]["Aktenzeichen"] == aktenzeichen
    assert (akte["fields"]["FVAktenzeichen"], akte["fields"]["Bearbeitungsstand"]) == (
        case_number,
        "Bescheid erlassen",
    )
    assert akte["updates"] == 2  # one per answer
    (vorgang,) = await world.enaio_objects(type="Vorgang")
    (bescheid,) = await world.enaio_objects(type="Bescheid")
    assert bescheid["parentId"] == vorgang["id"]
    decision = await world.enaio_content(bescheid["id"])
    assert decision.startswith(b"%PDF-1.4")
    box = await world.mailbox(handle)
    assert [s["payload"]["status"] for s in box["status_updates"]] == ["RECEIVED", "PROCESSING", "COMPLETED"]
    with_attachments = [m for m in box["messages"] if m["payload"].get("attachments")]
    assert len(with_attachments) == 1
    assert (
        with_attachments[0]["payload"]["attachments"][0]["sha512sum"] == hashlib.sha512(decision).hexdigest()
    )
    app = await world.running.journal.get_application(app_id)
    assert app is not None and app.file_number == aktenzeichen
    assert app.correlations["fv.case_number"] == case_number
    events = Counter(e.type for e in await world.running.journal.events(app_id))
    assert (events["answer.received"], events["answer.filed"]) == (2, 2)
    return decision


async def submitted(world: World) -> tuple[str, str, str]:
    """A FormCycle application filed and delivered: its id, Aktenzeichen and the applicant's mailbox."""
    login = world.idp.response("U04", means="eID")
    app_id = await world.submit("FC-FV-1", login, vorname="Johanna", nachname="Kleinschmidt")
    assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED
    filed = await world.running.journal.get_application(app_id)
    assert filed is not None and filed.file_number
    return app_id, filed.file_number, world.idp.mailbox("U04")


def import_folder(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """The `fv` connector section of a K3-like import folder under `tmp_path/k3`, and its answer folder."""
    export = tmp_path / "k3" / "export"
    export.mkdir(parents=True)
    fv = {
        "type": "importfolder",
        "path": str(tmp_path / "k3" / "import"),
        "answers": str(export),
        "manifest": {"template": str(MANIFEST)},
        "poll_seconds": 0.1,
        "answer_format": {"status_map": K3_STATUS, "settle_seconds": 0},
        "retry": FAST_RETRY,
    }
    return fv, export


async def test_import_folder_answers_update_enaio_and_tell_the_applicant_once(
    tmp_path: Path, hub_factory: Any, schema_dir: Path
) -> None:
    fv, export = import_folder(tmp_path)
    async with started_world(tmp_path, hub_factory, schema_dir, fv) as world:
        app_id, aktenzeichen, handle = await submitted(world)
        k3 = SimulatedFachverfahren(tmp_path / "k3" / "import", export, tmp_path / "k3" / "work", prefix="UA")

        assert k3.take_imports() == {"imported": [app_id], "refused": []}
        await answered(world, app_id, 1)
        case = k3.decide(app_id, "beschieden", "Ihr Jagdschein ist erteilt.", pdf=True)
        await answered(world, app_id, 2)

        decision = await check_round_trip(world, app_id, aktenzeichen, handle, case.case_number)
        assert decision == (export / "done" / f"Bescheid-{case.case_number}.pdf").read_bytes()
        assert sorted(p.name for p in export.iterdir()) == ["done"]

        # K3 writes its decision again (it did not see it taken): a repeat, nothing twice.
        (result,) = [p for p in (export / "done").glob("*.xml") if b"beschieden" in p.read_bytes()]
        shutil.copy(export / "done" / f"Bescheid-{case.case_number}.pdf", export)
        shutil.copy(result, export)
        await world.running.wait_for(
            lambda: sorted(p.name for p in export.iterdir()) == ["done"], what="the repeat taken"
        )
        assert len(await world.enaio_objects(type="Bescheid")) == 1
        assert (await world.enaio_objects(type="Personenakte"))[0]["updates"] == 2
        box = await world.mailbox(handle)
        assert len(box["status_updates"]) == 3
        assert len(await world.running.journal.answers(app_id)) == 2


XOEV = """
type: xoev
recipient: {identifier: "vbe:k3-fachverfahren"}
poll_seconds: 0.1
message:
  template: MESSAGE
  schema: xdomea/3.0.0/xsd/xdomea-Nachrichten-InformationAustauschen.xsd
  message_type: Information.Information.0101
  payload_schema: urn:xoev-de:xdomea:schema:3.0.0
  service: urn:xoev-de:xdomea:schema:3.0.0
  business_scenario: XDOMEA_DATA
answers:
  message_types: [Information.EmpfangBestaetigen.0102]
  namespaces: {x: "urn:xoev-de:xdomea:schema:3.0.0"}
  fields:                                  # the simulated Fachverfahren's 0102: "<case number> <status>"
    reference: x:Kopf/x:ProzessID
    case_number: "substring-before(x:Kopf/x:Hinweis, ' ')"
    status: "substring-after(x:Kopf/x:Hinweis, ' ')"
    message: null
    error: null
    decision: null
  status_map: {eingegangen: accepted, beschieden: decided}
"""


async def test_xoev_answers_update_enaio_and_tell_the_applicant_once(
    tmp_path: Path, hub_factory: Any, schema_dir: Path
) -> None:
    xta = TestServer(xta_app(schemas=schema_dir, data_dir=tmp_path / "xta"), host="127.0.0.1")
    await xta.start_server()
    url = str(xta.make_url("")).rstrip("/")
    fv = yaml.safe_load(XOEV.replace("MESSAGE", str(MESSAGE)))
    fv["xta"] = {"url": url, "account": {"identifier": "vbe:umweltamt-hub"}, "timeout_seconds": 5}
    fv["retry"] = FAST_RETRY
    try:
        async with (
            started_world(tmp_path, hub_factory, schema_dir, fv, schemas=str(schema_dir)) as world,
            TestClient(
                TestServer(
                    xoev_app(url, "vbe:k3-fachverfahren", schema_dir, tmp_path / "fv"), host="127.0.0.1"
                )
            ) as k3,
        ):
            app_id, aktenzeichen, handle = await submitted(world)
            reference = (await world.running.journal.get_application(app_id)).correlations["fv"]

            assert await (await k3.post("/control/receive")).json() == {"opened": [reference], "refused": []}
            await answered(world, app_id, 1)
            decided = await k3.post("/control/decide", json={"reference": reference, "pdf": True})
            await answered(world, app_id, 2)

            await check_round_trip(world, app_id, aktenzeichen, handle, (await decided.json())["case_number"])
            assert xta.app[XTA_STATE].mailbox("vbe:umweltamt-hub") == {}  # every answer closed
    finally:
        await xta.close()
