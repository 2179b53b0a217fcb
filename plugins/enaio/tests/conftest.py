"""Fixtures of the enaio tests: simulators on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp.test_utils import TestServer
from enaio_helpers import PASSWORD, USER, Enaio, StartEnaio
from hub_enaio.simulator import STATE, make_app


@pytest_asyncio.fixture
async def start_enaio() -> AsyncIterator[StartEnaio]:
    """Start enaio simulators with the given knobs; they stop at teardown."""
    servers: list[TestServer] = []

    async def start(**options: Any) -> Enaio:
        options.setdefault("users", {USER: PASSWORD})
        app = make_app(**options)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Enaio(f"http://127.0.0.1:{server.port}", app[STATE])

    yield start
    for server in reversed(servers):
        await server.close()


@pytest_asyncio.fixture
async def enaio(start_enaio: StartEnaio) -> Enaio:
    """One simulator with the default catalogue."""
    return await start_enaio()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client, as a third-party program would use."""
    async with aiohttp.ClientSession() as session:
        yield session
