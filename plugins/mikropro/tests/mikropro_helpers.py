"""Shared pieces of the Mikropro tests: the XTA accounts, the connector sections, the simulators' world
(a uniquely named module: plugin test folders are no packages)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from hub_enaio.simulator import EnaioState, StoredObject
from hub_xta.simulator import XtaState
from lxml import etree

from hub import ApplicationState
from hub.testing.fakes import RecordingNotifier
from hub.testing.harness import RunningHub

BAUAUFSICHT_XTA = "vbe:053820004"  # the Bauaufsicht's mailbox: Bauportal.NRW delivers here
HUB_XTA = "vbe:053820005"  # the hub's own account for Mikropro: Mikropro's answers arrive here
MIKROPRO_XTA = "vbe:053820063"  # Mikropro's mailbox
PORTAL_XTA = "bau:0500000001"
AUTHORITY = {"kennung": "vbe:053820004", "name": "Rhein-Sieg-Kreis, Untere Bauaufsichtsbehörde"}
MIKROPRO = {"kennung": "vbe:053820063", "name": "Mikropro Bauamt"}
ENAIO_USER, ENAIO_PASSWORD = "aktenhub", "enaio-mikropro-secret"
FORMCYCLE_TOKEN = "formcycle-mikropro-token-0123456789"
MAPPINGS = Path(__file__).resolve().parents[3] / "config" / "mappings"
FAST_RETRY = {"max_attempts": 5, "initial_seconds": 0.05, "max_seconds": 0.2, "jitter_seconds": 0}
KERNMODUL = "http://www.xleitstelle.de/xbau/kernmodul/1/3/0"
BN = "http://xoev.de/schemata/basisnachricht/g2g/1_1"
HUB_OPTIONS: dict[str, Any] = {
    "env": {"ENAIO_PASSWORD": ENAIO_PASSWORD, "FORMCYCLE_TOKEN": FORMCYCLE_TOKEN},
    # the rendition in a thread of the test process: no process pool to start
    "workers": {"concurrency": 8, "lease_seconds": 30, "idle_poll_seconds": 0.2, "render_processes": 0},
}


@dataclass
class Xta:
    """A running XTA simulator."""

    url: str
    state: XtaState

    def sent_by(self, author: str, message_type: str | None = None) -> list[Any]:
        """Messages an account sent (of a type), oldest first."""
        return [
            m
            for m in self.state.sent
            if m.metadata.author.identifier == author
            and (message_type is None or m.metadata.message_type == message_type)
        ]


@dataclass
class Enaio:
    """A running enaio simulator."""

    url: str
    state: EnaioState

    def of_type(self, internal: str) -> list[StoredObject]:
        """Every object of a type, oldest first."""
        return sorted(
            (o for o in self.state.objects.values() if o.type.internal == internal), key=lambda o: o.id
        )


@dataclass
class Mikropro:
    """The running Mikropro simulator, driven through its control endpoints."""

    server: TestServer
    http: aiohttp.ClientSession

    async def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST (with a body) or GET a control endpoint; its JSON answer."""
        url = self.server.make_url(f"/control/{path}")
        method = self.http.post if body is not None or path != "cases" else self.http.get
        async with method(url, json=body) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


def mikropro_section(xta_url: str, **settings: Any) -> dict[str, Any]:
    """The operator's Mikropro section over XTA: the hub's account, Mikropro's, the two XBau names."""
    return {
        "type": "mikropro",
        "xta": {"url": xta_url, "account": {"identifier": HUB_XTA}, "timeout_seconds": 5},
        "recipient": {"identifier": MIKROPRO_XTA},
        "authority": AUTHORITY,
        "fachverfahren": MIKROPRO,
        "poll_seconds": 0.1,
        "retry": FAST_RETRY,
        **settings,
    }


def enaio_section(url: str) -> dict[str, Any]:
    """The Bauaufsicht's enaio cabinet."""
    return {
        "type": "enaio",
        "base_url": url,
        "username": ENAIO_USER,
        "password": "${ENAIO_PASSWORD}",
        "timeout_seconds": 5,
        "object_types": ["Bauakte", "Bauantrag", "Bauvorlage"],
        "retry": FAST_RETRY,
    }


def parsed(message: Any) -> etree._Element:
    """An XTA message's content as XML."""
    return etree.parse(str(message.message.path)).getroot()


async def answers_told(running: RunningHub, app_id: str, count: int) -> None:
    """Wait until `count` answers of Mikropro are filed and told and the application is completed again."""
    mailbox = running.hub.connectors["mailbox"]
    assert isinstance(mailbox, RecordingNotifier)

    async def done() -> bool:
        summary = await running.journal.get_summary(app_id)
        told = [key for key in mailbox.statuses if key[0] == app_id]
        return len(told) == count and summary is not None and summary.state == ApplicationState.COMPLETED

    await running.wait_for(done, what=f"{count} answers of Mikropro filed and told")
