"""Fixtures of the Bauportal.NRW tests: XTA and enaio simulators on 127.0.0.1, an HTTP session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp.test_utils import TestServer
from bauportal_helpers import ENAIO_PASSWORD, ENAIO_USER, Enaio, StartEnaio, StartXta, Xta
from hub_enaio.simulator import STATE as ENAIO_STATE
from hub_enaio.simulator import make_app as make_enaio
from hub_xta.simulator import STATE as XTA_STATE
from hub_xta.simulator import make_app as make_xta


@pytest_asyncio.fixture
async def start_xta(schema_dir: Path, tmp_path: Path) -> AsyncIterator[StartXta]:
    """Start XTA simulators with the given options; they stop at teardown."""
    servers: list[TestServer] = []

    async def start(**options: Any) -> Xta:
        options.setdefault("schemas", schema_dir)
        options.setdefault("data_dir", tmp_path / f"xta-sim-{len(servers)}")
        app = make_xta(**options)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Xta(f"http://127.0.0.1:{server.port}", app[XTA_STATE])

    yield start
    for server in reversed(servers):
        await server.close()


@pytest_asyncio.fixture
async def start_enaio() -> AsyncIterator[StartEnaio]:
    """Start enaio simulators with the given knobs; they stop at teardown."""
    servers: list[TestServer] = []

    async def start(**options: Any) -> Enaio:
        options.setdefault("users", {ENAIO_USER: ENAIO_PASSWORD})
        app = make_enaio(**options)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Enaio(f"http://127.0.0.1:{server.port}", app[ENAIO_STATE])

    yield start
    for server in reversed(servers):
        await server.close()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session for the simulators' operator endpoints."""
    async with aiohttp.ClientSession() as session:
        yield session
