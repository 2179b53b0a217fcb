"""`type: filedrop`, the importfolder's predecessor: a folder with `application.json` and no answers.

Kept so that existing configurations and consumers keep working: the folder is written by the same
mechanism as `importfolder` (`folder.FolderSink`), with Aktenhub's own manifest format
``aktenhub.filedrop/1`` (application, record and file list as JSON), described in the plugin README.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub import Application, ConnectorConfig, FileRecord, Manifest

from .folder import VERSION, DroppedFile, FolderConfig, FolderSink
from .manifest import FieldsPayload

FORMAT: Final = "aktenhub.filedrop/1"
METADATA_FILE = "application.json"


class FileDropConfig(FolderConfig):
    """Settings of a file drop target."""


class DropDocument(BaseModel):
    """The content of application.json, format ``aktenhub.filedrop/1``."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["aktenhub.filedrop/1"] = FORMAT
    delivered_at: datetime
    target: str = Field(description="name of the file drop connector in the hub's configuration")
    folder: str
    application: Application
    record: FileRecord
    fields: dict[str, str] = Field(default_factory=dict, description="the mapping's payload fields")
    files: list[DroppedFile]


class FileDropSink(FolderSink[FileDropConfig]):
    """Delivers each application as one folder (application.json + its files) into an import directory."""

    kind = "filedrop"
    Config: ClassVar[type[ConnectorConfig]] = FileDropConfig
    manifest = Manifest(
        name="File drop",
        version=VERSION,
        standards=("Aktenhub file-drop format 1",),
        description="Writes each application atomically as a folder into a Fachverfahren's import "
        "directory (application.json with application, record and file list, plus the files); "
        "the predecessor of `importfolder`.",
    )
    Payload = FieldsPayload
    marker = METADATA_FILE
    format = FORMAT

    async def metadata_files(
        self,
        app: Application,
        record: FileRecord,
        folder: str,
        files: Sequence[DroppedFile],
        delivered_at: datetime,
    ) -> list[tuple[str, bytes]]:
        """`application.json`: application, record and the file list (it is also the marker)."""
        document = DropDocument(
            delivered_at=delivered_at,
            target=self.name,
            folder=folder,
            application=app,
            record=record,
            fields=self.payload(record, FieldsPayload).fields,
            files=list(files),
        )
        return [(METADATA_FILE, document.model_dump_json(indent=2).encode("utf-8"))]
