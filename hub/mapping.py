"""Mapping an application to a `FileRecord`.

Until a route names a mapping file, the record is the application as it is: its original submission and
every attachment as documents, filed under the service. Mapping files (sandboxed Jinja2, per route) build
on this.
"""

from __future__ import annotations

from hub.models import Application, Document, DocumentContent, FileRecord


def default_record(app: Application) -> FileRecord:
    """The record of an application without a mapping file: original submission plus attachments."""
    documents: list[Document] = []
    if app.original is not None:
        documents.append(
            Document(
                type="original",
                name=f"antrag-original{_extension(app.original.media_type)}",
                content=DocumentContent.ORIGINAL,
                blob=app.original.blob,
                media_type=app.original.media_type,
            )
        )
    for att in app.attachments:
        documents.append(
            Document(
                type="attachment",
                name=att.name,
                content=DocumentContent.ATTACHMENT,
                blob=att.blob,
                media_type=att.media_type,
                attachment=att.name,
            )
        )
    return FileRecord(
        application_id=app.id,
        service=app.service,
        file_number=app.file_number,
        documents=documents,
    )


def _extension(media_type: str) -> str:
    return {
        "application/json": ".json",
        "application/xml": ".xml",
        "text/xml": ".xml",
        "application/x-www-form-urlencoded": ".txt",
        "multipart/form-data": ".eml",
        "application/pdf": ".pdf",
    }.get(media_type.split(";")[0].strip().lower(), ".bin")
