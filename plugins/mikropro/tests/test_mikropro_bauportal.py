"""End to end through a hub: a Bauantrag from Bauportal.NRW (XBau 0200 in the Bauaufsicht's XTA mailbox)
is filed as Bauakte in enaio and forwarded to the simulated Mikropro as it came (same bytes, same
Anlagen); Mikropro's Aktenzeichen (its 1121) reaches the Bauakte, and a status change (its 1170) reaches
the portal as the hub's XBau 1170, once each. Mikropro's answers arrive in the hub's own XTA account,
so the Bauportal source never sees them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from hub_bauportal_nrw.samples import enqueue_bauantrag, sample_bauantrag
from hub_bauportal_nrw.xbau import Behoerde
from hub_mikropro.profile import portal_status_codes
from mikropro_helpers import (
    AUTHORITY,
    BAUAUFSICHT_XTA,
    BN,
    FAST_RETRY,
    HUB_OPTIONS,
    HUB_XTA,
    MAPPINGS,
    MIKROPRO_XTA,
    PORTAL_XTA,
    Enaio,
    Mikropro,
    Xta,
    enaio_section,
    mikropro_section,
    parsed,
)

from hub import ApplicationState
from hub.journal import ApplicationFilter
from hub.testing.harness import RunningHub

PORTAL = Behoerde(kennung="psw:05000000001", name="Bauportal.NRW")
STATUS_1170 = "prozessnachrichten.statusFuerAntragsportal.1170"


def bauaufsicht_xta(url: str) -> dict[str, Any]:
    return {"url": url, "account": {"identifier": BAUAUFSICHT_XTA}, "timeout_seconds": 5}


# What Mikropro's answers change in the Bauakte (the example mapping files nothing for answers).
ANSWERS = """
answers:
  akte_fields:
    FVAktenzeichen: "{{ answer.case_number }}"
