"""A hub killed between taking an answer in and the Akte update files and tells it exactly once.

The hub runs as a subprocess with the test kit's fakes: a JSON source, a recording e-file and notifier
that keep what they did as files (they outlive the hub process), and a fake Fachverfahren that takes
signed callbacks. The Fachverfahren's answer is stored; the e-file files it and then hangs, and the hub
is killed with SIGKILL before it could record the step. The restarted hub runs the step again: the
e-file sees the answer filed already (idempotent per answer id), the applicant is told once, and the
same callback sent again changes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from hub.answers import CallbackAuth
from hub.callbacks import sign_callback
from hub.testing.fakes import Ledger
from hub.testing.processes import HubProcess, hub_settings

SECRET = "crash-answers-callback-secret"
TOKEN = "crash-answers-admin-token"
SERVE = (
    "import asyncio, sys\n"
    "import hub.testing.fakes as fakes\n"
    "from hub.cli import serve\n"
    "from hub.config import load_config\n"
    "from hub.plugins import load_plugins\n"
    "plugins = load_plugins([fakes])\n"
    "asyncio.run(serve(load_config(sys.argv[1], plugins), plugins))\n"
)


def write_config(
    tmp: Path,
    port: int,
    fv: dict[str, Any] | None = None,
    route_extra: dict[str, Any] | None = None,
    efile_extra: dict[str, Any] | None = None,
) -> Path:
    config = {
        **hub_settings(tmp, port, TOKEN, "operator"),
        "connectors": {
            "json": {"type": "test-json"},
            "efile": {
                "type": "test-efile",
                "file_number": "AZ-2026-7",
                "record_dir": str(tmp / "efile"),
                "hold_file": str(tmp / "hold"),
                **(efile_extra or {}),
            },
            "fv": fv or {"type": "test-answering", "callback_secret": SECRET},
            "mailbox": {"type": "test-notifier", "record_dir": str(tmp / "mailbox")},
        },
        "routes": [
            {
                "name": "wasser",
                "from": "json",
                "to": ["efile", "fv"],
                "on_answer": {"update_akte": "efile", "notify": "mailbox", "decision": "both"},
                **(route_extra or {}),
            }
        ],
    }
    path = tmp / "aktenhub.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def applicant_told(
    view: Callable[[str], Awaitable[dict[str, Any] | None]], app_id: str, answers: int
) -> bool:
    """Whether the applicant was told of `answers` answers (their answer-notify steps done). The notify
    step runs beside the e-file's answer-file step, not after it: a test that kills the hub in the
    e-file's step waits for it first, or the kill may land in the notify step too (told twice)."""
    body = await view(app_id)
    done = [t for t in (body or {}).get("tasks", []) if (t["step"], t["state"]) == ("answer-notify", "done")]
    return len(done) == answers


def hub_process(config: Path, url: str) -> HubProcess:
    """The hub with the test kit's fakes (`SERVE`), its log in the config's directory."""
    return HubProcess(config, config.parent, url, command=[sys.executable, "-c", SERVE, str(config)])


