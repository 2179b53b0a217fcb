"""What the test kit's real servers (PostgreSQL, pgbouncer, moto's S3, Chromium, hub processes) share: how
a missing one is reported; a free port and stopping a server process (from `hub.localservers`)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from hub.localservers import free_port, stop_process

__all__ = ["free_port", "stop_process", "unavailable"]


def unavailable(reason: str) -> NoReturn:
    """Skip the test with `reason`; in CI (``CI=true``), where `.ci/run` installs every server, fail it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (in CI, .ci/run installs it)")
    pytest.skip(reason)
