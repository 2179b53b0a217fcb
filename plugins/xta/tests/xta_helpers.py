"""Shared pieces of the XTA tests: a running simulator, clients built like a plugin builds them."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from hub_xta import PartyId, XtaClient, XtaSettings
from hub_xta.simulator import XtaState

from hub.blobs import BlobStore

AUTHORITY = "vbe:bauaufsicht-siegburg"  # our account: the Bauaufsicht's mailbox
PORTAL = "vbe:bauportal-nrw"  # the portal that writes to us
XBAU_NS = "http://www.xleitstelle.de/xbau/2/6"
XBAU_SERVICE = "urn:xoev-de:xleitstelle:standard:xbau"


@dataclass
class Xta:
    """A running simulator: where it listens, and what it holds."""

    url: str
    state: XtaState


StartXta = Callable[..., Awaitable[Xta]]


def make_client(
    url: str,
    schema_dir: Path,
    http: aiohttp.ClientSession,
    blobs: BlobStore | None,
    account: str = AUTHORITY,
    **settings: Any,
) -> XtaClient:
    """A client whose settings went through validation, as a connector's Config does it."""
    validated = XtaSettings.model_validate(
        {"url": url, "account": {"identifier": account, "type": "xoev"}, "timeout_seconds": 5, **settings}
    )
    return XtaClient(validated, schemas=schema_dir, http=http, blobs=blobs)


def antrag_metadata(**overrides: Any) -> dict[str, Any]:
    """Metadata of a Bauantrag (XBau 0200) as the portal writes it."""
    return {
        "author": {"identifier": PORTAL, "type": "xoev", "name": "Bauportal.NRW"},
        "service": XBAU_SERVICE,
        "business_scenario": "XBAU_DATA",
        "business_scenario_list_uri": "urn:de:dataport:codeliste:business.scenario",
        "business_scenario_list_version": "1",
        "message_type": "baugenehmigung.antrag.0200",
        "payload_schema": XBAU_NS,
        "subject": "Bauantrag",
        **overrides,
    }


def sha256(data: bytes) -> str:
    """Hex digest."""
    return hashlib.sha256(data).hexdigest()


def party(identifier: str) -> PartyId:
    """A party of type xoev."""
    return PartyId(identifier=identifier)
