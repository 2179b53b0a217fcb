"""The console's dead letters, connectors and audit pages, seen from a browser without JavaScript.

A real hub with fake targets: one refuses records quoting the applicant's name and a record number
(one error, many texts), one refuses with a fixed text. Operators group, preview, replay after the fix;
admins abandon; viewers see codes, never the texts.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

import pytest

from hub import ConnectorConfig, hookimpl
from hub.actions import Action
from hub.connectors import CheckResult, Connector, DeliveryContext, Sink
from hub.errors import Permanent
from hub.journal import ApplicationFilter, TaskState
from hub.models import ApplicationState, Delivery, FileRecord
from hub.testing.console import ConsoleClient, form
from hub.testing.fakes import MANIFEST
from hub.testing.harness import RunningHub

TOKENS = {"VIEWER_TOKEN": "v-secret-1", "OPERATOR_TOKEN": "o-secret-2", "ADMIN_TOKEN": "a-secret-3"}
SERVER = {
    "listen": "127.0.0.1:0",
    "admin_tokens": [
        {"name": "Vera Viewer", "token": "${VIEWER_TOKEN}", "role": "viewer"},
        {"name": "Otto Operator", "token": "${OPERATOR_TOKEN}", "role": "operator"},
        {"name": "Anna Admin", "token": "${ADMIN_TOKEN}", "role": "admin"},
    ],
}
CONNECTORS: dict[str, Any] = {
    "portal": {"type": "test-json"},
    "mail": {"type": "test-json"},
    "fachverfahren": {"type": "test-numbered"},
    "post": {"type": "test-recording", "poison": True},
}
ROUTES = [
    {"name": "bauantrag", "from": "portal", "to": ["fachverfahren"]},
    {"name": "brief", "from": "mail", "to": ["post"]},
]
SURNAME = "Mustermann"


class NumberedSink(Sink[ConnectorConfig]):
    """A Fachverfahren that refuses like real ones: the text names a record number and the applicant."""

    kind = "test-numbered"
    manifest = MANIFEST
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    broken = True  # per instance: tests set it False to model "the Fachverfahren was fixed"
    records = 4710

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        if self.broken:
            self.records += 1
            name = ctx.application.form.get("name", "")
            raise Permanent(f"Datensatz {self.records} abgelehnt: Feld Name „{name}“ ist zu lang")
        return Delivery(target=self.name, reference=f"fv-{record.application_id}")

    async def check(self) -> CheckResult:
        if self.broken:
            return CheckResult(ok=False, message="Anmeldung abgelehnt (HTTP 401) von fv.kreis.example")
        return CheckResult(ok=True, message="Fachverfahren antwortet, Version 7.2")


class Plugin:
    @hookimpl
    def aktenhub_connector_types(self) -> Sequence[type[Connector[Any]]]:
        return [NumberedSink]


@pytest.fixture
async def running(hub_factory: Any) -> RunningHub:
    hub: RunningHub = await hub_factory(
        CONNECTORS, ROUTES, env=TOKENS, server=SERVER, extra_plugins=(Plugin(),)
    )
    return hub


@pytest.fixture
async def operator(running: RunningHub) -> AsyncIterator[ConsoleClient]:
    async with ConsoleClient(running.url) as browser:
        await browser.login_with_token("o-secret-2")
        yield browser


async def submitted(running: RunningHub, source: str, ident: str, state: ApplicationState) -> str:
    status, body = await running.post(
        f"/intake/{source}/bauantrag", json={"id": ident, "form": {"name": f"Erika {SURNAME} {ident}"}}
    )
    assert status == 202, body
    app_id = str(body["application_id"])
    assert await running.wait_for_state(app_id) == state
    return app_id


async def dead_in_both(running: RunningHub, fachverfahren: int = 3, post: int = 2) -> list[str]:
    ids = [await submitted(running, "portal", f"B-{i}", ApplicationState.DEAD) for i in range(fachverfahren)]
    for i in range(post):
        await submitted(running, "mail", f"M-{i}", ApplicationState.DEAD)
    return ids


def group_rows(page: str) -> dict[tuple[str, str], int]:
    """The dead-letter groups on a page: (target, error code) -> applications."""
    rows = re.findall(
        r'<tr id="dead-group-\d+" class="dead-group" data-target="([^"]*)" data-error-code="([^"]*)">'
        r'.*?data-applications="(\d+)"',
        page,
        re.S,
    )
    return {(target, code): int(count) for target, code, count in rows}


def preview_form(page: str, row: int, action: str) -> dict[str, str]:
    """The hidden fields of a group's preview button (the query the browser sends)."""
    start = page.index(f'id="dead-group-{row}"')
    segment = page[start : page.index("</tr>", start)]
    found = [f for f in re.findall(r"<form.*?</form>", segment, re.S) if f'value="{action}"' in f]
    assert found, f"no {action} button in group {row}"
    return form(found[0].replace("<form", '<form id="x"', 1), "x").fields


