"""Several processes, one hub: what an intake-only and a worker-only process do, and what they answer.

On SQLite one process owns the journal, so there the roles run one after the other on the same journal
(a real FormCycle submission over HTTP, filed into the enaio simulator); on PostgreSQL they run side by
side, the worker woken by the journal's notice of the other process's intake.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from test_e2e_enaio import (  # noqa: F401 (fixtures)
    ENV,
    OPERATOR,
    StartHub,
    api,
    enaio,
    jagdschein,
    post,
    start_hub,
)
from test_e2e_enaio import Simulator as Enaio

from hub.answers import Answer
from hub.cli import main
from hub.config import config_from_dict
from hub.journal import ApplicationFilter, SqliteJournal, TaskSpec, migrate_schema
from hub.models import AnswerStatus, ApplicationState, Event
from hub.pipeline import MAP
from hub.plugins import load_plugins
from hub.runtime import Hub
from hub.testing import fakes
from hub.testing.fakes import AnsweringSink, RecordingSink
from hub.testing.harness import base_settings, make_application, stop_hub

FAST = {"concurrency": 4, "lease_seconds": 30, "idle_poll_seconds": 0.2}
INTAKE_ONLY = {"workers": {**FAST, "enabled": False}}
WORKER_ONLY = {"intake": {"enabled": False}, "workers": FAST}


async def test_an_intake_only_process_takes_the_submission_and_a_worker_only_process_files_it(
    start_hub: StartHub,  # noqa: F811
    enaio: Enaio,  # noqa: F811
) -> None:
    intake = await start_hub(settings=INTAKE_ONLY)
    submission = jagdschein("FC-2026-000901")
    status, body = await post(intake, submission)
    assert status == 202, body
    application_id = body["application_id"]
    assert await post(intake, submission) == (200, {"application_id": application_id, "duplicate": True})
    assert await intake.get("/readyz") == (200, {"status": "ready", "roles": ["intake"], "busy_tasks": 0})
    status, process = await intake.get("/api/v1/process", headers=OPERATOR)
    assert status == 200
    assert (process["roles"], process["workers_running"]) == (["intake"], False)
    summary = await intake.journal.get_summary(application_id)
    assert summary is not None and summary.state == ApplicationState.RECEIVED
    assert [(t.step, t.state) for t in await intake.journal.tasks(application_id)] == [("map", "pending")]
    assert await enaio.counts() == {}
    await stop_hub(intake)

    worker = await start_hub(settings=WORKER_ONLY)  # the same journal and blob store
    assert await worker.wait_for_state(application_id) == ApplicationState.COMPLETED
    counts = await enaio.counts()
    assert sum(counts.values()) > 0, counts
    status, ready = await worker.get("/readyz")
    assert (status, ready["status"], ready["roles"]) == (200, "ready", ["workers"])
    status, process = await worker.get("/api/v1/process", headers=OPERATOR)
    assert (process["roles"], process["workers_running"]) == (["workers"], True)
    # A submission sent to the worker-only process by mistake: "again later", nothing stored.
    status, refused = await post(worker, jagdschein("FC-2026-000902"))
    assert status == 503, refused
    assert "intake.enabled: false" in refused["error"]
    async with worker.http.post(f"{worker.url}/callback/enaio", data=b"{}") as resp:
        assert (resp.status, resp.headers.get("Retry-After")) == (503, "60")
    assert len(await worker.journal.list_applications(ApplicationFilter(), limit=10)) == 1

    await worker.hub.bus.stop()  # a worker-only process without its workers serves nothing
    status, ready = await worker.get("/readyz")
    assert (status, ready["problems"], ready["roles"]) == (503, ["workers are not running"], ["workers"])


ANSWERING: dict[str, Any] = {
    "json": {"type": "test-json"},
    "fv": {"type": "test-answering", "answer_poll_seconds": 0.05},
}
PLAIN = [{"name": "plain", "from": "json", "to": ["fv"]}]


async def test_polling_for_answers_is_the_intake_role(hub_factory: Any) -> None:
    intake = await hub_factory(ANSWERING, PLAIN, subdir="intake", **INTAKE_ONLY)
    sink = intake.hub.connectors["fv"]
    assert isinstance(sink, AnsweringSink)
    sink.issue(Answer(answer_id="a1", reference="rec-nobody", status=AnswerStatus.ACCEPTED))
    await intake.wait_for(lambda: sink.refused == ["a1"], what="the intake-only process polling for answers")

    worker = await hub_factory(ANSWERING, PLAIN, subdir="worker", **WORKER_ONLY)
    assert worker.hub.next_run("answers-fv") is None
    assert intake.hub.next_run("answers-fv") is not None


class NotifyingJournal(SqliteJournal):
    """A SQLite journal that hints like a shared backend: each committed intake wakes the watcher, as
    PostgreSQL's NOTIFY does on commit for the processes that LISTEN."""

    watcher: Any = None

    def watch_for_work(self, wake: Any) -> None:
        self.watcher = wake

    async def intake(self, *args: Any, **kwargs: Any) -> Any:
        result = await super().intake(*args, **kwargs)
        if self.watcher is not None:
            self.watcher()
        return result


