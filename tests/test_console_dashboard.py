"""The console's dashboard (/ui/), its live counters and the purge, seen from a browser without JavaScript."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lxml.html

from hub import ConnectorConfig, hookimpl
from hub.connectors import Connector, DeliveryContext, Sink
from hub.errors import Permanent
from hub.models import ApplicationState, Delivery, FileRecord
from hub.testing.console import ConsoleClient
from hub.testing.fakes import MANIFEST
from hub.testing.harness import RunningHub, backdate_blobs, blob_files, stored_blobs
from hub.testing.pki import make_certificate

TOKENS = {"VIEWER_TOKEN": "v-secret-1", "OPERATOR_TOKEN": "o-secret-2", "ADMIN_TOKEN": "a-secret-3"}
SERVER = {
    "listen": "127.0.0.1:0",
    "admin_tokens": [
        {"name": "dashboard", "token": "${VIEWER_TOKEN}", "role": "viewer"},
        {"name": "ops", "token": "${OPERATOR_TOKEN}", "role": "operator"},
        {"name": "chief", "token": "${ADMIN_TOKEN}", "role": "admin"},
    ],
}
ADMIN = {"Authorization": "Bearer a-secret-3"}
OPERATOR = {"Authorization": "Bearer o-secret-2"}
CONNECTORS: dict[str, Any] = {
    "json": {"type": "test-json"},
    "archiv": {"type": "test-recording"},
    "fachverfahren": {"type": "test-quoting"},
}
ROUTES = [
    {"name": "angeln", "from": "json", "when": {"service": "fischereischein"}, "to": ["archiv"]},
    {"name": "jagd", "from": "json", "when": {"service": "jagdschein"}, "to": ["fachverfahren"]},
]
SURNAME, BIRTH = "Mustermann", "1964-08-12"
PAUSE_REASON = "Rückfrage bei Frau Mustermann"
NOTHING = "\N{EN DASH}"  # what a table cell without a value shows


class QuotingSink(Sink[ConnectorConfig]):
    """Refuses like real targets do: the message quotes the offending form data."""

    kind = "test-quoting"
    manifest = MANIFEST

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        form = ctx.application.form
        raise Permanent(f"Feld Geburtsdatum {form['geburtsdatum']} von {form['name']} ist ungültig")


class Plugin:
    @hookimpl
    def aktenhub_connector_types(self) -> Sequence[type[Connector[Any]]]:
        return [QuotingSink]


async def start(hub_factory: Any, **overrides: Any) -> RunningHub:
    running: RunningHub = await hub_factory(
        CONNECTORS, ROUTES, env=TOKENS, server=SERVER, extra_plugins=(Plugin(),), **overrides
    )
    return running


async def submit(running: RunningHub, service: str, ident: str, state: ApplicationState) -> str:
    form = {"name": SURNAME, "geburtsdatum": BIRTH}
    status, body = await running.post(f"/intake/json/{service}", json={"id": ident, "form": form})
    assert status == 202, body
    app_id = str(body["application_id"])
    assert await running.wait_for_state(app_id) == state
    return app_id


async def known_traffic(running: RunningHub) -> None:
    """Three applications filed, one dead with an error text that quotes the applicant."""
    for n in range(3):
        await submit(running, "fischereischein", f"F-{n}", ApplicationState.COMPLETED)
    await submit(running, "jagdschein", "J-1", ApplicationState.DEAD)


async def logged_in(running: RunningHub, token: str) -> ConsoleClient:
    browser = ConsoleClient(running.url)
    response = await browser.login_with_token(token)
    assert response.status == 200
    return browser


def page(html: str) -> Any:
    return lxml.html.fromstring(html)


def text(node: Any) -> str:
    return " ".join(node.text_content().split())


def counter(doc: Any, name: str) -> str:
    return text(doc.get_element_by_id("live-counters").cssselect(f'[data-counter="{name}"] .figure')[0])


def row(doc: Any, table: str, key: str, value: str) -> list[str]:
    [found] = doc.get_element_by_id(table).cssselect(f'tr[data-{key}="{value}"]')
    return [text(cell) for cell in found.cssselect("th, td")]


def column_sum(doc: Any, details: str, column: int) -> int:
    rows = doc.get_element_by_id(details).cssselect("tbody tr")
    return sum(int(text(r.cssselect("th, td")[column]) or 0) for r in rows)


async def test_the_figures_match_the_journal_after_known_traffic(hub_factory: Any) -> None:
    running = await start(hub_factory)
    await known_traffic(running)
    browser = await logged_in(running, "o-secret-2")
    async with browser:
        status, html = await browser.get("/ui/")
    assert status == 200
    doc = page(html)

    assert [counter(doc, s) for s in ("received", "processing", "dead", "completed", "in_flight")] == [
        "0",
        "0",
        "1",
        "3",
        "0",
    ]
    assert counter(doc, "received_last_hour") == "4"
    # Route, total, then received, processing, completed, dead, rejected, abandoned (by their state now).
    assert row(doc, "routes-table", "route", "angeln") == ["angeln", "3", "0", "0", "3", "0", "0", "0"]
    assert row(doc, "routes-table", "route", "jagd") == ["jagd", "1", "0", "0", "0", "1", "0", "0"]
    # Ziel, circuit, paused, in flight, due, later, dead, delivered, failed attempts, last error, rate.
    archive = row(doc, "targets-table", "target", "archiv")
    assert archive[3:9] == ["0", "0", "0", "0", "3", "0"] and archive[9] == NOTHING
    refusing = row(doc, "targets-table", "target", "fachverfahren")
    assert refusing[1] == "geschlossen" and refusing[3:9] == ["0", "0", "0", "1", "0", "1"]
    assert refusing[9].startswith(f"Permanent Permanent: Feld Geburtsdatum {BIRTH} von {SURNAME}")
    # The charts' tables: one row per hour of the day, summing to the traffic.
    assert len(doc.get_element_by_id("chart-volume-data").cssselect("tbody tr")) == 24
    assert [column_sum(doc, "chart-volume-data", c) for c in (1, 2, 3)] == [4, 3, 1]
    assert column_sum(doc, "chart-duration-data", 1) == 3
    assert doc.get_element_by_id("chart-volume").cssselect("svg[role=img][aria-labelledby]")
    assert text(doc.get_element_by_id("journal-size")).endswith(("KB", "MB"))


async def test_a_week_is_shown_by_the_hour_and_an_unknown_window_is_refused(hub_factory: Any) -> None:
    running = await start(hub_factory)
    await known_traffic(running)
    async with await logged_in(running, "v-secret-1") as browser:
        status, html = await browser.get("/ui/?zeitraum=7d")
        assert status == 200
        doc = page(html)
        assert len(doc.get_element_by_id("chart-volume-data").cssselect("tbody tr")) == 7 * 24
        assert [column_sum(doc, "chart-volume-data", c) for c in (1, 2, 3)] == [4, 3, 1]
        assert doc.cssselect("#zeitraum option[selected]")[0].get("value") == "7d"
        status, body = await browser.get("/ui/?zeitraum=forever")
        assert status == 400 and "Unbekannter Zeitraum" in body


async def test_a_viewer_sees_error_codes_and_no_personal_data(hub_factory: Any) -> None:
    running = await start(hub_factory)
    await known_traffic(running)
    await running.hub.operations.pause("archiv", "ops", PAUSE_REASON)
    async with await logged_in(running, "v-secret-1") as browser:
        status, html = await browser.get("/ui/")
    assert status == 200
    assert SURNAME not in html and BIRTH not in html and "Geburtsdatum" not in html
    doc = page(html)
    assert row(doc, "targets-table", "target", "fachverfahren")[9].startswith("Permanent ")
    assert row(doc, "targets-table", "target", "archiv")[2].startswith("ja, von ops seit")
    # Operators see what they need to repair it.
    async with await logged_in(running, "o-secret-2") as browser:
        _, html = await browser.get("/ui/")
    assert f"von {SURNAME} ist ungültig" in html and PAUSE_REASON in html


async def test_the_live_counters_follow_the_journal(hub_factory: Any) -> None:
    running = await start(hub_factory)
    await known_traffic(running)
    async with await logged_in(running, "v-secret-1") as browser:
        status, html = await browser.get("/ui/counters", headers={"HX-Request": "true"})
        assert status == 200
        fragment = page(html)
        assert fragment.get("id") == "live-counters"
        assert (fragment.get("hx-get"), fragment.get("hx-trigger")) == ("/ui/counters", "every 5s")
        assert counter(fragment, "dead") == "1"
        await submit(running, "jagdschein", "J-2", ApplicationState.DEAD)
        _, html = await browser.get("/ui/counters", headers={"HX-Request": "true"})
        doc = page(html)
        assert (counter(doc, "dead"), counter(doc, "received_last_hour")) == ("2", "5")


async def test_the_counters_of_an_expired_session_send_htmx_to_the_login(hub_factory: Any) -> None:
    running = await start(hub_factory)
    async with (
        ConsoleClient(running.url) as browser,
        browser.http.get(
            browser.url + "/ui/counters", headers={"HX-Request": "true"}, allow_redirects=False
        ) as response,
    ):
        assert response.status == 401
        assert response.headers["HX-Redirect"] == "/ui/login?next=/ui/counters"


RETENTION = {"scheduled": False, "policies": [{"name": "sofort", "route": "angeln", "days": 0}]}
HOUR = 3600.0


async def purgeable(hub_factory: Any) -> tuple[RunningHub, list[str]]:
    running = await start(hub_factory, retention=RETENTION)
    done = [await submit(running, "fischereischein", f"F-{n}", ApplicationState.COMPLETED) for n in range(2)]
    # Older than the orphan grace period, like the blobs of any application due for purging.
    backdate_blobs(running.hub.blobs, stored_blobs(running.hub.blobs), 2 * HOUR)
    return running, done


async def test_purge_api_dry_run_counts_and_the_run_deletes_with_an_audit_row(hub_factory: Any) -> None:
    running, done = await purgeable(hub_factory)
    store = running.hub.blobs
    blobs_before, files_before = stored_blobs(store), blob_files(store.root)

    status, dry = await running.post("/api/v1/purge", json={"dry_run": True}, headers=ADMIN)
    assert status == 200, dry
    assert (dry["dry_run"], dry["applications"], dry["by_policy"]) == (True, 2, {"sofort": 2})
    assert dry["blobs"] > 0  # counted, but a dry run removes nothing:
    assert (stored_blobs(store), blob_files(store.root)) == (blobs_before, files_before)
    document = await running.journal.get_application(done[0])
    assert document is not None and document.form == {"name": SURNAME, "geburtsdatum": BIRTH}

    status, report = await running.post("/api/v1/purge", headers=ADMIN)  # no body: a real run
    assert status == 200, report
    assert (report["dry_run"], report["applications"], report["blobs"]) == (False, 2, dry["blobs"])
    left = stored_blobs(store)
    assert left < blobs_before and len(left) == len(blobs_before) - dry["blobs"]
    for app_id in done:
        summary = await running.journal.get_summary(app_id)
        assert summary is not None and summary.purged_at is not None
        purged = await running.journal.get_application(app_id)
        assert purged is not None and purged.form == {}
    status, audit = await running.get("/api/v1/audit", params={"action": "purged"}, headers=ADMIN)
    assert status == 200
    [action] = audit["actions"]
    assert (action["operator"], action["count"], action["reason"]) == ("chief", 2, "sofort: 2")


async def test_purge_api_is_for_admins_and_needs_retention(hub_factory: Any) -> None:
    running, done = await purgeable(hub_factory)
    status, body = await running.post("/api/v1/purge", json={"dry_run": False}, headers=OPERATOR)
    assert status == 403, body
    status, body = await running.post("/api/v1/purge", json={"dry_run": "yes"}, headers=ADMIN)
    assert status == 400 and "dry_run" in body["error"]
    refusals: list[object] = [{"dryrun": True}, None, []]
    for refused in refusals:
        status, body = await running.post("/api/v1/purge", data=json.dumps(refused), headers=ADMIN)
        assert status == 400, refused
    summary = await running.journal.get_summary(done[0])
    assert summary is not None and summary.purged_at is None  # refused: nothing happened

    plain = await start(hub_factory, subdir="plain")
    status, body = await plain.post("/api/v1/purge", json={"dry_run": True}, headers=ADMIN)
    assert status == 400 and "no retention policies" in body["error"]
    async with await logged_in(plain, "a-secret-3") as browser:
        _, html = await browser.get("/ui/")
        assert 'id="purge-form"' not in html and "Keine Aufbewahrungsregeln eingerichtet" in html
        status, html = await browser.post("/ui/purge", headers={"HX-Request": "true"})
        assert status == 422 and "keine Aufbewahrungsregeln eingerichtet" in html


async def test_an_admin_purges_from_the_dashboard_after_a_dry_run(hub_factory: Any) -> None:
    running, done = await purgeable(hub_factory)
    async with await logged_in(running, "a-secret-3") as browser:
        _, html = await browser.get("/ui/")
        doc = page(html)
        assert doc.get_element_by_id("purge-form").get("action") == "/ui/purge"
        assert text(doc.get_element_by_id("purged-applications")) == "0"
        status, html = await browser.post("/ui/purge", headers={"HX-Request": "true"})
        assert status == 200
        shown = page(html)
        assert "Probelauf: 2 Anträge sind fällig" in text(shown)
        assert shown.cssselect('input[name="confirm"][value="ja"]')
        summary = await running.journal.get_summary(done[0])
        assert summary is not None and summary.purged_at is None
        status, html = await browser.post("/ui/purge", {"confirm": "ja"})  # without htmx: a whole page
        assert status == 200 and "Gelöscht: 2 Anträge" in text(page(html)) and "<h1>Löschlauf</h1>" in html
        _, html = await browser.get("/ui/")
        assert text(page(html).get_element_by_id("purged-applications")) == "2"
    status, audit = await running.get("/api/v1/audit", params={"action": "purged"}, headers=ADMIN)
    assert [a["operator"] for a in audit["actions"]] == ["chief"]


async def test_only_admins_purge_from_the_console_and_only_with_the_csrf_token(hub_factory: Any) -> None:
    running, done = await purgeable(hub_factory)
    async with await logged_in(running, "o-secret-2") as browser:
        _, html = await browser.get("/ui/")
        assert 'id="purge-form"' not in html
        status, _ = await browser.post("/ui/purge", {"confirm": "ja"})
        assert status == 403
    async with await logged_in(running, "a-secret-3") as browser:
        status, body = await browser.post("/ui/purge", {"confirm": "ja"}, csrf=False)
        assert status == 403 and "CSRF" in body
    summary = await running.journal.get_summary(done[0])
    assert summary is not None and summary.purged_at is None


async def test_the_blob_store_size_is_walked_in_the_background(hub_factory: Any) -> None:
    running = await start(hub_factory)
    await known_traffic(running)
    store = running.hub.blobs
    # Every blob the traffic stored, packed or a file of its own: what the journal references.
    blobs = await running.hub.referenced_blobs()
    assert blobs and stored_blobs(store) == blobs
    expected = (len(blobs), sum([len(await store.read_bytes(ref)) for ref in blobs]))
    usage = await running.hub.operations.blob_usage.refreshed()
    assert usage is not None and (usage.files, usage.bytes) == expected
    async with await logged_in(running, "v-secret-1") as browser:
        _, html = await browser.get("/ui/")
    assert f"in {len(blobs)} Dateien" in text(page(html).get_element_by_id("blob-size"))


async def test_the_dashboard_for_viewers_drops_error_texts_and_pause_reasons(hub_factory: Any) -> None:
    running = await start(hub_factory)
    await known_traffic(running)
    await running.hub.operations.pause("archiv", "ops", PAUSE_REASON)
    dashboard = await running.hub.operations.dashboard("7d")
    shown = dashboard.for_viewer().model_dump_json()
    assert SURNAME not in shown and PAUSE_REASON not in shown
    assert SURNAME in dashboard.model_dump_json()


async def test_certificates_show_their_days_left_and_those_about_to_expire_stand_out(
    hub_factory: Any, tmp_path: Path
) -> None:
    directory = tmp_path / "certs"
    directory.mkdir()
    files = [
        {"purpose": "tls-client", "path": str(make_certificate(directory, "client-soon", 5.5))},
        {"purpose": "ca", "path": str(make_certificate(directory, "trusted-ca", 400.5))},
        {"purpose": "ca", "path": str(make_certificate(directory, "old-ca", -1.5))},
    ]
    running = await start(hub_factory, certificates={"warn_days": 30, "files": files})
    async with await logged_in(running, "v-secret-1") as browser:
        _, html = await browser.get("/ui/")
    rows = page(html).get_element_by_id("certificates-table").cssselect("tbody tr")
    shown = [(r.get("class"), [text(c) for c in r.cssselect("th, td")]) for r in rows]
    # Soonest expiry first: the expired one, the one expiring within warn_days, then the valid one.
    assert [(css, cells[1], cells[4], cells[5]) for css, cells in shown] == [
        ("cert-expired", "ca", "-1", "abgelaufen"),
        ("cert-expiring", "tls-client", "5", "läuft bald ab"),
        ("cert-ok", "ca", "400", "gültig"),
    ]
    assert "CN=client-soon" in shown[1][1][2]
