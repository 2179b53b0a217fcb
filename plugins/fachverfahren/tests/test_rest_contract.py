"""The `rest` sink passes the contract every sink must pass, against the simulated Fachverfahren."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
from rest_helpers import Fv, StartFv, closed_loopback_port, make_sink, record_for, start_fv

from hub import Application, ConnectorContext, FileRecord, Sink
from hub.testing import Fault, SinkContract

__all__ = ["start_fv"]

UPLOAD = {"operation": "uploadDocument", "parameter": "vorgangId", "field": "datei"}


class TestRestContract(SinkContract):
    @pytest.fixture(autouse=True)
    def _environment(self, start_fv: StartFv, connector_context: ConnectorContext) -> None:
        self.start_fv = start_fv
        self.context = connector_context
        self.targets: dict[str, Fv] = {}  # base_url -> the simulator there

    async def _against_simulator(self, overrides: dict[str, Any] | None = None, **knobs: Any) -> Sink[Any]:
        fv = await self.start_fv(**knobs)
        # The documents go too (streamed from the blob store), so the contract's blob checks apply.
        settings = fv.settings(documents=UPLOAD, **(overrides or {}))
        self.targets[settings["base_url"]] = fv
        return make_sink(self.context, settings)

    @pytest_asyncio.fixture
    async def sink(self, _environment: None) -> Sink[Any]:
        return await self._against_simulator()

    def record(self, application: Application) -> FileRecord:
        return record_for(application)

    async def results(self, sink: Sink[Any], application: Application) -> int:
        fv = self.targets.get(sink.config.base_url)
        return 0 if fv is None else fv.cases_of(application.id)

    async def faulty_sink(self, fault: Fault) -> Sink[Any] | None:
        if fault is Fault.TIMEOUT:
            return await self._against_simulator({"timeout_seconds": 0.2}, latency_seconds=60)
        if fault is Fault.SERVER_ERROR:
            return await self._against_simulator(fail_next=1000)
        if fault is Fault.UNREACHABLE:
            port = closed_loopback_port()
            fv = await self.start_fv()
            return make_sink(self.context, fv.settings(base_url=f"http://127.0.0.1:{port}/api"))
        # The simulator knows another client only: its token endpoint refuses ours.
        return await self._against_simulator(clients={"someone-else": "another-secret-123"})
