"""End to end with a route whose Fachverfahren assigns the Aktenzeichen (`file_number: {assigned_by: fv}`).

FormCycle posts an application with a forwarded BundID login; the hub draws no number of its own: the
Fachverfahren gets the record first (without an Aktenzeichen), and its number — from its answer (the
import folder's answer file) or from its delivery (the REST Fachverfahren's created case) — becomes
the application's Aktenzeichen. Only then does enaio get the Akte and the rendition showing it, and the
applicant's BundID mailbox the receipt carrying it; the Fachverfahren's answers update the Akte after
that. The world (IdP, enaio, ZBP, hub) is `test_e2e_answers.started_world` with the transport as `fv`.
"""

from __future__ import annotations

import io
import re
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pypdf
from aiohttp.test_utils import TestServer
from hub_bauportal_nrw.samples import enqueue_bauantrag, sample_bauantrag
from hub_bauportal_nrw.xbau import Behoerde
from hub_enaio.simulator import STATE as ENAIO_STATE
from hub_enaio.simulator import make_app as enaio_app
from hub_fachverfahren.importfolder.simulator import SimulatedFachverfahren
from hub_fachverfahren.rest.simulator import DEFAULT_CLIENTS, SPEC
from hub_fachverfahren.rest.simulator import STATE as REST_STATE
from hub_fachverfahren.rest.simulator import make_app as rest_app
from hub_xta.simulator import STATE as XTA_STATE
from hub_xta.simulator import make_app as xta_app
from test_e2e_answers import FAST_RETRY, MAPPING, VIEWER, World, started_world
from test_e2e_fachverfahren import answered, import_folder

from hub.models import ApplicationState, Event
from hub.testing.harness import RunningHub

ASSIGNED = {"file_number": {"assigned_by": "fv"}}
# The Jagdschein mapping without its own number pattern: the Fachverfahren gives the number.
UNNUMBERED = MAPPING.read_text("utf-8").replace('file_number:\n  pattern: "32.3-{year}-{seq:05d}"\n', "")
BAUANTRAG = Path(__file__).parents[1] / "config" / "mappings" / "bauantrag.yaml"
AUTHORITY = Behoerde(kennung="vbe:053820004", name="Rhein-Sieg-Kreis, Untere Bauaufsichtsbehörde")
PORTAL = Behoerde(kennung="psw:05000000001", name="Bauportal.NRW")
AUTHORITY_XTA, PORTAL_XTA = "vbe:053820004", "bau:0500000001"
REST_PAYLOAD = """
payloads:
  fv:
    aktenhubId: "{{ id }}"
    leistung: "{{ service }}"
    antragsteller: {vorname: "{{ applicant.given_name }}", nachname: "{{ applicant.family_name }}"}
"""


def drawn_numbers(journal: Path) -> int:
    """How many numbers the hub drew from its own sequences (read-only, beside the running hub)."""
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COALESCE(SUM(value), 0) FROM sequences").fetchone()[0])


async def events_of(world: World, app_id: str, kind: str) -> list[Event]:
    return [e for e in await world.running.journal.events(app_id) if e.type == kind]


async def rendition_text(world: World) -> str:
    (antrag,) = await world.enaio_objects(type="Antrag")
    reader = pypdf.PdfReader(io.BytesIO(await world.enaio_content(antrag["id"])))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


async def check_filed_with(world: World, app_id: str, number: str, handle: str, via: str) -> None:
    """The Akte, the rendition, the receipt and the application carry the Fachverfahren's number."""
    app = await world.running.journal.get_application(app_id)
    assert app is not None and app.file_number == number
    (akte,) = await world.enaio_objects(type="Personenakte")
    assert akte["fields"]["Aktenzeichen"] == number
    assert f"Aktenzeichen {number}" in await rendition_text(world)
    box = await world.mailbox(handle)
    received = box["status_updates"][0]["payload"]
    assert received["status"] == "RECEIVED"
    assert number in str(received)
    (assigned,) = await events_of(world, app_id, "file_number.assigned")
    assert (assigned.target, assigned.step, assigned.data) == ("fv", via, {"file_number": number})
    assert drawn_numbers(Path(world.running.journal.path)) == 0


