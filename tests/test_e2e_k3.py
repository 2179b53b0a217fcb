"""End to end through the K3 profile against the real targets: FormCycle with a BundID login → enaio and
K3's import folder (connector `type: k3`, only its two folders configured) → the simulated K3 opens a
case and decides → enaio's Akte updated and the Bescheid filed, the applicant's ZBP mailbox told, each
once, the Aktenzeichen unchanged. The world is `test_e2e_answers.started_world` with K3 as `fv`.

The Umweltamt's own services (wasserrechtliche Erlaubnis, Anzeige einer AwSV-Anlage) run the same way
with their mappings from config/mappings, K3 delivered after enaio so its manifest names the Akte's
enaio object id.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hub_k3.simulator import make_app as k3_app
from lxml import etree
from test_e2e_answers import FAST_RETRY, started_world
from test_e2e_fachverfahren import answered, check_round_trip, submitted

from hub.models import ApplicationState


async def test_k3_case_number_and_decision_reach_enaio_and_the_mailbox_once(
    tmp_path: Path, hub_factory: Any, schema_dir: Path
) -> None:
    export = tmp_path / "k3" / "export"
    export.mkdir(parents=True)
    fv = {
        "type": "k3",
        "path": str(tmp_path / "k3" / "import"),
        "answers": str(export),
        "poll_seconds": 0.1,
        "retry": FAST_RETRY,
    }
    async with started_world(tmp_path, hub_factory, schema_dir, fv) as world:
        app_id, aktenzeichen, handle = await submitted(world)
        work = tmp_path / "k3" / "work"
        app = k3_app(tmp_path / "k3" / "import", export, work)
        async with TestClient(TestServer(app, host="127.0.0.1")) as k3:
            taken = await (await k3.post("/control/import")).json()
            assert taken == {"imported": [app_id], "refused": []}
            await answered(world, app_id, 1)
            decision = {"reference": app_id, "status": "beschieden", "pdf": True}
            case_number = (await (await k3.post("/control/decide", json=decision)).json())["case_number"]
            await answered(world, app_id, 2)

        await check_round_trip(world, app_id, aktenzeichen, handle, case_number)
        # The clerk opens the e-file from K3: the manifest names the Akte by its Aktenzeichen.
        manifest = etree.parse(str(work / app_id / "k3-import.xml"))
        assert manifest.findtext("EAkte/Aktenzeichen") == aktenzeichen
        assert manifest.findtext("Antragsteller/Nachname") == "Kleinschmidt"
        names = manifest.xpath("/K3Import/Dateien/Datei/@name")
        assert names and all((work / app_id / name).is_file() for name in names)


MAPPINGS = Path(__file__).parents[1] / "config" / "mappings"
CONNECTOR = "umwelt-fv"  # the name the Umweltamt's mappings give K3 in `payloads:`
# The Umweltamt's two services: FormCycle's form fields, a Fachdaten field the manifest must carry and
# what the Akte's Bearbeitungsstand reads once K3 decided.
UMWELTAMT = {
    "wasserrecht": (
        {"benutzung": "Entnahme von Grundwasser", "gewaesser": "Grundwasser", "menge": "600 m³ im Jahr"},
        ("Gewaesser", "Grundwasser"),
        "Bescheid erlassen",
    ),
    "awsv-anlage": (
        {
            "anzeigeart": "Errichtung",
            "anlage_strasse": "Lindenweg 4",
            "anlage_ort": "Lohmar",
            "volumen_l": "5000",
            "tankart": "Doppelwandiger Kunststofftank",
            "aufstellung": "oberirdisch im Kellerraum",
            "schutzgebiet": "nein",
        },
        ("VolumenLiter", "5000"),
        "Anzeige bestätigt",
    ),
}


def umweltamt_routes() -> list[dict[str, Any]]:
    """One route per Umweltamt service, each with its own mapping, into enaio and K3."""
    return [
        {
            "name": service,
            "from": "formcycle",
            "when": {"service": service},
            "identity": {"via": "bundid", "min_level": "substantiell"},
            "map": str(MAPPINGS / f"{service}.yaml"),
            "to": ["enaio", CONNECTOR],
            "after": {CONNECTOR: ["enaio"]},  # K3's import names the Akte enaio created
            "notify": ["postfach"],
            "on_answer": {"update_akte": "enaio", "notify": ["postfach"], "decision": "both"},
        }
        for service in UMWELTAMT
    ]


@pytest.mark.parametrize("service", list(UMWELTAMT))
async def test_umweltamt_service_from_formcycle_into_enaio_and_k3_and_the_decision_back_once(
    service: str, tmp_path: Path, hub_factory: Any, schema_dir: Path
) -> None:
    form, (field, value), decided_text = UMWELTAMT[service]
    export = tmp_path / "k3" / "export"
    export.mkdir(parents=True)
    fv = {"type": "k3", "path": str(tmp_path / "k3" / "import"), "answers": str(export)}
    fv |= {"poll_seconds": 0.1, "retry": FAST_RETRY}
    location = {"gemarkung": "Lohmar", "flur": "3", "flurstueck": "88", "einwilligung": "ja"}
    async with started_world(
        tmp_path, hub_factory, schema_dir, fv, fv_name=CONNECTOR, routes=umweltamt_routes()
    ) as world:
        login = world.idp.response("U04", means="eID")
        app_id = await world.submit(
            "FC-UA-1", login, service, vorname="Erika", nachname="Schäfer", **form, **location
        )
        assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED
        application = await world.running.journal.get_application(app_id)
        assert application is not None and application.file_number
        aktenzeichen = application.file_number
        work = tmp_path / "k3" / "work"
        async with TestClient(
            TestServer(k3_app(tmp_path / "k3" / "import", export, work), host="127.0.0.1")
        ) as k3:
            assert await (await k3.post("/control/import")).json() == {"imported": [app_id], "refused": []}
            await answered(world, app_id, 1)
            decision = {"reference": app_id, "status": "beschieden", "pdf": True}
            case_number = (await (await k3.post("/control/decide", json=decision)).json())["case_number"]
            await answered(world, app_id, 2)

        manifest = etree.parse(str(work / app_id / "k3-import.xml"))
        assert manifest.findtext("Vorgang/Leistung") == service
        assert manifest.findtext("EAkte/Aktenzeichen") == aktenzeichen
        assert manifest.findtext("EAkte/ObjektId") == application.correlations["enaio.akte"]
        assert manifest.findtext(f"Fachdaten/Feld[@name='{field}']") == value
        (akte,) = await world.enaio_objects(type="Personenakte")
        assert str(akte["id"]) == application.correlations["enaio.akte"]  # the clerk opens it from K3
        fields = akte["fields"]
        assert (fields["Aktenzeichen"], fields["FVAktenzeichen"]) == (aktenzeichen, case_number)
        assert fields["Bearbeitungsstand"] == decided_text and akte["updates"] == 2  # one per answer
        (bescheid,) = await world.enaio_objects(type="Bescheid")
        assert (await world.enaio_content(bescheid["id"])).startswith(b"%PDF-")
        box = await world.mailbox(world.idp.mailbox("U04"))
        assert [s["payload"]["status"] for s in box["status_updates"]] == [
            "RECEIVED",
            "PROCESSING",
            "COMPLETED",
        ]
        assert len([m for m in box["messages"] if m["payload"].get("attachments")]) == 1  # the decision, once
        events = Counter(e.type for e in await world.running.journal.events(app_id))
        assert (events["answer.received"], events["answer.filed"]) == (2, 2)
        done = await world.running.journal.get_application(app_id)
        assert done is not None and done.file_number == aktenzeichen
        assert done.correlations[f"{CONNECTOR}.case_number"] == case_number
