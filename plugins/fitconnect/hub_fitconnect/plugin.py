"""The plugin module, registered under entry point group ``aktenhub`` (see pyproject.toml)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, Simulator, hookimpl


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The FIT-Connect subscriber (``type: fitconnect``)."""
    return []


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """A simulator of FIT-Connect (Submission API, OAuth token endpoint, destinations and their keys)."""
    return []


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """An EfA service's submissions through FIT-Connect into the e-file and a Fachverfahren."""
    return []
