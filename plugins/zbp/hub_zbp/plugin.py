"""The plugin module, registered under entry point group ``aktenhub`` (see pyproject.toml)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, Simulator, hookimpl

from .demo import ZbpScenario
from .notifier import ZbpNotifier
from .simulator import make_app


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The BundID mailbox notifier (``type: zbp``)."""
    return [ZbpNotifier]


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """A simulator of the ZBP (BundID mailbox) REST endpoint."""
    return [
        Simulator(
            name="zbp",
            description="BundID mailbox (ZBP) REST: POST /api/v1/messages and /api/v1/status with the "
            "signed envelope, verified strictly; knobs fail_next, token, username/password, "
            "trusted_certificates, mailboxes, required_role; mailboxes: GET /_sim/mailboxes/{handle}",
            make_app=make_app,
        )
    ]


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """The BundID mailbox simulator and notifier for the demo."""
    return [ZbpScenario()]