async def test_killed_between_answer_and_akte_update_files_and_tells_once(
    tmp_path: Path, reserved_port: Callable[[], int]
) -> None:
    port = reserved_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, port)
    admin = {"Authorization": f"Bearer {TOKEN}"}
    efile, mailbox = Ledger(tmp_path / "efile"), Ledger(tmp_path / "mailbox")
    hub = hub_process(config, url)
    hub.start()
    try:
        async with aiohttp.ClientSession() as http:

            async def view(app_id: str) -> dict[str, Any] | None:
                async with http.get(f"{url}/api/v1/applications/{app_id}", headers=admin) as resp:
                    return await resp.json() if resp.status == 200 else None

            async def state_is(app_id: str, state: str) -> bool:
                body = await view(app_id)
                return body is not None and body["state"] == state

            async def post_intake() -> Any:
                body = {"id": "crash-answer-1", "form": {"name": "Groß"}}
                async with http.post(f"{url}/intake/json/wasserrecht", json=body) as resp:
                    return await resp.json() if resp.status in (200, 202) else None

            app_id = (await hub.until(post_intake, "the intake"))["application_id"]
            await hub.until(lambda: state_is(app_id, "completed"), "the application completed")

            answer = {
                "answer_id": "k3-answer-1",
                "reference": f"rec-{app_id}",
                "status": "decided",
                "case_number": "K3-2026-42",
                "decision": {
                    "name": "bescheid.pdf",
                    "content_base64": base64.b64encode(b"%PDF-1.4 B").decode(),
                },
            }
            raw = json.dumps({"answers": [answer]}).encode()

            async def send_callback() -> Any:
                headers = sign_callback(CallbackAuth(secret=SECRET), raw, time.time())
                async with http.post(f"{url}/callback/fv", data=raw, headers=headers) as resp:
                    return await resp.json() if resp.status == 200 else None

            (tmp_path / "hold").touch()
            first = await hub.until(send_callback, "the callback answered")
            assert first["answers"][0]["duplicate"] is False
            # The e-file has filed the answer and hangs before answering: the hub dies mid-step.
            await hub.until(lambda: asyncio.to_thread(efile.records), "the answer filed")
            await hub.until(lambda: applicant_told(view, app_id, 1), "the applicant told")
            await hub.kill()

            (tmp_path / "hold").unlink()
            hub.start()
            await hub.until(lambda: state_is(app_id, "completed"), "the application completed again")

            again = await hub.until(send_callback, "the repeated callback answered")
            assert again["answers"][0]["duplicate"] is True
            body = await view(app_id)
            assert body is not None
    finally:
        await hub.stop()
    assert efile.calls() == 2, hub.log()  # the step ran again after the kill ...
    [filed] = efile.records()  # ... and the e-file holds the answer once
    record = json.loads(filed)
    assert (record["answer_id"], record["case_number"], record["file_number"]) == (
        "k3-answer-1",
        "K3-2026-42",
        "AZ-2026-7",
    )
    assert [d["name"] for d in record["documents"]] == ["bescheid.pdf"]
    assert mailbox.calls() == 1
    [told] = mailbox.records()
    assert json.loads(told)["status"] == "decided"
    types = [e["type"] for e in body["timeline"]]
    assert types.count("answer.received") == 1
    assert types.count("answer.filed") == 1
    assert body["file_number"] == "AZ-2026-7"
    assert body["application"]["correlations"]["fv.case_number"] == "K3-2026-42"


