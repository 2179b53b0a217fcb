"""Admin API, metrics and health: operators see failures and repair them."""

from __future__ import annotations

from typing import Any

from hub.models import ApplicationState
from hub.testing.fakes import RecordingSink

TOKENS = {"VIEWER_TOKEN": "v-secret-1", "OPERATOR_TOKEN": "o-secret-2"}
SERVER = {
    "listen": "127.0.0.1:0",
    "admin_tokens": [
        {"name": "dashboard", "token": "${VIEWER_TOKEN}", "role": "viewer"},
        {"name": "ops", "token": "${OPERATOR_TOKEN}", "role": "operator"},
    ],
}
CONNECTORS: dict[str, Any] = {
    "json": {"type": "test-json"},
    "dms": {"type": "test-recording", "poison": True},
    "other": {"type": "test-recording"},
}
ROUTES = [
    {"name": "to-dms", "from": "json", "when": {"service": "jagdschein"}, "to": ["dms"]},
    {"name": "to-other", "from": "json", "to": ["other"]},
]
VIEWER = {"Authorization": "Bearer v-secret-1"}
OPERATOR = {"Authorization": "Bearer o-secret-2"}


async def start(hub_factory: Any) -> Any:
    return await hub_factory(CONNECTORS, ROUTES, env=TOKENS, server=SERVER)


async def submit(running: Any, service: str, ident: str) -> str:
    status, body = await running.post(f"/intake/json/{service}", json={"id": ident, "form": {"n": ident}})
    assert status == 202, body
    return str(body["application_id"])


async def test_poison_is_dead_at_once_others_flow_then_bulk_replay_delivers(hub_factory: Any) -> None:
    running = await start(hub_factory)
    poisoned = [await submit(running, "jagdschein", f"p{i}") for i in range(3)]
    healthy = [await submit(running, "fischereischein", f"h{i}") for i in range(3)]
    for app_id in poisoned:
        assert await running.wait_for_state(app_id) == ApplicationState.DEAD
    for app_id in healthy:
        assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED

    status, body = await running.get("/api/v1/applications?state=dead", headers=VIEWER)
    assert status == 200
    assert sorted(a["id"] for a in body["applications"]) == sorted(poisoned)
    # Viewers see the error's code; its text may quote personal data.
    assert all(a["error"] == a["error_code"] == "Permanent" for a in body["applications"])
    status, body = await running.get("/api/v1/applications?state=dead", headers=OPERATOR)
    assert all("Aktenzeichen is mandatory" in a["error"] for a in body["applications"])

    status, detail = await running.get(f"/api/v1/applications/{poisoned[0]}", headers=VIEWER)
    assert status == 200
    (deliver,) = [t for t in detail["tasks"] if t["step"] == "deliver"]
    assert deliver["state"] == "dead" and deliver["attempts"] == 1
    assert deliver["last_error"] == "Permanent"
    assert [e["type"] for e in detail["timeline"]][-1] == "step.dead"
    assert "application" not in detail  # viewers do not see the personal data

    dms = running.hub.connectors["dms"]
    assert isinstance(dms, RecordingSink)
    dms.poison = False  # the operator fixed the target

    status, body = await running.post("/api/v1/replay", json={"state": "dead"}, headers=VIEWER)
    assert status == 403
    status, body = await running.post("/api/v1/replay", json={"route": "to-dms"}, headers=OPERATOR)
    assert status == 400 and "needs a reason" in body["error"]  # a bulk action says why
    preview = {"route": "to-dms", "dry_run": True}
    status, body = await running.post("/api/v1/replay", json=preview, headers=OPERATOR)
    assert (status, body) == (200, {"dry_run": True, "count": 3, "filter": "route=to-dms"})
    assert await running.wait_for_state(poisoned[0]) == ApplicationState.DEAD  # the preview changed nothing
    fixed = {"route": "to-dms", "reason": "DMS-Pflichtfeld nachgetragen"}
    status, body = await running.post("/api/v1/replay", json=fixed, headers=OPERATOR)
    assert status == 200 and body["count"] == 3
    for app_id in poisoned:
        assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    assert sorted(dms.delivered) == sorted(poisoned)
    status, detail = await running.get(f"/api/v1/applications/{poisoned[0]}", headers=OPERATOR)
    (deliver,) = [t for t in detail["tasks"] if t["step"] == "deliver"]
    assert deliver["attempts"] == 2  # attempts keep counting across a replay
    assert detail["application"]["form"] == {"n": "p0"}
    assert "operator.replayed" in [e["type"] for e in detail["timeline"]]


