"""Bauportal.NRW end to end: XTA simulator → hub → enaio simulator, answers back to the portal over XTA."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
from bauportal_helpers import (
    AUTHORITY,
    AUTHORITY_XTA,
    HUB_OPTIONS,
    PORTAL,
    PORTAL_XTA,
    ROUTES,
    Enaio,
    StartEnaio,
    StartXta,
    Xta,
    bauantrag,
    hub_connectors,
    send,
    sha256,
)
from hub_bauportal_nrw import BauportalNrwSource
from hub_bauportal_nrw.xbau import XBAU, XBAUK, load_schemas, parse_bytes
from hub_xta.simulator import StoredMessage
from lxml import etree

from hub import (
    Application,
    ApplicationState,
    Connector,
    Intake,
    IntakeFunc,
    IntakeOutcome,
    Retryable,
    hookimpl,
)
from hub.journal import ApplicationFilter
from hub.testing.harness import RunningHub

BN_G2G = "http://xoev.de/schemata/basisnachricht/g2g/1_1"


def _text(root: etree._Element, path: str) -> str:
    found = root.find(path, {"bn": BN_G2G})
    assert found is not None and found.text is not None, f"{path} missing"
    return found.text


def answer(xta: Xta, message: StoredMessage, schema_dir: Path) -> etree._Element:
    """A sent answer's XML, checked against the Kernmodul XSD."""
    root = parse_bytes(message.message.path.read_bytes(), limit=10_000_000)
    assert load_schemas(schema_dir).errors(root) == []
    assert etree.QName(root).namespace == XBAUK
    return root


async def only_application(running: RunningHub) -> Application:
    summaries = await running.journal.list_applications(ApplicationFilter())
    assert len(summaries) == 1, summaries
    app = await running.journal.get_application(summaries[0].id)
    assert app is not None
    return app  # type: ignore[no-any-return]


def assert_filed_once(enaio: Enaio, files: dict[str, bytes]) -> Any:
    """One Bauakte, one Vorgang, one Bauvorlage per Anlage plus rendition and original."""
    [akte] = enaio.of_type("Bauakte")
    [vorgang] = enaio.of_type("Bauantrag")
    assert vorgang.parent_id == akte.id
    documents = enaio.children(vorgang.id)
    assert len(enaio.of_type("Bauvorlage")) == len(documents) == len(files) + 2
    by_name = {d.content.file_name: d for d in documents if d.content is not None}
    for name, data in files.items():
        assert by_name[name].content is not None
        assert by_name[name].content.sha256 == sha256(data)  # type: ignore[union-attr]
    return akte, vorgang, documents


