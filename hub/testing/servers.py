"""What the test kit's real servers (PostgreSQL, pgbouncer, moto's S3, Chromium, hub processes) share: how
a missing one is reported, a free port for one, and how a server process is stopped."""

from __future__ import annotations

import os
import socket
import subprocess
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Skip the test with `reason`; in CI (``CI=true``), where `.ci/run` installs every server, fail it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (in CI, .ci/run installs it)")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, and SIGKILL if the process has not ended within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