@pytest.mark.parametrize("transport", ["importfolder", "k3"])
async def test_killed_between_an_answer_file_and_the_akte_update_files_and_tells_once(
    tmp_path: Path, transport: str, reserved_port: Callable[[], int]
) -> None:
    # The same crash with a real transport: the answer comes from the import folder's answer folder
    # (generic, or as the K3 profile presets it: K3's manifest and K3Rueckmeldung result files).
    from hub_fachverfahren.importfolder.simulator import SimulatedFachverfahren
    from hub_k3.simulator import PRESET as K3

    manifest = tmp_path / "manifest.xml.j2"
    manifest.write_text("<manifest><reference>{{ folder }}</reference></manifest>")
    fv: dict[str, Any] = {
        "type": "importfolder",
        "path": str(tmp_path / "import"),
        "answers": str(tmp_path / "export"),
        "manifest": {"template": str(manifest)},
        "poll_seconds": 0.1,
        "answer_format": {
            "settle_seconds": 0,
            "status_map": {"eingegangen": "accepted", "beschieden": "decided"},
        },
    }
    simulator_options: dict[str, Any] = {}
    if transport == "k3":  # only the folders: K3's formats are the profile's defaults
        fv = {key: fv[key] for key in ("path", "answers", "poll_seconds")} | {"type": "k3"}
        simulator_options = K3
    (tmp_path / "export").mkdir()
    port = reserved_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, port, fv)
    admin = {"Authorization": f"Bearer {TOKEN}"}
    efile, mailbox = Ledger(tmp_path / "efile"), Ledger(tmp_path / "mailbox")
    fachverfahren = SimulatedFachverfahren(
        tmp_path / "import", tmp_path / "export", tmp_path / "fv-work", **{"files": None, **simulator_options}
    )
    hub = hub_process(config, url)
    hub.start()
    try:
        async with aiohttp.ClientSession() as http:

            async def view(app_id: str) -> dict[str, Any] | None:
                async with http.get(f"{url}/api/v1/applications/{app_id}", headers=admin) as resp:
                    return await resp.json() if resp.status == 200 else None

            async def state_is(app_id: str, state: str) -> bool:
                body = await view(app_id)
                return body is not None and body["state"] == state

            async def post_intake() -> Any:
                body = {"id": "crash-folder-1", "form": {"name": "Groß"}}
                async with http.post(f"{url}/intake/json/wasserrecht", json=body) as resp:
                    return await resp.json() if resp.status in (200, 202) else None

            app_id = (await hub.until(post_intake, "the intake"))["application_id"]
            await hub.until(lambda: state_is(app_id, "completed"), "the application completed")
            assert fachverfahren.take_imports() == {"imported": [app_id], "refused": []}
            await hub.until(lambda: asyncio.to_thread(lambda: len(efile.records()) == 1), "the receipt filed")
            await hub.until(lambda: state_is(app_id, "completed"), "completed after the receipt")

            (tmp_path / "hold").touch()
            case = fachverfahren.decide(app_id, "beschieden", None, pdf=True)
            # The e-file has filed the decision and hangs before answering: the hub dies mid-step.
            await hub.until(
                lambda: asyncio.to_thread(lambda: len(efile.records()) == 2), "the decision filed"
            )
            await hub.until(lambda: applicant_told(view, app_id, 2), "the applicant told of the decision")
            await hub.kill()

            (tmp_path / "hold").unlink()
            hub.start()
            await hub.until(lambda: state_is(app_id, "completed"), "the application completed again")
            body = await view(app_id)
            assert body is not None
    finally:
        await hub.stop()
    assert efile.calls() == 3, hub.log()  # the receipt once, the decision again after the kill ...
    filed = [json.loads(r) for r in efile.records()]  # ... and the e-file holds each answer once
    assert sorted(r["status"] for r in filed) == ["accepted", "decided"]
    assert {r["case_number"] for r in filed} == {case.case_number}
    assert {r["file_number"] for r in filed} == {"AZ-2026-7"}
    [decided] = [r for r in filed if r["status"] == "decided"]
    assert [d["name"] for d in decided["documents"]] == [f"Bescheid-{case.case_number}.pdf"]
    assert mailbox.calls() == 2 and len(mailbox.records()) == 2
    types = [e["type"] for e in body["timeline"]]
    assert types.count("answer.received") == 2
    assert types.count("answer.filed") == 2
    assert body["file_number"] == "AZ-2026-7"
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["done"]


