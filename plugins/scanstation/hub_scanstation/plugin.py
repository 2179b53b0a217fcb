"""The plugin module, registered under entry point group ``aktenhub`` (see pyproject.toml)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, Simulator, hookimpl

from .demo import ScanStationScenario
from .simulator import make_app
from .source import ScanStationSource


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The scan station hot folder source (``type: scanstation``)."""
    return [ScanStationSource]


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """A scan station exporting batches (XML/CSV index or cover sheets) into a hot folder."""
    return [
        Simulator(
            name="scanstation",
            description="writes scan batches into a hot folder: POST /sim/batches (JSON: name, shape "
            "folder|group, index xml|csv|none, documents, faults half_written, missing_marker, "
            "index_missing_file, unreadable_barcode, corrupt_pdf); GET /sim/folders; option hot_folder",
            make_app=make_app,
        )
    ]


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """Two scan batches filed into the Ausländerakten of the enaio simulator, one page into the tray."""
    return [ScanStationScenario()]
