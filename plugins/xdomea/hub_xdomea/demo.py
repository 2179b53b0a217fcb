"""The xdomea part of `aktenhub demo`: a DMS's xdomea import (simulated) and sink ``xdomea``."""

from __future__ import annotations

from typing import Any

from hub import DemoScenario, DemoSite


class XdomeaScenario(DemoScenario):
    """The xdomea DMS simulator and a sink that waits for its import confirmation (0629/0630)."""

    name = "xdomea"
    simulators = ("xdomea",)
    outbound = "xdomea DMS"

    def simulator_options(self, simulator: str, site: DemoSite) -> dict[str, Any]:
        return {"schemas": str(site.schemas), "users": {"aktenhub": site.secret("XDOMEA_PASSWORD")}}

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        url = site.url("xdomea")
        return {
            "xdomea": {
                "type": "xdomea",
                "mode": "http",
                "url": f"{url}/xdomea/import",
                # The DMS confirms each import (0629/0630); the delivery completes on its 0630.
                "receipt_requested": True,
                "answers_url": f"{url}/xdomea/answers",
                "username": "aktenhub",
                "password": site.secret_reference("XDOMEA_PASSWORD"),
                "sender": {
                    "behoerdenschluessel": "05382000",
                    "institution": "Rhein-Sieg-Kreis",
                    "organisationseinheit": "Amt 63 Bauaufsicht",
                },
                "receiver": {
                    "behoerdenschluessel": "05382000",
                    "institution": "Rhein-Sieg-Kreis",
                    "organisationseinheit": "Amt 10 Zentrale Dienste (DMS)",
                },
            }
        }

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        return [("xdomea imports", f"curl {site.url('xdomea')}/_sim/imports")]