async def test_killed_between_the_assigned_number_and_the_akte_files_once_with_that_number(
    tmp_path: Path, reserved_port: Callable[[], int]
) -> None:
    # The Fachverfahren assigns the Aktenzeichen by its answer; the hub dies while the second stage
    # (the record mapped with the number, delivered to the e-file) runs: after the restart the e-file
    # holds the Akte once, with the Fachverfahren's number (not its own), and everyone is told once.
    port = reserved_port()
    url = f"http://127.0.0.1:{port}"
    hold = tmp_path / "hold-delivery"
    config = write_config(
        tmp_path,
        port,
        route_extra={"notify": ["mailbox"], "file_number": {"assigned_by": "fv"}},
        efile_extra={"hold_delivery_file": str(hold)},
    )
    admin = {"Authorization": f"Bearer {TOKEN}"}
    deliveries, receipts = (
        Ledger(tmp_path / "efile" / "deliveries"),
        Ledger(tmp_path / "mailbox" / "receipts"),
    )
    efile, mailbox = Ledger(tmp_path / "efile"), Ledger(tmp_path / "mailbox")
    hold.touch()
    hub = hub_process(config, url)
    hub.start()
    try:
        async with aiohttp.ClientSession() as http:

            async def view(app_id: str) -> dict[str, Any] | None:
                async with http.get(f"{url}/api/v1/applications/{app_id}", headers=admin) as resp:
                    return await resp.json() if resp.status == 200 else None

            async def awaiting(app_id: str) -> bool:
                body = await view(app_id)
                return body is not None and ("deliver", "fv", "done") in {
                    (t["step"], t["target"], t["state"]) for t in body["tasks"]
                }

            async def state_is(app_id: str, state: str) -> bool:
                body = await view(app_id)
                return body is not None and body["state"] == state

            async def post_intake() -> Any:
                body = {"id": "crash-assigned-1", "form": {"name": "Groß"}}
                async with http.post(f"{url}/intake/json/bauantrag", json=body) as resp:
                    return await resp.json() if resp.status in (200, 202) else None

            app_id = (await hub.until(post_intake, "the intake"))["application_id"]
            await hub.until(lambda: awaiting(app_id), "delivered to the Fachverfahren, the number awaited")
            assert deliveries.calls() == 0 and receipts.calls() == 0  # the e-file and the receipt wait

            answer = {
                "answer_id": "bau-answer-1",
                "reference": f"rec-{app_id}",
                "status": "accepted",
                "case_number": "63-BA-2026-0815",
            }
            raw = json.dumps({"answers": [answer]}).encode()

            async def send_callback() -> Any:
                headers = sign_callback(CallbackAuth(secret=SECRET), raw, time.time())
                async with http.post(f"{url}/callback/fv", data=raw, headers=headers) as resp:
                    return await resp.json() if resp.status == 200 else None

            first = await hub.until(send_callback, "the callback answered")
            assert first["answers"][0]["duplicate"] is False
            # The e-file took the record mapped with the number and hangs before answering: the hub dies.
            await hub.until(
                lambda: asyncio.to_thread(lambda: len(deliveries.records()) == 1), "the Akte delivered"
            )
            await hub.kill()

            hold.unlink()
            hub.start()
            await hub.until(lambda: state_is(app_id, "completed"), "the application completed")

            again = await hub.until(send_callback, "the repeated callback answered")
            assert again["answers"][0]["duplicate"] is True
            body = await view(app_id)
            assert body is not None
    finally:
        await hub.stop()
    assert deliveries.calls() == 2, hub.log()  # the delivery ran again after the kill ...
    [filed] = deliveries.records()  # ... and the e-file holds the Akte once, with the assigned number
    assert json.loads(filed)["file_number"] == "63-BA-2026-0815"
    [received] = receipts.records()
    assert (receipts.calls(), json.loads(received)["file_number"]) == (1, "63-BA-2026-0815")
    [answered] = efile.records()  # the answer filed into the Akte once, after it existed
    assert json.loads(answered)["file_number"] == "63-BA-2026-0815"
    assert mailbox.calls() == 1
    assert body["file_number"] == "63-BA-2026-0815"  # the e-file's own number (AZ-2026-7) never wins
    types = Counter(e["type"] for e in body["timeline"])
    assert (types["file_number.awaited"], types["file_number.assigned"], types["record.mapped"]) == (1, 1, 2)
    assert (types["answer.received"], types["answer.filed"], types["receipt.sent"]) == (1, 1, 2)


