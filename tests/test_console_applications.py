"""The console's applications: search by any id, the application page, its files and actions.

Seen from a browser without JavaScript (`ConsoleClient`) on a hub that takes FormCycle submissions
and files them into the enaio simulator (the world of tests/test_e2e_enaio.py, its fixtures and
helpers). Pages are read as HTML (lxml) by the ids the page promises.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lxml.html
import pytest
from test_e2e_enaio import (  # noqa: F401 (fixtures)
    MAPPING,
    OPERATOR_TOKEN,
    StartHub,
    Submission,
    enaio,
    filed,
    jagdschein,
    start_hub,
    submit,
)
from test_e2e_enaio import Simulator as Enaio

from hub.console.applications import PAGE_SIZE, content_disposition
from hub.models import Application, ApplicationState, Event
from hub.testing.console import ConsoleClient
from hub.testing.harness import RunningHub, stop_hub

VIEWER_TOKEN = "v-" + secrets.token_hex(16)
ADMIN_TOKEN = "a-" + secrets.token_hex(16)
PEOPLE = [
    {"name": "leitstand", "token": "${CONSOLE_VIEWER_TOKEN}", "role": "viewer"},
    {"name": "chief", "token": "${CONSOLE_ADMIN_TOKEN}", "role": "admin"},
]
ENV = {"CONSOLE_VIEWER_TOKEN": VIEWER_TOKEN, "CONSOLE_ADMIN_TOKEN": ADMIN_TOKEN}
# What the applicant of `jagdschein()` and `bad_birth_date()` wrote that a viewer must never see.
PERSONAL = (
    "Jürgen",
    "Groß-Öztürk",
    "Gro%C3%9F",
    "Kaiserstraße",
    "53721",
    "Siegburg",
    "j.gross@example.org",
    "Jahresjagdschein",
    "Personalausweis",
    "Versicherungsnachweis",
    "Januar 1971",
)


@pytest.fixture
def api() -> str:
    """One enaio API is enough here: the console reads the journal, not enaio."""
    return "dms"


async def start(start_hub: StartHub, **kwargs: Any) -> RunningHub:  # noqa: F811
    """The FormCycle -> enaio hub with a viewer (leitstand) and an admin (chief) beside the operator."""
    return await start_hub(people=PEOPLE, env=ENV, **kwargs)


async def logged_in(hub: RunningHub, token: str) -> ConsoleClient:
    """A browser session logged in with `token`."""
    browser = ConsoleClient(hub.url)
    response = await browser.login_with_token(token)
    assert response.status == 200
    return browser


async def open_page(browser: ConsoleClient, path: str, **params: str) -> tuple[int, str, Any]:
    """GET a console page, following redirects: (status, final path, parsed HTML)."""
    async with browser.http.get(browser.url + path, params=params) as response:
        text = await response.text()
        await browser.remember_csrf(text)
        return response.status, urlsplit(str(response.url)).path, lxml.html.fromstring(text)


def rows(document: Any, table_id: str) -> list[list[str]]:
    """The body rows of the table with `table_id`, as cell texts."""
    return [
        [" ".join(cell.text_content().split()) for cell in row.xpath("./th|./td")]
        for row in document.xpath(f'//table[@id="{table_id}"]/tbody/tr')
    ]


def timeline(document: Any, event_type: str) -> list[list[str]]:
    """The timeline's rows of one event type."""
    return [
        [" ".join(cell.text_content().split()) for cell in row.xpath("./td")]
        for row in document.xpath(f'//table[@id="timeline-table"]/tbody/tr[@data-type="{event_type}"]')
    ]


async def settled(hub: RunningHub, submission: Submission, state: ApplicationState) -> str:
    """Submit, wait until the application reaches `state`; its id."""
    application_id = await submit(hub, submission)
    assert await hub.wait_for_state(application_id) == state
    return application_id


def bad_birth_date(vorgang_id: str) -> Submission:
    """A Jagdschein whose birth date the mapping cannot read: dead, with an error quoting it."""
    return jagdschein(vorgang_id, geburtsdatum="Januar 1971")


