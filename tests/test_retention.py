"""Retention and purge: finished applications lose their payload on time, live ones keep everything."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest
import yaml
from click.testing import CliRunner, Result

from hub.answers import Answer
from hub.cli import main
from hub.config import parse_config
from hub.connectors import Connector, ConnectorConfig, Manifest, Notifier
from hub.errors import ConfigError
from hub.hookspecs import hookimpl
from hub.journal import SqliteJournal, TaskSpec
from hub.models import AnswerStatus, Application, ApplicationState, Receipt
from hub.plugins import load_plugins
from hub.resubmission import ChangedResend
from hub.testing import RunningHub, fakes, make_application
from hub.testing.fakes import AnsweringSink, RecordingNotifier
from hub.testing.harness import backdate_blobs, base_settings, blob_files, stop_hub, stored_blobs

TOKEN = "formcycle-token-0123456789"
ENV = {"FORMCYCLE_TOKEN": TOKEN, "OPERATOR_TOKEN": "o-secret-2"}
OPERATOR = {"Authorization": "Bearer o-secret-2"}
SHARED = b"%PDF-1.4 the same Personalausweis, uploaded twice\n"
HOUR = 3600.0
MAPPING = Path(__file__).parents[1] / "config" / "mappings" / "jagd-und-fischerei.yaml"


APPLICANT = {"given_name": "vorname", "family_name": "nachname", "birth_date": "geburtsdatum", "city": "ort"}


def connectors(tmp: Path) -> dict[str, Any]:
    blocked = tmp / "blocked"
    blocked.write_text("a file where the import directory should be")
    return {
        "formcycle": {
            "type": "formcycle",
            "token": "${FORMCYCLE_TOKEN}",
            "id_field": "vorgang_id",
            "applicant_fields": APPLICANT,
        },
        "import": {"type": "filedrop", "path": str(tmp / "import")},
        "stuck": {"type": "filedrop", "path": str(blocked), "retry": {"max_attempts": 1}},
    }


ROUTES = [
    {
        "name": "jagd",
        "from": "formcycle",
        "when": {"service": "jagdschein"},
        "map": str(MAPPING),
        "to": ["import"],
    },
    {"name": "fischerei", "from": "formcycle", "when": {"service": "fischereischein"}, "to": ["stuck"]},
    {"name": "waffen", "from": "formcycle", "when": {"service": "waffenschein"}, "to": ["import"]},
]
RETENTION = {
    "scheduled": False,
    "batch_size": 1,  # several transactions for three applications
    "policies": [
        {"name": "jagd-sofort", "route": "jagd", "days": 0},
        {"name": "zehn-jahre", "days": 3650},
    ],
}


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=ENV, catch_exceptions=False)


async def submit(running: RunningHub, service: str, vorgang: str, files: dict[str, bytes]) -> str:
    form = aiohttp.FormData()
    form.add_field("vorgang_id", vorgang)
    form.add_field("vorname", "Jürgen")
    form.add_field("nachname", "Groß")
    form.add_field("geburtsdatum", "1970-04-01")
    form.add_field("ort", "Siegburg")
    for name, content in files.items():
        form.add_field(name, content, filename=f"{name}.pdf", content_type="application/pdf")
    status, body = await running.post(
        f"/intake/formcycle/{service}", data=form, headers={"X-Aktenhub-Token": TOKEN}
    )
    assert status == 202, body
    return str(body["application_id"])


def rows_of(db: Path, app_id: str) -> str:
    """Every journal row of an application, as text (what a purge must have cleaned)."""
    conn = sqlite3.connect(db)
    try:
        out = []
        for table, key in (
            ("applications", "id"),
            ("events", "application_id"),
            ("tasks", "application_id"),
            ("answers", "application_id"),
            ("application_revisions", "application_id"),
        ):
            out += [repr(r) for r in conn.execute(f"SELECT * FROM {table} WHERE {key}=?", (app_id,))]
        return "\n".join(out)
    finally:
        conn.close()


async def read_journal(db: Path) -> SqliteJournal:
    journal = SqliteJournal(db, read_only=True)
    await journal.open()
    return journal


async def test_purge_cli_removes_finished_payloads_keeps_live_ones_and_shared_files(
    tmp_path: Path, hub_factory: Any
) -> None:
    cons = connectors(tmp_path)
    running = await hub_factory(cons, ROUTES, env=ENV, retention=RETENTION)
    done = await submit(running, "jagdschein", "V-1", {"ausweis": SHARED, "foto": b"%PDF only in V-1"})
    live = await submit(running, "fischereischein", "V-2", {"ausweis": SHARED})
    later = await submit(running, "waffenschein", "V-3", {"foto": b"%PDF only in V-3"})
    assert await running.wait_for_state(done) == ApplicationState.COMPLETED
    assert await running.wait_for_state(live) == ApplicationState.DEAD
    assert await running.wait_for_state(later) == ApplicationState.COMPLETED
    documents = {a: await running.journal.get_application(a) for a in (done, live, later)}
    config = tmp_path / "aktenhub.yaml"
    settings = base_settings(tmp_path / "hub", cons, ROUTES)
    config.write_text(yaml.safe_dump({**settings, "retention": RETENTION}))
    beside = await asyncio.to_thread(run, "purge", "-c", str(config), "--dry-run", "--json")
    assert beside.exit_code == 0 and json.loads(beside.stdout)["applications"] == 1  # read-only, beside it
    (mapped,) = [t.result for t in await running.journal.tasks(done) if t.step == "map"]
    assert mapped is not None
    (rendition,) = [d["blob"] for d in mapped["documents"] if d["content"] == "rendition"]
    events_before = [e.type for e in await running.journal.events(done)]
    await stop_hub(running)

    store = running.hub.blobs  # stopped, but it still reads what the purge runs leave
    db = tmp_path / "hub" / "journal.db"
    before, files_before = stored_blobs(store), blob_files(store.root)
    backdate_blobs(store, before, 2 * HOUR)  # written long ago, like any application's due for purging
    only_done = {documents[done].original.blob, documents[done].attachments[1].blob, rendition}

    dry = await asyncio.to_thread(run, "purge", "-c", str(config), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert (report["dry_run"], report["applications"], report["by_policy"]) == (True, 1, {"jagd-sofort": 1})
    assert report["blobs"] == 3
    assert report["bytes"] == sum([len(await store.read_bytes(ref)) for ref in only_done])
    # A dry run changes nothing.
    assert (stored_blobs(store), blob_files(store.root)) == (before, files_before)
    assert "Groß" in rows_of(db, done)

    purged = await asyncio.to_thread(run, "purge", "-c", str(config), "--json", "--operator", "mueller")
    assert purged.exit_code == 0, purged.output
    report = json.loads(purged.stdout)
    assert (report["applications"], report["blobs"], report["blobs_shared"]) == (1, 3, 1)
    assert stored_blobs(store) == before - only_done  # the shared Ausweis stays for the live one
    assert blob_files(store.root) == files_before

    journal = await read_journal(db)
    try:
        summary = await journal.get_summary(done)
        assert summary is not None and summary.purged_at is not None
        assert (summary.state, summary.purge_policy) == (ApplicationState.COMPLETED, "jagd-sofort")
        app = await journal.get_application(done)
        assert app is not None
        assert (app.form, app.attachments, app.original, app.applicant.display_name) == ({}, [], None, "")
        assert app.applicant.birth_date is None
        # ids and correlations stay
        assert app.external_id == "V-1" and app.correlations == documents[done].correlations
        assert all(t.result is None and t.state == "done" for t in await journal.tasks(done))
        timeline = await journal.events(done)
        assert [e.type for e in timeline] == [*events_before, "application.purged"]
        assert timeline[-1].data["operator"] == "mueller" and timeline[-1].data["policy"] == "jagd-sofort"
        for other in (live, later):
            assert await journal.get_application(other) == documents[other]
    finally:
        await journal.close()
    text = rows_of(db, done)
    # The birth date as written, not its year alone: a row's timestamps (e.g. 1796219703.4) may hold "1970".
    personal_data = ("Groß", "Jürgen", "1970-04-01", "01.04.1970", "Siegburg", "foto.pdf")
    assert not any(personal in text for personal in personal_data)

    audit = await asyncio.to_thread(run, "audit", "-c", str(config), "--action", "purged", "--json")
    (row,) = json.loads(audit.stdout)  # the run, in the audit trail of operator actions
    assert (row["operator"], row["count"], row["reason"]) == ("mueller", 1, "jagd-sofort: 1")

    again = await asyncio.to_thread(run, "purge", "-c", str(config), "--json")
    assert json.loads(again.stdout)["applications"] == 0  # idempotent: nothing due twice

    refused = await asyncio.to_thread(run, "replay", "-c", str(config), done)
    assert refused.exit_code == 1
    assert f"application {done} cannot be replayed: its payload was purged" in refused.output


async def test_scheduled_purge_in_the_running_hub_with_metrics_and_api(
    tmp_path: Path, hub_factory: Any
) -> None:
    server = {
        "listen": "127.0.0.1:0",
        "admin_tokens": [{"name": "ops", "token": "${OPERATOR_TOKEN}", "role": "operator"}],
    }
    retention = {
        "interval_seconds": 0.2,
        "policies": [{"name": "sofort", "service": "jagdschein", "days": 0}],
    }
    running = await hub_factory(
        {"rec": {"type": "test-recording"}, "src": {"type": "test-json"}},
        [{"name": "all", "from": "src", "to": ["rec"]}],
        env=ENV,
        server=server,
        retention=retention,
    )
    store = running.hub.blobs
    due = await make_application(store, source="src", files={"a.pdf": b"%PDF due", "b.jpg": b"\xff\xd8 due"})
    kept = await make_application(
        store, source="src", service="waffenschein", files={"c.pdf": b"%PDF kept"}, form={"name": "Kurz"}
    )
    blobs = {x.blob for a in (due, kept) for x in [*a.attachments, a.original] if x}
    backdate_blobs(store, blobs, 2 * HOUR)
    for app in (due, kept):
        app.route = "all"
        await running.journal.intake(app, [], [], state=ApplicationState.COMPLETED)

    async def purged() -> bool:
        summary = await running.journal.get_summary(due.id)
        return summary is not None and summary.purged_at is not None

    await running.wait_for(purged, 10, "the scheduled purge")
    gone = {x.blob for x in [*due.attachments, due.original] if x}
    await running.wait_for(lambda: stored_blobs(store) == blobs - gone, 10, "the purged blobs to go")
    kept_summary = await running.journal.get_summary(kept.id)
    assert kept_summary is not None and kept_summary.purged_at is None  # no policy for its service

    _, metrics = await running.get("/metrics")
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("aktenhub_purge")
    }
    assert values["aktenhub_purged_applications"] == 1
    assert values["aktenhub_purged_blobs"] == 3
    assert values["aktenhub_purged_blob_bytes"] == sum(x.size for x in [*due.attachments, due.original] if x)
    assert values['aktenhub_purged_total{policy="sofort"}'] == 1
    assert values["aktenhub_purge_last_run_timestamp_seconds"] > time.time() - 60

    status, body = await running.get(f"/api/v1/applications/{due.id}", headers=OPERATOR)
    assert status == 200 and body["purge_policy"] == "sofort" and body["purged_at"]
    assert body["application"]["form"] == {} and body["application"]["purged"]["policy"] == "sofort"
    status, body = await running.post(f"/api/v1/applications/{due.id}/replay", headers=OPERATOR)
    assert status == 409 and "payload was purged" in body["error"]


async def test_purge_interrupted_before_the_files_leaves_no_dangling_reference(hub_factory: Any) -> None:
    """Journal first, files second: a crash in between leaves orphans, which the orphan sweep removes."""
    running = await hub_factory(
        {"rec": {"type": "test-recording"}, "src": {"type": "test-json"}},
        [{"name": "all", "from": "src", "to": ["rec"]}],
        retention={"scheduled": False, "policies": [{"name": "sofort", "days": 0}]},
    )
    # The sweep at start would otherwise take some of the leftovers before the one this test runs.
    await running.wait_for(lambda: running.hub.sweeps, 10, "the orphan sweep at start")
    store = running.hub.blobs
    app = await make_application(store, source="src")
    app.route = "all"
    blobs = {x.blob for x in [*app.attachments, app.original] if x}
    backdate_blobs(store, blobs, 2 * HOUR)
    await running.journal.intake(app, [], [], state=ApplicationState.REJECTED)
    orders = await running.hub.retention.due()
    assert [o.application_id for o in orders] == [app.id]
    await running.journal.purge(orders)  # the crash comes before the blobs are deleted
    assert stored_blobs(store) == blobs  # left behind by the crash
    assert not blobs & await running.journal.blob_references()  # nothing points at the leftovers
    assert await running.hub.sweep_orphans() == len(blobs)
    assert stored_blobs(store) == set()


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "hub.yaml", load_plugins([fakes]))
    return caught.value.problems


BASE = """\
store: sqlite:///journal.db
blobs: ./blobs
connectors:
  json: {type: test-json}
  rec: {type: test-recording}
