"""Registers the Mikropro profile with Aktenhub (entry point group ``aktenhub``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, Simulator, hookimpl

from .connector import MikroproSink
from .demo import MikroproScenario
from .simulator import SIMULATOR


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """``type: mikropro``."""
    return [MikroproSink]


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """The simulated Mikropro Bauamt."""
    return [SIMULATOR]


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """A Bauantrag from the portal into the simulated Mikropro; its Aktenzeichen back."""
    return [MikroproScenario()]
