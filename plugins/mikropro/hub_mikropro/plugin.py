"""Registers the Mikropro profile with Aktenhub (entry point group ``aktenhub``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, Simulator, hookimpl

from .connector import MikroproSink
from .simulator import SIMULATOR


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """``type: mikropro``."""
    return [MikroproSink]


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """The simulated Mikropro Bauamt."""
    return [SIMULATOR]
