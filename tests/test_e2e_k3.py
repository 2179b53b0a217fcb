"""End to end through the K3 profile against the real targets: FormCycle with a BundID login → enaio and
K3's import folder (connector `type: k3`, only its two folders configured) → the simulated K3 opens a
case and decides → enaio's Akte updated and the Bescheid filed, the applicant's ZBP mailbox told, each
once, the Aktenzeichen unchanged. The world is `test_e2e_answers.started_world` with K3 as `fv`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hub_k3.simulator import make_app as k3_app
from lxml import etree
from test_e2e_answers import FAST_RETRY, started_world
from test_e2e_fachverfahren import answered, check_round_trip, submitted


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
