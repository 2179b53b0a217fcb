"""The Ausländerbehörde's out-direction in `aktenhub demo`: a Verpflichtungserklärung into ADVIS and back.

A host applies through the Ausländerbehörde's own FormCycle service (with a BundID login) to guarantee a
visitor's living costs; the hub files it into enaio and sends it as an XAusländer message over XTA to
the simulated ADVIS (simulator ``advis``, reading its mailbox on the XTA simulator). The scenario then
plays ADVIS's clerk through the simulator's control endpoints: ADVIS reads its mailbox and opens a case
(answer "eingegangen" with its case number), later decides with a PDF ("entschieden"). The hub's answer
polling takes each ``advis.rueckmeldung`` from its own XTA mailbox; the route's ``on_answer`` has enaio
set the Akte's index fields and file the decision, and the BundID mailbox tell the applicant.

The hub ships no XAusländer XSDs (they come from XRepository), so the demo runs the connector and the
simulator with validation switched off (``validate: false``: the hub logs a WARNING) in a namespace of
its own; `links` says so.
"""

from __future__ import annotations

from typing import Any, Final

import aiohttp

from hub import Application, ApplicationState, DemoRun, DemoScenario, DemoSite, Expectation

CONNECTOR: Final = "advis"
SERVICE: Final = "verpflichtungserklaerung"
PUBLIC_NAME: Final = "Verpflichtungserklärung"
SIMULATOR: Final = "advis"
HUB_ACCOUNT: Final = "vbe:abh-hub"  # the hub's XTA account: ADVIS answers there
ADVIS_ACCOUNT: Final = "vbe:advis"
NAMESPACE: Final = "urn:aktenhub:demo:xauslaender"  # no XSDs in the demo: a namespace of its own
PERSON: Final = "U05"  # the BundID test person who signs the Verpflichtungserklärung
FORM: Final = {
    "vorgang_id": "FC-2026-005301",
    "vorname": "Jochen",
    "nachname": "Bittel",
    "geburtsdatum": "1979-10-01",
    "staatsangehoerigkeit": "000",
    "email": "jochen.bittel@example.com",
    "gast_vorname": "Tomasz",
    "gast_nachname": "Wiśniewski",
    "gast_geburtsdatum": "1950-06-12",
    "gast_staatsangehoerigkeit": "152",
    "beginn": "2027-05-01",
    "ende": "2027-07-31",
    "zweck": "Besuch der Familie",
    "nettoeinkommen": "3980.00",
    "einwilligung": "ja",
}
MINIMAL_PDF: Final = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


async def advis_opens(run: DemoRun, reference: str) -> None:
    """ADVIS reads its mailbox until it has a case for `reference` (another scenario may read it too)."""
    advis = run.site.url(SIMULATOR)

    async def opened() -> bool:
        cases = (await run.json("GET", f"{advis}/control/cases", "the ADVIS simulator"))["cases"]
        if any(c["reference"] == reference for c in cases):
            return True
        await run.json("POST", f"{advis}/control/receive", "the ADVIS simulator")
        return False

    await run.until(opened, f"ADVIS to open a case for {reference}")


