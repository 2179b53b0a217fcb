"""The plugin module, registered under entry point group ``aktenhub`` (see pyproject.toml)."""

from __future__ import annotations

from collections.abc import Sequence

from hub import Connector, hookimpl

from .answers import BauportalNrwAnswers
from .source import BauportalNrwSource


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector]]:
    """The source (``type: bauportal-nrw``) and its answers (``type: bauportal-nrw-answers``)."""
    return [BauportalNrwSource, BauportalNrwAnswers]
