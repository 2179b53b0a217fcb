"""Helpers shared by the file drop tests (a uniquely named module: plugin test folders are no packages)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hub_fachverfahren.importfolder import FileDropSink

from hub import ConnectorContext

SAFE_NAME = r"[A-Za-z0-9_][A-Za-z0-9._-]*"


def make_sink(context: ConnectorContext, path: Path, **settings: Any) -> FileDropSink:
    """A file drop sink on `path` with extra settings, built the way the hub builds it."""
    config = FileDropSink.Config.model_validate({"type": "filedrop", "path": str(path), **settings})
    return FileDropSink(config, context)


def folders_of(directory: Path, application_id: str) -> list[Path]:
    """The published (non-dot) folders in `directory` whose application.json names the application."""
    if not directory.is_dir():
        return []
    found = []
    for folder in directory.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        metadata = folder / "application.json"
        if metadata.is_file() and json.loads(metadata.read_bytes())["application"]["id"] == application_id:
            found.append(folder)
    return found
