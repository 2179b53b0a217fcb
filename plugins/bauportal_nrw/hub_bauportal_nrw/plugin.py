"""The plugin module, registered under entry point group ``aktenhub`` (see pyproject.toml)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, Simulator, hookimpl

from . import portal
from .answers import BauportalNrwAnswers
from .demo import BauportalScenario
from .source import BauportalNrwSource


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The source (``type: bauportal-nrw``) and its answers (``type: bauportal-nrw-answers``)."""
    return [BauportalNrwSource, BauportalNrwAnswers]


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """Bauportal.NRW itself: submits building applications into an authority's XTA mailbox."""
    return [
        Simulator(
            name="bauportal-nrw",
            description="Bauportal.NRW submitting XBau 0200 into an XTA mailbox: POST /sim/bauantrag "
            "(invalid: true for a schema-invalid one), GET /sim/answers; option xta_url",
            make_app=portal.make_app,
        )
    ]


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """Bauanträge from the portal over XTA into the Bauakte and the DMS."""
    return [BauportalScenario()]
