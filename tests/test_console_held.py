"""The console's held inbound messages (/ui/held), seen from a browser without JavaScript.

A real hub with a polled source whose upstream mailbox records what was closed (and can be down):
messages it could not take are listed, filtered and decided; viewers see no sender and no reason text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import lxml.html
import pytest

from hub import HeldMessages, HeldState, hookimpl
from hub.actions import Action
from hub.connectors import Connector
from hub.errors import Retryable
from hub.held import HeldMessage
from hub.testing.console import ConsoleClient, form
from hub.testing.fakes import JsonSource
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
SENDER = "vbe:bauportal Erika Mustermann"
FAULT = "Nachricht ist Ende-zu-Ende verschlüsselt (Erika Mustermann, Antrag 4711)"


class Mailbox(JsonSource):
    """A polled source whose upstream remembers what was closed; `down` makes it unreachable."""

    kind = "test-mailbox"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed: list[str] = []
        self.down = False

    async def close_upstream(self, message_id: str) -> None:
        if self.down:
            raise Retryable("XTA server down (HTTP 503)")
        self.closed.append(message_id)


class Plugin:
    @hookimpl
    def aktenhub_connector_types(self) -> Sequence[type[Connector[Any]]]:
        return [Mailbox]


@pytest.fixture
async def running(hub_factory: Any) -> RunningHub:
    connectors = {"xta": {"type": "test-mailbox"}, "post": {"type": "test-recording"}}
    routes = [{"name": "bau", "from": "xta", "to": ["post"]}]
    hub: RunningHub = await hub_factory(
        connectors, routes, env=TOKENS, server=SERVER, extra_plugins=(Plugin(),)
    )
    return hub


async def held_messages(running: RunningHub) -> dict[str, HeldMessage]:
    """Three held messages of the source "xta": m1 and m2 quarantined, m3 retrying."""
    register = HeldMessages(running.journal, "xta")
    return {
        "m1": await register.quarantine("m1", sender=SENDER, code="encrypted", reason=FAULT),
        "m2": await register.quarantine("m2", sender=SENDER, code="oversize", reason="2 GiB"),
        "m3": await register.fetch_failed("m3", sender=SENDER, code="fetch_failed", reason="HTTP 503"),
    }


@pytest.fixture
async def browser(running: RunningHub) -> AsyncIterator[ConsoleClient]:
    async with ConsoleClient(running.url) as client:
        yield client


def mailbox(running: RunningHub) -> Mailbox:
    source = running.hub.sources()["xta"]
    assert isinstance(source, Mailbox)
    return source


def rows(html: str) -> dict[str, str]:
    """The listed messages: message id -> state."""
    doc = lxml.html.fromstring(html)
    return {r.cssselect("td.ident")[0].text_content(): r.get("data-state") for r in doc.cssselect("tr.held")}


async def test_the_list_shows_what_needs_a_decision_and_filters(
    running: RunningHub, browser: ConsoleClient
) -> None:
    await held_messages(running)
    await browser.login_with_token("o-secret-2")
    status, html = await browser.get("/ui/held")
    assert status == 200
    assert rows(html) == {"m1": "quarantined", "m2": "quarantined"}  # the default: what waits for a person
    assert 'aria-current="page"' in html and "Zurückgehaltene Nachrichten" in html
    assert SENDER in html and FAULT in html and "Quarantäne" in html
    _, html = await browser.get("/ui/held?state=")
    assert set(rows(html)) == {"m1", "m2", "m3"}
    _, html = await browser.get("/ui/held?state=retrying&source=xta")
    assert rows(html) == {"m3": "retrying"} and "Wird erneut abgerufen" in html
    _, html = await browser.get("/ui/held?state=&source=other")
    assert rows(html) == {} and 'id="held-empty"' in html
    status, html = await browser.get("/ui/held?state=bogus")
    assert status == 400 and "Status: diesen Status gibt es nicht." in html


async def test_a_viewer_sees_no_sender_and_no_reason_text(
    running: RunningHub, browser: ConsoleClient
) -> None:
    await held_messages(running)
    await browser.login_with_token("v-secret-1")
    status, html = await browser.get("/ui/held?state=")
    assert status == 200 and set(rows(html)) == {"m1", "m2", "m3"}
    assert "encrypted" in html and "fetch_failed" in html  # the codes
    for personal in ("Mustermann", "2 GiB", "HTTP 503", "Absender"):
        assert personal not in html
    assert "/ui/held/" not in html  # no decisions offered
    # The admin API applies the same rule.
    status, body = await running.get(
        "/api/v1/held-messages",
        headers={"Authorization": "Bearer v-secret-1"},
        params={"state": "quarantined"},
    )
    assert status == 200
    assert {(h["sender"], h["reason"]) for h in body["held_messages"]} == {
        (None, "encrypted"),
        (None, "oversize"),
    }


async def test_an_operator_keeps_a_message_with_an_audit_row(
    running: RunningHub, browser: ConsoleClient
) -> None:
    held = await held_messages(running)
    await browser.login_with_token("o-secret-2")
    _, html = await browser.get("/ui/held")
    decide = form(html, f"held-{held['m1'].id}-decide")
    assert decide.action == f"/ui/held/{held['m1'].id}/keep" and 'data-action="close"' not in html
    status, html = await browser.post(decide.action, {**decide.fields, "reason": "Absender informiert"})
    assert status == 200 and "Nachricht m1 (xta) wird behalten" in html
    assert rows(html) == {"m2": "quarantined"}  # back to the filter it came from
    kept = await running.journal.held_get(held["m1"].id)
    assert (kept.state, kept.decided_by) == (HeldState.KEPT, "Otto Operator")
    assert mailbox(running).closed == []
    (row,) = await running.journal.operator_actions()
    assert (row.operator, row.action, row.subject, row.reason) == (
        "Otto Operator",
        Action.KEPT,
        f"held:{held['m1'].id}",
        "Absender informiert",
    )


async def test_close_needs_an_admin_and_reaches_the_source_once(
    running: RunningHub, browser: ConsoleClient
) -> None:
    held = await held_messages(running)
    path = f"/ui/held/{held['m2'].id}/close"
    await browser.login_with_token("o-secret-2")
    status, body = await browser.post(path, {"reason": "Spam"})
    assert status == 403 and "admin" in body
    assert (await running.journal.held_get(held["m2"].id)).state == HeldState.QUARANTINED

    async with ConsoleClient(running.url) as admin:
        await admin.login_with_token("a-secret-3")
        status, html = await admin.post(path, {"reason": "Spam", "state": "quarantined"})
        assert status == 200 and "Nachricht m2 (xta) ist geschlossen" in html
        assert mailbox(running).closed == ["m2"]
        closed = await running.journal.held_get(held["m2"].id)
        assert (closed.state, closed.decided_by) == (HeldState.CLOSED, "Anna Admin")
        # Keeping it afterwards is refused in German; nothing changes.
        status, html = await admin.post(f"/ui/held/{held['m2'].id}/keep")
        assert status == 409 and "ist bereits geschlossen" in html
        assert (await running.journal.held_get(held["m2"].id)) == closed
        status, body = await admin.post("/ui/held/424242/close")
        assert status == 404 and "Keine zurückgehaltene Nachricht" in body
    assert mailbox(running).closed == ["m2"]


async def test_an_upstream_failure_leaves_the_message_quarantined(
    running: RunningHub, browser: ConsoleClient
) -> None:
    held = await held_messages(running)
    mailbox(running).down = True
    await browser.login_with_token("a-secret-3")
    status, html = await browser.post(f"/ui/held/{held['m1'].id}/close", {"reason": "Spam"})
    assert status == 502
    assert "konnte im Postfach der Quelle xta nicht geschlossen werden; nichts wurde geändert" in html
    assert "XTA server down (HTTP 503)" in html
    assert await running.journal.held_get(held["m1"].id) == held["m1"]
    assert await running.journal.operator_actions() == []


async def test_a_decision_without_csrf_token_is_refused(running: RunningHub, browser: ConsoleClient) -> None:
    held = await held_messages(running)
    await browser.login_with_token("a-secret-3")
    for decision in ("keep", "close"):
        status, body = await browser.post(f"/ui/held/{held['m1'].id}/{decision}", csrf=False)
        assert status == 403 and "CSRF" in body
    assert await running.journal.held_get(held["m1"].id) == held["m1"]
    assert mailbox(running).closed == []


async def test_the_dashboard_counts_quarantined_messages(running: RunningHub, browser: ConsoleClient) -> None:
    await browser.login_with_token("v-secret-1")
    _, html = await browser.get("/ui/counters", headers={"HX-Request": "true"})
    card = lxml.html.fromstring(html).cssselect('[data-counter="quarantined"]')[0]
    assert card.cssselect(".figure")[0].text_content() == "0"
    await held_messages(running)
    _, html = await browser.get("/ui/counters", headers={"HX-Request": "true"})
    card = lxml.html.fromstring(html).cssselect('[data-counter="quarantined"]')[0]
    assert card.cssselect(".figure")[0].text_content() == "2"
    assert card.cssselect("a")[0].get("href") == "/ui/held?state=quarantined"
