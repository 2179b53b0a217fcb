"""Fixtures of the fachverfahren tests: the XTA simulator on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_xta.simulator import STATE, make_app
from xoev_helpers import Xta


@pytest_asyncio.fixture
async def xta(schema_dir: Path, tmp_path: Path) -> AsyncIterator[Xta]:
    server = TestServer(make_app(schemas=schema_dir, data_dir=tmp_path / "xta-sim"), host="127.0.0.1")
    await server.start_server()
    yield Xta(f"http://127.0.0.1:{server.port}", server.app[STATE])
    await server.close()
