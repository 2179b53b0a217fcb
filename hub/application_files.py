"""The files of an application as operators open them: the PDF rendition, the attachments, the original.

Each file has a stable id within its application (``rendition``, ``original``, ``attachment-<n>``) and,
until a retention purge deleted the payload (`hub.retention`), the blob that holds its content. A purged
application still lists what it had, without blobs, so that people see the files were deleted on time
rather than never there.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, Field

from hub.journal import Task
from hub.models import Application, DocumentContent
from hub.pipeline import mapped_record

ATTACHMENT_PREFIX = "attachment-"


class FileKind(StrEnum):
    """What a file of an application is."""

    RENDITION = "rendition"  # the PDF the hub rendered of the form
    ATTACHMENT = "attachment"  # a file the applicant uploaded
    ORIGINAL = "original"  # the submission as received


class ApplicationFile(BaseModel):
    """One file of an application; without `blob` once its retention purge deleted it."""

    id: str = Field(description="rendition, original or attachment-<n>, stable within the application")
    kind: FileKind
    name: str | None = Field(description="its file name (personal data); None once purged")
    media_type: str
    size: int | None = None
    blob: str | None = Field(None, description="the blob holding its content; None once purged")


def file_kind(file_id: str) -> FileKind | None:
    """The kind of file an id names (``rendition``, ``original``, ``attachment-<n>``); None: no file id."""
    if file_id in (FileKind.RENDITION, FileKind.ORIGINAL):
        return FileKind(file_id)
    number = file_id.removeprefix(ATTACHMENT_PREFIX)
    if number != file_id and number.isascii() and number.isdigit():
        return FileKind.ATTACHMENT
    return None


def application_files(application: Application, tasks: Sequence[Task]) -> list[ApplicationFile]:
    """The files of `application` (with its `tasks`, whose mapped record names the rendition)."""
    if application.purged is not None:
        # Names and types went with the payload: one entry per kind of file, each deleted.
        return [ApplicationFile(id=kind, kind=kind, name=None, media_type="") for kind in FileKind]
    files: list[ApplicationFile] = []
    record = mapped_record(tasks)
    documents = record.documents if record is not None else []
    rendition = next((d for d in documents if d.content == DocumentContent.RENDITION and d.blob), None)
    if rendition is not None:
        files.append(
            ApplicationFile(
                id=FileKind.RENDITION,
                kind=FileKind.RENDITION,
                name=rendition.name,
                media_type=rendition.media_type,
                blob=rendition.blob,
            )
        )
    files += [
        ApplicationFile(
            id=f"{ATTACHMENT_PREFIX}{n}",
            kind=FileKind.ATTACHMENT,
            name=a.name,
            media_type=a.media_type,
            size=a.size,
            blob=a.blob,
        )
        for n, a in enumerate(application.attachments, start=1)
    ]
    original = application.original
    if original is not None:
        # The mapping names the original as it files it; otherwise a name from the source's id.
        filed = next((d for d in documents if d.content == DocumentContent.ORIGINAL), None)
        extension = mimetypes.guess_extension(original.media_type.split(";")[0].strip()) or ""
        files.append(
            ApplicationFile(
                id=FileKind.ORIGINAL,
                kind=FileKind.ORIGINAL,
                name=filed.name
                if filed is not None
                else f"Originalantrag {application.external_id}{extension}",
                media_type=original.media_type,
                size=original.size,
                blob=original.blob,
            )
        )
    return files
