"""Fixtures of the xdomea tests: a connector context with the schema directory, simulators on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_xdomea.simulator import STATE, make_app
from lxml import etree
from xdomea_helpers import PASSWORD, USER, Simulator, StartSimulator, xsd

from hub import ConnectorContext
from hub.blobs import BlobStore


@pytest_asyncio.fixture
async def xdomea_context(
    blobs: BlobStore, tmp_path: Path, schema_dir: Path
) -> AsyncIterator[ConnectorContext]:
    """A connector context named "xdomea" on the `blobs` store, with the schema directory and HTTP."""
    session: aiohttp.ClientSession | None = None

    def http() -> aiohttp.ClientSession:
        nonlocal session
        if session is None:
            session = aiohttp.ClientSession()
        return session

    yield ConnectorContext(name="xdomea", blobs=blobs, schemas=schema_dir, data_dir=tmp_path, _http=http)
    if session is not None:
        await session.close()


@pytest.fixture
def xdomea_xsd(schema_dir: Path) -> etree.XMLSchema:
    """xdomea.xsd compiled by the test itself (not through the plugin), to judge the plugin's output."""
    return xsd(schema_dir)


@pytest_asyncio.fixture
async def start_simulator(schema_dir: Path, tmp_path: Path) -> AsyncIterator[StartSimulator]:
    """Start xdomea import simulators with the given options; they stop at teardown."""
    servers: list[TestServer] = []

    async def start(**options: Any) -> Simulator:
        options.setdefault("users", {USER: PASSWORD})
        options.setdefault("schemas", schema_dir)
        options.setdefault("content_dir", tmp_path / f"dms-{len(servers)}")
        app = make_app(**options)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Simulator(f"http://127.0.0.1:{server.port}", app[STATE])

    yield start
    for server in reversed(servers):
        await server.close()
