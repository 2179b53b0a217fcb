"""The XTA part of `aktenhub demo`: an XTA 2 server others deliver into and the hub fetches from."""

from __future__ import annotations

from typing import Any

from hub import DemoScenario, DemoSite, require_schema_directory


class XtaScenario(DemoScenario):
    """The XTA simulator (validating against the official schemas); portals and sources use it."""

    name = "xta"
    simulators = ("xta",)

    async def prepare(self, site: DemoSite) -> None:
        # The simulator validates every message against the official WSDL and schemas: say so up front.
        require_schema_directory(site.schemas, containing="xta/XTA.wsdl", purpose="the XTA simulator")

    def simulator_options(self, simulator: str, site: DemoSite) -> dict[str, Any]:
        return {"schemas": str(site.schemas), "data_dir": str(site.data_dir / "xta")}