async def test_replay_one_and_nothing_to_replay(hub_factory: Any) -> None:
    running = await start(hub_factory)
    app_id = await submit(running, "jagdschein", "one")
    assert await running.wait_for_state(app_id) == ApplicationState.DEAD
    running.hub.connectors["dms"].poison = False
    status, body = await running.post(f"/api/v1/applications/{app_id}/replay", headers=OPERATOR)
    assert (status, body["replayed"]) == (200, [app_id])
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    status, body = await running.post(f"/api/v1/applications/{app_id}/replay", headers=OPERATOR)
    assert status == 409
    status, body = await running.post("/api/v1/applications/app_nope/replay", headers=OPERATOR)
    assert status == 404


async def test_auth_and_filters(hub_factory: Any) -> None:
    running = await start(hub_factory)
    a = await submit(running, "fischereischein", "Kreis-0815")
    await running.wait_for_state(a)
    assert (await running.get("/api/v1/applications"))[0] == 401
    assert (await running.get("/api/v1/applications", headers={"Authorization": "Bearer wrong"}))[0] == 401
    status, body = await running.get("/api/v1/applications?q=kreis-0815", headers=VIEWER)
    assert [x["id"] for x in body["applications"]] == [a]
    status, body = await running.get("/api/v1/applications?q=100%25", headers=VIEWER)
    assert body["applications"] == []
    status, body = await running.get("/api/v1/applications?route=to-other&state=completed", headers=VIEWER)
    assert [x["id"] for x in body["applications"]] == [a]
    status, body = await running.get("/api/v1/applications?state=bogus", headers=VIEWER)
    assert status == 400 and "state must be one of" in body["error"]
    status, body = await running.post("/api/v1/replay", data=b"[1]", headers=OPERATOR)
    assert status == 400
    assert (await running.get("/api/v1/applications/app_nope", headers=VIEWER))[0] == 404


async def test_metrics_health_and_readiness(hub_factory: Any) -> None:
    running = await start(hub_factory)
    dead = await submit(running, "jagdschein", "m1")
    done = await submit(running, "fischereischein", "m2")
    await running.wait_for_state(dead)
    await running.wait_for_state(done)
    status, text = await running.get("/metrics")
    assert status == 200
    assert 'aktenhub_applications{state="dead"} 1.0' in text
    assert 'aktenhub_applications{state="completed"} 1.0' in text
    assert 'aktenhub_tasks{state="dead",step="deliver",target="dms"} 1.0' in text
    assert 'aktenhub_dead_total{step="deliver",target="dms"} 1.0' in text
    assert 'aktenhub_step_seconds_count{step="deliver",target="other"} 1.0' in text
    assert 'aktenhub_intakes_total{duplicate="false",source="json"} 2.0' in text
    assert "aktenhub_journal_write_transactions_total " in text and "aktenhub_blob_syncs_total " in text
    assert await running.get("/healthz") == (200, {"status": "ok"})
    status, body = await running.get("/readyz")
    assert status == 200 and body["status"] == "ready"
    await running.hub.bus.stop()
    status, body = await running.get("/readyz")
    assert status == 503 and body["problems"] == ["workers are not running"]


async def test_bulk_replay_needs_a_filter(hub_factory: Any) -> None:
    running = await start(hub_factory)
    app_id = await submit(running, "jagdschein", "e1")
    assert await running.wait_for_state(app_id) == ApplicationState.DEAD
    for body in ({}, {"ids": []}, {"state": ""}):
        status, answer = await running.post("/api/v1/replay", json=body, headers=OPERATOR)
        assert status == 400 and "give a filter" in answer["error"]
    assert await running.wait_for_state(app_id, [ApplicationState.DEAD]) == ApplicationState.DEAD