ADVIS_FIXTURE = (
    Path(__file__).parents[1] / "plugins/advis/tests/fixtures/xauslaender-TEST-FIXTURE-not-official"
)
ADVIS_MAPPING = """
version: 1
title: Verpflichtungserklärung
payloads:
  fv:
    message: verpflichtungserklaerung
    fields: {behoerde_kennung: ABH, behoerde_name: ABH, advis_kennung: ADVIS, antragsnummer: "{{ form.id }}",
             vg_familienname: "{{ form.name }}", vg_geburtsdatum: "1979-05-14", vg_strasse: Ring 1,
             vg_plz: "53721", vg_ort: Siegburg, gast_familienname: Gast, gast_geburtsdatum: "1951-02-03",
             aufenthalt_beginn: "2027-04-01", aufenthalt_ende: "2027-06-15", aufenthalt_zweck: Besuch}
"""


async def test_killed_between_an_advis_answer_and_the_akte_update_files_and_tells_once(
    tmp_path: Path, schema_dir: Path, reserved_port: Callable[[], int]
) -> None:
    # The same crash with ADVIS over XTA: the answer is an advis.rueckmeldung in the hub's XTA mailbox,
    # closed only after it was stored. XTA and ADVIS are simulators in this process, the hub another one.
    import shutil

    from aiohttp.test_utils import TestClient, TestServer
    from hub_advis.simulator import make_app as advis_app
    from hub_xta.simulator import STATE as XTA_STATE
    from hub_xta.simulator import make_app as xta_app

    schemas = tmp_path / "schemas"  # the reference schemas and the XAusländer TEST FIXTURE (not official)
    shutil.copytree(schema_dir, schemas)
    shutil.copytree(ADVIS_FIXTURE, schemas / "xauslaender" / "1.21.1")
    xta = TestServer(xta_app(schemas=schemas, data_dir=tmp_path / "xta"), host="127.0.0.1")
    await xta.start_server()
    xta_url = str(xta.make_url("")).rstrip("/")
    advis = TestClient(
        TestServer(advis_app(xta_url, "vbe:advis", schemas, tmp_path / "advis"), host="127.0.0.1")
    )
    await advis.start_server()
    port = reserved_port()
    url = f"http://127.0.0.1:{port}"
    fv = {
        "type": "advis",
        "recipient": {"identifier": "vbe:advis"},
        "xta": {"url": xta_url, "account": {"identifier": "vbe:abh-hub"}, "timeout_seconds": 5},
        "poll_seconds": 0.1,
    }
    (tmp_path / "mapping.yaml").write_text(ADVIS_MAPPING, encoding="utf-8")
    config = write_config(tmp_path, port, fv, route_extra={"map": str(tmp_path / "mapping.yaml")})
    settings = yaml.safe_load(config.read_text())
    settings["schemas"] = str(schemas)
    config.write_text(yaml.safe_dump(settings))
    admin = {"Authorization": f"Bearer {TOKEN}"}
    efile, mailbox = Ledger(tmp_path / "efile"), Ledger(tmp_path / "mailbox")
    hub = hub_process(config, url)
    hub.start()
    try:
        async with aiohttp.ClientSession() as http:

            async def view(app_id: str) -> dict[str, Any] | None:
                async with http.get(f"{url}/api/v1/applications/{app_id}", headers=admin) as resp:
                    return await resp.json() if resp.status == 200 else None

            async def state_is(app_id: str, state: str) -> bool:
                body = await view(app_id)
                return body is not None and body["state"] == state

            async def post_intake() -> Any:
                body = {"id": "crash-advis-1", "form": {"id": "FC-1", "name": "Groß"}}
                async with http.post(f"{url}/intake/json/verpflichtungserklaerung", json=body) as resp:
                    return await resp.json() if resp.status in (200, 202) else None

            app_id = (await hub.until(post_intake, "the intake"))["application_id"]
            await hub.until(lambda: state_is(app_id, "completed"), "the application completed")
            reference = (await view(app_id) or {})["application"]["correlations"]["fv"]
            assert await (await advis.post("/control/receive")).json() == {
                "opened": [reference],
                "refused": [],
            }
            await hub.until(lambda: asyncio.to_thread(lambda: len(efile.records()) == 1), "the receipt filed")
            await hub.until(lambda: state_is(app_id, "completed"), "completed after the receipt")

            (tmp_path / "hold").touch()
            decision = {"reference": reference, "status": "entschieden", "pdf": True}
            case_number = (await (await advis.post("/control/decide", json=decision)).json())["case_number"]
            # The e-file has filed the decision and hangs before answering: the hub dies mid-step.
            await hub.until(
                lambda: asyncio.to_thread(lambda: len(efile.records()) == 2), "the decision filed"
            )
            await hub.until(lambda: applicant_told(view, app_id, 2), "the applicant told of the decision")
            await hub.kill()

            (tmp_path / "hold").unlink()
            hub.start()
            await hub.until(lambda: state_is(app_id, "completed"), "the application completed again")
            body = await view(app_id)
            assert body is not None
    finally:
        await hub.stop()
        await advis.close()
        await xta.close()
    assert efile.calls() == 3, hub.log()  # the receipt once, the decision again after the kill ...
    filed = [json.loads(r) for r in efile.records()]  # ... and the e-file holds each answer once
    assert sorted(r["status"] for r in filed) == ["accepted", "decided"]
    assert {r["case_number"] for r in filed} == {case_number}
    [decided] = [r for r in filed if r["status"] == "decided"]
    assert [d["name"] for d in decided["documents"]] == [f"Bescheid-{case_number}.pdf"]
    assert mailbox.calls() == 2 and len(mailbox.records()) == 2
    types = [e["type"] for e in body["timeline"]]
    assert (types.count("answer.received"), types.count("answer.filed")) == (2, 2)
    assert xta.app[XTA_STATE].mailbox("vbe:abh-hub") == {}  # both answers closed, none taken twice


