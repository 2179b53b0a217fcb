"""The out-direction through a hub: an application becomes an XAusländer message in ADVIS's XTA mailbox,
the simulated ADVIS validates it, opens a case and answers; the answers update the e-file and reach the
applicant once each. Validation before sending, ADVIS's error answers, and refusing to start without the
XSDs.

The e-file and the mailbox are the test kit's recording targets; XTA and ADVIS are this repository's
simulators on loopback, driven through ADVIS's control endpoints. The schema directory is the reference
one plus the XAusländer TEST FIXTURE (not the official schema).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from advis_fixture import NS, without_xauslaender
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from hub_advis.exchange import BUSINESS_SCENARIO, SERVICE
from hub_advis.schema import XAuslaenderSchemaMissing
from hub_advis.simulator import make_app as advis_app
from hub_xta import OutgoingContent, OutgoingMessage, PartyId, XtaClient, XtaSettings
from hub_xta.simulator import STATE as XTA_STATE
from hub_xta.simulator import make_app as xta_app
from lxml import etree

from hub import AnswerStatus, ApplicationState, ConnectorContext
from hub.cli import main
from hub.held import HeldFilter, HeldMessage
from hub.testing import RunningHub
from hub.testing.fakes import RecordingEfile, RecordingNotifier

HUB, ADVIS = "vbe:abh-hub", "vbe:advis"
AKTENZEICHEN = "32.1-VE-2026-0001"
ON_ANSWER = {"update_akte": "efile", "notify": ["mailbox"], "decision": "both"}
# The Verpflichtungserklärung's mapping, for the JSON test source (the form carries the person).
MAPPING = """
version: 1
title: Verpflichtungserklärung
file_number: {pattern: "32.1-VE-{year}-{seq:04d}"}
documents:
  - {type: Originalantrag, content: original}
payloads:
  advis:
    message: verpflichtungserklaerung
    fields:
      behoerde_kennung: ABH-05382
      behoerde_name: Ausländerbehörde
      advis_kennung: ADVIS-05382
      antragsnummer: "{{ form.id }}"
      vg_familienname: "{{ form.nachname }}"
      vg_vorname: "{{ form.vorname }}"
      vg_geburtsdatum: "{{ form.geburtsdatum }}"
      vg_strasse: Kaiserstraße 12
      vg_plz: "53721"
      vg_ort: Siegburg
      gast_familienname: "{{ form.gast_nachname }}"
      gast_vorname: Mehmet
      gast_geburtsdatum: "1951-02-03"
      gast_staatsangehoerigkeit: "163"
      aufenthalt_beginn: "2027-04-01"
      aufenthalt_ende: "2027-06-15"
      aufenthalt_zweck: Besuch der Familie
"""
ANSWER = """<x:advis.rueckmeldung xmlns:x="{ns}">
  <nachrichtenkopf>
    <nachrichtUUID>6f1c1d2e-3a4b-5c6d-8e9f-0a1b2c3d4e5f</nachrichtUUID>
    <nachrichtentyp listURI="urn:t" listVersionID="1"><code>advis.rueckmeldung</code></nachrichtentyp>
    <erstellungszeitpunkt>2026-12-06T12:00:00</erstellungszeitpunkt>
    <absender><kennung>vbe:advis</kennung></absender><empfaenger><kennung>vbe:abh-hub</kennung></empfaenger>
  </nachrichtenkopf>
  <bezug><nachrichtUUID>{reference}</nachrichtUUID></bezug>
  <aktenzeichen>{case}</aktenzeichen>
  <status listURI="urn:t" listVersionID="1"><code>eingegangen</code></status>
</x:advis.rueckmeldung>"""
FAMILY = "Yılmaz"  # noqa: RUF001 - a DIN 91379 name (dotless i) on purpose
FORM = {"id": "FC-VE-1", "vorname": "Ayşe", "nachname": FAMILY, "geburtsdatum": "1979-05-14"}


@pytest_asyncio.fixture
async def xta(advis_schemas: Path, tmp_path: Path) -> AsyncIterator[TestServer]:
    server = TestServer(xta_app(schemas=advis_schemas, data_dir=tmp_path / "xta"), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def xta_url(xta: TestServer) -> str:
    return str(xta.make_url("")).rstrip("/")


@pytest_asyncio.fixture
async def advis(xta: TestServer, advis_schemas: Path, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    app = advis_app(xta_url(xta), ADVIS, advis_schemas, tmp_path / "advis")
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


def advis_section(xta: TestServer, **settings: Any) -> dict[str, Any]:
    """The operator's ADVIS section: XTA, the hub's account, ADVIS's identity (the rest is preset)."""
    section = {
        "type": "advis",
        "recipient": {"identifier": ADVIS},
        "xta": {"url": xta_url(xta), "account": {"identifier": HUB}, "timeout_seconds": 5},
        "poll_seconds": 0.1,
    }
    return {**section, **settings}


