"""K3's part of `aktenhub demo`: the Umweltamt's two services into enaio and K3, and K3's answers back.

Citizens apply through FormCycle (with a BundID login) for a wasserrechtliche Erlaubnis and give notice
of a Heizöltank (Anzeige einer Anlage nach AwSV); the hub files each into enaio and writes it with K3's
import manifest into the import folder of the simulated K3 (connector `type: k3`, simulator ``k3``).
The scenario then plays K3's clerk through the simulator's control endpoints: the imports are taken (a
case number each, result "eingegangen"), then decided with a Bescheid PDF ("beschieden"). The hub's
answer polling takes each result file; the routes' ``on_answer`` have enaio set the Akte's index fields
and file the decision into the Vorgang, and the BundID mailbox tell the applicant. `check` verifies it
from outside; the summary shows K3's case number and whether the decision reached the applicant.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from hub_fachverfahren.casework import decision_pdf  # a minimal PDF, here for the uploaded attachments

from hub import Application, ApplicationState, DemoRun, DemoScenario, DemoSite, Expectation

CONNECTOR = "umwelt-fv"  # the name the Umweltamt's mappings give K3 in `payloads:`
SIMULATOR = "k3"
DELIVERED = "delivered"


@dataclass(frozen=True)
class UmweltService:
    """One of the Umweltamt's services as the demo plays it."""

    service: str  # FormCycle's service and the route's name; the mapping is config/mappings/<service>.yaml
    public_name: str  # how the applicant's mailbox names it
    person: str  # the BundID test person who applies
    decided: str  # the Akte's Bearbeitungsstand once K3 decided (the mapping's table)
    decision: str  # K3's message with the decision
    form: dict[str, str] = field(default_factory=dict)
    attachments: tuple[tuple[str, str], ...] = ()  # (form element, file name)


SERVICES = (
    UmweltService(
        service="wasserrecht",
        public_name="Wasserrechtliche Erlaubnis",
        person="U03",
        decided="Bescheid erlassen",
        decision="Die wasserrechtliche Erlaubnis wird befristet bis 2036 erteilt.",
        form={
            "vorgang_id": "FC-2026-004801",
            "vorname": "Wilhelm",
            "nachname": "Weber",
            "geburtsdatum": "1958-04-29",
            "strasse": "Elbinger Straße 15",
            "plz": "90469",
            "ort": "Nürnberg",
            "email": "weber003@example.com",
            "benutzung": "Entnahme von Grundwasser zur Beregnung einer Obstwiese",
            "gewaesser": "Grundwasser",
            "menge": "900 m³ im Jahr",
            "gemarkung": "Lohmar",
            "flur": "7",
            "flurstueck": "212/1",
            "einwilligung": "ja",
        },
        attachments=(("lageplan", "Lageplan_Entnahmestelle.pdf"), ("ausweis", "Personalausweis.pdf")),
    ),
    UmweltService(
        service="awsv-anlage",
        public_name="Anzeige einer AwSV-Anlage",
        person="U05",
        decided="Anzeige bestätigt",
        decision="Die Anzeige des Heizöltanks wird bestätigt; Prüfpflicht vor Inbetriebnahme nach § 46 AwSV.",
        form={
            "vorgang_id": "FC-2026-004902",
            "vorname": "Jochen",
            "nachname": "Bittel",
            "geburtsdatum": "1979-10-01",
            "strasse": "Waldstr. 119",
            "plz": "91564",
            "ort": "Neudettelsau",
            "email": "jochen.bittel@example.com",
            "anzeigeart": "Errichtung",
            "anlage_strasse": "Waldstr. 119",
            "anlage_ort": "Neudettelsau",
            "gemarkung": "Neudettelsau",
            "flur": "3",
            "flurstueck": "88",
            "volumen_l": "5000",
            "tankart": "Doppelwandiger Kunststofftank mit Leckanzeige",
            "aufstellung": "oberirdisch im Kellerraum",
            "schutzgebiet": "nein",
            "fachbetrieb": "Heiztechnik Müller GmbH, Siegburg",
            "inbetriebnahme": "2027-01-15",
            "einwilligung": "ja",
        },
        attachments=(("aufstellplan", "Aufstellplan_Heizraum.pdf"), ("ausweis", "Personalausweis.pdf")),
    ),
)
BY_SERVICE = {s.service: s for s in SERVICES}


