"""The limits and character set a form body is read under: settings of every source that takes forms."""

from __future__ import annotations

from pydantic import BaseModel, ByteSize, Field, field_validator

from .charsets import encoding_name


class FormLimits(BaseModel):
    """Bounds of one submission's fields, files and JSON body; a source's `Config` extends it."""

    max_fields: int = Field(1000, ge=1, description="most text parameters per submission")
    max_field_size: ByteSize = Field(ByteSize(1024**2), ge=1, description="largest text parameter")
    max_form_size: ByteSize = Field(
        ByteSize(10 * 1024**2),
        ge=1,
        description="largest total of all text parameters (for urlencoded bodies: the whole body)",
    )
    max_files: int = Field(50, ge=0, description="most uploaded files per submission")
    max_file_size: ByteSize = Field(ByteSize(100 * 1024**2), ge=1, description="largest uploaded file")
    encoding: str = Field(
        "utf-8",
        description="character set of bodies and parts that carry no charset label (utf-8, "
        "iso-8859-1, windows-1252; WHATWG labels, iso-8859-1 reads as windows-1252)",
    )
    max_json_size: ByteSize = Field(
        ByteSize(25 * 1024**2),
        ge=1,
        description="largest JSON (or XML) body, base64-encoded attachments included",
    )
    max_json_depth: int = Field(16, ge=1, le=64, description="deepest nesting of a JSON (or XML) body")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        name = encoding_name(value)
        if name is None:
            raise ValueError(f"unknown or unusable character set {value!r}: use e.g. utf-8 or windows-1252")
        return name
