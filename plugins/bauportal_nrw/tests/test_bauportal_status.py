"""A Fachverfahren's answer to the portal: ``statusFuerAntragsportal.1170`` over XTA, once per answer."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from bauportal_helpers import (
    HUB_OPTIONS,
    PORTAL,
    ROUTES,
    StartEnaio,
    StartXta,
    Xta,
    authority,
    bauantrag,
    hub_connectors,
    send,
    xta_settings,
)
from hub_bauportal_nrw import BauportalNrwAnswers
from hub_bauportal_nrw.xbau import STATUS_ANTRAGSPORTAL, STATUS_BAUPORTAL_LIST
from lxml import etree
from test_bauportal_answers import Journal, context, make_source
from test_bauportal_schematron import valid_xbau

from hub import (
    Answer,
    AnswerStatus,
    Application,
    ApplicationState,
    Permanent,
    Receipt,
    ReceiptKind,
)
from hub.blobs import BlobStore
from hub.journal import ApplicationFilter, SqliteJournal
from hub.testing.fakes import AnsweringSink
from hub.testing.harness import RunningHub

# Codes of "XBau Status Bauportal" are the operator's to take from XRepository; these stand for them.
CODES = {"in_progress": "B10", "action_required": "B20", "decided": "B90"}
FILE_NUMBER = "63/BA-2026-00007"


@pytest.fixture
def bauaufsicht(
    blobs: BlobStore,
    schema_dir: Path,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    held_journal: SqliteJournal,
) -> Any:
    async def build(xta: Xta, **settings: Any) -> tuple[Application, BauportalNrwAnswers]:
        """A building application taken in from the portal, and the answers notifier."""
        await send(http, xta, bauantrag())
        source = make_source(xta, context("bauportal", blobs, schema_dir, http, tmp_path, held_journal))
        journal = Journal()
        assert await source.poll(journal) == 1
        [intake] = journal.intakes.values()
        config = BauportalNrwAnswers.Config.model_validate(
            {
                "type": "bauportal-nrw-answers",
                "xta": xta_settings(xta.url),
                "authority": authority(),
                "status_codes": CODES,
                **settings,
            }
        )
        ctx = context("antworten", blobs, schema_dir, http, tmp_path, held_journal)
        app = intake.application.model_copy(update={"file_number": FILE_NUMBER})
        return app, BauportalNrwAnswers(config, ctx)

    return build


def status(
    app: Application, answer_status: AnswerStatus, answer_id: str, message: str | None = None
) -> Receipt:
    return Receipt(
        application_id=app.id,
        kind=ReceiptKind.STATUS,
        file_number=app.file_number,
        answer_id=answer_id,
        status=answer_status,
        case_number="UA-2026-17",
        message=message,
    )


def sent_1170(xta: Xta, schema_dir: Path) -> list[etree._Element]:
    """The 1170s sent, each checked against the XSD and the official Schematron."""
    return [
        valid_xbau(schema_dir, m.message.path.read_bytes())
        for m in xta.state.sent
        if m.metadata.message_type == STATUS_ANTRAGSPORTAL
    ]


async def test_answer_becomes_a_valid_1170_with_the_configured_code(
    start_xta: StartXta, bauaufsicht: Any, schema_dir: Path
) -> None:
    xta = await start_xta()
    app, answers = await bauaufsicht(xta)

    await answers.notify(
        app, status(app, AnswerStatus.ACTION_REQUIRED, "a-1", "Bitte den Lageplan <1:500> nachreichen.")
    )

    (root,) = sent_1170(xta, schema_dir)
    assert etree.QName(root).localname == STATUS_ANTRAGSPORTAL
    assert root.findtext("nachrichtenkopf.g2g/identifikation.nachricht/nachrichtentyp/code") == "1170"
    code = root.find("statusAntragsportal")
    assert code is not None and code.findtext("code") == "B20"
    assert (code.get("listURI"), code.get("listVersionID")) == (STATUS_BAUPORTAL_LIST, "3.0")
    assert root.findtext("bezug/vorgang") == FILE_NUMBER
    assert root.findtext("bezug/referenz")  # the portal's referenzAntragsservice, to find its case
    text = base64.b64decode(root.findtext("begruendung/text") or "").decode()
    assert text == "<p>Bitte den Lageplan &lt;1:500&gt; nachreichen.</p>"
    assert root.findtext("nachrichtenkopf.g2g/leser/kennung") == PORTAL.kennung  # the portal reads it


async def test_each_answer_goes_once_even_after_a_crash_before_its_confirmation(
    start_xta: StartXta, bauaufsicht: Any, schema_dir: Path
) -> None:
    xta = await start_xta()
    app, answers = await bauaufsicht(xta)
    first = status(app, AnswerStatus.IN_PROGRESS, "a-1")
    real_mark = answers.store.mark_sent

    async def crash(application_id: str, key: str) -> None:
        raise ConnectionError("the hub went down after the send")

    answers.store.mark_sent = crash  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await answers.notify(app, first)
    answers.store.mark_sent = real_mark  # type: ignore[method-assign]
    await answers.notify(app, first)  # the retry: the XTA server knows the id, so it had arrived
    await answers.notify(app, first)  # and a replay: nothing more
    await answers.notify(app, status(app, AnswerStatus.DECIDED, "a-2"))  # the next answer goes

    sent = sent_1170(xta, schema_dir)
    assert [r.findtext("statusAntragsportal/code") for r in sent] == ["B10", "B90"]
    uuids = [r.findtext("nachrichtenkopf.g2g/identifikation.nachricht/nachrichtenUUID") for r in sent]
    assert len(set(uuids)) == 2
    recorded = [a for a in await answers.store.all() if a.message_type.startswith(STATUS_ANTRAGSPORTAL)]
    assert [a.sent for a in recorded] == [True, True]
    assert [a.xta_message_id for a in recorded] == [
        m.metadata.message_id for m in xta.state.sent if m.metadata.message_type == STATUS_ANTRAGSPORTAL
    ]


async def test_status_without_a_code_sends_nothing_and_a_status_needs_its_answer_id(
    start_xta: StartXta, bauaufsicht: Any, schema_dir: Path
) -> None:
    xta = await start_xta()
    app, answers = await bauaufsicht(xta)

    await answers.notify(app, status(app, AnswerStatus.ACCEPTED, "a-0"))  # no code configured
    await answers.notify(app, status(app, AnswerStatus.FAILED, "a-9"))
    assert sent_1170(xta, schema_dir) == []
    with pytest.raises(Permanent, match="answer_id"):
        await answers.notify(
            app, status(app, AnswerStatus.DECIDED, "").model_copy(update={"answer_id": None})
        )
    assert sent_1170(xta, schema_dir) == [] and await answers.store.all() == []


async def test_through_a_hub_an_answer_of_the_fachverfahren_reaches_the_portal_as_1170_once(
    start_xta: StartXta,
    start_enaio: StartEnaio,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    hub_factory: Any,
) -> None:
    xta, enaio = await start_xta(), await start_enaio()
    await send(http, xta, bauantrag())
    connectors = hub_connectors(xta.url, enaio.url)
    connectors["antworten"]["status_codes"] = CODES
    connectors["fv"] = {"type": "test-answering", "answer_poll_seconds": 0.05}
    routes = [
        {
            **ROUTES[0],
            "to": ["efile", "fv"],
            "on_answer": {"update_akte": "efile", "notify": ["antworten"]},
        }
    ]
    running: RunningHub = await hub_factory(connectors, routes, schemas=str(schema_dir), **HUB_OPTIONS)
    await running.wait_for(lambda: len(xta.state.sent) >= 2, what="the 1120 and the 1121")
    (summary,) = await running.journal.list_applications(ApplicationFilter())
    assert await running.wait_for_state(summary.id) == ApplicationState.COMPLETED
    fv = running.hub.connectors["fv"]
    assert isinstance(fv, AnsweringSink)

    for _ in range(2):  # the Fachverfahren gives its answer twice (it missed our acknowledgement)
        fv.issue(
            Answer(
                answer_id="bau-17/2",
                reference=f"rec-{summary.id}",
                status=AnswerStatus.IN_PROGRESS,
                message="Die Unterlagen sind vollständig.",
            )
        )
        await running.wait_for(lambda: not fv.outbox, what="the answer taken")
        assert await running.wait_for_state(summary.id) == ApplicationState.COMPLETED

    (root,) = sent_1170(xta, schema_dir)
    assert root.findtext("statusAntragsportal/code") == "B10"
    app = await running.journal.get_application(summary.id)
    assert app is not None and root.findtext("bezug/vorgang") == app.file_number
    assert base64.b64decode(root.findtext("begruendung/text") or "") == (
        "<p>Die Unterlagen sind vollständig.</p>".encode()
    )
    assert [m.metadata.message_type for m in xta.state.sent] == [
        "prozessnachrichten.eingangsbestaetigung.1120",
        "prozessnachrichten.aktenzeichen.1121",
        STATUS_ANTRAGSPORTAL,
    ]
    assert fv.acknowledged == ["bau-17/2", "bau-17/2"]
