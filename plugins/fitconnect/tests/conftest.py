"""Keys for the FIT-Connect tests, generated once per session (RSA generation is slow)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from fitconnect_sim_helpers import TEST_KEY_SIZE, TEST_OPTIONS, FitConnectSim, StartSim
from hub_fitconnect import jose
from hub_fitconnect.simulator import STATE, make_app
from jwcrypto import jwk


@pytest.fixture(scope="session")
def encryption_key() -> jwk.JWK:
    """A destination's private encryption key."""
    return jose.generate_encryption_key(size=TEST_KEY_SIZE)


@pytest.fixture(scope="session")
def other_encryption_key() -> jwk.JWK:
    """A second private encryption key (rollover, wrong key)."""
    return jose.generate_encryption_key(size=TEST_KEY_SIZE)


@pytest.fixture(scope="session")
def signature_key() -> jwk.JWK:
    """A private signature key (a destination's or the Zustelldienst's)."""
    return jose.generate_signature_key(size=TEST_KEY_SIZE)


@pytest.fixture(scope="session")
def other_signature_key() -> jwk.JWK:
    """A second private signature key (a wrong signer)."""
    return jose.generate_signature_key(size=TEST_KEY_SIZE)


@pytest_asyncio.fixture
async def start_fitconnect() -> AsyncIterator[StartSim]:
    """Start FIT-Connect simulators on 127.0.0.1 (test options plus the given ones); stopped at teardown."""
    servers: list[TestServer] = []
    http = aiohttp.ClientSession()

    async def start(**options: Any) -> FitConnectSim:
        app = make_app(**{**TEST_OPTIONS, **options})
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return FitConnectSim(f"http://127.0.0.1:{server.port}", app[STATE], http)

    yield start
    for server in reversed(servers):
        await server.close()
    await http.close()


@pytest_asyncio.fixture
async def fitconnect(start_fitconnect: StartSim) -> FitConnectSim:
    """One FIT-Connect simulator with the test options."""
    return await start_fitconnect()