# What the Mikropro profile's XBau 0900 template reads (a Baubeginnanzeige), for the crash over XTA.
BAUBEGINN = """
version: 1
title: Baubeginnanzeige
documents:
  - {type: Originalantrag, content: original, name: anzeige.json}
payloads:
  fv:
    fields: {aktenzeichen: "", baubeginn: "2027-03-01", fertigstellung: "", pruefung_standsicherheit: "false",
             vorname: Jürgen, nachname: Groß, strasse: Lindenallee, hausnummer: "7", postleitzahl: "53721",
             ort: Siegburg, email: "", anlageart: "999"}
"""


async def test_killed_between_mikropros_answer_over_xta_and_the_akte_update_files_and_tells_once(
    tmp_path: Path, schema_dir: Path, reserved_port: Callable[[], int]
) -> None:
    # The same crash over XTA: Mikropro's 1121 and 1170 come from the hub's own XTA account (the
    # simulated Mikropro on the XTA simulator); the hub dies after the e-file filed the 1170's decision.
    from aiohttp.test_utils import TestServer
    from hub_mikropro.simulator import make_app as mikropro_app
    from hub_xta.simulator import STATE as XTA
    from hub_xta.simulator import make_app as xta_app

    xta = TestServer(xta_app(schemas=schema_dir, data_dir=tmp_path / "xta"), host="127.0.0.1")
    await xta.start_server()
    xta_url = f"http://127.0.0.1:{xta.port}"
    mikropro = TestServer(
        mikropro_app(xta_url=xta_url, account="vbe:053820063", schemas=schema_dir, data_dir=tmp_path / "mp"),
        host="127.0.0.1",
    )
    await mikropro.start_server()
    mapping = tmp_path / "baubeginn.yaml"
    mapping.write_text(BAUBEGINN, encoding="utf-8")
    fv = {
        "type": "mikropro",
        "xta": {"url": xta_url, "account": {"identifier": "vbe:053820005"}, "timeout_seconds": 5},
        "recipient": {"identifier": "vbe:053820063"},
        "authority": {"kennung": "vbe:053820004", "name": "Untere Bauaufsichtsbehörde"},
        "fachverfahren": {"kennung": "vbe:053820063", "name": "Mikropro Bauamt"},
        "poll_seconds": 0.1,
    }
    port = reserved_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, port, fv)
    settings = yaml.safe_load(config.read_text())
    settings["schemas"] = str(schema_dir)
    settings["routes"][0]["map"] = str(mapping)
    config.write_text(yaml.safe_dump(settings))
    admin = {"Authorization": f"Bearer {TOKEN}"}
    efile, mailbox = Ledger(tmp_path / "efile"), Ledger(tmp_path / "mailbox")
    hub = hub_process(config, url)
    hub.start()
    try:
        async with aiohttp.ClientSession() as http:

            async def view(app_id: str) -> dict[str, Any] | None:
                async with http.get(f"{url}/api/v1/applications/{app_id}", headers=admin) as resp:
                    return await resp.json() if resp.status == 200 else None

            async def state_is(app_id: str, state: str) -> bool:
                body = await view(app_id)
                return body is not None and body["state"] == state

            async def post_intake() -> Any:
                body = {"id": "crash-mikropro-1", "form": {"name": "Groß"}}
                async with http.post(f"{url}/intake/json/baubeginnanzeige", json=body) as resp:
                    return await resp.json() if resp.status in (200, 202) else None

            async def control(path: str, body: dict[str, Any]) -> Any:
                async with http.post(f"{mikropro.make_url('/control/' + path)}", json=body) as resp:
                    assert resp.status == 200, await resp.text()
                    return await resp.json()

            app_id = (await hub.until(post_intake, "the intake"))["application_id"]
            await hub.until(lambda: state_is(app_id, "completed"), "the application completed")
            (uuid,) = (await control("receive", {}))["opened"]
            await hub.until(lambda: asyncio.to_thread(lambda: len(efile.records()) == 1), "the 1121 filed")
            await hub.until(lambda: state_is(app_id, "completed"), "completed after the 1121")

            (tmp_path / "hold").touch()
            case = await control("decide", {"reference": uuid, "status": "beschieden", "pdf": True})
            # The e-file has filed the decision and hangs before answering: the hub dies mid-step.
            await hub.until(
                lambda: asyncio.to_thread(lambda: len(efile.records()) == 2), "the decision filed"
            )
            await hub.until(lambda: applicant_told(view, app_id, 2), "the applicant told of the decision")
            await hub.kill()

            (tmp_path / "hold").unlink()
            hub.start()
            await hub.until(lambda: state_is(app_id, "completed"), "the application completed again")
            body = await view(app_id)
            assert body is not None
    finally:
        await hub.stop()
        await mikropro.close()
        state = xta.app[XTA]
        await xta.close()
    assert efile.calls() == 3, hub.log()  # the 1121 once, the decision again after the kill ...
    filed = [json.loads(r) for r in efile.records()]  # ... and the e-file holds each answer once
    assert sorted(r["status"] for r in filed) == ["accepted", "decided"]
    assert {r["case_number"] for r in filed} == {case["case_number"]}
    [decided] = [r for r in filed if r["status"] == "decided"]
    assert [d["name"] for d in decided["documents"]] == [f"Bescheid-{case['case_number']}.pdf"]
    assert mailbox.calls() == 2 and len(mailbox.records()) == 2
    types = [e["type"] for e in body["timeline"]]
    assert types.count("answer.received") == 2 and types.count("answer.filed") == 2
    assert body["file_number"] == "AZ-2026-7"
    assert state.mailbox("vbe:053820005") == {}  # each answer closed once it was stored
