"""The plugin module, registered under entry point group ``aktenhub`` (see pyproject.toml)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, Simulator, hookimpl

from .demo import XtaScenario
from .simulator import make_app
from .source import XtaSource


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The generic XTA mailbox source (``type: xta``)."""
    return [XtaSource]


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """A simulator of an XTA 2 server (MsgBox, SendXta and Management ports)."""
    return [
        Simulator(
            name="xta",
            description="XTA 2 web service (SOAP 1.2, WS-Addressing, MTOM) at /MsgBoxPort, /SendXtaPort, "
            "/ManagementPort; mailboxes per reader: POST /_sim/mailboxes/{reader}; GET /_sim/sent, "
            "/_sim/closed; knobs fail_next, fail_status, technical_fault_next, latency_seconds, drop_next "
            "(also at runtime: POST /_sim/faults); options schemas, accounts, locked, inline_content",
            make_app=make_app,
        )
    ]


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """The XTA server simulator the demo's portals deliver into."""
    return [XtaScenario()]