class K3Scenario(DemoScenario):
    """The Umweltamt's two services into enaio and K3; K3's case numbers and decisions back."""

    name = "k3"
    requires = ("formcycle", "enaio", "zbp")
    simulators = (SIMULATOR,)
    outbound = "K3 (Umweltamt) and back"
    columns = ("case number", "decision")

    def simulator_options(self, simulator: str, site: DemoSite) -> dict[str, Any]:
        base = site.data_dir / CONNECTOR
        return {
            "import_dir": str(base / "import"),
            "answer_dir": str(base / "export"),
            "data_dir": str(base / "work"),
        }

    async def prepare(self, site: DemoSite) -> None:
        for folder in ("import", "export"):
            await asyncio.to_thread((site.data_dir / CONNECTOR / folder).mkdir, parents=True, exist_ok=True)

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        base = site.data_dir / CONNECTOR
        return {
            CONNECTOR: {
                "type": "k3",  # K3's manifest and result files are the profile's: only the folders
                "path": str(base / "import"),
                "answers": str(base / "export"),
                "poll_seconds": 0.2,
                # The simulator writes its result files atomically (rename): nothing to let settle.
                "answer_format": {"settle_seconds": 0},
            },
            "enaio": {"object_types": ["Personenakte", "Vorgang", "Antrag", "Anlage", "Bescheid"]},
            "postfach": {"services": {s.service: s.public_name for s in SERVICES}},
        }

    def routes(self, site: DemoSite) -> list[dict[str, Any]]:
        return [
            {
                "name": s.service,
                "from": "formcycle",
                "when": {"service": s.service},
                "identity": {"via": "bundid", "min_level": "substantiell"},
                "map": str(site.mapping(f"{s.service}.yaml")),
                "to": ["enaio", CONNECTOR],
                "after": {CONNECTOR: ["enaio"]},  # K3's manifest names the Akte enaio created
                "notify": ["postfach", "receipts"],
                "on_answer": {"update_akte": "enaio", "notify": ["postfach"], "decision": "both"},
            }
            for s in SERVICES
        ]

    async def submit(self, run: DemoRun) -> None:
        ids = {s.service: await self._apply(run, s) for s in SERVICES}
        expectations = [
            run.expect(Expectation(ApplicationState.COMPLETED, application_id=i)) for i in ids.values()
        ]
        await run.settled(expectations)  # filed in enaio and written into K3's import folder
        k3 = run.site.url(SIMULATOR)
        # K3 takes the imports and opens a case each: the first result files.
        taken = await run.json("POST", f"{k3}/control/import", "the simulated K3")
        if sorted(taken["imported"]) != sorted(ids.values()):
            raise RuntimeError(f"K3 did not import the applications: {taken}")
        await asyncio.gather(*(run.answers_carried_out(i, 1) for i in ids.values()))
        # Later the clerk decides: the second result files, each with the decision as a PDF beside it.
        for service, application_id in ids.items():
            decision = {
                "reference": application_id,
                "status": "beschieden",
                "message": BY_SERVICE[service].decision,
                "pdf": True,
            }
            await run.json("POST", f"{k3}/control/decide", "the simulated K3", json=decision)
        await asyncio.gather(*(run.answers_carried_out(i, 2) for i in ids.values()))

    async def _apply(self, run: DemoRun, umwelt: UmweltService) -> str:
        """The application as FormCycle posts it, with the applicant's BundID login; its id."""
        login_url = f"{run.site.url('bundid')}/sim/response"
        login = await run.json(
            "POST", login_url, "the BundID simulator", json={"person": umwelt.person, "means": "eID"}
        )
        form = aiohttp.FormData({**umwelt.form, "bundid_saml_response": login["response"]})
        for element, name in umwelt.attachments:
            form.add_field(element, decision_pdf(name), filename=name, content_type="application/pdf")
        headers = {"X-Aktenhub-Token": run.site.secret("FORMCYCLE_TOKEN")}
        url = f"{run.site.hub_url}/intake/formcycle/{umwelt.service}"
        taken = await run.json("POST", url, "the hub's FormCycle intake", data=form, headers=headers)
        return str(taken["application_id"])

    async def describe(
        self, application: Application, state: ApplicationState, run: DemoRun
    ) -> dict[str, str]:
        if application.service not in BY_SERVICE:
            return {}
        found: dict[str, str] = {}
        case_number = application.correlations.get(f"{CONNECTOR}.case_number")
        if case_number:
            found["case number"] = case_number
        # The decision reached the applicant: the mailbox notifier sent the `decided` status.
        timeline = (await run.hub_view(application.id))["timeline"]
        if any(
            e["type"] == "receipt.sent" and e["target"] == "postfach" and e["data"].get("status") == "decided"
            for e in timeline
        ):
            found["decision"] = DELIVERED
        return found

    async def check(self, application: Application, state: ApplicationState, run: DemoRun) -> list[str]:
        umwelt = BY_SERVICE.get(application.service)
        if umwelt is None:
            return []
        case_number = application.correlations.get(f"{CONNECTOR}.case_number")
        if not case_number:
            return [f"no case number from {CONNECTOR}"]
        problems: list[str] = []
        cases = await self._get(run, f"{run.site.url(SIMULATOR)}/control/cases")
        opened = [c["case_number"] for c in cases["cases"] if c["reference"] == application.id]
        if opened != [case_number]:
            problems.append(f"K3 opened {opened}, the hub knows {case_number}")
        problems += await self._check_enaio(application, umwelt, case_number, run)
        problems += await self._check_mailbox(application, umwelt, run)
        # The hub: the Aktenzeichen is its own, the case number finds the application.
        url = f"{run.site.hub_url}/api/v1/applications"
        found = await self._get(run, url, params={"q": case_number}, headers=run.site.admin_headers())
        if [a["id"] for a in found["applications"]] != [application.id]:
            problems.append(f"the case number {case_number} does not find the application")
        view = await run.hub_view(application.id)
        if view["file_number"] != application.file_number:
            problems.append("the hub's Aktenzeichen changed")
        return problems

    async def _check_enaio(
        self, application: Application, umwelt: UmweltService, case_number: str, run: DemoRun
    ) -> list[str]:
        """The Akte carries the case number, the Aktenzeichen unchanged; the decision filed once."""
        enaio = f"{run.site.url('enaio')}/_sim/objects"
        akte_id = application.correlations.get("enaio.akte")
        vorgang_id = application.correlations.get("enaio.vorgang")
        akten = (await self._get(run, enaio, params={"type": "Personenakte"}))["objects"]
        akte = next((a for a in akten if str(a["id"]) == akte_id), None)
        if akte is None:
            return [f"enaio has no Akte {akte_id}"]
        problems: list[str] = []
        fields = akte["fields"]
        if fields.get("FVAktenzeichen") != case_number:
            problems.append(f"the Akte's FVAktenzeichen is {fields.get('FVAktenzeichen')!r}")
        if fields.get("Aktenzeichen") != application.file_number:
            problems.append(f"the Akte's Aktenzeichen changed to {fields.get('Aktenzeichen')!r}")
        if fields.get("Bearbeitungsstand") != umwelt.decided:
            problems.append(f"the Akte's Bearbeitungsstand is {fields.get('Bearbeitungsstand')!r}")
        decisions = await self._get(run, enaio, params={"type": "Bescheid", "parent": str(vorgang_id)})
        if len(decisions["objects"]) != 1:
            problems.append(f"{len(decisions['objects'])} decisions filed in the Vorgang, expected 1")
        return problems

    async def _check_mailbox(
        self, application: Application, umwelt: UmweltService, run: DemoRun
    ) -> list[str]:
        """The applicant's mailbox: each status once, in order; every message under the Aktenzeichen."""
        box = await self._get(run, f"{run.site.url('zbp')}/_sim/mailboxes/{application.applicant.mailbox}")
        ours = [
            s for s in box["status_updates"] if s["payload"]["publicServiceName"]["de"] == umwelt.public_name
        ]
        statuses = [s["payload"]["status"] for s in ours]
        problems: list[str] = []
        if statuses != ["RECEIVED", "PROCESSING", "COMPLETED"]:
            problems.append(f"the mailbox got the statuses {statuses}")
        messages = [m for m in box["messages"] if m["payload"]["service"] == umwelt.public_name]
        with_decision = [m for m in messages if m["payload"].get("attachments")]
        if len(with_decision) != 1:
            problems.append(f"the mailbox got the decision {len(with_decision)} times, expected once")
        references = {m["payload"]["reference"] for m in messages}
        if references != {application.file_number}:
            problems.append(f"the mailbox's messages name {sorted(references)}, not the Aktenzeichen")
        return problems

    @staticmethod
    async def _get(run: DemoRun, url: str, **kwargs: Any) -> Any:
        return await run.json("GET", url, url, **kwargs)

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        return [("K3 cases", f"curl {site.url(SIMULATOR)}/control/cases")]
