"""End to end through the ADVIS profile against the real targets: a Verpflichtungserklärung from FormCycle
with a BundID login → enaio and ADVIS's XTA mailbox (connector `type: advis`, only XTA and ADVIS's identity
configured; the mapping is config/mappings/verpflichtungserklaerung.yaml) → the simulated ADVIS validates
it, opens a case and decides → enaio's Akte updated and the decision filed, the applicant's ZBP mailbox
told, each once, the Aktenzeichen unchanged. The world is `test_e2e_answers.started_world` with ADVIS as
`fv`; the schema directory holds the XAusländer TEST FIXTURE (plugins/advis/tests/fixtures, not the
official schema) beside the reference schemas.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hub_advis.simulator import make_app as advis_app
from hub_xta.simulator import STATE as XTA_STATE
from hub_xta.simulator import make_app as xta_app
from lxml import etree
from test_e2e_answers import FAST_RETRY, started_world
from test_e2e_fachverfahren import answered

from hub.models import ApplicationState

ROOT = Path(__file__).parents[1]
MAPPING = ROOT / "config" / "mappings" / "verpflichtungserklaerung.yaml"
FIXTURE = ROOT / "plugins" / "advis" / "tests" / "fixtures" / "xauslaender-TEST-FIXTURE-not-official"
HUB, ADVIS = "vbe:abh-hub", "vbe:advis"
GUEST = {
    "gast_vorname": "Mehmet",
    "gast_nachname": "Demir",
    "gast_geburtsdatum": "1951-02-03",
    "gast_staatsangehoerigkeit": "163",
    "beginn": "2027-04-01",
    "ende": "2027-06-15",
    "zweck": "Besuch der Familie",
}


async def test_a_verpflichtungserklaerung_reaches_advis_and_its_answers_reach_enaio_and_the_mailbox_once(
    tmp_path: Path, hub_factory: Any, schema_dir: Path
) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(schema_dir, schemas)
    shutil.copytree(FIXTURE, schemas / "xauslaender" / "1.21.1")
    xta = TestServer(xta_app(schemas=schemas, data_dir=tmp_path / "xta"), host="127.0.0.1")
    await xta.start_server()
    url = str(xta.make_url("")).rstrip("/")
    fv = {
        "type": "advis",
        "recipient": {"identifier": ADVIS},
        "xta": {"url": url, "account": {"identifier": HUB}, "timeout_seconds": 5},
        "poll_seconds": 0.1,
        "retry": FAST_RETRY,
    }
    # The operator's mapping, its ADVIS payload for the connector this world calls `fv`; what the
    # answers change in the Akte is the world's (`test_e2e_answers.ANSWERS`).
    text = MAPPING.read_text("utf-8").replace("\npayloads:\n  advis:\n", "\npayloads:\n  fv:\n")
    mapping = text[: text.index("\nanswers:")]
    try:
        async with (
            started_world(
                tmp_path, hub_factory, schemas, fv, mapping_base=mapping, schemas=str(schemas)
            ) as world,
            TestClient(
                TestServer(advis_app(url, ADVIS, schemas, tmp_path / "advis"), host="127.0.0.1")
            ) as advis,
        ):
            login = world.idp.response("U04", means="eID")
            app_id = await world.submit("FC-VE-7", login, vorname="Johanna", nachname="Kleinschmidt", **GUEST)
            assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED
            app = await world.running.journal.get_application(app_id)
            aktenzeichen, reference = app.file_number, app.correlations["fv"]
            assert aktenzeichen is not None and aktenzeichen.startswith("32.1-VE-")

            # ADVIS's mailbox: the XAusländer message, with the person as BundID confirmed her.
            (sent,) = xta.app[XTA_STATE].mailbox(ADVIS).values()
            message = etree.parse(str(sent.message.path)).getroot()
            person = message.find("verpflichtungsgeber")
            assert person is not None
            assert (person.findtext("familienname"), person.findtext("geburtsdatum")) == (
                "Kleinschmidt",
                "1981-10-19",
            )
            assert message.findtext("eingeladenePerson/familienname") == "Demir"

            assert await (await advis.post("/control/receive")).json() == {
                "opened": [reference],
                "refused": [],
            }
            await answered(world, app_id, 1)
            decision = {"reference": reference, "status": "entschieden", "pdf": True}
            case_number = (await (await advis.post("/control/decide", json=decision)).json())["case_number"]
            await answered(world, app_id, 2)

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
            pdf = await world.enaio_content(bescheid["id"])
            assert pdf.startswith(b"%PDF-")
            box = await world.mailbox(world.idp.mailbox("U04"))
            statuses = [s["payload"]["status"] for s in box["status_updates"]]
            assert statuses == ["RECEIVED", "PROCESSING", "COMPLETED"]
            with_attachments = [m for m in box["messages"] if m["payload"].get("attachments")]
            assert len(with_attachments) == 1
            (attachment,) = with_attachments[0]["payload"]["attachments"]
            assert attachment["sha512sum"] == hashlib.sha512(pdf).hexdigest()
            app = await world.running.journal.get_application(app_id)
            assert app.file_number == aktenzeichen and app.correlations["fv.case_number"] == case_number
            events = Counter(e.type for e in await world.running.journal.events(app_id))
            assert (events["answer.received"], events["answer.filed"]) == (2, 2)
            assert xta.app[XTA_STATE].mailbox(HUB) == {}  # every answer closed
    finally:
        await xta.close()