async def test_dead_steps_are_grouped_by_target_and_normalised_error(
    running: RunningHub, operator: ConsoleClient
) -> None:
    await dead_in_both(running)
    status, page = await operator.get("/ui/dead")
    assert status == 200
    # Three refusals with three record numbers and names are one group; the other target is another.
    assert group_rows(page) == {("fachverfahren", "Permanent"): 3, ("post", "Permanent"): 2}
    assert '<td class="text">Datensatz # abgelehnt: Feld Name &lt;...&gt; ist zu lang</td>' in page
    assert "5 fehlgeschlagene Schritte in 5 Anträgen" in page
    # A filter narrows the groups: by target, by route, by a date range that excludes them all.
    _, only = await operator.get("/ui/dead?target=post")
    assert group_rows(only) == {("post", "Permanent"): 2}
    _, routed = await operator.get("/ui/dead?route=bauantrag")
    assert group_rows(routed) == {("fachverfahren", "Permanent"): 3}
    _, before = await operator.get("/ui/dead?to=2020-01-31")
    assert group_rows(before) == {} and 'id="dead-empty"' in before
    status, wrong = await operator.get("/ui/dead?from=gestern")
    assert status == 422 and "Fehlgeschlagen ab: bitte ein Datum angeben" in wrong
    status, reversed_ = await operator.get("/ui/dead?from=2026-03-02&to=2026-03-01")
    assert status == 422 and "Der Zeitraum endet vor seinem Beginn." in reversed_


async def test_preview_counts_then_bulk_replay_after_the_fix_completes_them(
    running: RunningHub, operator: ConsoleClient
) -> None:
    ids = await dead_in_both(running)
    _, page = await operator.get("/ui/dead?target=fachverfahren")
    status, preview = await operator.post("/ui/dead/preview", preview_form(page, 1, "replay"))
    assert status == 200 and "Dies betrifft 3 Anträge." in preview
    confirm = form(preview, "dead-confirm-form")
    assert confirm.action == "/ui/dead/replay" and confirm.fields["expected"] == "3"

    # Meanwhile one more fails the same way: the action acts on the filter, and says so.
    ids.append(await submitted(running, "portal", "B-late", ApplicationState.DEAD))
    running.hub.connectors["fachverfahren"].broken = False  # type: ignore[attr-defined]
    assert confirm.fields.get("error_group")  # the group's text travels in the form's body only
    async with operator.http.post(
        operator.url + confirm.action,
        data={**confirm.fields, "reason": "Schnittstelle repariert"},
        allow_redirects=False,
    ) as done:
        # The page it leads back to is addressed without the error text (proxies log addresses).
        assert done.status == 303 and "error_group" not in done.headers["Location"]
    status, result = await operator.get(done.headers["Location"])
    assert status == 200
    assert "4 Anträge werden erneut ausgeführt. (Die Vorschau zählte 3 Anträge" in result
    for app_id in ids:
        assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    # The other target's dead letters were not part of the group.
    assert await running.journal.count_replayable(ApplicationFilter(state=ApplicationState.DEAD)) == 2

    [row] = await running.journal.operator_actions(Action.REPLAYED)
    assert (row.operator, row.reason, row.count) == ("Otto Operator", "Schnittstelle repariert", 4)
    assert "target=fachverfahren" in row.subject and SURNAME not in row.subject
    replayed = [e for e in await running.journal.events(ids[0]) if e.type == "operator.replayed"]
    assert replayed[0].data["operator"] == "Otto Operator"
    # The notice is shown once.
    _, again = await operator.get("/ui/dead?target=fachverfahren")
    assert "erneut ausgeführt" not in again