async def test_an_enaio_object_id_and_an_aktenzeichen_find_their_applications(
    start_hub: StartHub,  # noqa: F811
    enaio: Enaio,  # noqa: F811
) -> None:
    hub = await start(start_hub)
    first = await settled(hub, jagdschein("FC-2026-000101"), ApplicationState.COMPLETED)
    second = await settled(
        hub, jagdschein("FC-2026-000102", jagdschein_art="Dreijahresjagdschein"), ApplicationState.COMPLETED
    )
    vorgang, documents = await filed(enaio, first)
    (akte,) = await enaio.objects(type="Personenakte")
    aktenzeichen = akte["fields"]["Aktenzeichen"]

    async with await logged_in(hub, OPERATOR_TOKEN) as browser:
        # The Vorgang's id, or one of its documents' (the correlation lists several), names one
        # application: the search goes straight to its page.
        for object_id in (vorgang["id"], documents[2]["id"]):
            status, path, page = await open_page(browser, "/ui/applications", q=object_id)
            assert (status, path) == (200, f"/ui/applications/{first}")
            assert page.get_element_by_id("application-title").text_content().split() == ["Antrag", first]

        # The Akte and its Aktenzeichen are both applications': a list of both, newest first.
        for key in (akte["id"], aktenzeichen):
            status, path, page = await open_page(browser, "/ui/applications", q=key)
            assert (status, path) == (200, "/ui/applications")
            found = rows(page, "results")
            assert [row[0] for row in found] == [second, first]
            assert found[0][2:6] == ["jagdschein", "jagd-und-fischerei", "Abgeschlossen", aktenzeichen]

        # Filters narrow the search; the address is the bookmark of it.
        today = datetime.now().date()
        status, _, page = await open_page(
            browser, "/ui/applications", q=aktenzeichen, state="completed", **{"from": today.isoformat()}
        )
        assert [row[0] for row in rows(page, "results")] == [second, first]
        yesterday = (today - timedelta(days=1)).isoformat()
        status, _, page = await open_page(browser, "/ui/applications", q=aktenzeichen, to=yesterday)
        assert status == 200 and rows(page, "results") == []
        assert page.get_element_by_id("no-results").text_content() == "Keine Anträge gefunden."
        status, _, page = await open_page(browser, "/ui/applications", q=aktenzeichen, state="dead")
        assert rows(page, "results") == []

        # A filter that is no filter gets a German answer, not a list of everything.
        status, _, page = await open_page(browser, "/ui/applications", state="verschollen")
        assert status == 400
        assert page.get_element_by_id("search-error").text_content() == "Status: unbekannter Status."
        assert rows(page, "results") == []


async def test_the_timeline_shows_every_system_with_the_ids_it_gave(
    start_hub: StartHub,  # noqa: F811
    enaio: Enaio,  # noqa: F811
) -> None:
    hub = await start(start_hub)
    application_id = await settled(hub, jagdschein("FC-2026-000201"), ApplicationState.COMPLETED)
    vorgang, documents = await filed(enaio, application_id)
    (akte,) = await enaio.objects(type="Personenakte")

    async with await logged_in(hub, OPERATOR_TOKEN) as browser:
        status, _, page = await open_page(browser, f"/ui/applications/{application_id}")
    assert status == 200
    (received,) = timeline(page, "application.received")
    assert received[2] == "formcycle" and "formcycle FC-2026-000201" in received[3]
    (delivered,) = timeline(page, "delivery.completed")
    assert delivered[1] == "Zugestellt (Zustellen)" and delivered[2] == "enaio"
    ids = delivered[3]
    assert f"enaio.akte {akte['id']}" in ids and f"enaio.vorgang {vorgang['id']}" in ids
    assert f"enaio.documents {','.join(d['id'] for d in documents)}" in ids
    # In time order, from intake to completion.
    types = [row.get("data-type") for row in page.xpath('//table[@id="timeline-table"]/tbody/tr')]
    assert types[0] == "application.received" and types[-1] == "application.completed"
    assert types.index("record.mapped") < types.index("delivery.completed")
    # Every id in one place too, and the steps with their attempts.
    assert [row[1] for row in rows(page, "correlations") if row[0] == "enaio.akte"] == [akte["id"]]
    assert ["Zustellen", "enaio", "Erledigt", "1", "", ""] in rows(page, "tasks-table")


