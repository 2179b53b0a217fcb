"""The source's refusals and the answers' once-only sending, without a hub: source → intake → notifier."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from bauportal_helpers import (
    AUTHORITY_XTA,
    PORTAL,
    PORTAL_XTA,
    StartXta,
    Xta,
    antrag_metadata,
    authority,
    bauantrag,
    send,
    xta_settings,
)
from hub_bauportal_nrw import BauportalNrwAnswers, BauportalNrwSource, ReplyTo
from hub_bauportal_nrw.samples import enqueue_message, sample_ruecknahme
from hub_bauportal_nrw.xbau import RUECKNAHME, RUECKWEISUNG, XBAUK, load_schemas, parse_bytes
from hub_xta.simulator import enqueue

from hub import (
    Application,
    ConnectorContext,
    HeldMessages,
    HeldState,
    Intake,
    IntakeOutcome,
    Permanent,
    Receipt,
    ReceiptKind,
)
from hub.blobs import BlobStore
from hub.journal import SqliteJournal


class Journal:
    """An intake function like the core's: idempotent on (source, external_id)."""

    def __init__(self) -> None:
        self.intakes: dict[str, Intake] = {}

    async def __call__(self, intake: Intake) -> IntakeOutcome:
        key = intake.application.external_id
        duplicate = key in self.intakes
        self.intakes.setdefault(key, intake)
        return IntakeOutcome(self.intakes[key].application.id, duplicate)


def context(
    name: str,
    blobs: BlobStore,
    schema_dir: Path,
    http: aiohttp.ClientSession,
    tmp: Path,
    journal: SqliteJournal,
) -> Any:
    return ConnectorContext(
        name=name,
        blobs=blobs,
        schemas=schema_dir,
        data_dir=tmp,
        _http=lambda: http,
        _held=HeldMessages(journal, name),
    )


def make_source(xta: Xta, ctx: ConnectorContext, **settings: Any) -> BauportalNrwSource:
    config = BauportalNrwSource.Config.model_validate(
        {"type": "bauportal-nrw", "xta": xta_settings(xta.url), "authority": authority(), **settings}
    )
    return BauportalNrwSource(config, ctx)


def make_answers(xta: Xta, ctx: ConnectorContext) -> BauportalNrwAnswers:
    config = BauportalNrwAnswers.Config.model_validate(
        {"type": "bauportal-nrw-answers", "xta": xta_settings(xta.url), "authority": authority()}
    )
    return BauportalNrwAnswers(config, ctx)


@pytest.fixture
def setup(
    blobs: BlobStore,
    schema_dir: Path,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    held_journal: SqliteJournal,
) -> Any:
    def build(xta: Xta) -> tuple[BauportalNrwSource, BauportalNrwAnswers]:
        source = make_source(xta, context("bauportal", blobs, schema_dir, http, tmp_path, held_journal))
        answers = make_answers(xta, context("antworten", blobs, schema_dir, http, tmp_path, held_journal))
        return source, answers

    return build


async def test_answers_go_once_even_after_a_crash_before_their_confirmation(
    start_xta: StartXta, http: aiohttp.ClientSession, setup: Any, schema_dir: Path
) -> None:
    xta = await start_xta()
    plan = bauantrag()
    await send(http, xta, plan)
    source, answers = setup(xta)
    journal = Journal()
    assert await source.poll(journal) == 1
    [intake] = journal.intakes.values()
    app = intake.application
    assert intake.rejection is None
    receipt = Receipt(application_id=app.id, kind=ReceiptKind.RECEIVED, file_number="63/BA-2026-00007")

    # The first attempt sends the 1120, then "crashes" before it records the send.
    real_mark = answers.store.mark_sent

    async def crash(application_id: str, message_type: str) -> None:
        raise ConnectionError("the hub went down after the send")

    answers.store.mark_sent = crash  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await answers.notify(app, receipt)
    assert [m.metadata.message_type for m in xta.state.sent] == [
        "prozessnachrichten.eingangsbestaetigung.1120"
    ]

    # The retry: the same 1120 under the same XTA id is refused as taken (it had arrived), then the 1121.
    answers.store.mark_sent = real_mark  # type: ignore[method-assign]
    await answers.notify(app, receipt)
    await answers.notify(app, receipt)  # a third time: nothing more
    types = [m.metadata.message_type for m in xta.state.sent]
    assert types == ["prozessnachrichten.eingangsbestaetigung.1120", "prozessnachrichten.aktenzeichen.1121"]
    recorded = await answers.store.all()
    assert [(a.message_type, a.sent) for a in recorded] == [
        ("prozessnachrichten.eingangsbestaetigung.1120", True),
        ("prozessnachrichten.aktenzeichen.1121", True),
    ]
    assert [a.xta_message_id for a in recorded] == [m.metadata.message_id for m in xta.state.sent]
    aktenzeichen = parse_bytes(xta.state.sent[1].message.path.read_bytes(), limit=1_000_000)
    assert load_schemas(schema_dir).errors(aktenzeichen) == []
    assert aktenzeichen.findtext("bezug/vorgang") == "63/BA-2026-00007"
    assert (await answers.diagnostics())["answers"] == {"prepared": 2, "sent": 2}