async def start(
    hub_factory: Any, tmp_path: Path, schemas: Path, xta: TestServer, **settings: Any
) -> RunningHub:
    mapping = tmp_path / "verpflichtungserklaerung.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    connectors = {
        "json": {"type": "test-json"},
        "efile": {"type": "test-efile", "file_number": AKTENZEICHEN},
        "advis": advis_section(xta, **settings),
        "mailbox": {"type": "test-notifier"},
    }
    routes = [
        {"name": "ve", "from": "json", "to": ["efile", "advis"], "map": str(mapping), "on_answer": ON_ANSWER}
    ]
    running: RunningHub = await hub_factory(connectors, routes, schemas=str(schemas))
    return running


async def submit(
    running: RunningHub, state: ApplicationState = ApplicationState.COMPLETED, **form: str
) -> str:
    body = {"id": "FC-VE-1", "form": {**FORM, "gast_nachname": FAMILY, **form}}
    status, answer = await running.post("/intake/json/verpflichtungserklaerung", json=body)
    assert status == 202, answer
    app_id = str(answer["application_id"])
    if await running.wait_for_state(app_id) != state:
        raise AssertionError([(t.target, t.last_error) for t in await running.journal.tasks(app_id)])
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

    await running.wait_for(done, what=f"{answers} ADVIS answers filed and told")


async def test_a_verpflichtungserklaerung_reaches_advis_whose_case_number_and_decision_come_back_once(
    hub_factory: Any, tmp_path: Path, advis_schemas: Path, xta: TestServer, advis: TestClient[Any, Any]
) -> None:
    running = await start(hub_factory, tmp_path, advis_schemas, xta)
    app_id = await submit(running)
    reference = (await running.journal.get_application(app_id)).correlations["advis"]

    # What ADVIS finds in its mailbox: the XAusländer message, its nachrichtUUID the hub's reference.
    (sent,) = xta.app[XTA_STATE].mailbox(ADVIS).values()
    message = etree.parse(str(sent.message.path)).getroot()
    assert message.tag == f"{{{NS}}}abh.verpflichtungserklaerung"
    assert message.findtext("nachrichtenkopf/nachrichtUUID") == reference
    assert message.findtext("verpflichtungsgeber/familienname") == FAMILY
    assert message.findtext("eingeladenePerson/staatsangehoerigkeit/code") == "163"
    assert [a.findtext("dateiname") for a in message.iterfind("antragsdaten/anlage")] == [
        a.filename for a in sent.attachments
    ]
    assert (sent.metadata.message_type, sent.metadata.payload_schema) == ("abh.verpflichtungserklaerung", NS)

    assert await (await advis.post("/control/receive")).json() == {"opened": [reference], "refused": []}
    await settled(running, app_id, 1)
    decision = {"reference": reference, "status": "entschieden", "pdf": True}
    case_number = (await (await advis.post("/control/decide", json=decision)).json())["case_number"]
    await settled(running, app_id, 2)

    efile, mailbox = running.hub.connectors["efile"], running.hub.connectors["mailbox"]
    assert isinstance(efile, RecordingEfile) and isinstance(mailbox, RecordingNotifier)
    assert efile.answer_calls == 2 and mailbox.status_calls == 2  # each exactly once
    filed = sorted(efile.answered.values(), key=lambda r: r.at)
    assert [r.status for r in filed] == [AnswerStatus.ACCEPTED, AnswerStatus.DECIDED]
    assert {r.case_number for r in filed} == {case_number} and case_number.startswith("ABH-")
    assert {r.file_number for r in filed} == {AKTENZEICHEN}
    (pdf,) = filed[1].documents
    assert pdf.blob is not None and (await running.hub.blobs.read_bytes(pdf.blob)).startswith(b"%PDF-")
    app = await running.journal.get_application(app_id)
    assert app.correlations["advis.case_number"] == case_number
    assert xta.app[XTA_STATE].mailbox(HUB) == {}  # every answer closed after it was stored

    # ADVIS reads its mailbox again: nothing new, no answer twice.
    assert await (await advis.post("/control/receive")).json() == {"opened": [], "refused": []}
    assert efile.answer_calls == 2


