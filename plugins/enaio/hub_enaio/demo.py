"""The enaio part of `aktenhub demo`: its simulator and the e-file connector the other scenarios file into.

Scenarios that route into it add the object types their mapping files use to ``connectors.enaio``.
"""

from __future__ import annotations

from typing import Any

from hub import Application, ApplicationState, DemoRun, DemoScenario, DemoSite


class EnaioScenario(DemoScenario):
    """The enaio simulator (DMS Service API) and connector ``enaio``; shows each application's Akte."""

    name = "enaio"
    simulators = ("enaio",)
    outbound = "Enaio (e-file)"
    columns = ("Akte", "Vorgang", "docs")

    def __init__(self) -> None:
        self._akten: set[str] = set()  # Akten already shown: a later application in one is marked

    def simulator_options(self, simulator: str, site: DemoSite) -> dict[str, Any]:
        return {
            "users": {"aktenhub": site.secret("ENAIO_PASSWORD")},
            "content_dir": str(site.data_dir / "enaio"),
        }

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        return {
            "enaio": {
                "type": "enaio",
                "base_url": site.url("enaio"),
                "api": "dms",
                "username": "aktenhub",
                "password": site.secret_reference("ENAIO_PASSWORD"),
                "object_types": [],
                "max_concurrency": 4,
            }
        }

    async def describe(
        self, application: Application, state: ApplicationState, run: DemoRun
    ) -> dict[str, str]:
        correlations = application.correlations
        akte = correlations.get("enaio.akte", "-")
        shown = f"{akte} (existing)" if akte in self._akten and akte != "-" else akte
        self._akten.add(akte)
        documents = correlations.get("enaio.documents", "")
        return {
            "Akte": shown,
            "Vorgang": correlations.get("enaio.vorgang", "-"),
            "docs": str(len(documents.split(","))) if documents else "0",
        }

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        return [("Enaio objects", f"curl {site.url('enaio')}/_sim/objects")]
