"""The BundID mailbox part of `aktenhub demo`: the ZBP simulator and notifier ``postfach``.

Scenarios that notify through it add their services' public names to ``connectors.postfach.services``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hub import Application, ApplicationState, DemoRun, DemoScenario, DemoSite

from .keys import generate_author

KEY_FILE = "zbp-author.key.pem"
CERTIFICATE_FILE = "zbp-author.crt.pem"


def _write_author_key(site: DemoSite) -> None:
    """The demo's sender key and self-signed certificate for the messages' signed envelope."""
    author = generate_author("Aktenhub Demo Rhein-Sieg-Kreis", organisation="Rhein-Sieg-Kreis", valid_days=30)
    author.write(site.data_dir, stem="zbp-author")


class ZbpScenario(DemoScenario):
    """The ZBP simulator and notifier ``postfach``; shows what each applicant's mailbox received."""

    name = "zbp"
    simulators = ("zbp",)
    outbound = "Postfach"
    columns = ("answer",)

    async def prepare(self, site: DemoSite) -> None:
        await asyncio.to_thread(_write_author_key, site)

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        return {
            "postfach": {
                "type": "zbp",
                "base_url": site.url("zbp"),
                "author_key": f"file:{site.data_dir / KEY_FILE}",
                "author_certificate": str(site.data_dir / CERTIFICATE_FILE),
                "sender_name": "Rhein-Sieg-Kreis",
            }
        }

    async def describe(
        self, application: Application, state: ApplicationState, run: DemoRun
    ) -> dict[str, str]:
        handle = application.applicant.mailbox
        if not handle:
            return {}
        async with run.http.get(f"{run.site.url('zbp')}/_sim/mailboxes/{handle}") as resp:
            if resp.status != 200:
                return {"answer": "0"}
            box = await resp.json()
        messages = box.get("messages", [])
        statuses = box.get("status_updates", box.get("statuses", []))
        return {"answer": f"{len(messages)} msg, {len(statuses)} status"}

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        return [("BundID mailboxes", f"curl {site.url('zbp')}/_sim/mailboxes")]