async def test_not_well_formed_message_is_refused_with_the_transport_as_reference(
    start_xta: StartXta, http: aiohttp.ClientSession, setup: Any, schema_dir: Path
) -> None:
    xta = await start_xta()
    garbage = b"<baugenehmigung.antrag.0200><kaputt></baugenehmigung.antrag.0200>"
    queued = await enqueue(http, xta.url, AUTHORITY_XTA, metadata=antrag_metadata(), message=garbage)
    source, answers = setup(xta)
    journal = Journal()
    assert await source.poll(journal) == 1
    [intake] = journal.intakes.values()
    assert intake.rejection is not None and intake.rejection.code == "xml"
    app = intake.application
    assert app.external_id == queued["message_id"]
    reply = ReplyTo.from_correlations(app.correlations)
    assert reply.portal.kennung == PORTAL_XTA and reply.rejection == "xml"

    rejected = Receipt(application_id=app.id, kind=ReceiptKind.REJECTED, reason=intake.rejection.reason)
    await answers.notify(app, rejected)
    [sent] = xta.state.sent
    root = parse_bytes(sent.message.path.read_bytes(), limit=1_000_000)
    assert load_schemas(schema_dir).errors(root) == []
    assert root.findtext("nachrichtenkopf.g2g/leser/kennung") == PORTAL_XTA
    assert base64.b64decode(root.findtext("rueckweisungDaten/nachricht") or "") == garbage
    assert [c.message_id for c in xta.state.closed] == [queued["message_id"]]


async def test_missing_anlage_is_refused_and_other_messages_stay(
    start_xta: StartXta, http: aiohttp.ClientSession, setup: Any, schema_dir: Path
) -> None:
    xta = await start_xta()
    plan = bauantrag()
    del plan.files["bauzeichnungen.pdf"]  # described in the message, not transported
    await send(http, xta, plan)
    other = await enqueue(
        http, xta.url, AUTHORITY_XTA, metadata=antrag_metadata(message_type="anderes.9999"), message=b"<x/>"
    )
    source, answers = setup(xta)
    journal = Journal()
    assert await source.poll(journal) == 1
    [intake] = journal.intakes.values()
    assert intake.rejection is not None and intake.rejection.code == "anlagen"
    assert "Bauzeichnungen" in intake.rejection.reason
    assert list(xta.state.mailbox(AUTHORITY_XTA)) == [other["message_id"]]  # not ours: left

    app = intake.application
    await answers.notify(
        app, Receipt(application_id=app.id, kind=ReceiptKind.REJECTED, reason=intake.rejection.reason)
    )
    [sent] = xta.state.sent
    root = parse_bytes(sent.message.path.read_bytes(), limit=1_000_000)
    assert root.findtext("rueckweisungDaten/rueckweisungsgrund/grund/code") == "A001"
    assert root.findtext("nachrichtenkopf.g2g/leser/kennung") == PORTAL.kennung