routes:
  - {name: all, from: json, to: [rec]}
"""


def test_retention_config_refuses_negative_days_and_unknown_routes_with_file_and_line() -> None:
    found = problems(
        BASE
        + """\
retention:
  policies:
    - name: kurz
      days: -5
"""
    )
    assert any(
        p.startswith("hub.yaml:11: retention.policies[0].days: Input should be greater") for p in found
    )


def test_retention_config_names_unknown_route_duplicate_and_unreachable_policy() -> None:
    found = problems(
        BASE
        + """\
retention:
  policies:
    - name: bau
      route: bauantrag
      days: 30
    - name: alles
      days: 10
    - name: alles
      days: 1
"""
    )
    assert "hub.yaml:11: retention.policies[0].route: no route named 'bauantrag' (routes: all)" in found
    assert "hub.yaml:15: retention.policies[2].name: 'alles' is used twice" in found
    assert any(p.startswith("hub.yaml:15: retention.policies[2]: never applies: policies[1]") for p in found)


async def test_answers_of_a_purged_application_stay_on_its_timeline_and_trigger_nothing(
    hub_factory: Any,
) -> None:
    running = await hub_factory(
        {
            "json": {"type": "test-json"},
            "efile": {"type": "test-efile", "file_number": "AZ-2026-7"},
            "fv": {"type": "test-answering", "answer_poll_seconds": 0.05},
            "mailbox": {"type": "test-notifier"},
        },
        [
            {
                "name": "wasser",
                "from": "json",
                "to": ["efile", "fv"],
                "on_answer": {"update_akte": "efile", "notify": ["mailbox"]},
            }
        ],
        retention={"scheduled": False, "policies": [{"name": "sofort", "days": 0}]},
    )
    fv = running.hub.connectors["fv"]
    mailbox = running.hub.connectors["mailbox"]
    assert isinstance(fv, AnsweringSink) and isinstance(mailbox, RecordingNotifier)
    status, body = await running.post(
        "/intake/json/wasserrecht", json={"id": "w-1", "form": {"name": "Groß"}}
    )
    assert status == 202, body
    app_id = body["application_id"]
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    fv.issue(
        Answer(
            answer_id="a-1",
            reference=f"rec-{app_id}",
            status=AnswerStatus.ACTION_REQUIRED,
            case_number="WR-77",
            message="Herr Groß, bitte reichen Sie den Lageplan nach",
        )
    )
    await running.wait_for(lambda: (app_id, "a-1") in mailbox.statuses, 10, "the first status")
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED

    report = await running.hub.retention.purge(operator="test")
    assert report.applications == 1
    (stored,) = await running.journal.answers(app_id)
    assert (stored.answer.case_number, stored.answer.message) == ("WR-77", None)

    fv.issue(Answer(answer_id="a-2", reference=f"rec-{app_id}", status=AnswerStatus.DECIDED))
    fv.issue(Answer(answer_id="a-3", reference=f"rec-{app_id}", status=AnswerStatus.FAILED, error="kaputt"))
    await running.wait_for(lambda: fv.acknowledged[-2:] == ["a-2", "a-3"], 10, "the later answers taken")
    timeline = [e.type for e in await running.journal.events(app_id)]
    assert timeline[-2:] == ["answer.received", "answer.received"]
    summary = await running.journal.get_summary(app_id)
    assert summary is not None and summary.state == ApplicationState.COMPLETED  # not reopened, not dead
    assert all(t.subject in ("", "1") for t in await running.journal.tasks(app_id))  # no task for a-2, a-3
    assert (app_id, "a-2") not in mailbox.statuses


async def test_superseded_revisions_lose_their_content_too(hub_factory: Any) -> None:
    running = await hub_factory(
        {"rec": {"type": "test-recording"}, "src": {"type": "test-json"}},
        [{"name": "all", "from": "src", "to": ["rec"]}],
        retention={"scheduled": False, "policies": [{"name": "sofort", "days": 0}]},
    )
    store = running.hub.blobs
    first = await make_application(store, source="src", external_id="r-1", files={"a.pdf": b"%PDF first"})
    second = await make_application(
        store, source="src", external_id="r-1", files={"a.pdf": b"%PDF corrected"}, form={"name": "Groß"}
    )
    blobs = {x.blob for a in (first, second) for x in [*a.attachments, a.original] if x}
    backdate_blobs(store, blobs, 2 * HOUR)
    for app in (first, second):
        app.route = "all"
        await running.journal.intake(
            app, [], [], state=ApplicationState.COMPLETED, on_changed=ChangedResend.REVISION
        )
    db = Path(running.hub.config.hub.store.removeprefix("sqlite:///"))
    assert "Jürgen" in rows_of(db, first.id)  # the first revision's form, archived

    report = await running.hub.retention.purge()
    assert (report.applications, report.blobs) == (1, len(blobs))
    assert not blobs & stored_blobs(store)
    text = rows_of(db, first.id)
    assert "Jürgen" not in text and "Groß" not in text and "sha256:" not in text


class KeeperConfig(ConnectorConfig):
    """Settings of the keeping notifier."""

    fail_forgets: int = 0


class KeepingNotifier(Notifier[KeeperConfig]):
    """A notifier that keeps each receipt it sent as a blob in a store of its own (like bauportal's)."""

    kind = "test-keeper"
    manifest = Manifest(name="keeper", version="1", standards=("none",))
    Config: ClassVar[type[ConnectorConfig]] = KeeperConfig

    def __init__(self, config: KeeperConfig, context: Any) -> None:
        super().__init__(config, context)
        self.kept: dict[str, str] = {}
        self.failures = config.fail_forgets
        self.forgets = 0

    async def notify(self, application: Application, receipt: Receipt) -> dict[str, str]:
        info = await self.context.blobs.write_bytes(f"Eingangsbestätigung {application.id}".encode())
        self.kept[application.id] = info.ref
        return {"message": f"m-{application.id}"}

    async def blob_references(self) -> set[str]:
        return set(self.kept.values())

    async def forget(self, application_ids: Sequence[str]) -> set[str]:
        self.forgets += 1
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the notifier's store is unavailable")
        return {self.kept.pop(i) for i in application_ids if i in self.kept}


class KeeperPlugin:
    @hookimpl
    def aktenhub_connector_types(self) -> Sequence[type[Connector[Any]]]:
        return [KeepingNotifier]


async def test_connectors_forget_what_they_keep_of_purged_applications_even_after_a_failure(
    hub_factory: Any,
) -> None:
    running = await hub_factory(
        {
            "src": {"type": "test-json"},
            "rec": {"type": "test-recording"},
            "keeper": {"type": "test-keeper", "fail_forgets": 1},
        },
        [{"name": "all", "from": "src", "to": ["rec"], "notify": ["keeper"]}],
        extra_plugins=(KeeperPlugin(),),
        retention={"scheduled": False, "policies": [{"name": "sofort", "days": 0}]},
    )
    keeper = running.hub.connectors["keeper"]
    assert isinstance(keeper, KeepingNotifier)
    status, body = await running.post("/intake/src/meldung", json={"id": "k-1", "form": {"name": "Groß"}})
    assert status == 202, body
    app_id = body["application_id"]
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    store = running.hub.blobs
    receipt = keeper.kept[app_id]
    backdate_blobs(store, stored_blobs(store), 2 * HOUR)

    first = await running.hub.retention.purge()
    assert (first.applications, first.connectors_failed) == (1, ["keeper"])
    assert store.stored(receipt)  # the keeper still keeps it: never deleted under a connector

    second = await running.hub.retention.purge()  # the keeper hears of it again, and forgets
    assert (second.applications, second.blobs, second.connectors_failed) == (0, 1, [])
    assert not store.stored(receipt)
    calls = keeper.forgets
    await running.hub.retention.purge()
    assert keeper.forgets == calls  # told once it worked: not again


def test_retention_config_names_a_service_no_route_takes() -> None:
    found = problems(
        BASE.replace(
            "{name: all, from: json, to: [rec]}",
            "{name: all, from: json, when: {service: jagdschein}, to: [rec]}",
        )
        + """\
retention:
  policies:
    - name: angeln
      service: [jagdschein, angelschein]
      days: 30
"""
    )
    assert found == [
        "hub.yaml:11: retention.policies[0].service[1]: "
        "no route takes service 'angelschein' (services: jagdschein)"
    ]


async def test_a_large_purge_lets_intakes_through_between_its_batches(hub_factory: Any) -> None:
    running = await hub_factory(
        {"rec": {"type": "test-recording"}, "src": {"type": "test-json"}},
        [{"name": "all", "from": "src", "to": ["rec"]}],
        retention={"scheduled": False, "batch_size": 5, "policies": [{"name": "sofort", "days": 0}]},
    )
    store = running.hub.blobs

    async def finished(n: int) -> None:
        app = await make_application(store, source="src", external_id=f"old-{n}", files={})
        app.route = "all"
        await running.journal.intake(app, [], [], state=ApplicationState.COMPLETED)

    await asyncio.gather(*(finished(n) for n in range(300)))
    batches: list[int] = []
    first_batch = asyncio.Event()

    def progress(done: int, due: int) -> None:
        batches.append(done)
        if done:
            first_batch.set()

    purge = asyncio.create_task(running.hub.retention.purge(progress=progress))
    await asyncio.wait_for(first_batch.wait(), 30)
    status, body = await running.post("/intake/src/meldung", json={"id": "new-1", "form": {"a": "1"}})
    assert status == 202, body
    assert batches[-1] < 300  # taken in between the purge's batches, not after its last one
    report = await purge
    assert report.applications == 300 and len(batches) == 1 + 300 // 5


async def test_a_final_application_with_a_step_still_open_is_not_purged(hub_factory: Any) -> None:
    running = await hub_factory(
        {"rec": {"type": "test-recording"}, "src": {"type": "test-json"}},
        [{"name": "all", "from": "src", "to": ["rec"]}],
        retention={"scheduled": False, "policies": [{"name": "sofort", "days": 0}]},
    )
    app = await make_application(running.hub.blobs, source="src")
    app.route = "all"
    # Rejected, its rejection notice not sent yet (due later): the notifier still needs the applicant.
    later = TaskSpec(step="notify-rejection", target="rec", delay=86400.0)
    await running.journal.intake(app, [], [later], state=ApplicationState.REJECTED)
    report = await running.hub.retention.purge()
    assert report.applications == 0
    assert await running.journal.get_application(app.id) == app
