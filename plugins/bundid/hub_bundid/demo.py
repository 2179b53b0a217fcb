"""The BundID part of `aktenhub demo`: the identity provider's simulator and connector ``bundid``.

A form server's scenario logs its applicants in at the simulator (``POST /sim/response``) and routes
through ``identity: {via: bundid}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub import DemoScenario, DemoSite

SP_ENTITY_ID = "https://aktenhub.rhein-sieg-kreis.example/saml/sp"
ACS_URL = "https://formulare.rhein-sieg-kreis.example/bundid/acs"


class BundIdScenario(DemoScenario):
    """The BundID simulator (SAML IdP with the reference test persons) and connector ``bundid``."""

    name = "bundid"
    simulators = ("bundid",)

    def simulator_options(self, simulator: str, site: DemoSite) -> dict[str, Any]:
        return {
            "sp_entity_id": SP_ENTITY_ID,
            "acs_url": ACS_URL,
            "base_url": site.url("bundid"),  # it names itself in its metadata
            "metadata_file": str(self._metadata(site)),
        }

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        return {
            "bundid": {
                "type": "bundid",
                "mode": "saml",
                "idp_metadata": str(self._metadata(site)),
                "sp_entity_id": SP_ENTITY_ID,
                "acs_url": ACS_URL,
            }
        }

    @staticmethod
    def _metadata(site: DemoSite) -> Path:
        return site.data_dir / "bundid-idp-metadata.xml"