async def test_answers_refuse_applications_of_other_sources(start_xta: StartXta, setup: Any) -> None:
    xta = await start_xta()
    _, answers = setup(xta)
    app = Application(source="formcycle", external_id="1", service="bauantrag")
    with pytest.raises(Permanent, match=r"Bauportal\.NRW"):
        await answers.notify(app, Receipt(application_id=app.id, kind=ReceiptKind.RECEIVED))


async def test_check(start_xta: StartXta, setup: Any) -> None:
    xta = await start_xta(accounts=[AUTHORITY_XTA])
    source, answers = setup(xta)
    assert (await source.check()).ok and (await answers.check()).ok
    xta.state.locked.add(AUTHORITY_XTA)
    assert not (await source.check()).ok
    source.context.schemas = None
    result = await make_source(xta, source.context).check()
    assert not result.ok and "schema directory" in result.message


async def test_another_xbau_type_gets_one_1100_even_after_a_crash_before_its_confirmation(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    setup: Any,
    schema_dir: Path,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta()
    xml = sample_ruecknahme(bauantrag().antrag)
    withdrawal = await enqueue_message(
        http, xta.url, AUTHORITY_XTA, xml, author=PORTAL_XTA, message_type=RUECKNAHME, payload_schema=XBAUK
    )
    source, answers = setup(xta)
    journal = Journal()
    assert await source.poll(journal) == 1
    [intake] = journal.intakes.values()
    assert intake.rejection is not None and intake.rejection.code == "unsupported_message_type"
    [held] = (await held_journal.held_lookup("bauportal", [withdrawal])).values()
    assert held.state == HeldState.REJECTED and held.reason_code == "unsupported_message_type"
    assert [c.message_id for c in xta.state.closed] == [withdrawal]

    app = intake.application
    receipt = Receipt(application_id=app.id, kind=ReceiptKind.REJECTED, reason=intake.rejection.reason)
    real_mark = answers.store.mark_sent

    async def crash(application_id: str, message_type: str) -> None:
        raise ConnectionError("the hub went down after the send")

    answers.store.mark_sent = crash  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await answers.notify(app, receipt)
    answers.store.mark_sent = real_mark  # type: ignore[method-assign]
    await answers.notify(app, receipt)  # the retry: the server had it already
    await answers.notify(app, receipt)
    [sent] = xta.state.sent
    assert sent.metadata.message_type == RUECKWEISUNG and sent.metadata.in_reply_to == (withdrawal,)
    root = parse_bytes(sent.message.path.read_bytes(), limit=1_000_000)
    assert load_schemas(schema_dir).errors(root) == []
    assert root.findtext("rueckweisungDaten/rueckweisungsgrund/grund/code") == "S001"
    assert base64.b64decode(root.findtext("rueckweisungDaten/nachricht") or "") == xml


async def test_a_1100_to_us_is_quarantined_not_answered_with_a_1100(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    setup: Any,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta()
    source, answers = setup(xta)
    # A 1100 as our own answers build it, now arriving from the portal.
    journal = Journal()
    refused = await enqueue(http, xta.url, AUTHORITY_XTA, metadata=antrag_metadata(), message=b"<kaputt")
    assert await source.poll(journal) == 1
    [intake] = journal.intakes.values()
    app = intake.application
    await answers.notify(app, Receipt(application_id=app.id, kind=ReceiptKind.REJECTED, reason="kaputt"))
    [ours] = xta.state.sent
    rueckweisung = await enqueue_message(
        http,
        xta.url,
        AUTHORITY_XTA,
        ours.message.path.read_bytes(),
        author=PORTAL_XTA,
        message_type=RUECKWEISUNG,
        payload_schema=XBAUK,
    )
    assert await source.poll(journal) == 0
    [held] = (await held_journal.held_lookup("bauportal", [rueckweisung])).values()
    assert held.state == HeldState.QUARANTINED and held.reason_code == "rueckweisung"
    assert len(xta.state.sent) == 1 and len(journal.intakes) == 1  # not answered, nothing taken in
    assert list(xta.state.mailbox(AUTHORITY_XTA)) == [rueckweisung]
    assert [c.message_id for c in xta.state.closed] == [refused["message_id"]]
