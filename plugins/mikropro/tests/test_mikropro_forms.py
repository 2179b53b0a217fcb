"""End to end through a hub: the Bauaufsicht's own FormCycle form (Baubeginnanzeige) into enaio's Bauakte
and, as an XBau 2.6 anzeige.baubeginn.0900 over XTA, into the simulated Mikropro; Mikropro's 1121 (its
Aktenzeichen) and 1170s (status, decision with the Bescheid) come back through the hub's own XTA account
and update the Akte and reach the applicant, once each, the hub's Aktenzeichen unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from lxml import etree
from mikropro_helpers import (
    BN,
    FORMCYCLE_TOKEN,
    HUB_OPTIONS,
    HUB_XTA,
    KERNMODUL,
    MAPPINGS,
    MIKROPRO_XTA,
    Enaio,
    Mikropro,
    Xta,
    answers_told,
    enaio_section,
    mikropro_section,
    parsed,
)

from hub import AnswerStatus, ApplicationState
from hub.testing.fakes import RecordingNotifier
from hub.testing.harness import RunningHub

XBAU = "{http://www.xleitstelle.de/xbau/2/6}"
FORM = {
    "vorgang_id": "FC-2026-005117",
    "vorname": "Jürgen",
    "nachname": "Groß",
    "strasse": "Lindenallee",
    "hausnummer": "7",
    "plz": "53721",
    "ort": "Siegburg",
    "email": "j.gross@example.org",
    "aktenzeichen": "",  # genehmigungsfreigestellt: no Baugenehmigung to refer to
    "bauvorhaben": "Neubau eines Einfamilienhauses mit Garage",
    "gemarkung": "Wolsdorf",
    "flur": "12",
    "flurstueck": "345/2",
    "baubeginn": "2027-03-01",
    "fertigstellung": "2027-12",
    "pruefung_standsicherheit": "ja",
    "einwilligung": "ja",
}


async def start_hub(hub_factory: Any, xta: Xta, enaio: Enaio, **mikropro: Any) -> RunningHub:
    connectors = {
        "formcycle": {
            "type": "formcycle",
            "token": "${FORMCYCLE_TOKEN}",
            "id_field": "vorgang_id",
            "applicant_fields": {"given_name": "vorname", "family_name": "nachname"},
        },
        "enaio": enaio_section(enaio.url),
        "mikropro": mikropro_section(xta.url, **mikropro),
        "mailbox": {"type": "test-notifier"},
    }
    routes = [
        {
            "name": "baubeginnanzeige",
            "from": "formcycle",
            "map": str(MAPPINGS / "baubeginnanzeige.yaml"),
            "to": ["enaio", "mikropro"],
            "notify": ["mailbox"],
            "on_answer": {"update_akte": "enaio", "notify": ["mailbox"], "decision": "both"},
        }
    ]
    running: RunningHub = await hub_factory(connectors, routes, **HUB_OPTIONS)
    return running


async def submit(
    running: RunningHub, state: ApplicationState = ApplicationState.COMPLETED, **fields: str
) -> str:
    form = aiohttp.FormData({**FORM, **fields})
    form.add_field(
        "tragwerksplaner",
        b"%PDF-1.4 Erklaerung",
        filename="Erklärung Tragwerksplaner.pdf",
        content_type="application/pdf",
    )
    status, body = await running.post(
        "/intake/formcycle/baubeginnanzeige", data=form, headers={"X-Aktenhub-Token": FORMCYCLE_TOKEN}
    )
    assert status == 202, body
    app_id = str(body["application_id"])
    assert await running.wait_for_state(app_id) == state
    return app_id


async def test_a_baubeginnanzeige_reaches_mikropro_as_xbau_0900_and_its_answers_come_back_once(
    hub_factory: Any, xta: Xta, enaio: Enaio, start_mikropro: Callable[..., Awaitable[Mikropro]]
) -> None:
    mikropro = await start_mikropro(xta_url=xta.url)
    running = await start_hub(hub_factory, xta, enaio)
    app_id = await submit(running)
    app = await running.journal.get_application(app_id)
    assert app is not None and app.file_number is not None
    aktenzeichen = app.file_number

    # Mikropro got one 0900 from the hub's account, valid (the simulator validates) and with its Anlagen.
    (message,) = xta.sent_by(HUB_XTA)
    assert message.metadata.message_type == "anzeige.baubeginn.0900"
    assert message.metadata.reader.identifier == MIKROPRO_XTA
    root = parsed(message)
    assert root.find(f"{XBAU}bezug/{XBAU}ohneAktenzeichen/{XBAU}datumBaubeginnanzeige") is not None
    assert root.findtext(f"{XBAU}sachverhalt/{XBAU}baubeginn/{XBAU}datum") == "2027-03-01"
    names = root.xpath("//anhang/dateiname/text()")
    assert sorted(names) == sorted(a.filename for a in message.attachments) and len(names) == 3

    taken = await mikropro.control("receive", {})
    uuid = root.findtext("nachrichtenkopf.g2g/identifikation.nachricht/nachrichtenUUID")
    assert taken == {"opened": [uuid], "refused": []}
    await answers_told(running, app_id, 1)
    (case,) = (await mikropro.control("cases"))["cases"]
    case_number = case["case_number"]
    assert case_number == "63-BA-2026-00001"
    (answer_1121,) = xta.sent_by(MIKROPRO_XTA, "prozessnachrichten.aktenzeichen.1121")
    assert parsed(answer_1121).findtext(f"bezug/bezugNachricht/{{{BN}}}nachrichtenUUID") == uuid

    await mikropro.control("decide", {"reference": uuid, "status": "in Bearbeitung", "pdf": False})
    await answers_told(running, app_id, 2)
    await mikropro.control("decide", {"reference": uuid, "status": "beschieden", "pdf": True})
    await answers_told(running, app_id, 3)

    mailbox = running.hub.connectors["mailbox"]
    assert isinstance(mailbox, RecordingNotifier) and mailbox.status_calls == 3  # each exactly once
    told = sorted(mailbox.statuses.values(), key=lambda r: r.created_at)
    assert [r.status for r in told] == [AnswerStatus.ACCEPTED, AnswerStatus.IN_PROGRESS, AnswerStatus.DECIDED]
    # The Bauakte carries Mikropro's Aktenzeichen beside the hub's, the Bescheid is filed in the Vorgang.
    (akte,) = enaio.of_type("Bauakte")
    assert akte.fields["FVAktenzeichen"] == case_number and akte.fields["Aktenzeichen"] == aktenzeichen
    assert akte.fields["Bearbeitungsstand"] == "Baubeginn bestätigt"
    bescheide = [d for d in enaio.of_type("Bauvorlage") if d.fields.get("Anlagenart") == "Bescheid"]
    assert len(bescheide) == 1
    app = await running.journal.get_application(app_id)
    assert app is not None and app.file_number == aktenzeichen
    assert app.correlations["mikropro.case_number"] == case_number
    # Mikropro's 1170s carry its codes; none of its messages is left in the hub's mailbox.
    codes = [
        parsed(m).findtext("statusAntragsportal/code")
        for m in xta.sent_by(MIKROPRO_XTA, "prozessnachrichten.statusFuerAntragsportal.1170")
    ]
    assert codes == ["02", "04"]
    assert xta.state.mailbox(HUB_XTA) == {}
    assert etree.QName(parsed(answer_1121)).namespace == KERNMODUL


async def test_a_baubeginnanzeige_mikropro_refuses_is_a_dead_delivery_with_mikropros_reason(
    hub_factory: Any, xta: Xta, enaio: Enaio, start_mikropro: Callable[..., Awaitable[Mikropro]]
) -> None:
    mikropro = await start_mikropro(xta_url=xta.url)
    running = await start_hub(hub_factory, xta, enaio)
    app_id = await submit(running, aktenzeichen="63-BA-2026-09999")
    (message,) = xta.sent_by(HUB_XTA)
    assert parsed(message).findtext(f"{XBAU}bezug/{XBAU}mitAktenzeichen/vorgang") == "63-BA-2026-09999"

    taken = await mikropro.control("receive", {})
    assert taken["opened"] == [] and len(taken["refused"]) == 1
    assert await running.wait_for_state(app_id, [ApplicationState.DEAD]) == ApplicationState.DEAD
    [task] = [
        t for t in await running.journal.tasks(app_id) if t.step == "deliver" and t.target == "mikropro"
    ]
    assert task.last_error is not None and "63-BA-2026-09999 ist in Mikropro nicht bekannt" in task.last_error
    (refusal,) = xta.sent_by(MIKROPRO_XTA, "prozessnachrichten.rueckweisung.G2G.1100")
    assert refusal.metadata.reader.identifier == HUB_XTA
    mailbox = running.hub.connectors["mailbox"]
    assert isinstance(mailbox, RecordingNotifier) and mailbox.status_calls == 0  # no news for the applicant
    assert xta.state.mailbox(HUB_XTA) == {}