async def test_import_folder_fachverfahren_assigns_the_aktenzeichen_by_its_answer(
    tmp_path: Path, hub_factory: Any, schema_dir: Path
) -> None:
    fv, export = import_folder(tmp_path)
    async with started_world(
        tmp_path, hub_factory, schema_dir, fv, mapping_base=UNNUMBERED, route_extra=ASSIGNED
    ) as world:
        handle = world.idp.mailbox("U04")
        app_id = await world.submit(
            "FC-AZ-1", world.idp.response("U04", means="eID"), vorname="Johanna", nachname="Kleinschmidt"
        )

        async def delivered_to_fv() -> bool:
            return any(e.target == "fv" for e in await events_of(world, app_id, "delivery.completed"))

        await world.running.wait_for(delivered_to_fv, what="the delivery to the Fachverfahren")
        # Waiting for the number, and saying so: nothing in enaio, nobody told, no number drawn.
        status, view = await world.running.get(f"/api/v1/applications/{app_id}", headers=VIEWER)
        assert status == 200, view
        assert (view["state"], view["file_number"]) == ("processing", None)
        awaited = [e for e in view["timeline"] if e["type"] == "file_number.awaited"]
        assert [e["target"] for e in awaited] == ["fv"]
        assert [(t["step"], t["state"]) for t in view["tasks"]][-1] == ("remap", "waiting")
        assert await world.enaio_objects(type="Personenakte") == []
        assert (await world.mailbox(handle))["status_updates"] == []

        k3 = SimulatedFachverfahren(tmp_path / "k3" / "import", export, tmp_path / "k3" / "work", prefix="UA")
        assert k3.take_imports() == {"imported": [app_id], "refused": []}
        # The manifest K3 took had no Aktenzeichen: the hub had none to give.
        (manifest,) = (tmp_path / "k3" / "work").rglob("manifest.xml")
        assert "<aktenzeichen></aktenzeichen>" in manifest.read_text("utf-8")
        await answered(world, app_id, 1)
        (case,) = k3.cases.values()
        await check_filed_with(world, app_id, case.case_number, handle, "answer")
        # The receipt went out before the answer's status: RECEIVED, then PROCESSING.
        box = await world.mailbox(handle)
        assert [s["payload"]["status"] for s in box["status_updates"]] == ["RECEIVED", "PROCESSING"]
        (akte,) = await world.enaio_objects(type="Personenakte")
        assert akte["fields"]["FVAktenzeichen"] == case.case_number

        # The decision: filed and told; the Aktenzeichen stays, no second assignment.
        k3.decide(app_id, "beschieden", "Ihr Jagdschein ist erteilt.", pdf=True)
        await answered(world, app_id, 2)
        await check_filed_with(world, app_id, case.case_number, handle, "answer")
        box = await world.mailbox(handle)
        assert [s["payload"]["status"] for s in box["status_updates"]] == [
            "RECEIVED",
            "PROCESSING",
            "COMPLETED",
        ]
        events = Counter(e.type for e in await world.running.journal.events(app_id))
        assert (events["record.mapped"], events["delivery.completed"], events["receipt.sent"]) == (2, 2, 3)
        assert len(await world.enaio_objects(type="Personenakte")) == 1


