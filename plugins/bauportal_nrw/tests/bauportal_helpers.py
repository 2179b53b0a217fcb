"""Shared pieces of the Bauportal.NRW tests: simulators, a building application, hub configuration."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from hub_bauportal_nrw.samples import SampleBauantrag, enqueue_bauantrag, sample_bauantrag, xta_metadata
from hub_bauportal_nrw.xbau import Behoerde
from hub_enaio.simulator import EnaioState, StoredObject
from hub_xta.simulator import XtaState

AUTHORITY_XTA = "vbe:053820004"  # our XTA account: the Bauaufsicht's mailbox
PORTAL_XTA = "bau:0500000001"  # the portal's XTA account
AUTHORITY = Behoerde(kennung="vbe:053820004", name="Rhein-Sieg-Kreis, Untere Bauaufsichtsbehörde")
PORTAL = Behoerde(kennung="psw:05000000001", name="Bauportal.NRW")
ENAIO_USER = "aktenhub"
ENAIO_PASSWORD = "simulator-password-1"
MAPPING = Path(__file__).resolve().parents[3] / "config" / "mappings" / "bauantrag.yaml"


@dataclass
class Xta:
    """A running XTA simulator."""

    url: str
    state: XtaState


@dataclass
class Enaio:
    """A running enaio simulator."""

    url: str
    state: EnaioState

    def of_type(self, internal: str) -> list[StoredObject]:
        """Every object of a type, oldest first."""
        return [
            o for o in sorted(self.state.objects.values(), key=lambda o: o.id) if o.type.internal == internal
        ]

    def children(self, parent: int) -> list[StoredObject]:
        """The objects directly under a parent, oldest first."""
        return [o for o in sorted(self.state.objects.values(), key=lambda o: o.id) if o.parent_id == parent]


StartXta = Callable[..., Awaitable[Xta]]
StartEnaio = Callable[..., Awaitable[Enaio]]


Plan = SampleBauantrag


def sha256(data: bytes) -> str:
    """Hex digest."""
    return hashlib.sha256(data).hexdigest()


def bauantrag(**overrides: Any) -> Plan:
    """A valid 0200 from the portal to the Bauaufsicht with three Anlagen."""
    return sample_bauantrag(autor=PORTAL, leser=AUTHORITY, **overrides)


def antrag_metadata(**overrides: Any) -> dict[str, Any]:
    """XTA metadata of a Bauantrag as the portal writes it."""
    return xta_metadata(PORTAL_XTA, **overrides)


async def send(http: aiohttp.ClientSession, xta: Xta, plan: Plan, xml: bytes | None = None) -> str:
    """Put the application into the Bauaufsicht's mailbox, as the portal does; its XTA message id."""
    return await enqueue_bauantrag(http, xta.url, AUTHORITY_XTA, plan, author=PORTAL_XTA, xml=xml)


def xta_settings(url: str) -> dict[str, Any]:
    """The XTA settings of the Bauaufsicht's account."""
    return {"url": url, "account": {"identifier": AUTHORITY_XTA}, "timeout_seconds": 5}


def authority() -> dict[str, Any]:
    """The Bauaufsicht as configured."""
    return AUTHORITY.model_dump()


FAST_RETRY = {"max_attempts": 5, "initial_seconds": 0.05, "max_seconds": 0.1, "jitter_seconds": 0}


def hub_connectors(
    xta_url: str, enaio_url: str, *, source_type: str = "bauportal-nrw", **source: Any
) -> dict[str, Any]:
    """Source, enaio sink and the answers: the Bauantrag route's connectors."""
    return {
        "bauportal": {
            "type": source_type,
            "xta": xta_settings(xta_url),
            "authority": authority(),
            "poll_seconds": 3600,
            **source,
        },
        "efile": {
            "type": "enaio",
            "base_url": enaio_url,
            "username": ENAIO_USER,
            "password": "${ENAIO_PASSWORD}",
            "timeout_seconds": 5,
            "object_types": ["Bauakte", "Bauantrag", "Bauvorlage"],
            "retry": FAST_RETRY,
        },
        "antworten": {
            "type": "bauportal-nrw-answers",
            "xta": xta_settings(xta_url),
            "authority": authority(),
            "retry": FAST_RETRY,
        },
    }


ROUTES = [
    {"name": "bauantrag", "from": "bauportal", "map": str(MAPPING), "to": ["efile"], "notify": ["antworten"]}
]
HUB_OPTIONS: dict[str, Any] = {
    "env": {"ENAIO_PASSWORD": ENAIO_PASSWORD},
    # the rendition in a thread of the test process: no process pool to start
    "workers": {"concurrency": 8, "lease_seconds": 30, "idle_poll_seconds": 0.2, "render_processes": 0},
}
