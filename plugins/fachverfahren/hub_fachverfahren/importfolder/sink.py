"""`type: importfolder`: the application's files plus a manifest, written atomically into an import folder;
the Fachverfahren's result files taken back from an answer folder.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Final

from pydantic import Field, model_validator

from hub import Application, CheckResult, ConnectorConfig, ConnectorContext, FileRecord, Manifest

from .answers import AnswerFolder, AnswerFormat
from .folder import VERSION, DroppedFile, FolderConfig, FolderSink
from .manifest import FieldsPayload, ManifestSpec

FORMAT: Final = "aktenhub.importfolder/1"
# The hub recognises its own delivery by this hidden file (a Fachverfahren skips dot files).
MARKER = ".aktenhub.json"


class ImportFolderConfig(FolderConfig):
    """Settings of an import folder target."""

    manifest: ManifestSpec = Field(description="how the manifest is produced: {template: ...} or {xslt: ...}")
    answers: Path | None = Field(
        None, description="the folder the Fachverfahren writes its result files into"
    )
    answer_format: AnswerFormat = Field(
        default_factory=AnswerFormat, description="where reference, case number, status ... are in a result"
    )
    poll_seconds: float = Field(30.0, gt=0, le=86400, description="how often the answer folder is read")
    max_per_poll: int = Field(100, ge=1, le=10000, description="result files taken per poll at most")

    @model_validator(mode="after")
    def _distinct_folders(self) -> ImportFolderConfig:
        if self.answers is not None and self.answers.resolve() == self.path.resolve():
            raise ValueError("`answers` must be another folder than `path`")
        return self


class ImportFolderSink(FolderSink[ImportFolderConfig]):
    """Delivers each application as one folder (its files plus a manifest); reads the system's answers."""

    kind = "importfolder"
    Config: ClassVar[type[ConnectorConfig]] = ImportFolderConfig
    manifest = Manifest(
        name="Import folder",
        version=VERSION,
        standards=("Import folder with an operator-defined manifest (XML, JSON, CSV)",),
        description="Writes each application atomically as a folder (documents plus a manifest from a "
        "Jinja2 template or XSLT) into a Fachverfahren's import folder; takes result files (case number, "
        "status, error, decision) from its answer folder.",
    )
    Payload = FieldsPayload
    marker = MARKER
    format = FORMAT

    def __init__(self, config: ImportFolderConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.answer_folder: AnswerFolder | None = None
        if config.answers is not None:
            self.answer_folder = AnswerFolder(
                config.answers, config.answer_format, context.blobs, context.name, fsync=config.fsync
            )
            self.answer_poll_interval = config.poll_seconds

    def reserved_names(self) -> set[str]:
        """The marker and the manifest."""
        return {MARKER.lower(), self.config.manifest.file_name.lower()}

    async def metadata_files(
        self,
        app: Application,
        record: FileRecord,
        folder: str,
        files: Sequence[DroppedFile],
        delivered_at: datetime,
    ) -> list[tuple[str, bytes]]:
        """The manifest as the operator's template or stylesheet makes it, and the hub's marker."""
        content = self.config.manifest.render(
            application=app,
            record=record,
            files=files,
            folder=folder,
            fields=self.payload(record, FieldsPayload).fields,
            delivered_at=delivered_at,
            target=self.name,
        )
        marker = {
            "format": FORMAT,
            "delivered_at": delivered_at.isoformat(),
            "application": {"id": app.id},
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in files],
        }
        return [(self.config.manifest.file_name, content), (MARKER, json.dumps(marker, indent=2).encode())]

    async def check(self) -> CheckResult:
        """The import folder is writable; the answer folder readable and writable (files move to done/)."""
        result = await super().check()
        answers = self.config.answers
        if answers is None or not result.ok:
            return result
        usable = await asyncio.to_thread(
            lambda: answers.is_dir() and os.access(answers, os.R_OK | os.W_OK | os.X_OK)
        )
        if not usable:
            return CheckResult(
                ok=False,
                message=f"answer folder {answers} is missing or not readable and writable by the hub",
                details=result.details,
            )
        return result

    async def poll_answers(self) -> int:
        """Hand each settled result file to the return channel; then move it to done/ (or failed/)."""
        if self.answer_folder is None:
            return 0
        return await self.answer_folder.poll(self.context.answer, limit=self.config.max_per_poll)

    async def diagnostics(self) -> dict[str, Any]:
        """Waiting folders, and result files waiting in the answer folder."""
        state = await super().diagnostics()
        if self.answer_folder is not None:
            state["waiting_answers"] = self.answer_folder.pending()
        return state