async def test_an_answer_failing_the_schema_is_held_for_an_operator_and_changes_nothing(
    hub_factory: Any,
    tmp_path: Path,
    advis_schemas: Path,
    xta: TestServer,
    advis: TestClient[Any, Any],
    connector_context: ConnectorContext,
) -> None:
    running = await start(hub_factory, tmp_path, advis_schemas, xta)
    app_id = await submit(running)
    reference = (await running.journal.get_application(app_id)).correlations["advis"]
    # ADVIS answers with a case number that is blank: no valid advis.rueckmeldung.
    answer = ANSWER.format(ns=NS, reference=reference, case="   ").encode()
    info = await connector_context.blobs.write_bytes(answer)
    settings = XtaSettings.model_validate({"url": xta_url(xta), "account": {"identifier": ADVIS}})
    client = XtaClient(
        settings, schemas=advis_schemas, http=lambda: connector_context.http, blobs=connector_context.blobs
    )
    message_id = await client.create_message_id()
    await client.send_message(
        OutgoingMessage(
            reader=PartyId(identifier=HUB),
            service=SERVICE,
            business_scenario=BUSINESS_SCENARIO,
            message_type="advis.rueckmeldung",
            payload_schema=NS,
            message_id=message_id,
            content=OutgoingContent(blob=info.ref, size=info.size, content_type="application/xml"),
        ),
        blobs=connector_context.blobs,
    )

    async def held() -> list[HeldMessage]:
        return await running.journal.list_held(HeldFilter(source="advis"))

    (found,) = await running.wait_for(held, what="the invalid answer held")
    assert (found.message_id, found.reason_code) == (message_id, "invalid_answer")
    assert "aktenzeichen" in found.reason and "   " not in found.reason.split(":", 1)[1]
    assert message_id in xta.app[XTA_STATE].mailbox(HUB)  # left for the operator, not closed
    assert await running.journal.answers(app_id) == []


async def test_a_message_failing_the_schema_is_not_sent_and_the_delivery_is_dead_with_the_rule(
    hub_factory: Any, tmp_path: Path, advis_schemas: Path, xta: TestServer
) -> None:
    running = await start(hub_factory, tmp_path, advis_schemas, xta)
    app_id = await submit(running, ApplicationState.DEAD, geburtsdatum="14.05.1979")  # no XML date

    [task] = [t for t in await running.journal.tasks(app_id) if t.target == "advis"]
    assert task.last_error is not None and "geburtsdatum" in task.last_error
    assert "14.05.1979" not in task.last_error  # where and which rule, never the value
    assert xta.app[XTA_STATE].mailbox(ADVIS) == {}


async def test_without_validation_it_warns_and_advis_refuses_with_an_error_answer_that_makes_it_dead(
    hub_factory: Any,
    tmp_path: Path,
    advis_schemas: Path,
    xta: TestServer,
    advis: TestClient[Any, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="hub_advis"):
        running = await start(hub_factory, tmp_path, advis_schemas, xta, validate=False, namespace=NS)
    assert any("validate: false" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    app_id = await submit(running, geburtsdatum="14.05.1979")  # sent unchecked

    (message_id,) = xta.app[XTA_STATE].mailbox(ADVIS)
    assert await (await advis.post("/control/receive")).json() == {"opened": [], "refused": [message_id]}
    assert await running.wait_for_state(app_id, [ApplicationState.DEAD]) == ApplicationState.DEAD
    [task] = [t for t in await running.journal.tasks(app_id) if t.step == "deliver" and t.target == "advis"]
    assert task.error_code == "answer-failed"
    assert task.last_error is not None and "geburtsdatum" in task.last_error
    mailbox = running.hub.connectors["mailbox"]
    assert isinstance(mailbox, RecordingNotifier) and mailbox.status_calls == 0


async def test_without_the_xsds_the_connector_refuses_to_start_and_names_the_directory(
    hub_factory: Any, tmp_path: Path, schema_dir: Path, xta: TestServer
) -> None:
    bare = without_xauslaender(schema_dir, tmp_path / "bare")
    with pytest.raises(XAuslaenderSchemaMissing) as refused:
        await start(hub_factory, tmp_path, bare, xta)
    assert str(bare / "xauslaender" / "1.21.1") in str(refused.value)
    assert "validate: false" in str(refused.value)


def bare_config(tmp_path: Path, schema_dir: Path) -> tuple[Path, Path]:
    """A configuration with an ADVIS connector and a schema directory without XAusländer XSDs."""
    bare = without_xauslaender(schema_dir, tmp_path / "bare")
    config = {
        "store": f"sqlite:///{tmp_path / 'journal.db'}",
        "blobs": str(tmp_path / "blobs"),
        "schemas": str(bare),
        "server": {"listen": "127.0.0.1:0"},
        "connectors": {
            "advis": {
                "type": "advis",
                "recipient": {"identifier": ADVIS},
                "xta": {"url": "http://127.0.0.1:9", "account": {"identifier": HUB}},
            }
        },
        "routes": [],
    }
    path = tmp_path / "aktenhub.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path, bare / "xauslaender" / "1.21.1"


def test_aktenhub_check_shows_the_missing_xsds(tmp_path: Path, schema_dir: Path) -> None:
    config, expected = bare_config(tmp_path, schema_dir)
    result = CliRunner().invoke(main, ["check", "-c", str(config)], env={"COLUMNS": "400"})
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output and str(expected) in result.output


def test_aktenhub_run_refuses_to_start_with_one_line_naming_the_directory(
    tmp_path: Path, schema_dir: Path
) -> None:
    config, expected = bare_config(tmp_path, schema_dir)
    aktenhub = Path(sys.executable).parent / "aktenhub"
    done = subprocess.run(
        [str(aktenhub), "run", "-c", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stderr
    assert str(expected) in done.stderr and "validate: false" in done.stderr
    assert "Traceback" not in done.stderr
