"""The plugin module, registered under entry point group ``aktenhub`` (see pyproject.toml)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, Simulator, hookimpl

from .demo import XdomeaScenario
from .simulator import make_app
from .sink import XdomeaSink


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The xdomea sink (``type: xdomea``)."""
    return [XdomeaSink]


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """A simulator of a DMS's xdomea import endpoint."""
    return [
        Simulator(
            name="xdomea",
            description="a DMS's xdomea 0605 import: POST /xdomea/import (multipart ZIP, Basic auth "
            "aktenhub/xdomea-simulator), checks ZIP, schema and primary files, repeated ProzessID → "
            "200 already imported; option schemas=DIR; knobs fail_next, latency_seconds, "
            "drop_after_import (POST /_sim/faults); imports: GET /_sim/imports",
            make_app=make_app,
        )
    ]


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """The xdomea DMS simulator and sink for the demo."""
    return [XdomeaScenario()]
