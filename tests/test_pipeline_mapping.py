"""The map step with a route's mapping file, and an operator fixing a broken mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.config import config_from_dict
from hub.errors import ConfigError
from hub.journal import ApplicationFilter
from hub.models import ApplicationState
from hub.plugins import load_plugins
from hub.testing import fakes
from hub.testing.fakes import RecordingSink
from hub.testing.harness import base_settings, stop_hub

MAPPING = """\
file_number: {pattern: "32-{year}-{seq:04d}"}
akte:
  type: Personenakte
  search: {Nachname: "{{ form.nachname }}"}
  fields:
    Aktenzeichen: "{{ file_number }}"
    Nachname: "{{ form.nachname }}"
    Beruf: "{{ form.%s }}"
documents:
  - {type: Originalantrag, content: original, fields: {Titel: "Original {{ external_id }}"}}
payloads:
  rec: {name: "{{ form.nachname | upper }}"}
"""
CONNECTORS: dict[str, Any] = {"json": {"type": "test-json"}, "rec": {"type": "test-recording"}}


async def test_broken_mapping_is_dead_naming_the_field_and_replay_files_it_after_the_fix(
    tmp_path: Path, hub_factory: Any
) -> None:
    mapping = tmp_path / "jagd.yaml"
    mapping.write_text(MAPPING % "beruf", encoding="utf-8")
    routes = [{"name": "jagd", "from": "json", "to": ["rec"], "map": str(mapping)}]
    running = await hub_factory(CONNECTORS, routes, subdir="hub")
    status, body = await running.post(
        "/intake/json/jagdschein", json={"id": "m1", "form": {"nachname": "Groß"}}
    )
    assert status == 202
    app_id = body["application_id"]
    assert await running.wait_for_state(app_id) == ApplicationState.DEAD
    summary = await running.journal.get_summary(app_id)
    assert f"{mapping}:8: akte.fields.Beruf:" in summary.error
    assert "'beruf'" in summary.error
    await stop_hub(running)

    mapping.write_text(MAPPING % "nachname", encoding="utf-8")  # the operator fixes the mapping
    fixed = await hub_factory(CONNECTORS, routes, subdir="hub")
    assert await fixed.hub.bus.replay(ApplicationFilter(ids=(app_id,))) == [app_id]
    assert await fixed.wait_for_state(app_id) == ApplicationState.COMPLETED
    sink = fixed.hub.connectors["rec"]
    assert isinstance(sink, RecordingSink)
    record = sink.delivered[app_id]
    year = record.file_number.split("-")[1]
    assert record.file_number == f"32-{year}-0001"  # decided by the failed attempt, kept: no gap
    assert record.akte.fields == {"Aktenzeichen": record.file_number, "Nachname": "Groß", "Beruf": "Groß"}
    assert [d.fields for d in record.documents] == [{"Titel": "Original m1"}]
    assert record.payloads == {"rec": {"name": "GROSS", "count": 0}}
    stored = await fixed.journal.get_application(app_id)
    assert stored.file_number == record.file_number


def test_route_mapping_errors_are_configuration_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kaputt.yaml").write_text('akte: {type: A, fields: {N: "{{ form.x "}}\n', encoding="utf-8")
    settings = base_settings(
        tmp_path, CONNECTORS, [{"name": "r", "from": "json", "to": ["rec"], "map": "kaputt.yaml"}]
    )
    plugins = load_plugins([fakes], entry_points=False)
    monkeypatch.chdir(tmp_path)  # mappings of configurations built in code are relative to the cwd
    with pytest.raises(ConfigError) as info:
        config_from_dict(settings, plugins, env={})
    assert "routes[0].map: kaputt.yaml:1: akte.fields.N:" in info.value.problems[0]


async def test_map_step_stores_the_pdf_rendition(tmp_path: Path, hub_factory: Any) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        'title: "Antrag auf {{ form.art }}"\n'
        "labels: {art: Art des Antrags}\n"
        "documents:\n  - {type: Antrag, content: rendition, fields: {Titel: Antrag}}\n",
        encoding="utf-8",
    )
    running = await hub_factory(
        CONNECTORS, [{"name": "r", "from": "json", "to": ["rec"], "map": str(mapping)}]
    )
    status, body = await running.post(
        "/intake/json/jagdschein", json={"id": "r1", "form": {"art": "Jagdschein"}}
    )
    assert status == 202
    app_id = body["application_id"]
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    (document,) = running.hub.connectors["rec"].delivered[app_id].documents
    assert (document.content, document.media_type, document.name) == (
        "rendition",
        "application/pdf",
        "Antrag jagdschein.pdf",
    )
    pdf = await running.hub.blobs.read_bytes(document.blob)
    assert pdf.startswith(b"%PDF-")
    import io

    from pypdf import PdfReader

    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "Antrag auf Jagdschein" in text and "Art des Antrags" in text and app_id in text


async def test_deliveries_for_one_akte_never_overlap(tmp_path: Path, hub_factory: Any) -> None:
    mapping = tmp_path / "akte.yaml"
    mapping.write_text(
        'akte: {type: Personenakte, search: {Nachname: "{{ form.nachname }}"}, fields: {}}\n',
        encoding="utf-8",
    )
    connectors = {"json": {"type": "test-json"}, "slow": {"type": "test-recording", "delay_seconds": 0.05}}
    running = await hub_factory(
        connectors, [{"name": "r", "from": "json", "to": ["slow"], "map": str(mapping)}]
    )
    ids = []
    for n in range(4):  # four applications of one applicant, arriving together
        status, body = await running.post(
            "/intake/json/jagdschein", json={"id": f"k{n}", "form": {"nachname": "Groß"}}
        )
        assert status == 202
        ids.append(body["application_id"])
    for app_id in ids:
        assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    sink = running.hub.connectors["slow"]
    assert isinstance(sink, RecordingSink)
    assert sink.max_in_flight == 1
