"""Registers the generic Fachverfahren transports with Aktenhub (entry point group ``aktenhub``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, Simulator, hookimpl

from . import importfolder, rest, soap, sql, xoev

# One line per transport (each in its own subpackage), so that they can be added independently.
CONNECTORS: list[type[Connector[Any]]] = []
SIMULATORS: list[Simulator] = []
# Each transport's part of `aktenhub demo` (the Umweltamt's import folder scenario is K3's: hub_k3/demo.py).
SCENARIOS: list[DemoScenario] = []
CONNECTORS += [importfolder.ImportFolderSink, importfolder.FileDropSink]
CONNECTORS += [xoev.XoevSink]
SIMULATORS += [xoev.SIMULATOR]
SIMULATORS += [importfolder.SIMULATOR]

CONNECTORS.append(rest.RestSink)
SIMULATORS.append(rest.SIMULATOR)
CONNECTORS.append(soap.SoapSink)
SIMULATORS.append(soap.SIMULATOR)
CONNECTORS += [sql.SqlSink]
SIMULATORS += [sql.SIMULATOR]


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The transports: ``type: rest | soap | sql | importfolder | xoev``."""
    return list(CONNECTORS)


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """One simulated Fachverfahren per transport."""
    return list(SIMULATORS)


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """One demo scenario per transport: an application into its simulated Fachverfahren and back."""
    return list(SCENARIOS)
