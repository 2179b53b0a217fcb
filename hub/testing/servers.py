"""What the test kit's real servers (PostgreSQL, pgbouncer, moto's S3, Chromium) share: how a missing one
is reported, and how a server process is stopped."""

from __future__ import annotations

import os
import subprocess
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Skip the test with `reason`; in CI (``CI=true``), where `.ci/run` installs every server, fail it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (in CI, .ci/run installs it)")
    pytest.skip(reason)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, and SIGKILL if the process has not ended within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