"""


def hub_connectors(xta: Xta, enaio: Enaio) -> dict[str, Any]:
    """The Bauaufsicht's connectors: the portal's mailbox, enaio, Mikropro, the answers to the portal."""
    return {
        "bauportal": {
            "type": "bauportal-nrw",
            "xta": bauaufsicht_xta(xta.url),
            "authority": AUTHORITY,
            "poll_seconds": 0.1,
        },
        "enaio": enaio_section(enaio.url),
        "mikropro": mikropro_section(xta.url),
        "antworten": {
            "type": "bauportal-nrw-answers",
            "xta": bauaufsicht_xta(xta.url),
            "authority": AUTHORITY,
            "status_codes": portal_status_codes(),  # Mikropro's codes go on to the portal
            "retry": FAST_RETRY,
        },
    }


async def start_hub(hub_factory: Any, xta: Xta, enaio: Enaio, tmp_path: Path) -> RunningHub:
    mapping = tmp_path / "bauantrag.yaml"
    mapping.write_text((MAPPINGS / "bauantrag.yaml").read_text(encoding="utf-8") + ANSWERS, encoding="utf-8")
    routes = [
        {
            "name": "bauantrag",
            "from": "bauportal",
            "map": str(mapping),
            "to": ["enaio", "mikropro"],
            "notify": ["antworten"],
            "on_answer": {"update_akte": "enaio", "notify": ["antworten"]},
        }
    ]
    running: RunningHub = await hub_factory(hub_connectors(xta, enaio), routes, **HUB_OPTIONS)
    return running


async def test_a_bauantrag_reaches_mikropro_as_it_came_and_its_answers_reach_bauakte_and_portal_once(
    hub_factory: Any,
    xta: Xta,
    enaio: Enaio,
    http: aiohttp.ClientSession,
    start_mikropro: Callable[..., Awaitable[Mikropro]],
    tmp_path: Path,
) -> None:
    mikropro = await start_mikropro(xta_url=xta.url)
    plan = sample_bauantrag(autor=PORTAL, leser=Behoerde(**AUTHORITY))
    await enqueue_bauantrag(http, xta.url, BAUAUFSICHT_XTA, plan, author=PORTAL_XTA)
    running = await start_hub(hub_factory, xta, enaio, tmp_path)
    await running.wait_for(lambda: len(xta.sent_by(BAUAUFSICHT_XTA)) >= 2, what="the 1120 and the 1121")
    (summary,) = await running.journal.list_applications(ApplicationFilter())
    assert await running.wait_for_state(summary.id) == ApplicationState.COMPLETED

    # Mikropro got the 0200 byte for byte with every Anlage, from the hub's own account.
    (forwarded,) = xta.sent_by(HUB_XTA)
    assert forwarded.metadata.reader.identifier == MIKROPRO_XTA
    assert forwarded.metadata.message_type == "baugenehmigung.antrag.0200"
    assert forwarded.message.path.read_bytes() == plan.xml
    assert {a.filename: a.path.read_bytes() for a in forwarded.attachments} == plan.files
    taken = await mikropro.control("receive", {})
    uuid = plan.antrag.identity.uuid
    assert taken == {"opened": [uuid], "refused": []}
    (case,) = (await mikropro.control("cases"))["cases"]

    async def akte_has(field: str, value: str) -> bool:
        aktes = enaio.of_type("Bauakte")
        return len(aktes) == 1 and aktes[0].fields.get(field) == value

    await running.wait_for(lambda: akte_has("FVAktenzeichen", case["case_number"]), what="Mikropro's number")
    assert case["case_number"] == "63-BA-2026-00001"
    await mikropro.control("decide", {"reference": uuid, "status": "in Bearbeitung", "pdf": False})
    await running.wait_for(
        lambda: len(xta.sent_by(BAUAUFSICHT_XTA, STATUS_1170)) == 2, what="the two 1170s to the portal"
    )
    assert await running.wait_for_state(summary.id) == ApplicationState.COMPLETED

    # The portal: 1120, 1121, and a 1170 per answer with Mikropro's code (01: its 1121, "eingegangen").
    sent = [m.metadata.message_type for m in xta.sent_by(BAUAUFSICHT_XTA)]
    assert sent.count("prozessnachrichten.eingangsbestaetigung.1120") == 1
    assert sent.count("prozessnachrichten.aktenzeichen.1121") == 1
    codes = [
        parsed(m).findtext("statusAntragsportal/code") for m in xta.sent_by(BAUAUFSICHT_XTA, STATUS_1170)
    ]
    assert codes == ["01", "02"]
    for message in xta.sent_by(BAUAUFSICHT_XTA):
        assert message.metadata.reader.identifier == PORTAL_XTA  # nothing (no 1100) went to Mikropro
    assert xta.state.mailbox(HUB_XTA) == {} and xta.state.mailbox(BAUAUFSICHT_XTA) == {}
    app = await running.journal.get_application(summary.id)
    assert app is not None and app.correlations["mikropro.case_number"] == case["case_number"]
    assert app.correlations["mikropro.original"] == uuid
    (answer,) = xta.sent_by(MIKROPRO_XTA, "prozessnachrichten.aktenzeichen.1121")
    assert parsed(answer).findtext(f"bezug/bezugNachricht/{{{BN}}}nachrichtenUUID") == uuid


async def test_mikropro_assigns_the_aktenzeichen_the_bauakte_and_the_portals_1121_carry_it_once(
    hub_factory: Any,
    xta: Xta,
    enaio: Enaio,
    http: aiohttp.ClientSession,
    start_mikropro: Callable[..., Awaitable[Mikropro]],
) -> None:
    # The route lets Mikropro assign the Aktenzeichen: the hub draws none, Mikropro gets the 0200 first,
    # and only its 1121 lets the Bauakte be filed and the portal's 1120 and 1121 go out, with its number.
    mikropro = await start_mikropro(xta_url=xta.url)
    plan = sample_bauantrag(autor=PORTAL, leser=Behoerde(**AUTHORITY))
    await enqueue_bauantrag(http, xta.url, BAUAUFSICHT_XTA, plan, author=PORTAL_XTA)
    connectors = hub_connectors(xta, enaio)
    routes = [
        {
            "name": "bauantrag",
            "from": "bauportal",
            "map": str(MAPPINGS / "bauantrag-mikropro.yaml"),
            "to": ["enaio", "mikropro"],
            "notify": ["antworten"],
            "file_number": {"assigned_by": "mikropro"},
            "on_answer": {"update_akte": "enaio", "notify": ["antworten"]},
        }
    ]
    running: RunningHub = await hub_factory(connectors, routes, **HUB_OPTIONS)
    await running.wait_for(lambda: xta.sent_by(HUB_XTA), what="the 0200 forwarded to Mikropro")
    (summary,) = await running.journal.list_applications(ApplicationFilter())
    # It waits for Mikropro's number: nothing filed, nothing told yet.
    assert summary.state == ApplicationState.PROCESSING and summary.file_number is None
    assert enaio.of_type("Bauakte") == [] and xta.sent_by(BAUAUFSICHT_XTA) == []

    taken = await mikropro.control("receive", {})
    assert taken == {"opened": [plan.antrag.identity.uuid], "refused": []}
    await running.wait_for(lambda: len(xta.sent_by(BAUAUFSICHT_XTA)) >= 3, what="1120, 1121 and 1170")
    assert await running.wait_for_state(summary.id) == ApplicationState.COMPLETED

    number = "63-BA-2026-00001"  # Mikropro's first
    app = await running.journal.get_application(summary.id)
    assert app is not None and app.file_number == number
    (akte,) = enaio.of_type("Bauakte")
    assert akte.fields["Aktenzeichen"] == number
    assert akte.fields["Bearbeitungsstand"] == "Eingegangen in Mikropro"
    to_portal = {m.metadata.message_type: parsed(m) for m in xta.sent_by(BAUAUFSICHT_XTA)}
    assert sorted(to_portal) == [
        "prozessnachrichten.aktenzeichen.1121",
        "prozessnachrichten.eingangsbestaetigung.1120",
        STATUS_1170,
    ]  # each once
    assert to_portal["prozessnachrichten.aktenzeichen.1121"].findtext("bezug/vorgang") == number
    assert to_portal["prozessnachrichten.eingangsbestaetigung.1120"].findtext("bezug/vorgang") == number
    assert len(xta.sent_by(HUB_XTA)) == 1  # Mikropro got the Bauantrag once
