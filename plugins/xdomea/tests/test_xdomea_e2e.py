"""End to end: an application through a real hub, mapped by a mapping file, filed as xdomea 0605.

The hub comes from `hub_factory` with the test JSON source, the xdomea sink and a route whose mapping
file (written here) makes a Bauakte with a Vorgang, the PDF rendition and the original submission. The
DMS is the xdomea simulator on 127.0.0.1 (mode http) or an import directory (mode directory).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hub_xdomea.message import process_id
from hub_xdomea.simulator import ANSWERS_PATH
from lxml import etree
from xdomea_helpers import (
    PASSWORD,
    RECEIVER,
    SENDER,
    USER,
    Simulator,
    StartSimulator,
    X,
    assert_valid,
    read_zip,
    zips_in,
)

from hub.models import ApplicationState
from hub.testing.harness import RunningHub

MAPPING = """\
version: 1
title: "Bauantrag {{ form.vorhaben }}"
file_number:
  pattern: "63-{year}-{seq:05d}"
akte:
  type: Bauakte
  search:
    Aktenzeichen: "{{ file_number }}"
  fields:
    Aktenzeichen: "{{ file_number }}"
    Titel: "Bauakte {{ form.vorhaben }}, Gemarkung {{ form.gemarkung }}"
    Gemarkung: "{{ form.gemarkung }}"
    Flur: "{{ form.flur }}"
    Flurstueck: "{{ form.flurstueck }}"
vorgang:
  type: Baugenehmigungsverfahren
  fields:
    Betreff: "Bauantrag {{ form.vorhaben }}"
    Eingangsdatum: "{{ received_at | date }}"
    Bauherr: "{{ form.bauherr }}"
documents:
  - type: Antrag
    content: rendition
    name: "Bauantrag.pdf"
    fields:
      Titel: "Bauantrag {{ form.vorhaben }}"
      Datum: "{{ received_at | date }}"
  - type: Originalantrag
    content: original
    name: "Originalantrag {{ external_id }}.json"
    fields:
      Titel: "Antrag wie eingegangen"
"""

FORM = {
    "vorhaben": "Neubau Einfamilienhaus",
    "bauherr": "Jürgen Groß-Öztürk",
    "gemarkung": "Siegburg",
    "flur": "7",
    "flurstueck": "123/4",
}


async def start(hub_factory: Any, tmp_path: Path, schema_dir: Path, target: dict[str, Any]) -> RunningHub:
    mapping = tmp_path / "bauantrag.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    connectors = {
        "portal": {"type": "test-json"},
        "dms": {
            "type": "xdomea",
            "sender": SENDER,
            "receiver": RECEIVER,
            "retry": {"initial_seconds": 0.05, "max_seconds": 0.2, "jitter_seconds": 0.01},
            **target,
        },
    }
    routes = [{"name": "bauantrag", "from": "portal", "map": str(mapping), "to": ["dms"]}]
    running: RunningHub = await hub_factory(
        connectors, routes, env={"XDOMEA_PASSWORD": PASSWORD}, schemas=str(schema_dir)
    )
    return running


def http_target(dms: Simulator, **settings: Any) -> dict[str, Any]:
    """The sink's settings for uploading to the simulated DMS."""
    return {
        "mode": "http",
        "url": dms.import_url,
        "username": USER,
        "password": "${XDOMEA_PASSWORD}",
        "timeout_seconds": 5,
        **settings,
    }


