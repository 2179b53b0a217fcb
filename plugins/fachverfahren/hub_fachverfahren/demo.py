"""The Fachverfahren part of `aktenhub demo`: into a Fachverfahren through its import folder and back.

A citizen applies through FormCycle (with a BundID login) for a wasserrechtliche Erlaubnis; the hub files
it into enaio and writes it, with a K3-style manifest (``config/mappings/k3-manifest.xml.j2``), into the
import folder of the Untere Wasserbehörde's simulated Fachverfahren (simulator ``importfolder``). The
scenario then plays its clerk through the simulator's control endpoints: the import is taken (a case
number, result "eingegangen"), then decided with a decision PDF ("beschieden"). The hub's answer polling
takes each result file; the route's ``on_answer`` has enaio set the Akte's index fields and file the
decision into the Vorgang, and the BundID mailbox tell the applicant. `check` verifies it from outside.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from hub import Application, ApplicationState, DemoRun, DemoScenario, DemoSite, Expectation

from .casework import decision_pdf  # a minimal PDF, here for the uploaded attachments

CONNECTOR = "umwelt-fv"
SERVICE = "wasserrecht"
PUBLIC_NAME = "Wasserrechtliche Erlaubnis"
SIMULATOR = "importfolder"
CASE_PREFIX = "UWB"
PERSON = "U03"  # the BundID test person who applies
STATUS_MAP = {"eingegangen": "accepted", "in Bearbeitung": "in_progress", "beschieden": "decided"}
WAIT_SECONDS = 60.0  # longest wait for one of the hub's steps before the scenario gives up
POLL_SECONDS = 0.1
FORM = {
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
}


async def _json(response: aiohttp.ClientResponse, what: str) -> Any:
    body = await response.json(content_type=None)
    if response.status >= 300:
        raise RuntimeError(f"{what} answered {response.status}: {body}")
    return body


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll an observable state until `condition` holds; `TimeoutError` naming `what` otherwise."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {WAIT_SECONDS:.0f} s for {what}")
        await asyncio.sleep(POLL_SECONDS)  # polling a state, not synchronisation


async def hub_view(run: DemoRun, application_id: str) -> dict[str, Any]:
    """The application as the hub's admin API shows it (state, timeline)."""
    url = f"{run.site.hub_url}/api/v1/applications/{application_id}"
    async with run.http.get(url, headers=run.site.admin_headers()) as resp:
        view: dict[str, Any] = await _json(resp, "the hub's admin API")
        return view


async def answered(run: DemoRun, application_id: str, answers: int) -> None:
    """Wait until the hub took `answers` answers and carried each out (the application completed again)."""

    async def done() -> bool:
        view = await hub_view(run, application_id)
        received = sum(e["type"] == "answer.received" for e in view["timeline"])
        return received >= answers and str(view["state"]) == ApplicationState.COMPLETED

    await _until(done, f"answer {answers} of {CONNECTOR} to be carried out")


