"""The built-in use of `aktenhub_event`: the JSON-lines audit export of journal events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hub.models import ApplicationState

CONNECTORS: dict[str, Any] = {
    "json": {"type": "test-json"},
    "rec": {
        "type": "test-recording",
        "fail_first": 1,
        "retry": {"initial_seconds": 0.05, "jitter_seconds": 0},
    },
}
ROUTES = [{"name": "jagd", "from": "json", "to": ["rec"]}]


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_a_real_application_is_exported_line_by_line_without_personal_data(
    tmp_path: Path, hub_factory: Any
) -> None:
    audit = tmp_path / "log" / "audit.jsonl"
    running = await hub_factory(CONNECTORS, ROUTES, audit={"path": str(audit)})
    status, body = await running.post(
        "/intake/json/jagdschein", json={"id": "a1", "form": {"nachname": "Groß", "ort": "Siegburg"}}
    )
    assert status == 202
    app_id = body["application_id"]
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED

    exported = lines(audit)
    journal = await running.journal.events(app_id)
    assert [(e["event_id"], e["type"]) for e in exported] == [(e.id, e.type) for e in journal]
    assert {e["application_id"] for e in exported} == {app_id}
    assert all(e["format"] == "aktenhub.audit/1" and e["at"].endswith("+00:00") for e in exported)
    retried = [e for e in exported if e["step"] == "deliver" and e["target"] == "rec"]
    assert len(retried) >= 2  # the failed first attempt and the delivery
    text = audit.read_text(encoding="utf-8")
    assert "Groß" not in text and "Siegburg" not in text
    # Error texts stay out (they may quote personal data); "503" alone could occur in a random id.
    assert "Service Unavailable" not in text


async def test_the_export_follows_a_rotation_and_appends_after_a_restart(
    tmp_path: Path, hub_factory: Any
) -> None:
    audit = tmp_path / "audit.jsonl"
    running = await hub_factory(CONNECTORS, ROUTES, audit={"path": str(audit)})
    _, first = await running.post("/intake/json/jagdschein", json={"id": "r1", "form": {}})
    assert await running.wait_for_state(first["application_id"]) == ApplicationState.COMPLETED
    audit.rename(tmp_path / "audit.jsonl.1")  # logrotate without copytruncate

    _, second = await running.post("/intake/json/jagdschein", json={"id": "r2", "form": {}})
    assert await running.wait_for_state(second["application_id"]) == ApplicationState.COMPLETED
    assert {e["application_id"] for e in lines(tmp_path / "audit.jsonl.1")} == {first["application_id"]}
    assert {e["application_id"] for e in lines(audit)} == {second["application_id"]}
    before = len(lines(audit))

    again = await hub_factory(CONNECTORS, ROUTES, subdir="hub2", audit={"path": str(audit)})
    _, third = await again.post("/intake/json/jagdschein", json={"id": "r3", "form": {}})
    assert await again.wait_for_state(third["application_id"]) == ApplicationState.COMPLETED
    appended = lines(audit)
    assert len(appended) > before and appended[0]["application_id"] == second["application_id"]
