"""pytest plugin: fixtures for testing the hub and connectors (loaded via entry point ``pytest11``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from hub.blobs import Blobs, BlobStore
from hub.connectors import ConnectorContext
from hub.held import HeldMessages
from hub.journal import SqliteJournal
from hub.schemas import schema_directory
from hub.testing import fakes
from hub.testing.browser import browser, page  # noqa: F401 - fixtures of the kit
from hub.testing.harness import RunningHub, base_settings, start_hub, stop_hub
from hub.testing.imap import dovecot_server, imap_account  # noqa: F401 - fixtures of the kit
from hub.testing.postgres import (  # noqa: F401 - fixtures of the kit
    pgbouncer_server,
    pgbouncer_url,
    postgres_server,
    postgres_url,
)
from hub.testing.s3 import s3_bucket, s3_server  # noqa: F401 - fixtures of the kit
from hub.testing.servers import ReservedPort

HubFactory = Callable[..., Awaitable[RunningHub]]


@pytest.fixture
def reserved_port() -> Iterator[Callable[[], int]]:
    """``reserved_port()``: a port on 127.0.0.1 for a server this test starts (and restarts), which no
    other process takes until the test ends (`hub.testing.servers.ReservedPort`)."""
    reserved: list[ReservedPort] = []

    def reserve() -> int:
        reserved.append(ReservedPort())
        return reserved[-1].port

    yield reserve
    for port in reserved:
        port.close()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    """A blob store in a temporary directory."""
    return BlobStore(tmp_path / "blobs")


@pytest.fixture
def schema_dir() -> Path:
    """The reference schema directory ($AKTENHUB_SCHEMAS, else ../shared/reference)."""
    found = schema_directory()
    if found is None:
        pytest.fail("schema directory not found: set AKTENHUB_SCHEMAS or put shared/ beside the project")
    return found


@pytest_asyncio.fixture
async def connector_context(blobs: Blobs, tmp_path: Path) -> AsyncIterator[ConnectorContext]:
    """A connector context named "contract" on the `blobs` store, with an HTTP session and a journal
    (used keys; held messages of polled sources)."""
    session: aiohttp.ClientSession | None = None

    def http() -> aiohttp.ClientSession:
        nonlocal session
        if session is None:
            session = aiohttp.ClientSession()
        return session

    journal = SqliteJournal(tmp_path / "journal.db")
    await journal.open()
    yield ConnectorContext(
        name="contract",
        blobs=blobs,
        schemas=None,
        data_dir=tmp_path,
        _http=http,
        _once=journal.once,
        _held=HeldMessages(journal, "contract"),
    )
    await journal.close()
    if session is not None:
        await session.close()


@pytest_asyncio.fixture
async def held_journal(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    """An open journal in a temporary directory, for a polled source's held messages outside a hub."""
    journal = SqliteJournal(tmp_path / "held-journal.db")
    await journal.open()
    yield journal
    await journal.close()


@pytest_asyncio.fixture
async def hub_factory(tmp_path: Path) -> AsyncIterator[HubFactory]:
    """Start hubs on temporary journals: ``await hub_factory(connectors, routes, **overrides)``.

    The fake connectors of `hub.testing.fakes` are always available. Hubs stop at teardown.
    """
    started: list[RunningHub] = []

    async def factory(
        connectors: dict[str, Any],
        routes: list[dict[str, Any]],
        *,
        extra_plugins: tuple[object, ...] = (),
        env: dict[str, str] | None = None,
        subdir: str = "hub",
        clock: Callable[[], float] = time.time,
        **overrides: Any,
    ) -> RunningHub:
        settings = base_settings(tmp_path / subdir, connectors, routes)
        settings.update(overrides)
        running = await start_hub(settings, extra_plugins=(fakes, *extra_plugins), env=env, clock=clock)
        started.append(running)
        return running

    yield factory
    for running in reversed(started):
        await stop_hub(running)


@pytest.fixture
def fake_plugins() -> Iterator[object]:
    """The fakes module, to pass as an extra plugin."""
    yield fakes
