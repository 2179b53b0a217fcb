"""Shared pieces of the `rest` tests: the simulated Fachverfahren, sinks built as the hub builds them."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_fachverfahren.rest import RestSink
from hub_fachverfahren.rest.simulator import DEFAULT_CLIENTS, SPEC, STATE, RestFvState, make_app

from hub import Application, ConnectorContext, FileRecord
from hub.testing import default_record

CLIENT_ID, CLIENT_SECRET = next(iter(DEFAULT_CLIENTS.items()))
CALLBACK_SECRET = "callback-secret-of-the-test-1"
STATUS_MAP = {
    "EINGEGANGEN": "accepted",
    "IN_BEARBEITUNG": "in_progress",
    "NACHFORDERUNG": "action_required",
    "ABGELEHNT": "decided",  # a refusal is a decision, too
    "BESCHIEDEN": "decided",
    "IMPORTFEHLER": "failed",  # the Fachverfahren could not take the case in
}


@dataclass
class Fv:
    """A running simulated Fachverfahren."""

    url: str
    state: RestFvState

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The connector section an operator writes for it."""
        return {
            "type": "rest",
            "openapi": str(SPEC),
            "operation": "createCase",
            "base_url": f"{self.url}/api",
            "auth": {
                "type": "oauth2",
                "token_url": f"{self.url}/oauth/token",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
            "case_number": "$.aktenzeichen",
            "reference": "$.id",
            "callback": {"secret": CALLBACK_SECRET},
            "status_map": STATUS_MAP,
            "timeout_seconds": 5,
            **overrides,
        }

    def cases_of(self, application_id: str) -> int:
        """How many Vorgänge the simulator holds for an application."""
        return sum(1 for c in self.state.cases.values() if c.request.get("aktenhubId") == application_id)

    async def set_status(self, case_id: str, **order: Any) -> dict[str, Any]:
        """Change a Vorgang's status through the operator endpoint (the callback goes out)."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.url}/_sim/vorgaenge/{case_id}/status", json=order) as response,
        ):
            assert response.status == 200, await response.text()
            answer: dict[str, Any] = await response.json()
            return answer

    async def set_faults(self, **knobs: Any) -> None:
        """Turn fault knobs through the operator endpoint."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.url}/_sim/faults", json=knobs) as response,
        ):
            assert response.status == 200, await response.text()


StartFv = Callable[..., Awaitable[Fv]]


@pytest_asyncio.fixture
async def start_fv() -> AsyncIterator[StartFv]:
    """Start simulated Fachverfahren with the given options; they stop at teardown."""
    servers: list[TestServer] = []

    async def start(**options: Any) -> Fv:
        app = make_app(**options)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Fv(f"http://127.0.0.1:{server.port}", app[STATE])

    yield start
    for server in reversed(servers):
        await server.close()


def make_sink(context: ConnectorContext, settings: dict[str, Any]) -> RestSink:
    """A sink built the way the hub builds it: configuration validated by its `Config`."""
    return RestSink(RestSink.Config.model_validate(settings), context)


def payload(application: Application) -> dict[str, Any]:
    """What a route's mapping gives the simulated Fachverfahren for an application."""
    return {
        "aktenhubId": application.id,
        "leistung": application.service,
        "antragsteller": {
            "vorname": application.form.get("vorname", ""),
            "nachname": application.form.get("nachname", "-"),
        },
    }


def record_for(application: Application, target: str = "contract", **changes: Any) -> FileRecord:
    """The core's default record with the mapping's payload for `target`."""
    record = default_record(application)
    body = {**payload(application), **changes}
    return record.model_copy(update={"payloads": {target: body}})


def closed_loopback_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
