"""Registers the ADVIS profile with Aktenhub (entry point group ``aktenhub``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, Simulator, hookimpl

from . import inbound, outbound, simulator
from .demo import AdvisOutScenario
from .demo_in import AdvisInScenario

# One line per direction (in: inbound.py, out: outbound.py, the simulator: simulator/), so that the
# directions are added independently and merge cleanly.
CONNECTORS: list[type[Connector[Any]]] = []
SIMULATORS: list[Simulator] = []
SCENARIOS: list[DemoScenario] = []
CONNECTORS += [outbound.AdvisSink]
CONNECTORS += [inbound.AdvisIntake]
SIMULATORS += [simulator.SIMULATOR]
SCENARIOS += [AdvisOutScenario()]
SCENARIOS += [AdvisInScenario()]


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The ADVIS connector types (in and out)."""
    return list(CONNECTORS)


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """The simulated ADVIS."""
    return list(SIMULATORS)


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """The Ausländerbehörde's part of `aktenhub demo` (one scenario per direction)."""
    return list(SCENARIOS)
