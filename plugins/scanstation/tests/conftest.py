"""Fixtures of the scan station tests: an enaio simulator holding two Ausländerakten, a hot folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_enaio.simulator import STATE, EnaioState, make_app
from scan_helpers import AKTEN, PASSWORD, USER, Enaio


@pytest_asyncio.fixture
async def enaio() -> AsyncIterator[Enaio]:
    """The enaio simulator with the Ausländerakten the scanned post belongs into."""
    app = make_app(users={USER: PASSWORD})
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state: EnaioState = app[STATE]
    running = Enaio(f"http://127.0.0.1:{server.port}", state)
    await running.seed(AKTEN)
    yield running
    await server.close()


@pytest.fixture
def hot_folder(tmp_path: Path) -> Path:
    """The scan station's export folder."""
    folder = tmp_path / "scan-export"
    folder.mkdir()
    return folder
