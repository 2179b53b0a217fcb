"""Registers the K3 profile with Aktenhub (entry point group ``aktenhub``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, Simulator, hookimpl

from .connector import K3Sink
from .demo import K3Scenario
from .simulator import REST_SIMULATOR, SIMULATOR, SQL_SIMULATOR


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """``type: k3``."""
    return [K3Sink]


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """The simulated K3, one per transport."""
    return [SIMULATOR, REST_SIMULATOR, SQL_SIMULATOR]


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """The Umweltamt: a wasserrechtliche Erlaubnis and an AwSV-Anzeige into enaio and K3, and back."""
    return [K3Scenario()]