async def test_bauantrag_is_filed_answered_and_closed_once(
    start_xta: StartXta,
    start_enaio: StartEnaio,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    hub_factory: Any,
) -> None:
    xta, enaio = await start_xta(), await start_enaio()
    plan = bauantrag()
    message_id = await send(http, xta, plan)
    running: RunningHub = await hub_factory(
        hub_connectors(xta.url, enaio.url), ROUTES, schemas=str(schema_dir), **HUB_OPTIONS
    )
    await running.wait_for(lambda: len(xta.state.sent) >= 2, what="the 1120 and the 1121")
    app = await only_application(running)
    assert await running.wait_for_state(app.id) == ApplicationState.COMPLETED

    # taken in: structured data, the Anlagen as attachments with their Anlagenart, the original
    assert app.external_id == plan.antrag.identity.uuid
    assert app.applicant.family_name == "Groß" and app.applicant.given_name == "Jürgen"
    assert app.form["grundstueck"] == {
        "gemarkung": "Wolsdorf",
        "flur": "12",
        "flurstueck": "345/2",
        "anschrift": "Am Kreuzfeld 7, Siegburg",
    }
    assert app.form["bauvorhaben"]["bezeichnung"] == plan.antrag.bezeichnung  # type: ignore[index]
    assert [(a.name, a.field, a.sha256) for a in app.attachments] == [
        ("lageplan.pdf", "010", sha256(plan.files["lageplan.pdf"])),
        ("bauzeichnungen.pdf", "020", sha256(plan.files["bauzeichnungen.pdf"])),
        ("baubeschreibung.pdf", "030", sha256(plan.files["baubeschreibung.pdf"])),
    ]
    assert app.original is not None and app.original.sha256 == sha256(plan.xml)

    # filed: Bauakte by plot and Bauherr, Vorgang, one Bauvorlage per Anlage (+ rendition, original)
    akte, _, documents = assert_filed_once(enaio, plan.files)
    assert akte.fields["Gemarkung"] == "Wolsdorf" and akte.fields["Flurstueck"] == "345/2"
    assert akte.fields["Bauherr"] == "Jürgen Groß"
    assert akte.fields["Aktenzeichen"].startswith("63/BA-") and app.file_number == akte.fields["Aktenzeichen"]
    kinds = sorted(d.fields.get("Anlagenart", "") for d in documents)
    assert kinds == sorted(["Antrag", "Lageplan", "Bauzeichnungen", "Baubeschreibung", "XBau-Nachricht"])
    original = next(d for d in documents if d.fields.get("Anlagenart") == "XBau-Nachricht")
    assert original.content is not None and original.content.sha256 == sha256(plan.xml)

    # answered: 1120 and 1121 to the portal, valid, reader/author swapped, referring to the original
    assert [m.metadata.message_type for m in xta.state.sent] == [
        "prozessnachrichten.eingangsbestaetigung.1120",
        "prozessnachrichten.aktenzeichen.1121",
    ]
    for sent in xta.state.sent:
        meta = sent.metadata
        assert meta.reader.identifier == PORTAL_XTA and meta.in_reply_to == (message_id,)
        assert meta.payload_schema == XBAUK
        root = answer(xta, sent, schema_dir)
        assert _text(root, "nachrichtenkopf.g2g/leser/kennung") == PORTAL.kennung
        assert _text(root, "nachrichtenkopf.g2g/autor/kennung") == AUTHORITY.kennung
        assert _text(root, "bezug/referenz") == plan.antrag.referenz
        assert _text(root, "bezug/bezugNachricht/bn:nachrichtenUUID") == plan.antrag.identity.uuid
        assert _text(root, "bezug/bezugNachricht/bn:nachrichtentyp/code") == "0200"
        assert _text(root, "bezug/vorgang") == app.file_number
    eingang, aktenzeichen = (answer(xta, m, schema_dir) for m in xta.state.sent)
    assert _text(eingang, "nachrichtenkopf.g2g/identifikation.nachricht/nachrichtentyp/code") == "1120"
    assert _text(aktenzeichen, "nachrichtenkopf.g2g/identifikation.nachricht/nachrichtentyp/code") == "1121"

    # closed exactly once, after the intake
    assert [c.message_id for c in xta.state.closed] == [message_id]
    assert xta.state.mailbox(AUTHORITY_XTA) == {}

    # found by any id a system gave it: the XTA message ids and XBau UUIDs both ways, the e-file's ids
    sent_ids = [m.metadata.message_id for m in xta.state.sent]
    sent_uuids = [
        _text(answer(xta, m, schema_dir), "nachrichtenkopf.g2g/identifikation.nachricht/nachrichtenUUID")
        for m in xta.state.sent
    ]
    for any_id in [
        message_id,
        plan.antrag.identity.uuid,
        *sent_ids,
        *sent_uuids,
        str(akte.id),
        str(documents[0].id),
    ]:
        found = await running.journal.list_applications(ApplicationFilter(find=any_id))
        assert [a.id for a in found] == [app.id], any_id


class CrashingSource(BauportalNrwSource):
    """The source with a close step that fails once: the hub "dies" between intake and close."""

    kind = "bauportal-nrw-crashing"
    crashes: ClassVar[int] = 0

    async def poll(self, intake: IntakeFunc) -> int:
        async def crashing(submission: Intake) -> IntakeOutcome:
            outcome = await intake(submission)
            if CrashingSource.crashes == 0:
                CrashingSource.crashes += 1
                raise Retryable("the hub went down between the durable intake and the close")
            return outcome

        return await super().poll(crashing)


