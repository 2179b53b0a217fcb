"""Typed per-target payloads: a mapping's `payloads.<target>` checked against the target's model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from hub.cli import main
from hub.config import config_from_dict
from hub.errors import ConfigError
from hub.models import ApplicationState
from hub.plugins import load_plugins
from hub.testing import fakes
from hub.testing.fakes import RecordedPayload, RecordingSink
from hub.testing.harness import base_settings

MAPPINGS = Path(__file__).parents[1] / "config" / "mappings"
SAMPLE = MAPPINGS / "samples" / "jagd-und-fischerei.yaml"
CONNECTORS: dict[str, Any] = {"json": {"type": "test-json"}, "rec": {"type": "test-recording"}}


def mapping(tmp_path: Path, payload: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(
        f"akte: {{type: Personenakte, fields: {{Leistung: '{{{{ service }}}}'}}}}\npayloads:\n{payload}",
        encoding="utf-8",
    )
    return path


def configuration(tmp_path: Path, path: Path) -> Path:
    """A configuration file naming a filedrop target `k3` and the recording sink `rec`."""
    config = tmp_path / "aktenhub.yaml"
    settings = {
        "blobs": str(tmp_path / "blobs"),
        "connectors": {"k3": {"type": "filedrop", "path": str(tmp_path / "import")}},
        "routes": [{"name": "r", "from": "formcycle", "to": ["k3"], "map": str(path)}],
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return config


def test_mapping_test_names_file_line_and_field_of_a_payload_that_does_not_fit(tmp_path: Path) -> None:
    path = mapping(tmp_path, "  k3:\n    fields:\n      Flur: '{{ form.jagdart }}'\n    flur: 7\n")
    result = CliRunner().invoke(
        main, ["mapping", "test", str(path), str(SAMPLE), "--config", str(configuration(tmp_path, path))]
    )
    assert result.exit_code == 1
    assert (
        f"{path}:6: payloads.k3.flur: unknown key (not in the payload model of target 'k3')" in result.output
    )


def test_mapping_test_checks_a_rendered_value_against_the_model(tmp_path: Path) -> None:
    # A target named like its connector type needs no configuration; `fields` is a mapping of texts.
    path = mapping(tmp_path, "  filedrop:\n    fields: '{{ applicant.family_name }}'\n")
    result = CliRunner().invoke(main, ["mapping", "test", str(path), str(SAMPLE)])
    assert result.exit_code == 1
    assert f"{path}:4: payloads.filedrop.fields: Input should be a valid dictionary" in result.output


def test_mapping_test_prints_the_validated_payload(tmp_path: Path) -> None:
    path = mapping(tmp_path, "  filedrop:\n    fields: {Nachname: '{{ applicant.family_name }}'}\n")
    result = CliRunner().invoke(main, ["mapping", "test", str(path), str(SAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["payloads"] == {"filedrop": {"fields": {"Nachname": "Groß"}}}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("  rec: {nmae: x}\n", "m.yaml:3: payloads.rec.nmae: unknown key"),
        ("  rec: {count: many}\n", "m.yaml:3: payloads.rec.count: Input should be a valid integer"),
        ("  k3: {name: x}\n", "m.yaml:3: payloads.k3: 'k3' is no target of the route (rec)"),
    ],
)
def test_start_up_refuses_a_payload_that_does_not_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: str, expected: str
) -> None:
    mapping(tmp_path, payload)
    settings = base_settings(
        tmp_path, CONNECTORS, [{"name": "r", "from": "json", "to": ["rec"], "map": "m.yaml"}]
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        config_from_dict(settings, load_plugins([fakes], entry_points=False), env={})
    assert any(p.startswith("<generated>") and expected in p for p in info.value.problems), (
        info.value.problems
    )


def test_start_up_refuses_a_payload_for_a_target_that_reads_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping(tmp_path, "  note: {x: y}\n")
    connectors = {**CONNECTORS, "note": {"type": "test-notifier"}}
    settings = base_settings(
        tmp_path, connectors, [{"name": "r", "from": "json", "to": ["rec"], "map": "m.yaml"}]
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        config_from_dict(settings, load_plugins([fakes], entry_points=False), env={})
    assert "m.yaml:3: payloads.note: 'note' is no target of the route (rec)" in "\n".join(info.value.problems)


async def test_a_fitting_payload_reaches_the_sink_typed(tmp_path: Path, hub_factory: Any) -> None:
    path = mapping(tmp_path, "  rec: {name: '{{ form.nachname | upper }}', count: '{{ form.anzahl }}'}\n")
    running = await hub_factory(CONNECTORS, [{"name": "r", "from": "json", "to": ["rec"], "map": str(path)}])
    status, body = await running.post(
        "/intake/json/jagdschein",
        json={"id": "p1", "form": {"nachname": "Groß", "anzahl": "3"}},
    )
    assert status == 202, body
    app_id = body["application_id"]
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    sink = running.hub.connectors["rec"]
    assert isinstance(sink, RecordingSink)
    assert sink.payloads[app_id] == RecordedPayload(name="GROSS", count=3)


async def test_a_rendered_payload_that_does_not_fit_is_dead_naming_the_place(
    tmp_path: Path, hub_factory: Any
) -> None:
    path = mapping(tmp_path, "  rec: {count: '{{ form.anzahl }}'}\n")
    running = await hub_factory(CONNECTORS, [{"name": "r", "from": "json", "to": ["rec"], "map": str(path)}])
    status, body = await running.post(
        "/intake/json/jagdschein",
        json={"id": "p2", "form": {"anzahl": "drei"}},
    )
    assert status == 202, body
    app_id = body["application_id"]
    assert await running.wait_for_state(app_id) == ApplicationState.DEAD
    summary = await running.journal.get_summary(app_id)
    assert f"{path}:3: payloads.rec.count: Input should be a valid integer" in summary.error
    assert running.hub.connectors["rec"].delivered == {}


def test_check_refuses_a_payload_that_does_not_fit_naming_file_line_and_field(tmp_path: Path) -> None:
    path = mapping(tmp_path, "  k3:\n    fields: {Flur: 12}\n    flur: 7\n")
    result = CliRunner().invoke(main, ["check", "-c", str(configuration(tmp_path, path))])
    assert result.exit_code == 2
    assert f"{path}:5: payloads.k3.flur: unknown key" in result.output
    assert "payloads.k3.fields.Flur: Input should be a valid string (got 12)" in result.output
