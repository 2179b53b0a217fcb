"""The scan station part of `aktenhub demo`: paper post into the Ausländerakten of the enaio simulator.

enaio holds two Ausländerakten; the scan station simulator exports two batches into the hot folder: an
XML-indexed one (a Widerspruch with an Aktenzeichen, a Nachweis naming the person, a letter naming
nobody) and a cover-sheet one (two letters, one for an Aktenzeichen enaio does not know). Four documents
land in their Akten; the letter naming nobody (the source's decision) and the one for the unknown
Aktenzeichen (the e-file's decision) land in the tray — no Akte is opened for scanned post.
"""

from __future__ import annotations

from typing import Any

from hub import Application, ApplicationState, DemoRun, DemoScenario, DemoSite, Expectation

SOURCE = "scanstation"
EFILE = "enaio-scan"  # the e-file connector for scanned post: never opens an Akte
AKTEN = [
    {
        "Aktenzeichen": "32.1-AT-2026-0101",
        "Familienname": "Yilmaz",
        "Vorname": "Elif",
        "Geburtsdatum": "1988-04-12",
    },
    {
        "Aktenzeichen": "32.1-AT-2026-0102",
        "Familienname": "Nowak",
        "Vorname": "Piotr",
        "Geburtsdatum": "1979-11-30",
    },
]
BATCHES: list[dict[str, Any]] = [
    {
        "name": "B0001",
        "index": "xml",
        "documents": [
            {
                "document_type": "WIDERSPRUCH",
                "aktenzeichen": "32.1-AT-2026-0101",
                "pages": ["Widerspruch", "Gründe"],
            },
            {
                "document_type": "NACHWEIS",
                "family_name": "Nowak",
                "given_name": "Piotr",
                "birth_date": "30.11.1979",
            },
            {"document_type": "SCHREIBEN", "pages": ["Ein Brief ohne Absender und Aktenzeichen"]},
        ],
    },
    {
        "name": "T0001",
        "shape": "group",
        "index": "none",
        "documents": [
            {
                "document_type": "NACHWEIS",
                "aktenzeichen": "32.1-AT-2026-0102",
                "pages": ["Meldebescheinigung"],
            },
            {"document_type": "SCHREIBEN", "aktenzeichen": "32.1-AT-2026-9999", "pages": ["Anfrage"]},
        ],
    },
]
ROUTES = ("scan-akte", "scan-korb")


class ScanStationScenario(DemoScenario):
    """Two batches from the scan station simulator: four documents in their Akten, two in the tray."""

    name = "scanstation"
    requires = ("enaio",)
    simulators = ("scanstation",)
    inbound = "Scan station (hot folder)"
    columns = ("scan",)

    def simulator_options(self, simulator: str, site: DemoSite) -> dict[str, Any]:
        return {"hot_folder": str(site.data_dir / "scanstation")}

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        return {
            SOURCE: {
                "type": "scanstation",
                "hot_folder": str(site.data_dir / "scanstation"),
                "poll_seconds": 1,
                "services": {"WIDERSPRUCH": "posteingang-widerspruch"},
            },
            EFILE: {
                "type": "enaio",
                "base_url": site.url("enaio"),
                "username": "aktenhub",
                "password": site.secret_reference("ENAIO_PASSWORD"),
                "object_types": ["Auslaenderakte", "ABHPosteingang"],
                "akte_not_found": "tray",
                "without_akte": "tray",
            },
        }

    def routes(self, site: DemoSite) -> list[dict[str, Any]]:
        return [
            {
                "name": "scan-akte",
                "from": SOURCE,
                "when": {"service": ["posteingang-scan", "posteingang-widerspruch"]},
                "map": str(site.mapping("scan-posteingang.yaml")),
                "to": [EFILE],
            },
            {
                "name": "scan-korb",
                "from": SOURCE,
                "when": {"service": "posteingang-korb"},
                "map": str(site.mapping("scan-posteingangskorb.yaml")),
                "to": [EFILE],
            },
        ]

    async def submit(self, run: DemoRun) -> None:
        site = run.site
        auth = {"Authorization": _basic("aktenhub", site.secret("ENAIO_PASSWORD"))}
        for fields in AKTEN:  # the Akten a clerk opened long ago
            properties = {"system:objectTypeId": {"value": "Auslaenderakte"}}
            properties.update({k: {"value": v} for k, v in fields.items()})
            body = {"objects": [{"properties": properties}]}
            await run.json("POST", f"{site.url('enaio')}/api/dms/objects", "enaio", json=body, headers=auth)
        for batch in BATCHES:
            await run.json("POST", f"{site.url('scanstation')}/sim/batches", "scan station", json=batch)

        async def both_done() -> bool:
            found = await run.json("GET", f"{site.url('scanstation')}/sim/folders", "scan station")
            return {"B0001", "T0001"} <= set(found["done"])

        await run.until(both_done, "the scan batches to be taken into done/")
        for route in ROUTES:
            url = f"{site.hub_url}/api/v1/applications?route={route}"
            listed = await run.json("GET", url, "hub", headers=site.admin_headers())
            for item in listed["applications"]:
                run.expect(Expectation(state=ApplicationState.COMPLETED, application_id=item["id"]))

    async def describe(
        self, application: Application, state: ApplicationState, run: DemoRun
    ) -> dict[str, str]:
        if application.source != SOURCE:
            return {}
        where = "tray" if application.service == "posteingang-korb" else "Akte or tray"
        correlations = application.correlations
        if f"{EFILE}.akte" in correlations:
            where = f"Akte {application.file_number or correlations[f'{EFILE}.akte']}"
        elif application.route == "scan-akte":
            where = "tray (no such Akte)"
        return {"scan": where}

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        return [("Scan station folders", f"curl {site.url('scanstation')}/sim/folders")]


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
