"""The test kit's hub processes: the port race between xdist workers, and a hub that dies while a test
waits for it (`hub.testing.processes`, `hub.testing.servers.ReservedPort`)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
import yaml

from hub.testing.processes import HubProcess, free_port, hub_settings

TOKEN = "testing-processes-admin-token"


def hub(tmp: Path, port: int) -> HubProcess:
    """A hub without connectors on `port`."""
    config = tmp / "aktenhub.yaml"
    config.write_text(yaml.safe_dump({**hub_settings(tmp, port, TOKEN), "connectors": {}, "routes": []}))
    return HubProcess(config, tmp, f"http://127.0.0.1:{port}")


def take(port: int) -> socket.socket:
    """What another xdist worker's server does with a port it was given: bind and listen."""
    other = socket.socket()
    try:
        other.bind(("127.0.0.1", port))
        other.listen()
    except OSError:
        other.close()
        raise
    return other


async def test_a_reserved_port_is_kept_from_other_processes_and_the_hub_listens_on_it(
    tmp_path: Path, reserved_port: Callable[[], int]
) -> None:
    port = reserved_port()
    # The race, played out: another server is given the same port before the hub listens on it.
    with pytest.raises(OSError) as refused:
        take(port)
    assert refused.value.errno == errno.EADDRINUSE
    process = hub(tmp_path, port)
    async with aiohttp.ClientSession() as session:
        try:
            for _ in range(2):  # the first start and a restart after a SIGKILL get the same port
                process.start()
                await process.wait_ready(session)
                async with session.get(f"{process.url}/readyz") as resp:
                    assert resp.status == 200
                await process.kill()
                # While the hub is down, the port stays the test's: still refused to others.
                with pytest.raises(OSError):
                    take(port)
        finally:
            await process.stop()


async def test_a_hub_that_cannot_listen_fails_the_wait_at_once_with_its_log(tmp_path: Path) -> None:
    port = free_port()
    other = take(port)  # what happens without a reservation: someone else got the port first
    process = hub(tmp_path, port)
    try:
        process.start()
        async with aiohttp.ClientSession() as session:
            with pytest.raises(AssertionError) as failed:
                await process.wait_ready(session, timeout=600)  # not waited out: the exit ends it
    finally:
        other.close()
        await process.stop()
    message = str(failed.value)
    assert "hub exited with 1 during start" in message
    assert f"cannot listen on 127.0.0.1:{port}" in message  # the hub's own words, from its log


async def test_a_hub_that_dies_while_a_test_waits_on_it_fails_the_wait_at_once(
    tmp_path: Path, reserved_port: Callable[[], int]
) -> None:
    process = hub(tmp_path, reserved_port())
    async with aiohttp.ClientSession() as session:
        process.start()
        await process.wait_ready(session)
        await process.kill()

        async def never() -> bool:
            return False

        with pytest.raises(AssertionError) as failed:
            await process.until(never, "something that never comes", timeout=600)
    message = str(failed.value)
    assert "hub exited with -9 while waiting for something that never comes" in message
    assert "==== hub start 1 ====" in message  # the log's tail
