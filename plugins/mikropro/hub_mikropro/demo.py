"""The Mikropro part of `aktenhub demo`: the Bauanträge from Bauportal.NRW reach the simulated Mikropro,
and Mikropro's Aktenzeichen reaches the portal.

It extends the Bauportal.NRW scenario's route: Mikropro assigns the Aktenzeichen (`file_number:
{assigned_by: mikropro}`, mapping ``bauantrag-mikropro.yaml``), so each Bauantrag is first forwarded as it
came (XBau 0200 with its Anlagen) over XTA to Mikropro's mailbox, from the hub's own XTA account. The
scenario plays Mikropro's clerk through the simulator's control endpoints: Mikropro reads its mailbox and
opens a case per Bauantrag with its own Aktenzeichen (its 1121 to the hub); that number becomes the
application's, the Bauakte in enaio is filed with it and the portal's 1120 and 1121 carry it. Then the
clerk starts work on the first ("in Bearbeitung", Mikropro's 1170), which reaches the portal as the hub's
XBau 1170. The summary shows Mikropro's Aktenzeichen; `check` compares the application's and the
Bauakte's with Mikropro's cases (the plugin's tests read the 1121 the portal got).
"""

from __future__ import annotations

from typing import Any, Final

from hub import Application, ApplicationState, DemoRun, DemoScenario, DemoSite

from .profile import portal_status_codes

CONNECTOR: Final = "mikropro"
SIMULATOR: Final = "mikropro"
ROUTE: Final = "bauantrag"  # the Bauportal.NRW scenario's route, extended
SOURCE: Final = "bauportal"
HUB_XTA: Final = "vbe:053820005"  # the hub's own account for Mikropro: its answers arrive here
MIKROPRO_XTA: Final = "vbe:053820063"
AUTHORITY: Final = {"kennung": "vbe:053820004", "name": "Rhein-Sieg-Kreis, Untere Bauaufsichtsbehörde"}
FACHVERFAHREN: Final = {"kennung": "vbe:053820063", "name": "Mikropro Bauamt"}
BAUANTRAEGE: Final = 2  # the valid ones the Bauportal.NRW scenario submits


class MikroproScenario(DemoScenario):
    """Bauanträge from the portal into Mikropro; its Aktenzeichen to the Bauakte, its status to the portal."""

    name = "mikropro"
    requires = ("bauportal-nrw",)
    simulators = (SIMULATOR,)
    outbound = "Mikropro Bauamt (XBau over XTA) and back"
    columns = ("Mikropro",)

    def simulator_options(self, simulator: str, site: DemoSite) -> dict[str, Any]:
        return {
            "xta_url": site.url("xta"),
            "account": MIKROPRO_XTA,
            "schemas": str(site.schemas),
            "data_dir": str(site.data_dir / "mikropro"),
        }

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        return {
            CONNECTOR: {
                "type": "mikropro",
                "xta": {"url": site.url("xta"), "account": {"identifier": HUB_XTA}},
                "recipient": {"identifier": MIKROPRO_XTA},
                "authority": AUTHORITY,
                "fachverfahren": FACHVERFAHREN,
                "poll_seconds": 0.2,
            },
            # Mikropro's status codes go on to the portal in the hub's 1170.
            "antworten": {"status_codes": portal_status_codes()},
            "enaio": {"object_types": ["Bauakte", "Bauantrag", "Bauvorlage"]},
        }

    def route_extensions(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        # Mikropro assigns the Aktenzeichen: the Bauantrag mapping without a number pattern of its own.
        return {
            ROUTE: {
                "map": str(site.mapping("bauantrag-mikropro.yaml")),
                "to": [CONNECTOR],
                "file_number": {"assigned_by": CONNECTOR},
                "on_answer": {"update_akte": "enaio", "notify": ["antworten"]},
            }
        }

    async def submit(self, run: DemoRun) -> None:
        mikropro = run.site.url(SIMULATOR)
        opened: list[str] = []

        async def received() -> bool:  # Mikropro reads its mailbox, as its import job would
            taken = await run.json("POST", f"{mikropro}/control/receive", "the simulated Mikropro")
            opened.extend(taken["opened"])
            return len(opened) >= BAUANTRAEGE

        await run.until(received, f"{BAUANTRAEGE} Bauanträge in Mikropro's mailbox")
        cases = (await run.json("GET", f"{mikropro}/control/cases", "the simulated Mikropro"))["cases"]
        for case in cases:
            await self._carried_out(run, case["case_number"], 1)
        first = cases[0]
        decision = {"reference": first["reference"], "status": "in Bearbeitung", "pdf": False}
        await run.json("POST", f"{mikropro}/control/decide", "the simulated Mikropro", json=decision)
        await self._carried_out(run, first["case_number"], 2)

    async def _carried_out(self, run: DemoRun, case_number: str, answers: int) -> None:
        """Wait until the hub took `answers` answers for this case and carried each out."""
        url = f"{run.site.hub_url}/api/v1/applications"
        found: list[str] = []

        async def answered() -> bool:  # the case number finds the application once its 1121 is taken
            params = {"q": case_number}
            rows = await run.json(
                "GET", url, "the hub's admin API", params=params, headers=run.site.admin_headers()
            )
            found[:] = [row["id"] for row in rows["applications"]]
            return len(found) == 1

        await run.until(answered, f"Mikropro's case {case_number} to find its application")
        await run.answers_carried_out(found[0], answers)

    async def describe(
        self, application: Application, state: ApplicationState, run: DemoRun
    ) -> dict[str, str]:
        case_number = application.correlations.get(f"{CONNECTOR}.case_number")
        return {"Mikropro": case_number} if case_number else {}

    async def check(self, application: Application, state: ApplicationState, run: DemoRun) -> list[str]:
        if application.source != SOURCE or state != ApplicationState.COMPLETED:
            return []
        case_number = application.correlations.get(f"{CONNECTOR}.case_number")
        if not case_number:
            return ["no Aktenzeichen from Mikropro"]
        problems: list[str] = []
        listed = await run.json("GET", f"{run.site.url(SIMULATOR)}/control/cases", "the simulated Mikropro")
        cases = listed["cases"]
        if [c["reference"] for c in cases if c["case_number"] == case_number] != [application.external_id]:
            problems.append(f"Mikropro holds no case {case_number} for this Bauantrag")
        if application.file_number != case_number:
            problems.append(f"the Aktenzeichen is {application.file_number!r}, not Mikropro's {case_number}")
        enaio = f"{run.site.url('enaio')}/_sim/objects"
        akten = (await run.json("GET", enaio, "the enaio simulator", params={"type": "Bauakte"}))["objects"]
        akte = next((a for a in akten if str(a["id"]) == application.correlations.get("enaio.akte")), None)
        if akte is None or akte["fields"].get("Aktenzeichen") != case_number:
            problems.append(f"the Bauakte does not carry Mikropro's Aktenzeichen {case_number}")
        return problems

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        return [("Mikropro cases", f"curl {site.url(SIMULATOR)}/control/cases")]
