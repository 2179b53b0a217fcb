"""The plugin module, registered under entry point group ``aktenhub`` (see pyproject.toml)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hub import Connector, DemoScenario, Simulator, hookimpl

from .demo import EnaioScenario
from .filters import enaio_file_name
from .simulator import make_app
from .sink import EnaioSink


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The enaio sink (``type: enaio``)."""
    return [EnaioSink]


@hookimpl
def aktenhub_mapping_filters() -> dict[str, Callable[..., Any]]:
    """``enaio_file_name``: a document name enaio's file store accepts (e.g. from an Aktenzeichen)."""
    return {"enaio_file_name": enaio_file_name}


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """A simulator of enaio's DMS Service and OSRest APIs."""
    return [
        Simulator(
            name="enaio",
            description="enaio DMS Service (/api/dms) and OSRest (/osrest/api): Kreis type catalogue, "
            "Basic and session auth, strict index data; knobs fail_next, latency_seconds, "
            "drop_after_insert (also at runtime: POST /_sim/faults); objects: GET /_sim/objects",
            make_app=make_app,
        )
    ]


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """The enaio simulator and e-file connector the other demo scenarios file into."""
    return [EnaioScenario()]
