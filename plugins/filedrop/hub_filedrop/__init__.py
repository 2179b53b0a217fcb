"""Aktenhub file drop: delivers applications as folders into a Fachverfahren's import directory."""

from __future__ import annotations

from hub_filedrop.sink import FORMAT, FileDropConfig, FileDropSink

__version__ = "0.1.0"

__all__ = ["FORMAT", "FileDropConfig", "FileDropSink", "__version__"]
