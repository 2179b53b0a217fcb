"""The `sql` transport: a staging table in the Fachverfahren's database, answers from its status column."""

from __future__ import annotations

from .config import SqlAnswers, SqlConfig, SqlDocuments
from .simulator import SIMULATOR, connector_settings
from .sink import SqlPayload, SqlSink

__all__ = [
    "SIMULATOR",
    "SqlAnswers",
    "SqlConfig",
    "SqlDocuments",
    "SqlPayload",
    "SqlSink",
    "connector_settings",
]
