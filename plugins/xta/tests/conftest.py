"""Fixtures of the XTA tests: simulators on 127.0.0.1, an HTTP session."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_xta.simulator import STATE, make_app
from xta_helpers import StartXta, Xta


@pytest_asyncio.fixture
async def start_xta(schema_dir: Path, tmp_path: Path) -> AsyncIterator[StartXta]:
    """Start XTA simulators with the given options (``ssl=`` serves https); they stop at teardown."""
    servers: list[TestServer] = []

    async def start(*, ssl_context: ssl.SSLContext | None = None, **options: Any) -> Xta:
        options.setdefault("schemas", schema_dir)
        options.setdefault("data_dir", tmp_path / f"xta-sim-{len(servers)}")
        app = make_app(**options)
        server = TestServer(app, host="127.0.0.1", scheme="https" if ssl_context else "http")
        await server.start_server(ssl=ssl_context)
        servers.append(server)
        scheme = "https" if ssl_context else "http"
        return Xta(f"{scheme}://127.0.0.1:{server.port}", app[STATE])

    yield start
    for server in reversed(servers):
        await server.close()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session (the hub's shared session in production)."""
    async with aiohttp.ClientSession() as session:
        yield session