async def test_the_admin_api_replays_one_targets_dead_steps_like_the_console(running: RunningHub) -> None:
    ids = await dead_in_both(running)
    running.hub.connectors["fachverfahren"].broken = False  # type: ignore[attr-defined]
    operator = {"Authorization": "Bearer o-secret-2"}
    status, counted = await running.post(
        "/api/v1/replay", json={"target": "fachverfahren", "dry_run": True}, headers=operator
    )
    assert status == 200 and counted["count"] == 3
    status, done = await running.post(
        "/api/v1/replay",
        json={"target": "fachverfahren", "error_code": "", "reason": "repariert"},
        headers=operator,
    )
    assert status == 200 and sorted(done["replayed"]) == sorted(ids)
    for app_id in ids:
        assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    # The other target's dead letters stay dead.
    assert await running.journal.count_replayable(ApplicationFilter(state=ApplicationState.DEAD)) == 2
    [row] = await running.journal.operator_actions(Action.REPLAYED)
    assert row.operator == "Otto Operator" and "target=fachverfahren" in row.subject


async def test_the_admin_api_abandons_in_bulk_for_admins_only(running: RunningHub) -> None:
    await dead_in_both(running)
    body = {"target": "post", "reason": "an falsche Adresse geschickt"}
    status, _ = await running.post(
        "/api/v1/abandon", json=body, headers={"Authorization": "Bearer o-secret-2"}
    )
    assert status == 403
    admin = {"Authorization": "Bearer a-secret-3"}
    status, counted = await running.post(
        "/api/v1/abandon", json={"target": "post", "dry_run": True}, headers=admin
    )
    assert status == 200 and counted["count"] == 2
    status, refused = await running.post("/api/v1/abandon", json={"target": "post"}, headers=admin)
    assert status == 400 and "reason" in refused["error"]
    status, done = await running.post("/api/v1/abandon", json=body, headers=admin)
    assert status == 200 and done["count"] == 2
    for app_id in done["abandoned"]:
        assert (await running.journal.get_summary(app_id)).state == ApplicationState.ABANDONED
    # The other target's dead letters are untouched.
    assert await running.journal.count_replayable(ApplicationFilter(state=ApplicationState.DEAD)) == 3
    [row] = await running.journal.operator_actions(Action.ABANDONED)
    assert (row.operator, row.count) == ("Anna Admin", 2)


async def test_bulk_replay_of_one_target_leaves_the_applications_other_dead_steps(
    running: RunningHub, operator: ConsoleClient
) -> None:
    ids = await dead_in_both(running, fachverfahren=2, post=0)
    _, page = await operator.get("/ui/dead")
    fields = preview_form(page, 1, "replay")
    fields["target"] = "post"  # no dead step there: nothing is selected
    _, preview = await operator.post("/ui/dead/preview", fields)
    assert "Dies betrifft 0 Anträge." in preview and 'id="dead-confirm-form"' not in preview
    tasks = await running.journal.tasks(ids[0])
    assert [t.state for t in tasks if t.target == "fachverfahren"] == [TaskState.DEAD]


