"""The xdomea sink passes the contract every sink must pass: into an import directory and over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hub_xdomea.sink import XdomeaSink
from pydantic import ValidationError
from xdomea_helpers import (
    RECEIVER,
    SENDER,
    Simulator,
    StartSimulator,
    X,
    closed_loopback_port,
    filed_record,
    make_sink,
    read_zip,
    zips_in,
)

from hub import Application, ConnectorContext, FileRecord, Sink
from hub.testing import Fault, SinkContract


class _XdomeaContract(SinkContract):
    """The contract's records are mapped ones: a Bauakte with a Vorgang and the documents."""

    def record(self, application: Application) -> FileRecord:
        return filed_record(application)


class TestXdomeaDirectoryContract(_XdomeaContract):
    @pytest.fixture(autouse=True)
    def _environment(self, tmp_path: Path, xdomea_context: ConnectorContext) -> None:
        self.tmp_path = tmp_path
        self.context = xdomea_context

    @pytest_asyncio.fixture
    async def sink(self, _environment: None) -> XdomeaSink:
        sink = make_sink(self.context, "directory", path=str(self.tmp_path / "import"))
        await sink.start()
        return sink

    async def results(self, sink: Sink, application: Application) -> int:
        assert isinstance(sink, XdomeaSink)
        count = 0
        for path in zips_in(sink.directory):
            ids = [e.text for e in read_zip(path).root.iterfind(".//x:FachverfahrenObjektID", X)]
            count += application.id in ids
        return count

    async def faulty_sink(self, fault: Fault) -> Sink | None:
        if fault is Fault.VALIDATION:
            # Without the xdomea XSDs no message can be validated, so none is written, however often
            # it is tried: the operator fixes the schema directory, then replays.
            empty = self.tmp_path / "no-schemas"
            empty.mkdir(exist_ok=True)
            context = ConnectorContext(
                name="xdomea", blobs=self.context.blobs, schemas=empty, data_dir=self.tmp_path
            )
            return make_sink(context, "directory", path=str(self.tmp_path / "import"))
        # A local directory has no timeouts, 5xx answers or refused connections.
        return None


class TestXdomeaHttpContract(_XdomeaContract):
    @pytest.fixture(autouse=True)
    def _environment(self, start_simulator: StartSimulator, xdomea_context: ConnectorContext) -> None:
        self.start_simulator = start_simulator
        self.context = xdomea_context
        self.targets: dict[str, Simulator] = {}  # import URL -> the simulator there

    async def _against_simulator(
        self, sink_settings: dict[str, Any] | None = None, **options: Any
    ) -> XdomeaSink:
        simulator = await self.start_simulator(**options)
        self.targets[simulator.import_url] = simulator
        sink = make_sink(self.context, "http", url=simulator.import_url, **(sink_settings or {}))
        await sink.start()
        return sink

    @pytest_asyncio.fixture
    async def sink(self, _environment: None) -> XdomeaSink:
        return await self._against_simulator()

    async def results(self, sink: Sink, application: Application) -> int:
        assert isinstance(sink, XdomeaSink) and sink.uploader is not None
        simulator = self.targets.get(sink.uploader.url)
        return 0 if simulator is None else simulator.results(application.id)

    async def faulty_sink(self, fault: Fault) -> Sink | None:
        if fault is Fault.TIMEOUT:
            # The simulator answers after 60 s (or when it stops); the sink waits 0.2 s.
            return await self._against_simulator({"timeout_seconds": 0.2}, latency_seconds=60)
        if fault is Fault.SERVER_ERROR:
            return await self._against_simulator(fail_next=1000)
        if fault is Fault.UNREACHABLE:
            url = f"http://127.0.0.1:{closed_loopback_port()}/xdomea/import"
            return make_sink(self.context, "http", url=url)
        # The DMS takes only messages addressed to its own Behördenschlüssel: 422.
        return await self._against_simulator(behoerdenschluessel="05315000")


def test_config_names_what_a_mode_needs(tmp_path: Path) -> None:
    def config(**settings: Any) -> Any:
        base = {"type": "xdomea", "sender": SENDER, "receiver": RECEIVER}
        return XdomeaSink.Config.model_validate({**base, **settings})

    with pytest.raises(ValidationError, match="mode http needs url, username, password"):
        config(mode="http")
    with pytest.raises(ValidationError, match="mode directory needs `path`"):
        config(mode="directory")
    with pytest.raises(ValidationError, match="mode directory takes no url"):
        config(mode="directory", path=str(tmp_path), url="http://127.0.0.1:1/x")
    with pytest.raises(ValidationError, match="expected an http"):
        config(mode="http", url="ftp://dms/x", username="u", password="p")
    with pytest.raises(ValidationError, match="name the authority"):
        config(mode="directory", path=str(tmp_path), receiver={"kurzbezeichnung": "RSK"})
    plain = config(mode="directory", path=str(tmp_path), sender={"behoerdenschluessel": "05382000"})
    assert plain.sender.behoerdenschluessel.code == "05382000"
