"""`importfolder`: files plus a manifest into a Fachverfahren's import folder, result files back
(and `filedrop`, its predecessor)."""

from __future__ import annotations

from .answers import AnswerFields, AnswerFormat
from .filedrop import FileDropConfig, FileDropSink
from .manifest import FieldsPayload, ManifestSpec
from .simulator import SIMULATOR
from .sink import ImportFolderConfig, ImportFolderSink

# Profiles of a Fachverfahren (e.g. hub_k3) preset the manifest and the answer format.
__all__ = [
    "SIMULATOR",
    "AnswerFields",
    "AnswerFormat",
    "FieldsPayload",
    "FileDropConfig",
    "FileDropSink",
    "ImportFolderConfig",
    "ImportFolderSink",
    "ManifestSpec",
]
