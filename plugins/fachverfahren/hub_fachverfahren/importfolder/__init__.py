"""`importfolder`: files plus a manifest into a Fachverfahren's import folder, result files back
(and `filedrop`, its predecessor)."""

from __future__ import annotations

from .filedrop import FileDropConfig, FileDropSink
from .simulator import SIMULATOR
from .sink import ImportFolderConfig, ImportFolderSink

__all__ = ["SIMULATOR", "FileDropConfig", "FileDropSink", "ImportFolderConfig", "ImportFolderSink"]
