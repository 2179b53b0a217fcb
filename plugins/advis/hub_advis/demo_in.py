"""The Ausländerbehörde's in-direction in `aktenhub demo`: a residence-title application from an OZG service.

The OZG online service (played by the scenario) puts an XAusländer ``ozg.antragAufenthaltstitel`` into
the Ausländerbehörde's XTA mailbox on the XTA simulator. The hub's `advis-intake` source takes it, the
mapping (config/mappings/aufenthaltstitel.yaml) files it into the person's Ausländerakte in enaio with a
PDF rendition, and the `advis` connector forwards the message unchanged to the simulated ADVIS. The
scenario plays ADVIS's clerk: ADVIS reads its mailbox and opens a case; its answer (case number, status)
comes back into the Akte. It builds on the out-direction's scenario (`advis-out`: the `advis` connector,
the ADVIS simulator, validation off because the hub ships no XAusländer XSDs).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Final

import aiohttp

from hub import Application, ApplicationState, DemoRun, DemoScenario, DemoSite, Expectation

from .demo import CONNECTOR, NAMESPACE, advis_opens
from .inbound_samples import antrag_aufenthaltstitel, portal_metadata

SOURCE: Final = "abh-posteingang"
SERVICE: Final = "aufenthaltstitel"
INBOX: Final = "vbe:abh-posteingang"  # the Ausländerbehörde's XTA account for OZG messages
PDF: Final = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


class AdvisInScenario(DemoScenario):
    """A residence-title application from an OZG service into the Ausländerakte and ADVIS; the case back."""

    name = "advis-in"
    requires = ("advis-out",)
    inbound = "XAusländer (OZG service over XTA)"
    outbound = "Ausländerakte (enaio) and ADVIS, case number back"
    columns = ("case number",)

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        return {
            SOURCE: {
                "type": "advis-intake",
                "xta": {"url": site.url("xta"), "account": {"identifier": INBOX}},
                "poll_seconds": 0.5,
                "validate": False,  # no XSDs shipped: the demo says so in its links
            },
            "enaio": {
                "object_types": [
                    "Auslaenderakte",
                    "ABHVorgang",
                    "ABHAntrag",
                    "ABHAnlage",
                    "XAuslaenderNachricht",
                    "ABHBescheid",
                ]
            },
        }

    def routes(self, site: DemoSite) -> list[dict[str, Any]]:
        return [
            {
                "name": SERVICE,
                "from": SOURCE,
                "map": str(site.mapping("aufenthaltstitel.yaml")),
                "to": ["enaio", CONNECTOR],
                "on_answer": {"update_akte": "enaio"},
            }
        ]

    async def submit(self, run: DemoRun) -> None:
        nachricht_uuid = str(uuid.uuid4())
        form = aiohttp.FormData()
        form.add_field(
            "metadata",
            json.dumps(portal_metadata(NAMESPACE)),
            content_type="application/json",
        )
        content = antrag_aufenthaltstitel(
            NAMESPACE, nachricht_uuid, anlagen=("Reisepass.pdf", "Immatrikulationsbescheinigung.pdf")
        )
        form.add_field("message", content, filename="antrag.xml", content_type="application/xml")
        for name in ("Reisepass.pdf", "Immatrikulationsbescheinigung.pdf"):
            form.add_field("attachment", PDF, filename=name, content_type="application/pdf")
        await run.json(
            "POST", f"{run.site.url('xta')}/_sim/mailboxes/{INBOX}", "the XTA simulator", data=form
        )
        expectation = run.expect(
            Expectation(ApplicationState.COMPLETED, source=SOURCE, external_id=nachricht_uuid)
        )
        await run.settled([expectation])  # filed in enaio and forwarded to ADVIS's mailbox
        application_id = await self._application_id(run, nachricht_uuid)
        await advis_opens(run, nachricht_uuid)
        await run.answers_carried_out(application_id, 1)

    async def _application_id(self, run: DemoRun, nachricht_uuid: str) -> str:
        url = f"{run.site.hub_url}/api/v1/applications"
        params = {"q": nachricht_uuid}
        found_rows = await run.json(
            "GET", url, "the hub's admin API", params=params, headers=run.site.admin_headers()
        )
        rows = found_rows["applications"]
        found = [r["id"] for r in rows if r.get("source") == SOURCE]
        if not found:
            raise RuntimeError(f"the hub has no application for XAusländer message {nachricht_uuid}")
        return str(found[0])

    async def describe(
        self, application: Application, state: ApplicationState, run: DemoRun
    ) -> dict[str, str]:
        if application.source != SOURCE:
            return {}
        case_number = application.correlations.get(f"{CONNECTOR}.case_number")
        return {"case number": case_number} if case_number else {}

    async def check(self, application: Application, state: ApplicationState, run: DemoRun) -> list[str]:
        if application.source != SOURCE:
            return []
        case_number = application.correlations.get(f"{CONNECTOR}.case_number")
        if not case_number:
            return [f"no case number from {CONNECTOR}"]
        enaio = f"{run.site.url('enaio')}/_sim/objects"
        found_akten = await run.json("GET", enaio, "the enaio simulator", params={"type": "Auslaenderakte"})
        akten = found_akten["objects"]
        akte = next((a for a in akten if str(a["id"]) == application.correlations.get("enaio.akte")), None)
        if akte is None:
            return ["enaio has no Ausländerakte for the application"]
        if akte["fields"].get("FVAktenzeichen") != case_number:
            return [f"the Ausländerakte shows {akte['fields'].get('FVAktenzeichen')}, expected {case_number}"]
        return []

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        return [("Ausländerakten", f"curl '{site.url('enaio')}/_sim/objects?type=Auslaenderakte'")]