async def test_a_viewer_sees_no_personal_data_and_downloads_nothing(
    start_hub: StartHub,  # noqa: F811
    enaio: Enaio,  # noqa: F811
) -> None:
    hub = await start(start_hub)
    completed = await settled(hub, jagdschein("FC-2026-000301"), ApplicationState.COMPLETED)
    dead = await settled(hub, bad_birth_date("FC-2026-000302"), ApplicationState.DEAD)

    # What the viewer must not see is on the operator's pages (else this test would prove nothing).
    async with await logged_in(hub, OPERATOR_TOKEN) as operator:
        _, _, page = await open_page(operator, f"/ui/applications/{dead}")
        assert "Januar 1971" in page.get_element_by_id("application-error").text_content()
        _, _, page = await open_page(operator, f"/ui/applications/{completed}")
        assert "Personalausweis_Groß.pdf" in page.get_element_by_id("files-table").text_content()
        downloads = page.xpath('//a[@class="download"]/@href')
        assert len(downloads) == 4
        _, _, page = await open_page(operator, "/ui/applications", q="Groß-Öztürk")
        assert {row[0] for row in rows(page, "results")} == {completed, dead}

    async with await logged_in(hub, VIEWER_TOKEN) as viewer:
        seen = []
        for path, params in (
            ("/ui/applications", {}),
            ("/ui/applications", {"q": "FC-2026-000302", "state": "dead"}),
            (f"/ui/applications/{completed}", {}),
            (f"/ui/applications/{dead}", {}),
        ):
            async with viewer.http.get(viewer.url + path, params=params) as response:
                assert response.status == 200
                seen.append(await response.text())
        for text in seen:
            for value in PERSONAL:
                assert value not in text, value
        # Ids are no personal data: the viewer finds the application by them and sees them.
        (delivered,) = timeline(lxml.html.fromstring(seen[2]), "delivery.completed")
        assert "enaio.vorgang" in delivered[3]
        dead_page = lxml.html.fromstring(seen[3])
        # The error's code instead of its text; no files, no actions.
        assert dead_page.get_element_by_id("application-error").text_content() == "MappingError"
        assert ["Abbilden", "enaio", "Fehlgeschlagen", "1", "", "MappingError"] in rows(
            dead_page, "tasks-table"
        )
        assert dead_page.xpath('//table[@id="files-table"]') == []
        assert dead_page.xpath('//section[@id="actions"]') == []
        # Free text does not look into names for viewers.
        _, _, page = await open_page(viewer, "/ui/applications", q="Groß-Öztürk")
        assert rows(page, "results") == []
        # Files: refused, whichever address.
        for path in downloads:
            async with viewer.http.get(viewer.url + path) as response:
                assert response.status == 403
                assert b"%PDF" not in await response.read()


async def test_an_operator_downloads_the_files_as_stored_until_they_are_purged(
    start_hub: StartHub,  # noqa: F811
    enaio: Enaio,  # noqa: F811
) -> None:
    retention = {"scheduled": False, "policies": [{"name": "sofort", "days": 0}]}
    hub = await start(start_hub, settings={"retention": retention})
    submission = jagdschein("FC-2026-000401")
    application_id = await settled(hub, submission, ApplicationState.COMPLETED)
    vorgang, documents = await filed(enaio, application_id)
    rendition, _, _, original = documents

    async with await logged_in(hub, OPERATOR_TOKEN) as browser:
        _, _, page = await open_page(browser, f"/ui/applications/{application_id}")
        links = {
            row.get("data-file-id"): row.xpath(".//a/@href")[0]
            for row in page.xpath('//table[@id="files-table"]/tbody/tr')
        }
        assert list(links) == ["rendition", "attachment-1", "attachment-2", "original"]
        expected = {
            "rendition": (await enaio.content(rendition["id"]), "application/pdf"),
            "attachment-1": (submission.files["ausweis"][1], "application/pdf"),
            "attachment-2": (submission.files["nachweis"][1], "application/pdf"),
            "original": (await enaio.content(original["id"]), "application/json"),
        }
        for file_id, href in links.items():
            async with browser.http.get(browser.url + href) as response:
                assert response.status == 200
                assert await response.read() == expected[file_id][0]
                assert response.headers["Content-Type"] == expected[file_id][1]
                assert response.headers["Content-Disposition"].startswith("attachment; ")
                assert response.headers["Cache-Control"] == "no-store"
            async with browser.http.head(browser.url + href) as response:
                assert response.status == 200
                assert response.headers["Content-Length"] == str(len(expected[file_id][0]))
        async with browser.http.get(browser.url + links["attachment-1"]) as response:
            assert response.headers["Content-Disposition"] == (
                'attachment; filename="Personalausweis_Gro.pdf"; '
                "filename*=UTF-8''Personalausweis_Gro%C3%9F.pdf"
            )
        async with browser.http.get(
            browser.url + f"/ui/applications/{application_id}/files/attachment-9"
        ) as r:
            assert r.status == 404

        report = await hub.hub.operations.purge("test")
        assert report.applications == 1
        _, _, page = await open_page(browser, f"/ui/applications/{application_id}")
        files = page.get_element_by_id("files-table")
        assert files.xpath(".//a") == []
        assert [row[0] for row in rows(page, "files-table")] == ["gelöscht (Aufbewahrungsfrist)"] * 3
        for href in links.values():
            async with browser.http.get(browser.url + href) as response:
                assert response.status == 410
                assert await response.text() == "gelöscht (Aufbewahrungsfrist)"
        # The ids stay on the timeline after the purge.
        (delivered,) = timeline(page, "delivery.completed")
        assert f"enaio.vorgang {vorgang['id']}" in delivered[3]