async def submit(running: RunningHub, external_id: str) -> tuple[str, bytes]:
    """Submit an application; (application id, the original submission's bytes)."""
    body = {"id": external_id, "form": FORM}
    raw = json.dumps(body).encode()
    status, answer = await running.post(
        "/intake/portal/baugenehmigung", data=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 202, answer
    application_id: str = answer["application_id"]
    return application_id, raw


def check_message(root: etree._Element, application_id: str, file_number: str) -> list[etree._Element]:
    """The message holds the Bauakte (by its Aktenzeichen), the Vorgang and both documents."""
    assert root.findtext("x:Kopf/x:ProzessID", namespaces=X) == process_id(application_id)
    akte = root.find("x:SchriftgutobjektZumAblegen/x:Schriftgutobjekt/x:Akte", X)
    assert akte is not None
    assert akte.findtext("x:AllgemeineMetadaten/x:Kennzeichen", namespaces=X) == file_number
    assert akte.findtext("x:AllgemeineMetadaten/x:Betreff", namespaces=X) == (
        "Bauakte Neubau Einfamilienhaus, Gemarkung Siegburg"
    )
    vorgang = akte.find("x:Akteninhalt/x:Vorgang", X)
    assert vorgang is not None
    assert (
        vorgang.findtext("x:AllgemeineMetadaten/x:Betreff", namespaces=X)
        == "Bauantrag Neubau Einfamilienhaus"
    )
    documents = vorgang.findall("x:Dokument", X)
    assert [d.findtext("x:Typ", namespaces=X) for d in documents] == ["Antrag", "Originalantrag"]
    return documents


@pytest.mark.timeout(60)
async def test_application_is_imported_into_the_dms(
    hub_factory: Any,
    start_simulator: StartSimulator,
    tmp_path: Path,
    schema_dir: Path,
    xdomea_xsd: etree.XMLSchema,
) -> None:
    dms = await start_simulator()
    running = await start(hub_factory, tmp_path, schema_dir, http_target(dms))
    application_id, original = await submit(running, "BAU-2025-0001")
    assert await running.wait_for_state(application_id) == ApplicationState.COMPLETED

    imported = dms.import_of(application_id)
    assert imported is not None and len(dms.state.imports) == 1
    assert_valid(xdomea_xsd, imported.xml)
    application = await running.journal.get_application(application_id)
    assert application.file_number is not None and application.file_number.startswith("63-")
    assert application.correlations["dms.prozess_id"] == imported.prozess_id
    assert application.correlations["dms.import_id"] == imported.import_id
    documents = check_message(etree.fromstring(imported.xml), application_id, application.file_number)
    names = [d.findtext("x:Version/x:Format/x:Primaerdokument/x:Dateiname", namespaces=X) for d in documents]
    digests = {f.name: f.sha256 for f in imported.files}
    assert sorted(digests) == sorted(str(n) for n in names)
    assert digests[str(names[1])] == hashlib.sha256(original).hexdigest()  # the original, byte for byte
    rendition = await running.hub.blobs.read_bytes("sha256:" + digests[str(names[0])])
    assert rendition.startswith(b"%PDF")

    # The same submission again is the same application: nothing new reaches the DMS.
    status, answer = await running.post(
        "/intake/portal/baugenehmigung", json={"id": "BAU-2025-0001", "form": FORM}
    )
    assert status == 200 and answer["duplicate"] is True
    assert len(dms.state.imports) == 1 and dms.state.uploads == 1


@pytest.mark.timeout(60)
async def test_application_lands_in_the_import_directory(
    hub_factory: Any, tmp_path: Path, schema_dir: Path, xdomea_xsd: etree.XMLSchema
) -> None:
    directory = tmp_path / "dms-import"
    running = await start(hub_factory, tmp_path, schema_dir, {"mode": "directory", "path": str(directory)})
    application_id, original = await submit(running, "BAU-2025-0002")
    assert await running.wait_for_state(application_id) == ApplicationState.COMPLETED
    [path] = zips_in(directory)
    package = read_zip(path)
    assert_valid(xdomea_xsd, package.xml)
    application = await running.journal.get_application(application_id)
    documents = check_message(package.root, application_id, application.file_number)
    original_name = documents[1].findtext("x:Version/x:Format/x:Primaerdokument/x:Dateiname", namespaces=X)
    assert package.files[str(original_name)] == hashlib.sha256(original).hexdigest()
    assert [p.name for p in directory.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.timeout(60)
async def test_import_the_dms_refuses_is_a_dead_delivery_with_its_reason(
    hub_factory: Any, start_simulator: StartSimulator, tmp_path: Path, schema_dir: Path
) -> None:
    dms = await start_simulator(
        refuse_import="Aktenplaneinheit 63.01 ist gesperrt", duplicate_detection=False
    )
    target = http_target(dms, receipt_requested=True, answers_url=dms.url + ANSWERS_PATH)
    running = await start(hub_factory, tmp_path, schema_dir, target)
    application_id, _ = await submit(running, "BAU-2025-0003")
    assert await running.wait_for_state(application_id) == ApplicationState.DEAD
    summary = await running.hub.journal.get_summary(application_id)
    assert summary is not None and summary.error is not None
    assert "refused the import" in summary.error and "Aktenplaneinheit 63.01 ist gesperrt" in summary.error
    assert dms.state.uploads == 1 and dms.state.history == []  # sent once, nothing imported
