"""/metrics as Prometheus reads it: types, label values, series that exist before the first event."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from hub.models import ApplicationState

CONNECTORS: dict[str, Any] = {
    "json": {"type": "test-json"},
    "id": {"type": "test-identity"},
    "dms": {"type": "test-recording", "poison": True},
    "other": {"type": "test-recording"},
    "note": {"type": "test-notifier"},
}
ROUTES = [
    {
        "name": "checked",
        "from": "json",
        "when": {"service": "jagdschein"},
        "identity": {"via": "id"},
        "to": ["dms"],
        "notify": ["note"],
    },
    {"name": "plain", "from": "json", "to": ["other"]},
]
STEP_TARGETS = {
    ("identify", "id"),
    ("map", "none"),
    ("deliver", "dms"),
    ("deliver", "other"),
    ("notify", "note"),
    ("notify-rejection", "note"),
}


async def scrape(running: Any) -> tuple[str, dict[str, Any]]:
    async with running.http.get(running.url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
    return text, {f.name: f for f in text_string_to_metric_families(text)}


def samples(families: dict[str, Any], name: str) -> list[Sample]:
    return list(families[name].samples)


def value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    [found] = [s.value for s in samples(families, family) if s.name == sample and s.labels == labels]
    return float(found)


async def test_running_totals_are_counters(hub_factory: Any) -> None:
    running = await hub_factory(CONNECTORS, ROUTES)
    _, before = await scrape(running)
    status, body = await running.post("/intake/json/fischereischein", json={"id": "t1", "form": {}})
    assert status == 202
    assert await running.wait_for_state(body["application_id"]) == ApplicationState.COMPLETED
    _, after = await scrape(running)
    for family in (
        "aktenhub_journal_write_transactions",
        "aktenhub_journal_write_operations",
        "aktenhub_blob_syncs",
    ):
        assert after[family].type == "counter", family
        first = value(before, family, family + "_total")
        assert value(after, family, family + "_total") > first, family
    assert after["aktenhub_applications"].type == "gauge"


async def test_series_exist_at_zero_from_the_start_and_no_label_is_empty(hub_factory: Any) -> None:
    running = await hub_factory(CONNECTORS, ROUTES)
    _, families = await scrape(running)
    for family in ("aktenhub_retries", "aktenhub_dead"):
        assert families[family].type == "counter"
        series = {
            (s.labels["step"], s.labels["target"]): s.value
            for s in samples(families, family)
            if s.name == family + "_total"
        }
        assert series == {pair: 0.0 for pair in STEP_TARGETS}, family
    counts = {
        (s.labels["step"], s.labels["target"])
        for s in samples(families, "aktenhub_step_seconds")
        if s.name == "aktenhub_step_seconds_count"
    }
    assert counts == STEP_TARGETS
    targets = {t for _, t in STEP_TARGETS if t != "none"}  # every connector but the source
    for family, name in (
        ("aktenhub_circuit_state", "aktenhub_circuit_state"),
        ("aktenhub_circuit_opened", "aktenhub_circuit_opened_total"),
    ):
        series = {s.labels["target"]: s.value for s in samples(families, family) if s.name == name}
        assert series == {t: 0.0 for t in targets}, family

    status, body = await running.post("/intake/json/jagdschein", json={"id": "t2", "form": {"level": "hoch"}})
    assert status == 202
    assert await running.wait_for_state(body["application_id"]) == ApplicationState.DEAD
    _, families = await scrape(running)
    assert value(families, "aktenhub_dead", "aktenhub_dead_total", step="deliver", target="dms") == 1.0
    assert value(families, "aktenhub_tasks", "aktenhub_tasks", step="map", target="none", state="done") == 1.0
    assert (
        value(families, "aktenhub_step_seconds", "aktenhub_step_seconds_count", step="map", target="none")
        == 1.0
    )
    empty = [
        (s.name, s.labels)
        for family in families.values()
        for s in family.samples
        if any(v == "" for v in s.labels.values())
    ]
    assert empty == []


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
async def test_promtool_accepts_the_exposition(hub_factory: Any) -> None:
    running = await hub_factory(CONNECTORS, ROUTES)
    status, body = await running.post("/intake/json/jagdschein", json={"id": "t3", "form": {}})
    assert status == 202
    assert await running.wait_for_state(body["application_id"]) == ApplicationState.REJECTED
    text, _ = await scrape(running)
    checked = await asyncio.to_thread(
        subprocess.run,
        ["promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")