async def test_bulk_abandon_needs_an_admin_and_a_reason(running: RunningHub, operator: ConsoleClient) -> None:
    await dead_in_both(running, fachverfahren=1, post=2)
    _, page = await operator.get("/ui/dead?target=post")
    assert 'value="abandon"' not in page  # operators are not offered it
    fields = {"target": "post", "error_code": "Permanent", "expected": "2", "reason": "Brief veraltet"}
    status, body = await operator.post("/ui/dead/abandon", fields)
    assert status == 403 and "admin" in body
    status, _ = await operator.post("/ui/dead/preview", {"action": "abandon", "target": "post"})
    assert status == 403

    async with ConsoleClient(running.url) as admin:
        await admin.login_with_token("a-secret-3")
        _, page = await admin.get("/ui/dead?target=post")
        _, preview = await admin.post("/ui/dead/preview", preview_form(page, 1, "abandon"))
        assert "Dies betrifft 2 Anträge." in preview
        confirm = form(preview, "dead-confirm-form")
        status, refused = await admin.post(confirm.action, {**confirm.fields, "reason": "   "})
        assert status == 422 and "Bitte eine Begründung angeben" in refused
        assert await running.journal.count_dead(ApplicationFilter(target="post")) == 2
        status, done = await admin.post(confirm.action, {**confirm.fields, "reason": "Brief veraltet"})
        assert status == 200 and "2 Anträge aufgegeben." in done

    assert await running.journal.count_dead(ApplicationFilter(target="post")) == 0
    assert (
        len(await running.journal.list_applications(ApplicationFilter(state=ApplicationState.ABANDONED))) == 2
    )
    [row] = await running.journal.operator_actions(Action.ABANDONED)
    assert (row.operator, row.reason, row.count) == ("Anna Admin", "Brief veraltet", 2)
    # The Fachverfahren's dead letter was not in the selection.
    assert await running.journal.count_dead(ApplicationFilter(target="fachverfahren")) == 1


async def test_a_post_without_csrf_token_changes_nothing(
    running: RunningHub, operator: ConsoleClient
) -> None:
    await dead_in_both(running, fachverfahren=2, post=0)
    running.hub.connectors["fachverfahren"].broken = False  # type: ignore[attr-defined]
    fields = {"target": "fachverfahren", "reason": "repariert", "expected": "2"}
    status, body = await operator.post("/ui/dead/replay", fields, csrf=False)
    assert status == 403 and "CSRF" in body
    status, _ = await operator.post("/ui/connectors/fachverfahren/pause", {"reason": "Wartung"}, csrf=False)
    assert status == 403
    assert await running.journal.count_dead(ApplicationFilter(target="fachverfahren")) == 2
    assert await running.journal.operator_actions() == []
    assert (await running.journal.paused_targets()) == {}


async def test_viewer_sees_error_codes_never_error_texts_nor_actions(running: RunningHub) -> None:
    await dead_in_both(running, fachverfahren=2, post=1)
    async with ConsoleClient(running.url) as viewer:
        await viewer.login_with_token("v-secret-1")
        status, page = await viewer.get("/ui/dead")
        assert status == 200
        assert group_rows(page) == {("fachverfahren", "Permanent"): 2, ("post", "Permanent"): 1}
        for secret in (SURNAME, "Datensatz", "Aktenzeichen is mandatory"):
            assert secret not in page
        assert "/ui/dead/preview" not in page
        assert 'href="/ui/audit"' not in page  # the navigation offers what the role may open
        # A text filter a viewer guesses is ignored: it cannot probe for texts it may not see.
        _, guessed = await viewer.get("/ui/dead", params={"error_group": "Mustermann"})
        assert group_rows(guessed) == group_rows(page)
        status, _ = await viewer.post("/ui/dead/preview", {"action": "replay", "target": "post"})
        assert status == 403
        status, _ = await viewer.post("/ui/dead/replay", {"target": "post", "reason": "x"})
        assert status == 403
        status, _ = await viewer.get("/ui/audit")
        assert status == 403
    assert await running.journal.operator_actions() == []


async def test_check_on_demand_shows_the_outcome(running: RunningHub, operator: ConsoleClient) -> None:
    status, page = await operator.get("/ui/connectors")
    assert status == 200 and 'data-connector="fachverfahren"' in page
    # htmx asks for the fragment only.
    status, fragment = await operator.post(
        "/ui/connectors/fachverfahren/check", headers={"HX-Request": "true"}
    )
    assert status == 200 and "<html" not in fragment
    assert 'data-ok="false"' in fragment and "Anmeldung abgelehnt (HTTP 401)" in fragment
    running.hub.connectors["fachverfahren"].broken = False  # type: ignore[attr-defined]
    # Without JavaScript the page comes back with the outcome at the connector.
    status, full = await operator.post("/ui/connectors/fachverfahren/check")
    assert status == 200 and "<html" in full and "Fachverfahren antwortet, Version 7.2" in full
    status, _ = await operator.post("/ui/connectors/nirgends/check")
    assert status == 404


