"""The XTA part of `aktenhub demo`: an XTA 2 server others deliver into and the hub fetches from."""

from __future__ import annotations

from typing import Any

from hub.scenarios import DemoScenario, DemoSite


class XtaScenario(DemoScenario):
    """The XTA simulator (validating against the official schemas); portals and sources use it."""

    name = "xta"
    simulators = ("xta",)

    def simulator_options(self, simulator: str, site: DemoSite) -> dict[str, Any]:
        return {"schemas": str(site.schemas), "data_dir": str(site.data_dir / "xta")}