class CrashPlugin:
    """Registers the crashing source."""

    @hookimpl
    def aktenhub_connector_types(self) -> Sequence[type[Connector]]:
        return [CrashingSource]


async def test_crash_between_intake_and_close_files_once_and_closes_once(
    start_xta: StartXta,
    start_enaio: StartEnaio,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    hub_factory: Any,
) -> None:
    CrashingSource.crashes = 0
    xta, enaio = await start_xta(), await start_enaio()
    plan = bauantrag()
    message_id = await send(http, xta, plan)
    connectors = hub_connectors(xta.url, enaio.url, source_type="bauportal-nrw-crashing", poll_seconds=0.2)
    running: RunningHub = await hub_factory(
        connectors, ROUTES, schemas=str(schema_dir), extra_plugins=(CrashPlugin(),), **HUB_OPTIONS
    )
    await running.wait_for(lambda: xta.state.closed, what="the close after the second fetch")
    app = await only_application(running)
    assert await running.wait_for_state(app.id) == ApplicationState.COMPLETED
    await running.wait_for(lambda: len(xta.state.sent) >= 2, what="the answers")

    assert CrashingSource.crashes == 1
    assert_filed_once(enaio, plan.files)
    assert [c.message_id for c in xta.state.closed] == [message_id]
    assert len(xta.state.sent) == 2  # 1120 and 1121 once each
    received = [e for e in running.events if e.type == "application.received"]
    assert len(received) == 1


def broken(xml: bytes) -> bytes:
    """The message without its mandatory bauvorhaben: well-formed, invalid against the XSD."""
    root = etree.fromstring(xml)
    vorhaben = root.find(f"{{{XBAU}}}bauvorhaben")
    assert vorhaben is not None
    root.remove(vorhaben)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


async def test_schema_invalid_bauantrag_is_rejected_with_1100_and_nothing_filed(
    start_xta: StartXta,
    start_enaio: StartEnaio,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    hub_factory: Any,
) -> None:
    xta, enaio = await start_xta(), await start_enaio()
    plan = bauantrag()
    invalid = broken(plan.xml)
    message_id = await send(http, xta, plan, xml=invalid)
    running: RunningHub = await hub_factory(
        hub_connectors(xta.url, enaio.url), ROUTES, schemas=str(schema_dir), **HUB_OPTIONS
    )
    await running.wait_for(lambda: xta.state.sent, what="the 1100")
    app = await only_application(running)
    assert await running.wait_for_state(app.id) == ApplicationState.REJECTED
    summary = await running.journal.get_summary(app.id)
    assert summary is not None and "schemakonform" in (summary.error or "")

    [sent] = xta.state.sent
    assert sent.metadata.message_type == "prozessnachrichten.rueckweisung.G2G.1100"
    assert sent.metadata.reader.identifier == PORTAL_XTA and sent.metadata.in_reply_to == (message_id,)
    root = answer(xta, sent, schema_dir)
    assert _text(root, "nachrichtenkopf.g2g/leser/kennung") == PORTAL.kennung
    assert _text(root, "nachrichtenkopf.g2g/autor/kennung") == AUTHORITY.kennung
    assert _text(root, "rueckweisungDaten/idNachricht/bn:nachrichtenUUID") == plan.antrag.identity.uuid
    assert _text(root, "rueckweisungDaten/rueckweisungsgrund/grund/code") == "X001"
    findings = " ".join(t.text or "" for t in root.iter("fehlertext"))
    assert "bauvorhaben" in findings
    assert base64.b64decode(_text(root, "rueckweisungDaten/nachricht")) == invalid

    assert enaio.state.objects == {}  # nothing filed
    assert [c.message_id for c in xta.state.closed] == [message_id]
