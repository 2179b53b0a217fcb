"""Registers the file drop sink with Aktenhub (entry point group ``aktenhub``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, hookimpl

from .sink import FileDropSink


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The file drop sink (``type: filedrop``)."""
    return [FileDropSink]