async def test_work_another_process_adds_wakes_idle_workers_before_their_poll(tmp_path: Path) -> None:
    connectors = {"json": {"type": "test-json"}, "rec": {"type": "test-recording"}}
    settings = base_settings(tmp_path, connectors, [{"name": "plain", "from": "json", "to": ["rec"]}])
    settings["workers"] = {"idle_poll_seconds": 600, "lease_seconds": 30}  # the poll would come too late
    plugins = load_plugins([fakes])
    config = config_from_dict(settings, plugins, env={})
    journal = NotifyingJournal(tmp_path / "journal.db")
    hub = Hub(config, plugins, journal=journal)
    completed = asyncio.Event()

    def on_events(events: tuple[Event, ...]) -> None:
        if any(e.type == "application.completed" for e in events):
            completed.set()

    hub.bus.listeners.append(on_events)
    await hub.start()
    try:
        # Another process's intake: straight into the shared journal, past this process's bus.
        app = await make_application(hub.blobs, source="json", external_id="elsewhere-1")
        app.route = "plain"
        received = Event(application_id=app.id, type="application.received", step="intake", data={})
        await journal.intake(app, [received], [TaskSpec(step=MAP)])
        await asyncio.wait_for(completed.wait(), 20)
    finally:
        await hub.stop()
    sink = hub.connectors["rec"]
    assert isinstance(sink, RecordingSink)
    assert list(sink.delivered) == [app.id]


def test_diagnostics_show_the_process_roles(tmp_path: Path) -> None:
    config = tmp_path / "aktenhub.yaml"
    config.write_text(
        f"store: sqlite:///{tmp_path / 'journal.db'}\nblobs: {tmp_path / 'blobs'}\n"
        "intake: {enabled: false}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["diagnostics", "-c", str(config)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "process roles: workers (intake.enabled, workers.enabled)" in result.output


async def test_on_postgresql_an_idle_worker_only_process_files_what_an_intake_only_process_takes(
    hub_factory: Any, postgres_url: str, tmp_path: Path
) -> None:
    # Two processes side by side on one PostgreSQL journal (and, for this test, one blob directory).
    # The worker looks for work only every 10 minutes: what wakes it is the journal's notice.
    await migrate_schema(postgres_url)
    connectors = {"json": {"type": "test-json"}, "rec": {"type": "test-recording"}}
    route = [{"name": "plain", "from": "json", "to": ["rec"]}]
    shared = {"store": postgres_url, "blobs": str(tmp_path / "blobs")}
    idle = {"idle_poll_seconds": 600, "lease_seconds": 30}
    worker = await hub_factory(
        connectors, route, subdir="worker", intake={"enabled": False}, workers=idle, **shared
    )
    await worker.wait_for(lambda: worker.hub.bus.cycles >= 1, what="the worker's first look for work")
    intake = await hub_factory(
        connectors, route, subdir="intake", workers={**idle, "enabled": False}, **shared
    )

    status, body = await intake.post("/intake/json/jagdschein", json={"id": "pg-1", "form": {"n": "1"}})
    assert status == 202, body
    application_id = body["application_id"]
    assert await worker.wait_for_state(application_id, timeout=20) == ApplicationState.COMPLETED
    sink = worker.hub.connectors["rec"]
    assert isinstance(sink, RecordingSink) and list(sink.delivered) == [application_id]
    assert (await worker.get("/readyz"))[1]["roles"] == ["workers"]
    assert (await intake.get("/readyz"))[1]["roles"] == ["intake"]
