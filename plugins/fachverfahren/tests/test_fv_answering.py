"""The rest and soap transports pass the answering-sink contract: answers reach the application through
the hub's return channel, once, and are acknowledged upstream only after they are stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hub_fachverfahren.soap.simulator import DEFAULT_USERS, PATH, STATE, WSDL, SoapFvState, make_app
from rest_helpers import CALLBACK_SECRET, STATUS_MAP, Fv, StartFv, start_fv

from hub import AnswerStatus
from hub.testing import RunningHub
from hub.testing.contracts import AnsweringSinkContract

__all__ = ["start_fv"]

WORDS = {status: word for word, status in STATUS_MAP.items()}  # the simulators' status words
REST_MAPPING = """\
payloads:
  fv:
    aktenhubId: "{{ id }}"
    leistung: "{{ service }}"
    antragsteller: {nachname: "{{ form.nachname }}"}
"""
SOAP_MAPPING = """\
payloads:
  fv:
    ExterneKennung: "{{ id }}"
    Leistung: "{{ service }}"
    Antragsteller: {Nachname: "{{ form.nachname }}"}
"""


async def _start(hub_factory: Any, tmp_path: Path, fv: dict[str, Any], mapping: str) -> RunningHub:
    path = tmp_path / "fv-mapping.yaml"
    path.write_text(mapping, encoding="utf-8")
    connectors = {"json": {"type": "test-json"}, "fv": fv}
    routes = [{"name": "fv", "from": "json", "to": ["fv"], "map": str(path)}]
    running: RunningHub = await hub_factory(connectors, routes)
    return running


async def _submit(running: RunningHub, n: int) -> str:
    status, body = await running.post(
        "/intake/json/aufenthalt", json={"id": f"c-{n}", "form": {"nachname": "Groß"}}
    )
    assert status == 202, body
    return str(body["application_id"])


class _RestContract(AnsweringSinkContract):
    fv: Fv

    async def submit(self, running: RunningHub, n: int) -> str:
        return await _submit(running, n)

    async def give_answer(
        self, running: RunningHub, application_id: str, n: int, status: AnswerStatus
    ) -> None:
        (case,) = [c for c in self.fv.state.cases.values() if c.request["aktenhubId"] == application_id]
        await self.fv.set_status(case.id, status=WORDS[status.value], event_id=f"evt-{n}")


class TestRestCallbackAnswers(_RestContract):
    @pytest.fixture
    async def answering_hub(self, hub_factory: Any, start_fv: StartFv, tmp_path: Path) -> RunningHub:
        self.fv = await start_fv()
        running = await _start(hub_factory, tmp_path, self.fv.settings(), REST_MAPPING)
        self.fv.state.callback_url = f"{running.url}/callback/fv"
        self.fv.state.callback_secret = CALLBACK_SECRET
        return running

    async def acknowledgements(self, running: RunningHub, application_id: str, n: int) -> int:
        return sum(
            1
            for status, event in self.fv.state.callbacks
            if 200 <= status < 300 and event["eventId"] == f"evt-{n}"
        )


class TestRestPolledAnswers(_RestContract):
    @pytest.fixture
    async def answering_hub(self, hub_factory: Any, start_fv: StartFv, tmp_path: Path) -> RunningHub:
        self.fv = await start_fv()
        polling = {
            "answers": {
                "operation": "listAnswers",
                "acknowledge": "ackAnswer",
                "parameter": "antwortId",
                "interval": 0.1,
            },
            "answer_fields": {"each": "$.antworten[*]"},
        }
        return await _start(hub_factory, tmp_path, self.fv.settings(**polling), REST_MAPPING)

    async def acknowledgements(self, running: RunningHub, application_id: str, n: int) -> int:
        return self.fv.state.acknowledged[f"evt-{n}"]


class TestSoapPolledAnswers(AnsweringSinkContract):
    @pytest.fixture
    async def answering_hub(self, hub_factory: Any, tmp_path: Path) -> Any:
        self.server = TestServer(make_app(), host="127.0.0.1")
        await self.server.start_server()
        self.state: SoapFvState = self.server.app[STATE]
        self.base = f"http://127.0.0.1:{self.server.port}"
        user, password = next(iter(DEFAULT_USERS.items()))
        settings = {
            "type": "soap",
            "wsdl": str(WSDL),
            "operation": "VorgangAnlegen",
            "endpoint": self.base + PATH,
            "auth": {"type": "basic", "username": user, "password": password},
            "case_number": "$.Aktenzeichen",
            "reference": "$.VorgangsId",
            "answers": {
                "operation": "AntwortenAbholen",
                "acknowledge": "AntwortQuittieren",
                "parameter": "AntwortId",
                "interval": 0.1,
            },
            "answer_fields": {
                "each": "$[*]",
                "answer_id": "$.AntwortId",
                "reference": "$.VorgangsId",
                "case_number": "$.Aktenzeichen",
                "status": "$.Status",
                "decision_content": "$.Bescheid.Inhalt",
                "decision_url": None,
            },
            "status_map": STATUS_MAP,
        }
        yield await _start(hub_factory, tmp_path, settings, SOAP_MAPPING)
        await self.server.close()

    async def submit(self, running: RunningHub, n: int) -> str:
        return await _submit(running, n)

    async def give_answer(
        self, running: RunningHub, application_id: str, n: int, status: AnswerStatus
    ) -> None:
        order = {"status": WORDS[status.value], "answer_id": f"A-{n}"}
        url = f"{self.base}/_sim/vorgaenge/{application_id}/status"
        async with aiohttp.ClientSession() as http, http.post(url, json=order) as response:
            assert response.status == 200, await response.text()

    async def acknowledgements(self, running: RunningHub, application_id: str, n: int) -> int:
        return self.state.acknowledged[f"A-{n}"]