async def test_rest_fachverfahren_assigns_the_aktenzeichen_with_its_delivery(
    tmp_path: Path, hub_factory: Any, schema_dir: Path
) -> None:
    server = TestServer(rest_app(), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    client_id, client_secret = next(iter(DEFAULT_CLIENTS.items()))
    fv = {
        "type": "rest",
        "openapi": str(SPEC),
        "operation": "createCase",
        "base_url": f"{base}/api",
        "auth": {
            "type": "oauth2",
            "token_url": f"{base}/oauth/token",
            "client_id": client_id,
            "client_secret": client_secret,
        },
        "case_number": "$.aktenzeichen",
        "reference": "$.id",
        "retry": FAST_RETRY,
    }
    try:
        async with started_world(
            tmp_path,
            hub_factory,
            schema_dir,
            fv,
            mapping_base=UNNUMBERED,
            mapping_extra=REST_PAYLOAD,
            route_extra=ASSIGNED,
        ) as world:
            handle = world.idp.mailbox("U04")
            app_id = await world.submit(
                "FC-AZ-2", world.idp.response("U04", means="eID"), vorname="Johanna", nachname="Kleinschmidt"
            )
            assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED
            (case,) = server.app[REST_STATE].cases.values()
            assert re.fullmatch(r"\S+", case.aktenzeichen)
            await check_filed_with(world, app_id, case.aktenzeichen, handle, "deliver")
            mapped = await events_of(world, app_id, "record.mapped")
            assert [(e.step, e.data["targets"]) for e in mapped] == [
                ("map", ["fv"]),
                ("remap", ["enaio", "fv"]),
            ]
            assert len(server.app[REST_STATE].cases) == 1  # delivered to the Fachverfahren once
    finally:
        await server.close()


async def test_the_1121_to_bauportal_waits_for_the_fachverfahrens_number_and_carries_it(
    tmp_path: Path, hub_factory: Any, schema_dir: Path
) -> None:
    # A Bauantrag (XBau 0200 over XTA) for a Bauaufsicht whose Fachverfahren numbers its cases: no
    # 1120/1121 goes to the portal before the number, then both carry it, as does the Bauakte in enaio.
    xta = TestServer(xta_app(schemas=schema_dir, data_dir=tmp_path / "xta"), host="127.0.0.1")
    enaio = TestServer(enaio_app(users={"aktenhub": "enaio-secret"}), host="127.0.0.1")
    for server in (xta, enaio):
        await server.start_server()
    xta_url = str(xta.make_url("")).rstrip("/")
    account = {"url": xta_url, "account": {"identifier": AUTHORITY_XTA}, "timeout_seconds": 5}
    mapping = tmp_path / "bauantrag.yaml"
    mapping.write_text(
        BAUANTRAG.read_text("utf-8").replace('file_number:\n  pattern: "63/BA-{year}-{seq:05d}"\n', ""),
        "utf-8",
    )
    fv, export = import_folder(tmp_path)
    connectors = {
        "bauportal": {"type": "bauportal-nrw", "xta": account, "authority": AUTHORITY.model_dump()},
        "antworten": {"type": "bauportal-nrw-answers", "xta": account, "authority": AUTHORITY.model_dump()},
        "efile": {
            "type": "enaio",
            "base_url": str(enaio.make_url("")).rstrip("/"),
            "username": "aktenhub",
            "password": "${ENAIO_PASSWORD}",
            "object_types": ["Bauakte", "Bauantrag", "Bauvorlage"],
            "retry": FAST_RETRY,
        },
        "fv": fv,
    }
    routes = [
        {
            "name": "bauantrag",
            "from": "bauportal",
            "map": str(mapping),
            "to": ["fv", "efile"],
            "notify": ["antworten"],
            **ASSIGNED,
        }
    ]
    try:
        plan = sample_bauantrag(autor=PORTAL, leser=AUTHORITY)
        async with aiohttp.ClientSession() as http:
            await enqueue_bauantrag(http, xta_url, AUTHORITY_XTA, plan, author=PORTAL_XTA)
        running: RunningHub = await hub_factory(
            connectors,
            routes,
            schemas=str(schema_dir),
            env={"ENAIO_PASSWORD": "enaio-secret"},
            workers={"idle_poll_seconds": 0.2, "render_processes": 0},
        )
        sent = xta.app[XTA_STATE].sent

        async def delivered_to_fv() -> list[str]:
            return [e.application_id for e in running.events if e.type == "delivery.completed"]

        [app_id] = await running.wait_for(delivered_to_fv, what="the Bauantrag with the Fachverfahren")
        assert sent == [] and enaio.app[ENAIO_STATE].objects == {}  # nothing before the number

        k3 = SimulatedFachverfahren(tmp_path / "k3" / "import", export, tmp_path / "k3" / "work", prefix="BA")
        assert k3.take_imports() == {"imported": [app_id], "refused": []}
        assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
        await running.wait_for(lambda: len(sent) >= 2, what="the 1120 and the 1121")
        (case,) = k3.cases.values()
        assert [m.metadata.message_type for m in sent] == [
            "prozessnachrichten.eingangsbestaetigung.1120",
            "prozessnachrichten.aktenzeichen.1121",
        ]
        for message in sent:
            assert f"<vorgang>{case.case_number}</vorgang>".encode() in message.message.path.read_bytes()
        assert case.case_number.encode() in sent[1].message.path.read_bytes()
        (akte,) = [o for o in enaio.app[ENAIO_STATE].objects.values() if o.type.internal == "Bauakte"]
        assert akte.fields["Aktenzeichen"] == case.case_number
    finally:
        for server in (enaio, xta):
            await server.close()
