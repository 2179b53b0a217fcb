"""File formats as xdomea code list "Dateiformat" names them (urn:xoev-de:xdomea:codeliste:dateiformat)."""

from __future__ import annotations

from dataclasses import dataclass

LIST_URI = "urn:xoev-de:xdomea:codeliste:dateiformat"
LIST_VERSION = "1.0"
OTHER = "100"  # "Sonstiges": the format is named in SonstigerName

# Extension -> code, from the code list's descriptions ("pdf - Portable Document Format", ...).
BY_EXTENSION: dict[str, str] = {
    "bmp": "001",
    "csv": "002",
    "doc": "003",
    "eml": "006",
    "htm": "007",
    "html": "008",
    "jpe": "009",
    "jpeg": "010",
    "jpg": "011",
    "msg": "012",
    "odp": "013",
    "ods": "014",
    "odt": "015",
    "pdf": "018",
    "png": "019",
    "ppt": "020",
    "ps": "021",
    "rtf": "022",
    "tif": "023",
    "tiff": "024",
    "xls": "028",
    "xml": "030",
    "xsd": "031",
    "docx": "035",
    "xlsx": "036",
    "pptx": "037",
    "txt": "045",
}

# Media type -> the extension a file of that type gets when its name has none.
EXTENSION_OF_MEDIA_TYPE: dict[str, str] = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/tiff": "tif",
    "image/bmp": "bmp",
    "application/xml": "xml",
    "text/xml": "xml",
    "text/plain": "txt",
    "text/csv": "csv",
    "text/html": "html",
    "message/rfc822": "eml",
    "application/json": "json",
    "application/rtf": "rtf",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/x-www-form-urlencoded": "txt",
}


@dataclass(frozen=True)
class FileFormat:
    """A Dateiformat code, and for "Sonstiges" the format's name."""

    code: str
    other_name: str | None = None


def media_type_extension(media_type: str) -> str | None:
    """The usual extension of a media type (without dot), if known."""
    return EXTENSION_OF_MEDIA_TYPE.get(media_type.split(";")[0].strip().lower())


def file_format(file_name: str, media_type: str) -> FileFormat:
    """The format of a file, by its extension, else by its media type; unknown ones are "Sonstiges"."""
    _, dot, extension = file_name.rpartition(".")
    extension = extension.lower() if dot else ""
    code = BY_EXTENSION.get(extension)
    if code is None:
        by_type = media_type_extension(media_type)
        code = BY_EXTENSION.get(by_type or "")
        if code is None:
            name = extension or by_type or media_type.split(";")[0].strip().lower() or "unbekannt"
            return FileFormat(OTHER, name)
    return FileFormat(code)
