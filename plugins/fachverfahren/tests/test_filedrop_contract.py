"""The file drop sink passes the contract every sink must pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio
from filedrop_helpers import folders_of, make_sink
from hub_fachverfahren.importfolder import FileDropSink
from pydantic import ValidationError

from hub import Application, ConnectorContext, Sink
from hub.testing import Fault, SinkContract


class TestFileDropContract(SinkContract):
    @pytest.fixture(autouse=True)
    def _environment(self, tmp_path: Path, connector_context: ConnectorContext) -> None:
        self.tmp_path = tmp_path
        self.context = connector_context

    @pytest_asyncio.fixture
    async def sink(self, tmp_path: Path, connector_context: ConnectorContext) -> FileDropSink:
        sink = make_sink(connector_context, tmp_path / "import")
        await sink.start()
        return sink

    async def results(self, sink: Sink, application: Application) -> int:
        assert isinstance(sink, FileDropSink)
        return len(folders_of(sink.directory, application.id))

    async def faulty_sink(self, fault: Fault) -> Sink | None:
        if fault is Fault.VALIDATION:
            # The folder name needs an Aktenzeichen the contract's applications do not have: the
            # target cannot take the record as it is, however often it is tried.
            sink = make_sink(self.context, self.tmp_path / "import", folder_name="{file_number}")
            await sink.start()
            return sink
        # A local directory has no timeouts, 5xx answers or refused connections; disk full and
        # permission errors are covered in test_filedrop_sink.py.
        return None


def test_config_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown placeholder"):
        FileDropSink.Config.model_validate({"type": "filedrop", "path": str(tmp_path), "folder_name": "{x}"})
