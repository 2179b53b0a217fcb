"""Aktenhub file drop: delivers applications as folders into a Fachverfahren's import directory."""

from __future__ import annotations

from .sink import FORMAT, VERSION, DropDocument, DroppedFile, FileDropConfig, FileDropSink

__version__ = VERSION

__all__ = ["FORMAT", "DropDocument", "DroppedFile", "FileDropConfig", "FileDropSink", "__version__"]