async def test_replay_from_the_page_completes_a_dead_application_after_the_fix(
    start_hub: StartHub,  # noqa: F811
    enaio: Enaio,  # noqa: F811
    tmp_path: Path,
) -> None:
    good = MAPPING.read_text(encoding="utf-8")
    mapping = tmp_path / "jagd-und-fischerei.yaml"
    mapping.write_text(good.replace("{{ form.vorgang_id }}", "{{ form.vorgangsnummer }}"), "utf-8")
    hub = await start(start_hub, mapping=mapping, subdir="journal")
    application_id = await settled(hub, jagdschein("FC-2026-000501"), ApplicationState.DEAD)
    await stop_hub(hub)
    mapping.write_text(good, encoding="utf-8")  # the fix
    fixed = await start(start_hub, mapping=mapping, subdir="journal")
    page_path = f"/ui/applications/{application_id}"

    async with await logged_in(fixed, VIEWER_TOKEN) as viewer:
        status, _ = await viewer.post(f"{page_path}/replay", {"reason": "x"}, allow_redirects=False)
        assert status == 403
    async with await logged_in(fixed, OPERATOR_TOKEN) as browser:
        _, _, page = await open_page(browser, page_path)
        assert page.get_element_by_id("application-state").text_content() == "Fehlgeschlagen"
        assert page.xpath('//form[@id="abandon-form"]') == []  # an operator does not abandon
        status, _ = await browser.post(f"{page_path}/replay", {"reason": "Mapping korrigiert"}, csrf=False)
        assert status == 403  # no CSRF token, no replay
        assert (await fixed.journal.get_summary(application_id)).state == ApplicationState.DEAD

        async with browser.http.post(
            browser.url + f"{page_path}/replay",
            data={"reason": "Mapping korrigiert", "csrf_token": browser.csrf or ""},
            allow_redirects=False,
        ) as response:
            assert response.status == 303
            assert response.headers["Location"] == f"{page_path}?done=replayed"
        status, _, page = await open_page(browser, page_path, done="replayed")
        assert page.get_element_by_id("notice").text_content() == (
            "Die fehlgeschlagenen Schritte werden erneut versucht."
        )
        assert await fixed.wait_for_state(application_id) == ApplicationState.COMPLETED
        await filed(enaio, application_id)  # exactly one Vorgang, filed after the fix

        _, _, page = await open_page(browser, page_path)
        assert page.get_element_by_id("application-state").text_content() == "Abgeschlossen"
        (replayed,) = timeline(page, "operator.replayed")
        assert "von operations" in replayed[4] and "Grund: Mapping korrigiert" in replayed[4]
        (action,) = await fixed.journal.operator_actions(None, None, 10, 0)
        assert (action.operator, action.subject, action.reason) == (
            "operations",
            application_id,
            "Mapping korrigiert",
        )

        # Nothing left to replay: a German refusal, nothing changes.
        status, body = await browser.post(f"{page_path}/replay", {"reason": ""})
        assert status == 409
        refusal = lxml.html.fromstring(body).get_element_by_id("action-error").text_content()
        assert (
            refusal == "Dieser Antrag hat keinen fehlgeschlagenen Schritt, der erneut versucht werden könnte."
        )
        assert len(await fixed.journal.operator_actions(None, None, 10, 0)) == 1


