"""Shared pieces of the scan station tests: the enaio simulator's Akten, the hub's configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from hub_enaio.simulator import EnaioState, StoredObject
from hub_scanstation.demo import AKTEN, SOURCE  # the Ausländerakten enaio holds before the post arrives
from hub_scanstation.simulator import BatchSpec, DocumentSpec

from hub import Application
from hub.outbound import basic_authorization
from hub.testing import RunningHub

USER = "aktenhub"
PASSWORD = "simulator-password-1"
MAPPINGS = Path(__file__).resolve().parents[3] / "config" / "mappings"
AZ_YILMAZ, AZ_NOWAK = AKTEN[0]["Aktenzeichen"], AKTEN[1]["Aktenzeichen"]
AZ_UNKNOWN = "32.1-AT-2026-9999"


@dataclass
class Enaio:
    """A running enaio simulator and what it holds."""

    url: str
    state: EnaioState

    async def seed(self, akten: list[dict[str, str]]) -> None:
        """Create the Akten through the DMS API, as a clerk's client would."""
        headers = {"Authorization": basic_authorization(USER, PASSWORD)}
        async with aiohttp.ClientSession(headers=headers) as http:
            for fields in akten:
                properties = {"system:objectTypeId": {"value": "Auslaenderakte"}}
                properties.update({k: {"value": v} for k, v in fields.items()})
                async with http.post(
                    f"{self.url}/api/dms/objects", json={"objects": [{"properties": properties}]}
                ) as resp:
                    assert resp.status in (200, 201), await resp.text()

    def akte(self, aktenzeichen: str) -> StoredObject:
        """The Akte with this Aktenzeichen."""
        [found] = [
            o
            for o in self.state.objects.values()
            if o.type.internal == "Auslaenderakte" and o.value("Aktenzeichen") == aktenzeichen
        ]
        return found

    def akten(self) -> int:
        """How many Ausländerakten there are."""
        return sum(1 for o in self.state.objects.values() if o.type.internal == "Auslaenderakte")

    def in_akte(self, aktenzeichen: str) -> list[StoredObject]:
        """The scanned documents filed into the Akte."""
        akte = self.akte(aktenzeichen)
        return [o for o in self.posteingang() if o.parent_id == akte.id]

    def in_tray(self) -> list[StoredObject]:
        """The scanned documents in the technical user's tray."""
        return [o for o in self.posteingang() if o.in_tray]

    def posteingang(self) -> list[StoredObject]:
        """Every scanned document in enaio, oldest first."""
        return sorted(
            (o for o in self.state.objects.values() if o.type.internal == "ABHPosteingang"),
            key=lambda o: o.id,
        )


def connectors(enaio_url: str, hot_folder: Path, **source: Any) -> dict[str, Any]:
    """The scan station source and the enaio connector for scanned post."""
    settings: dict[str, Any] = {
        "type": "scanstation",
        "hot_folder": str(hot_folder),
        "poll_seconds": 3600,  # the tests poll themselves
        "services": {"WIDERSPRUCH": "posteingang-widerspruch"},
    }
    settings.update(source)
    return {
        SOURCE: settings,
        "enaio": {
            "type": "enaio",
            "base_url": enaio_url,
            "username": USER,
            "password": "${ENAIO_PASSWORD}",
            "akte_not_found": "tray",
            "without_akte": "tray",
        },
    }


ROUTES: list[dict[str, Any]] = [
    {
        "name": "scan-akte",
        "from": SOURCE,
        "when": {"service": ["posteingang-scan", "posteingang-widerspruch"]},
        "map": str(MAPPINGS / "scan-posteingang.yaml"),
        "to": ["enaio"],
    },
    {
        "name": "scan-korb",
        "from": SOURCE,
        "when": {"service": "posteingang-korb"},
        "map": str(MAPPINGS / "scan-posteingangskorb.yaml"),
        "to": ["enaio"],
    },
]
ENV = {"ENAIO_PASSWORD": PASSWORD}
# No scheduled polls and fast workers: a test polls itself and waits on observable state.
HUB_OPTIONS: dict[str, Any] = {"intake": {"enabled": False}}


async def poll(running: RunningHub) -> int:
    """One poll of the scan station source through the hub's intake."""
    source = running.hub.connectors[SOURCE]
    taken: int = await source.poll(running.hub.intake)
    return taken


async def applications(running: RunningHub) -> list[Application]:
    """Every application of the hub, oldest first."""
    from hub.journal import ApplicationFilter

    found = await running.journal.list_applications(ApplicationFilter(), limit=1000)
    apps = [await running.journal.get_application(s.id) for s in found]
    return sorted((a for a in apps if a is not None), key=lambda a: a.received_at)


def mixed_batch(name: str = "B0001", **overrides: Any) -> BatchSpec:
    """Three letters: one with an Aktenzeichen, one naming a person, one naming nobody."""
    documents = [
        DocumentSpec(
            document_type="WIDERSPRUCH",
            aktenzeichen=AZ_YILMAZ,
            pages=["Widerspruch gegen den Bescheid", "Begründung"],
        ),
        DocumentSpec(
            document_type="NACHWEIS", family_name="Nowak", given_name="Piotr", birth_date="30.11.1979"
        ),
        DocumentSpec(document_type="SCHREIBEN", pages=["Ein Brief ohne Absender"]),
    ]
    return BatchSpec(name=name, documents=documents, **overrides)