class AdvisOutScenario(DemoScenario):
    """A Verpflichtungserklärung into enaio and ADVIS; ADVIS's case number and decision back."""

    name = "advis-out"
    requires = ("formcycle", "enaio", "zbp", "xta")
    simulators = (SIMULATOR,)
    outbound = "ADVIS (Ausländerbehörde, XAusländer over XTA) and back"
    columns = ("case number",)

    def simulator_options(self, simulator: str, site: DemoSite) -> dict[str, Any]:
        return {
            "xta_url": site.url("xta"),
            "account": ADVIS_ACCOUNT,
            "schemas": str(site.schemas),
            "data_dir": str(site.data_dir / "advis"),
            "validation": False,
            "answer_namespace": NAMESPACE,
        }

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        return {
            CONNECTOR: {
                "type": "advis",
                "recipient": {"identifier": ADVIS_ACCOUNT},
                "xta": {"url": site.url("xta"), "account": {"identifier": HUB_ACCOUNT}},
                "poll_seconds": 0.2,
                "validate": False,
                "namespace": NAMESPACE,
            },
            "enaio": {"object_types": ["Personenakte", "Vorgang", "Antrag", "Anlage", "Bescheid"]},
            "postfach": {"services": {SERVICE: PUBLIC_NAME}},
        }

    def routes(self, site: DemoSite) -> list[dict[str, Any]]:
        return [
            {
                "name": SERVICE,
                "from": "formcycle",
                "when": {"service": SERVICE},
                "identity": {"via": "bundid", "min_level": "substantiell"},
                "map": str(site.mapping("verpflichtungserklaerung.yaml")),
                "to": ["enaio", CONNECTOR],
                "notify": ["postfach", "receipts"],
                "on_answer": {"update_akte": "enaio", "notify": ["postfach"], "decision": "both"},
            }
        ]

    async def submit(self, run: DemoRun) -> None:
        application_id = await self._apply(run)
        expectation = run.expect(Expectation(ApplicationState.COMPLETED, application_id=application_id))
        await run.settled([expectation])  # filed in enaio and sent to ADVIS's XTA mailbox
        application = await run.application(application_id)
        reference = application.correlations.get(CONNECTOR) if application else None
        if reference is None:
            raise RuntimeError(f"the hub names no ADVIS reference for {application_id}")
        advis = run.site.url(SIMULATOR)
        await advis_opens(run, reference)
        await run.answers_carried_out(application_id, 1)
        decision = {"reference": reference, "status": "entschieden", "pdf": True}
        await run.json("POST", f"{advis}/control/decide", "the ADVIS simulator", json=decision)
        await run.answers_carried_out(application_id, 2)

    async def _apply(self, run: DemoRun) -> str:
        """The Verpflichtungserklärung as FormCycle posts it, with the host's BundID login; its id."""
        login = await run.json(
            "POST",
            f"{run.site.url('bundid')}/sim/response",
            "the BundID simulator",
            json={"person": PERSON, "means": "eID"},
        )
        form = aiohttp.FormData({**FORM, "bundid_saml_response": login["response"]})
        for element, name in (("einkommen", "Einkommensnachweis.pdf"), ("pass_gast", "Passkopie_Gast.pdf")):
            form.add_field(element, MINIMAL_PDF, filename=name, content_type="application/pdf")
        headers = {"X-Aktenhub-Token": run.site.secret("FORMCYCLE_TOKEN")}
        url = f"{run.site.hub_url}/intake/formcycle/{SERVICE}"
        taken = await run.json("POST", url, "the hub's FormCycle intake", data=form, headers=headers)
        return str(taken["application_id"])

    async def describe(
        self, application: Application, state: ApplicationState, run: DemoRun
    ) -> dict[str, str]:
        case_number = application.correlations.get(f"{CONNECTOR}.case_number")
        return {"case number": case_number} if case_number else {}

    async def check(self, application: Application, state: ApplicationState, run: DemoRun) -> list[str]:
        if application.service != SERVICE:
            return []
        case_number = application.correlations.get(f"{CONNECTOR}.case_number")
        if not case_number:
            return [f"no case number from {CONNECTOR}"]
        problems: list[str] = []
        cases = await run.json("GET", f"{run.site.url(SIMULATOR)}/control/cases", "the ADVIS simulator")
        reference = application.correlations.get(CONNECTOR)
        opened = [c["case_number"] for c in cases["cases"] if c["reference"] == reference]
        if opened != [case_number]:
            problems.append(f"ADVIS opened {opened}, the hub knows {case_number}")
        enaio = f"{run.site.url('enaio')}/_sim/objects"
        found_akten = await run.json("GET", enaio, "the enaio simulator", params={"type": "Personenakte"})
        akten = found_akten["objects"]
        akte = next((a for a in akten if str(a["id"]) == application.correlations.get("enaio.akte")), None)
        if akte is None:
            return [*problems, "enaio has no Akte for the application"]
        expected = {"FVAktenzeichen": case_number, "Bearbeitungsstand": "entschieden"}
        found = {key: akte["fields"].get(key) for key in expected}
        if found != expected:
            problems.append(f"the Akte shows {found}, expected {expected}")
        return problems

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        return [
            ("ADVIS cases", f"curl {site.url(SIMULATOR)}/control/cases"),
            ("XAusländer validation", "off in the demo (no XSDs shipped; see plugins/advis/README.md)"),
        ]
