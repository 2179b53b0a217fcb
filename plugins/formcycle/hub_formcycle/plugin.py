"""The plugin module registered under entry point group ``aktenhub``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, hookimpl

from .source import FormCycleSource


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The FormCycle source connector."""
    return [FormCycleSource]