async def test_pause_and_resume_change_the_targets(running: RunningHub, operator: ConsoleClient) -> None:
    status, refused = await operator.post("/ui/connectors/post/pause", {"reason": "  "})
    assert status == 422 and "Begründung" in refused
    assert await paused(running) == {}

    status, page = await operator.post("/ui/connectors/post/pause", {"reason": "Wartung der Poststelle"})
    assert status == 200 and "Ziel post ist pausiert." in page
    assert await paused(running) == {"post": ("Otto Operator", "Wartung der Poststelle")}
    assert "Wartung der Poststelle" in page

    async with ConsoleClient(running.url) as viewer:
        await viewer.login_with_token("v-secret-1")
        _, seen = await viewer.get("/ui/connectors")
        assert "pausiert" in seen and "Otto Operator" in seen and "Wartung der Poststelle" not in seen
        assert "/resume" not in seen and "/check" not in seen
        status, _ = await viewer.post("/ui/connectors/post/resume")
        assert status == 403
    assert "post" in await paused(running)

    status, page = await operator.post("/ui/connectors/post/resume")
    assert status == 200 and "Ziel post läuft wieder." in page
    assert await paused(running) == {}


async def paused(running: RunningHub) -> dict[str, tuple[str, str]]:
    return {
        t.target: (t.paused.operator, t.paused.reason)
        for t in await running.hub.operations.targets()
        if t.paused is not None
    }


async def test_audit_page_filters_and_exports(running: RunningHub, operator: ConsoleClient) -> None:
    await operator.post("/ui/connectors/post/pause", {"reason": '=HYPERLINK("x"); Wartung'})
    await operator.post("/ui/connectors/post/resume")
    async with ConsoleClient(running.url) as admin:
        await admin.login_with_token("a-secret-3")
        await admin.post("/ui/connectors/fachverfahren/pause", {"reason": "Umzug"})

    status, page = await operator.get("/ui/audit")
    assert status == 200 and page.count('data-action="') == 3
    assert '<a href="/ui/audit" aria-current="page">Protokoll</a>' in page
    _, paused_only = await operator.get("/ui/audit", params={"action": "paused"})
    assert paused_only.count('data-action="paused"') == 2 and 'data-action="resumed"' not in paused_only
    _, by_admin = await operator.get("/ui/audit", params={"operator": "Anna Admin"})
    assert by_admin.count('data-action="') == 1 and "Umzug" in by_admin
    _, long_ago = await operator.get("/ui/audit", params={"from": "2020-01-01", "to": "2020-01-31"})
    assert 'id="audit-empty"' in long_ago

    async with operator.http.get(
        operator.url + "/ui/audit/export.csv", params={"action": "paused"}
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert "attachment" in response.headers["Content-Disposition"]
        raw = await response.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:4] == ["Zeitpunkt", "Person", "Aktion", "Betreff"]
    assert [(r[1], r[2], r[3], r[5]) for r in rows[1:]] == [
        ("Anna Admin", "Ziel pausiert", "fachverfahren", "Umzug"),
        ("Otto Operator", "Ziel pausiert", "post", '\'=HYPERLINK("x"); Wartung'),
    ]

    status, lines = await operator.get("/ui/audit/export.jsonl", params={"operator": "Otto Operator"})
    assert status == 200
    exported = [json.loads(line) for line in lines.splitlines()]
    assert [(r["action"], r["subject"]) for r in exported] == [("resumed", "post"), ("paused", "post")]

    async with ConsoleClient(running.url) as viewer:
        await viewer.login_with_token("v-secret-1")
        status, _ = await viewer.get("/ui/audit/export.csv")
        assert status == 403
