"""The enaio sink passes the contract every sink must pass, over the DMS Service and over OSRest."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import pytest_asyncio
from enaio_helpers import DEFAULT_RECORD_SETTINGS, Enaio, StartEnaio, closed_loopback_port, make_sink
from hub_enaio.sink import EnaioSink

from hub import Application, ConnectorContext, Sink
from hub.testing import Fault, SinkContract


class _EnaioContract(SinkContract):
    """The contract's records have no mapping file: the sink puts them into the tray.

    (See DEFAULT_RECORD_SETTINGS; records with Akte and Vorgang are covered in test_enaio_sink.py.)
    """

    api: ClassVar[str]

    @pytest.fixture(autouse=True)
    def _environment(self, start_enaio: StartEnaio, connector_context: ConnectorContext) -> None:
        self.start_enaio = start_enaio
        self.context = connector_context
        self.targets: dict[str, Enaio] = {}  # base_url -> the simulator there

    async def _against_simulator(
        self, sink_settings: dict[str, Any] | None = None, **knobs: Any
    ) -> EnaioSink:
        enaio = await self.start_enaio(**knobs)
        self.targets[enaio.url] = enaio
        settings = {**DEFAULT_RECORD_SETTINGS, **(sink_settings or {})}
        sink = make_sink(self.context, enaio.url, self.api, **settings)
        await sink.start()
        return sink

    @pytest_asyncio.fixture
    async def sink(self, _environment: None) -> EnaioSink:
        return await self._against_simulator()

    async def results(self, sink: Sink, application: Application) -> int:
        assert isinstance(sink, EnaioSink)
        enaio = self.targets.get(sink.config.base_url)
        return 0 if enaio is None else enaio.results(application.id)

    async def faulty_sink(self, fault: Fault) -> Sink | None:
        if fault is Fault.TIMEOUT:
            # The simulator answers after 60 s (or when it stops); the sink waits 0.2 s.
            return await self._against_simulator({"timeout_seconds": 0.2}, latency_seconds=60)
        if fault is Fault.SERVER_ERROR:
            return await self._against_simulator(fail_next=1000)
        if fault is Fault.UNREACHABLE:
            return make_sink(
                self.context,
                f"http://127.0.0.1:{closed_loopback_port()}",
                self.api,
                **DEFAULT_RECORD_SETTINGS,
            )
        # Without a title from the file name, the documents lack the mandatory index field Titel: 422.
        return await self._against_simulator({"document_title_field": None})


class TestEnaioDmsContract(_EnaioContract):
    api = "dms"


class TestEnaioOsrestContract(_EnaioContract):
    api = "osrest"