class ImportFolderScenario(DemoScenario):
    """A wasserrechtliche Erlaubnis into enaio and the import folder; the case number and decision back."""

    name = "fv-importfolder"
    requires = ("formcycle", "enaio", "zbp")
    simulators = (SIMULATOR,)
    outbound = "Fachverfahren (import folder) and back"
    columns = ("case number",)

    def simulator_options(self, simulator: str, site: DemoSite) -> dict[str, Any]:
        base = site.data_dir / CONNECTOR
        return {
            "import_dir": str(base / "import"),
            "answer_dir": str(base / "export"),
            "data_dir": str(base / "work"),
            "prefix": CASE_PREFIX,
        }

    async def prepare(self, site: DemoSite) -> None:
        for folder in ("import", "export"):
            await asyncio.to_thread((site.data_dir / CONNECTOR / folder).mkdir, parents=True, exist_ok=True)

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        base = site.data_dir / CONNECTOR
        return {
            CONNECTOR: {
                "type": "importfolder",
                "path": str(base / "import"),
                "answers": str(base / "export"),
                "manifest": {"template": str(site.mapping("k3-manifest.xml.j2"))},
                "poll_seconds": 0.2,
                # The simulator writes its result files atomically (rename): nothing to let settle.
                "answer_format": {"status_map": STATUS_MAP, "settle_seconds": 0},
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
                "map": str(site.mapping("wasserrecht.yaml")),
                "to": ["enaio", CONNECTOR],
                "notify": ["postfach", "receipts"],
                "on_answer": {"update_akte": "enaio", "notify": ["postfach"], "decision": "both"},
            }
        ]

    async def submit(self, run: DemoRun) -> None:
        application_id = await self._apply(run)
        expectation = run.expect(Expectation(ApplicationState.COMPLETED, application_id=application_id))
        await run.settled([expectation])  # filed in enaio and written into the import folder
        fachverfahren = run.site.url(SIMULATOR)
        # The Fachverfahren takes the import and opens a case: its first result file.
        async with run.http.post(f"{fachverfahren}/control/import") as resp:
            taken = await _json(resp, "the import folder simulator")
        if application_id not in taken["imported"]:
            raise RuntimeError(f"the Fachverfahren did not import the application: {taken}")
        await answered(run, application_id, 1)
        # Later the clerk decides: the second result file, with the decision as a PDF beside it.
        decision = {
            "reference": application_id,
            "status": "beschieden",
            "message": "Die wasserrechtliche Erlaubnis wird befristet bis 2036 erteilt.",
            "pdf": True,
        }
        async with run.http.post(f"{fachverfahren}/control/decide", json=decision) as resp:
            await _json(resp, "the import folder simulator")
        await answered(run, application_id, 2)

    async def _apply(self, run: DemoRun) -> str:
        """The application as FormCycle posts it, with the applicant's BundID login; its id."""
        login_url = f"{run.site.url('bundid')}/sim/response"
        async with run.http.post(login_url, json={"person": PERSON, "means": "eID"}) as resp:
            login = await _json(resp, "the BundID simulator")
        form = aiohttp.FormData({**FORM, "bundid_saml_response": login["response"]})
        for element, name in (
            ("lageplan", "Lageplan_Entnahmestelle.pdf"),
            ("ausweis", "Personalausweis.pdf"),
        ):
            form.add_field(element, decision_pdf(name), filename=name, content_type="application/pdf")
        headers = {"X-Aktenhub-Token": run.site.secret("FORMCYCLE_TOKEN")}
        url = f"{run.site.hub_url}/intake/formcycle/{SERVICE}"
        async with run.http.post(url, data=form, headers=headers) as resp:
            return str((await _json(resp, "the hub's FormCycle intake"))["application_id"])

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
        cases = await self._get(run, f"{run.site.url(SIMULATOR)}/control/cases")
        opened = [c["case_number"] for c in cases["cases"] if c["reference"] == application.id]
        if opened != [case_number]:
            problems.append(f"the Fachverfahren opened {opened}, the hub knows {case_number}")
        problems += await self._check_enaio(application, case_number, run)
        problems += await self._check_mailbox(application, run)
        # The hub: the Aktenzeichen is its own, the case number finds the application.
        url = f"{run.site.hub_url}/api/v1/applications"
        found = await self._get(run, url, params={"q": case_number}, headers=run.site.admin_headers())
        if [a["id"] for a in found["applications"]] != [application.id]:
            problems.append(f"the case number {case_number} does not find the application")
        view = await hub_view(run, application.id)
        if view["file_number"] != application.file_number:
            problems.append("the hub's Aktenzeichen changed")
        return problems

    async def _check_enaio(self, application: Application, case_number: str, run: DemoRun) -> list[str]:
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
        if fields.get("Bearbeitungsstand") != "Bescheid erlassen":
            problems.append(f"the Akte's Bearbeitungsstand is {fields.get('Bearbeitungsstand')!r}")
        decisions = await self._get(run, enaio, params={"type": "Bescheid", "parent": str(vorgang_id)})
        if len(decisions["objects"]) != 1:
            problems.append(f"{len(decisions['objects'])} decisions filed in the Vorgang, expected 1")
        return problems

    async def _check_mailbox(self, application: Application, run: DemoRun) -> list[str]:
        """The applicant's mailbox: each status once, in order; every message under the Aktenzeichen."""
        box = await self._get(run, f"{run.site.url('zbp')}/_sim/mailboxes/{application.applicant.mailbox}")
        ours = [s for s in box["status_updates"] if s["payload"]["publicServiceName"]["de"] == PUBLIC_NAME]
        statuses = [s["payload"]["status"] for s in ours]
        problems: list[str] = []
        if statuses != ["RECEIVED", "PROCESSING", "COMPLETED"]:
            problems.append(f"the mailbox got the statuses {statuses}")
        messages = [m for m in box["messages"] if m["payload"]["service"] == PUBLIC_NAME]
        with_decision = [m for m in messages if m["payload"].get("attachments")]
        if len(with_decision) != 1:
            problems.append(f"the mailbox got the decision {len(with_decision)} times, expected once")
        references = {m["payload"]["reference"] for m in messages}
        if references != {application.file_number}:
            problems.append(f"the mailbox's messages name {sorted(references)}, not the Aktenzeichen")
        return problems

    @staticmethod
    async def _get(run: DemoRun, url: str, **kwargs: Any) -> Any:
        async with run.http.get(url, **kwargs) as resp:
            return await _json(resp, url)

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        return [("Fachverfahren cases", f"curl {site.url(SIMULATOR)}/control/cases")]
