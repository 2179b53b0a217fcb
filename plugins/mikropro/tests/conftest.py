"""Fixtures of the Mikropro tests: XTA, enaio and Mikropro simulators on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_enaio.simulator import STATE as ENAIO_STATE
from hub_enaio.simulator import make_app as make_enaio
from hub_mikropro.simulator import make_app as make_mikropro
from hub_xta.simulator import STATE as XTA_STATE
from hub_xta.simulator import make_app as make_xta
from mikropro_helpers import ENAIO_PASSWORD, ENAIO_USER, MIKROPRO_XTA, Enaio, Mikropro, Xta


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session for the simulators' control endpoints."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest_asyncio.fixture
async def xta(schema_dir: Path, tmp_path: Path) -> AsyncIterator[Xta]:
    """The XTA server every account is on (the Bauaufsicht's, the hub's, Mikropro's, the portal's)."""
    server = TestServer(make_xta(schemas=schema_dir, data_dir=tmp_path / "xta-sim"), host="127.0.0.1")
    await server.start_server()
    yield Xta(f"http://127.0.0.1:{server.port}", server.app[XTA_STATE])
    await server.close()


@pytest_asyncio.fixture
async def enaio() -> AsyncIterator[Enaio]:
    """The Bauaufsicht's enaio."""
    server = TestServer(make_enaio(users={ENAIO_USER: ENAIO_PASSWORD}), host="127.0.0.1")
    await server.start_server()
    yield Enaio(f"http://127.0.0.1:{server.port}", server.app[ENAIO_STATE])
    await server.close()


@pytest_asyncio.fixture
async def start_mikropro(
    schema_dir: Path, tmp_path: Path, http: aiohttp.ClientSession
) -> AsyncIterator[Callable[..., Awaitable[Mikropro]]]:
    """Start the simulated Mikropro (options as its `make_app` takes them); it stops at teardown."""
    servers: list[TestServer] = []

    async def start(**options: Any) -> Mikropro:
        if options.get("transport", "xoev") == "xoev":
            options.setdefault("account", MIKROPRO_XTA)
            options.setdefault("schemas", schema_dir)
            options.setdefault("data_dir", tmp_path / f"mikropro-sim-{len(servers)}")
        server = TestServer(make_mikropro(**options), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Mikropro(server, http)

    yield start
    for server in reversed(servers):
        await server.close()
