"""Fixtures of the ZBP tests: author keys (generated once) and simulators on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_zbp.keys import GeneratedAuthor, generate_author
from hub_zbp.simulator import STATE, make_app
from zbp_helpers import StartZbp, Zbp


@pytest.fixture(scope="session")
def author() -> GeneratedAuthor:
    """The authority's author key and certificate."""
    return generate_author("Rhein-Sieg-Kreis ZBP")


@pytest.fixture(scope="session")
def other_author() -> GeneratedAuthor:
    """Someone else's key and certificate."""
    return generate_author("Fremder Absender")


@pytest.fixture(scope="session")
def expired_author() -> GeneratedAuthor:
    """A key whose certificate expired yesterday."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    return generate_author("Abgelaufen", valid_from=start, valid_days=29)


@pytest_asyncio.fixture
async def start_zbp() -> AsyncIterator[StartZbp]:
    """Start ZBP simulators with the given options; they stop at teardown."""
    servers: list[TestServer] = []

    async def start(**options: Any) -> Zbp:
        app = make_app(**options)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Zbp(f"http://127.0.0.1:{server.port}", app[STATE])

    yield start
    for server in reversed(servers):
        await server.close()
