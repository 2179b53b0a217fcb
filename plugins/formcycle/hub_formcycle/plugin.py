"""The plugin module registered under entry point group ``aktenhub``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, hookimpl

from .demo import FormCycleScenario
from .source import FormCycleSource


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The FormCycle source connector."""
    return [FormCycleSource]


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """FormCycle applications of a Kreis into the e-file, BundID-verified where required."""
    return [FormCycleScenario()]
