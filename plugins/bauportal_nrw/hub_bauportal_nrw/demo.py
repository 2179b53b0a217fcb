"""The Bauportal.NRW part of `aktenhub demo`: building applications over XTA into the Bauakte and a DMS.

The portal simulator submits XBau 0200 messages into the Bauaufsicht's mailbox on the XTA simulator; the
hub polls it (source ``bauportal``), files each Bauantrag in enaio and the xdomea DMS, and answers the
portal (1100 for a refused one, else 1120 and 1121) through ``antworten``.
"""

from __future__ import annotations

from typing import Any

from hub import Application, ApplicationState, DemoRun, DemoScenario, DemoSite, Expectation

XTA_ACCOUNT = "vbe:053820004"  # the Bauaufsicht's XTA mailbox
AUTHORITY = {"kennung": XTA_ACCOUNT, "name": "Rhein-Sieg-Kreis, Untere Bauaufsichtsbehörde"}
SOURCE = "bauportal"
BAUANTRAEGE: list[dict[str, Any]] = [
    {
        "bauherr": {"vorname": "Jürgen", "familienname": "Groß"},
        "ort": "Siegburg",
        "flurstueck": {"gemarkung": "Wolsdorf", "flur": "12", "zaehler": "345", "nenner": "2"},
        "bezeichnung": "Neubau eines Einfamilienhauses mit Garage",
    },
    {
        "bauherr": {"vorname": "Małgorzata", "familienname": "Wiśniewska"},
        "ort": "Alfter",
        "flurstueck": {"gemarkung": "Oedekoven", "flur": "3", "zaehler": "118"},
        "bezeichnung": "Anbau eines Wintergartens",
    },
    # one submitted without its mandatory Bauvorhaben: refused with an XBau 1100 back to the portal
    {"bauherr": {"vorname": "Theo", "familienname": "Kröger"}, "ort": "Troisdorf", "invalid": True},
]


class BauportalScenario(DemoScenario):
    """Three Bauanträge from the portal simulator; two filed, one schema-invalid and refused."""

    name = "bauportal-nrw"
    requires = ("enaio", "xdomea", "xta")
    simulators = ("bauportal-nrw",)
    inbound = "Bauportal.NRW (XTA)"
    columns = ("answer",)

    def simulator_options(self, simulator: str, site: DemoSite) -> dict[str, Any]:
        return {"xta_url": site.url("xta"), "reader": XTA_ACCOUNT}

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        xta = {"url": site.url("xta"), "account": {"identifier": XTA_ACCOUNT}}
        return {
            SOURCE: {"type": "bauportal-nrw", "poll_seconds": 1, "authority": AUTHORITY, "xta": xta},
            "antworten": {"type": "bauportal-nrw-answers", "authority": AUTHORITY, "xta": xta},
            "receipts": {"type": "log"},
            "enaio": {"object_types": ["Bauakte", "Bauantrag", "Bauvorlage"]},
        }

    def routes(self, site: DemoSite) -> list[dict[str, Any]]:
        return [
            {
                "name": "bauantrag",
                "from": SOURCE,
                "map": str(site.mapping("bauantrag.yaml")),
                "to": ["enaio", "xdomea"],
                "notify": ["antworten", "receipts"],
            }
        ]

    async def submit(self, run: DemoRun) -> None:
        for antrag in BAUANTRAEGE:  # the portal delivers into the Bauaufsicht's XTA mailbox
            async with run.http.post(f"{run.site.url('bauportal-nrw')}/sim/bauantrag", json=antrag) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"Bauportal simulator: {resp.status} {await resp.text()}")
                message_id = (await resp.json())["nachricht_uuid"]  # the application's external id
            refused = bool(antrag.get("invalid"))
            state = ApplicationState.REJECTED if refused else ApplicationState.COMPLETED
            run.expect(Expectation(state=state, source=SOURCE, external_id=message_id))

    async def describe(
        self, application: Application, state: ApplicationState, run: DemoRun
    ) -> dict[str, str]:
        if application.source != SOURCE:
            return {}
        return {"answer": "XBau 1100" if state == ApplicationState.REJECTED else "XBau 1120, 1121"}

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        return [("XBau answers", f"curl {site.url('bauportal-nrw')}/sim/answers")]
