"""What the test kit's real servers (PostgreSQL, pgbouncer, moto's S3, Chromium, hub processes) share: how
a missing one is reported; a free port, a reserved port and stopping a server process."""

from __future__ import annotations

import os
import socket
from types import TracebackType
from typing import NoReturn

import pytest

from hub.localservers import free_port, stop_process

__all__ = ["ReservedPort", "free_port", "reserve_port", "stop_process", "unavailable"]


class ReservedPort:
    """A TCP port on 127.0.0.1 that nobody else gets until `close()`, which a server can still listen on.

    `free_port()` closes its socket before the server binds the port: in between, any other process (an
    xdist worker's server, or any outgoing connection, which takes its local port from the same range)
    may take it, and the server exits with "address in use". Here the port stays bound by a socket with
    SO_REUSEADDR that never listens. Linux then refuses the port to every bind without SO_REUSEADDR,
    never hands it out for bind(0) or as a connection's local port, and lets one server that binds with
    SO_REUSEADDR (the hub, aiohttp and asyncio servers, PostgreSQL) listen on it; a connection to it
    while no server listens is refused, as with a free port. A restarted server gets the same port back.
    """

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]

    def close(self) -> None:
        """Give the port back."""
        self._socket.close()

    def __enter__(self) -> ReservedPort:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def reserve_port() -> ReservedPort:
    """A port on 127.0.0.1 kept for one server until closed (see `ReservedPort`)."""
    return ReservedPort()


def unavailable(reason: str) -> NoReturn:
    """Skip the test with `reason`; in CI (``CI=true``), where `.ci/run` installs every server, fail it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (in CI, .ci/run installs it)")
    pytest.skip(reason)