async def test_abandon_needs_an_admin_and_a_reason(
    start_hub: StartHub,  # noqa: F811
    enaio: Enaio,  # noqa: F811
) -> None:
    hub = await start(start_hub)
    application_id = await settled(hub, bad_birth_date("FC-2026-000601"), ApplicationState.DEAD)
    page_path = f"/ui/applications/{application_id}"

    async with await logged_in(hub, OPERATOR_TOKEN) as operator:
        status, body = await operator.post(f"{page_path}/abandon", {"reason": "zurückgezogen"})
        assert status == 403 and "admin" in body
    async with await logged_in(hub, ADMIN_TOKEN) as admin:
        _, _, page = await open_page(admin, page_path)
        assert "required" in page.get_element_by_id("abandon-reason").attrib
        status, body = await admin.post(f"{page_path}/abandon", {"reason": "   "})
        assert status == 400
        problem = lxml.html.fromstring(body).get_element_by_id("action-error").text_content()
        assert problem == "Bitte einen Grund angeben: er steht im Protokoll und im Verlauf des Antrags."
        assert (await hub.journal.get_summary(application_id)).state == ApplicationState.DEAD
        assert await hub.journal.operator_actions(None, None, 10, 0) == []

        status, body = await admin.post(f"{page_path}/abandon", {"reason": "Antrag zurückgezogen"})
        assert status == 200  # after the redirect to the page
        page = lxml.html.fromstring(body)
        assert page.get_element_by_id("notice").text_content().startswith("Der Antrag ist aufgegeben")
        assert page.get_element_by_id("application-state").text_content() == "Aufgegeben"
        (abandoned,) = timeline(page, "operator.abandoned")
        assert "von chief" in abandoned[4] and "Grund: Antrag zurückgezogen" in abandoned[4]
        assert (await hub.journal.get_summary(application_id)).state == ApplicationState.ABANDONED
        assert page.xpath('//form[@id="abandon-form"]') == []

    async with await logged_in(hub, VIEWER_TOKEN) as viewer:
        _, _, page = await open_page(viewer, page_path)
        (abandoned,) = timeline(page, "operator.abandoned")
        assert "von chief" in abandoned[4] and "zurückgezogen" not in abandoned[4]


async def test_an_unknown_application_is_a_german_404(
    start_hub: StartHub,  # noqa: F811
    enaio: Enaio,  # noqa: F811
) -> None:
    hub = await start(start_hub)
    async with await logged_in(hub, ADMIN_TOKEN) as admin:
        status, _, page = await open_page(admin, "/ui/applications/app_nope")
        assert status == 404 and "gibt es nicht" in page.get_element_by_id("action-error").text_content()
        status, _ = await admin.post("/ui/applications/app_nope/replay", {})
        assert status == 404
        status, _ = await admin.post("/ui/applications/app_nope/abandon", {"reason": "weg"})
        assert status == 404


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("Bescheid.pdf", "attachment; filename=\"Bescheid.pdf\"; filename*=UTF-8''Bescheid.pdf"),
        (
            '../../etc/pass"wd\r\n.pdf',
            "attachment; filename=\"_.._etc_pass_wd__.pdf\"; filename*=UTF-8''_.._etc_pass_wd__.pdf",
        ),
        (
            "Übersicht März.pdf",
            "attachment; filename=\"Ubersicht Marz.pdf\"; filename*=UTF-8''%C3%9Cbersicht%20M%C3%A4rz.pdf",
        ),
        ("", "attachment; filename=\"datei\"; filename*=UTF-8''datei"),
    ],
)
def test_a_file_name_cannot_steer_the_download(name: str, header: str) -> None:
    assert content_disposition(name) == header


async def test_results_come_in_pages_with_bookmarkable_addresses(hub_factory: Any) -> None:
    running: RunningHub = await hub_factory(
        {"out": {"type": "log"}},
        [],
        env=ENV,
        server={"listen": "127.0.0.1:0", "admin_tokens": PEOPLE[:1]},
    )
    ids = []
    for n in range(PAGE_SIZE + 1):
        app = Application(source="portal", external_id=f"P-{n:03d}", service="hundesteuer")
        app.received_at = app.received_at + timedelta(seconds=n)  # newest last
        await running.journal.intake(app, [Event(application_id=app.id, type="application.received")], [])
        ids.append(app.id)
    async with await logged_in(running, VIEWER_TOKEN) as viewer:
        status, _, page = await open_page(viewer, "/ui/applications", service="hundesteuer")
        assert status == 200
        assert [row[0] for row in rows(page, "results")] == ids[::-1][:PAGE_SIZE]
        assert page.xpath('//a[@id="page-prev"]') == []
        (following,) = page.xpath('//a[@id="page-next"]/@href')
        assert following == "/ui/applications?service=hundesteuer&page=2"
        status, _, page = await open_page(viewer, following)
        assert [row[0] for row in rows(page, "results")] == [ids[0]]
        assert page.xpath('//a[@id="page-next"]') == []
        assert page.xpath('//a[@id="page-prev"]/@href') == ["/ui/applications?service=hundesteuer&page=1"]
