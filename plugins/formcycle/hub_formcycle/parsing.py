"""Reading FormCycle's HTTP-Request bodies: multipart/form-data (streamed) and urlencoded.

Files never pass through memory as a whole: each file part is handed to the blob store chunk by chunk,
hashed and size-checked on the way. Text parameters are held in memory, bounded by the configured limits.
Error messages name the parameter and the limit, never a value or a file name (they end up in logs).
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncGenerator
from contextlib import aclosing
from urllib.parse import unquote_to_bytes

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from hub import Attachment, BadSubmission, BlobStore, BlobTooLarge

from .config import FormCycleConfig
from .submission import Submission, check_name, media_type_of, safe_filename, show

CHUNK = 64 * 1024
# What aiohttp's multipart reader raises for a body that does not follow the format.
MALFORMED = (ValueError, RuntimeError, LookupError, HttpProcessingError)
IDENTITY_TRANSFER_ENCODINGS = ("", "binary", "8bit", "7bit")


class _Limits:
    """Counts what a submission has used of its limits; refuses it the moment one is exceeded."""

    def __init__(self, config: FormCycleConfig) -> None:
        self.config = config
        self.fields = 0
        self.files = 0
        self.text_bytes = 0

    def field(self) -> None:
        self.fields += 1
        if self.fields > self.config.max_fields:
            raise BadSubmission(f"too many parameters: at most {self.config.max_fields} are accepted", 413)

    def file(self) -> None:
        self.files += 1
        if self.files > self.config.max_files:
            raise BadSubmission(f"too many files: at most {self.config.max_files} are accepted", 413)

    def text(self, name: str, size: int) -> None:
        """Check a text value of `size` bytes so far (called as it grows)."""
        if size > self.config.max_field_size:
            raise BadSubmission(
                f"parameter {show(name)} exceeds the limit of {self.config.max_field_size} bytes", 413
            )
        if self.text_bytes + size > self.config.max_form_size:
            raise BadSubmission(
                f"the text parameters exceed the limit of {self.config.max_form_size} bytes in total", 413
            )

    def add_text(self, size: int) -> None:
        self.text_bytes += size


async def read_multipart(request: web.Request, config: FormCycleConfig, blobs: BlobStore) -> Submission:
    """Parse a multipart/form-data body; files go to the blob store as they arrive."""
    try:
        reader = await request.multipart()
    except MALFORMED:
        raise BadSubmission("multipart/form-data without a valid boundary parameter") from None
    limits = _Limits(config)
    submission = Submission()
    while True:
        try:
            part = await reader.next()
        except MALFORMED as exc:
            raise BadSubmission(
                f"malformed multipart body ({type(exc).__name__}): a boundary or part header is "
                "missing or invalid, or the body is truncated"
            ) from None
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise BadSubmission("nested multipart bodies are not supported")
        name = check_name(part.name)
        encoding = part.headers.get("Content-Transfer-Encoding", "").strip().lower()
        if encoding not in IDENTITY_TRANSFER_ENCODINGS:
            raise BadSubmission(f"parameter {show(name)}: Content-Transfer-Encoding is not supported")
        if part.filename is None:
            limits.field()
            submission.add_field(name, await _read_text(part, name, limits))
        else:
            limits.file()
            attachment = await _store_file(part, name, len(submission.attachments) + 1, config, blobs)
            if attachment is not None:
                submission.add_attachment(attachment)
    return submission


async def _read_text(part: BodyPartReader, name: str, limits: _Limits) -> str:
    data = bytearray()
    charset = "utf-8"
    try:
        # A chunk may be empty before the part ends; at the end of a truncated body aiohttp raises.
        while not part.at_eof():
            data += await part.read_chunk(CHUNK)
            limits.text(name, len(data))
        charset = part.get_charset(default="utf-8")
    except MALFORMED:
        raise BadSubmission(
            f"parameter {show(name)} is cut off: the body is truncated or malformed"
        ) from None
    limits.add_text(len(data))
    return _decode(bytes(data), charset, name)


async def _store_file(
    part: BodyPartReader, name: str, number: int, config: FormCycleConfig, blobs: BlobStore
) -> Attachment | None:
    async def chunks() -> AsyncGenerator[bytes, None]:
        # A truncated body makes read_chunk raise, so a cut-off file is never committed as a blob.
        while not part.at_eof():
            chunk = await part.read_chunk(CHUNK)
            if chunk:
                yield chunk

    try:
        async with aclosing(chunks()) as stream:
            info = await blobs.write(stream, limit=int(config.max_file_size))
    except BlobTooLarge as exc:
        raise BadSubmission(
            f"file in parameter {show(name)} exceeds the limit of {exc.limit} bytes", 413
        ) from None
    except MALFORMED:
        raise BadSubmission(
            f"file in parameter {show(name)} is cut off: the body is truncated or malformed"
        ) from None
    filename = part.filename or ""
    if not filename and info.size == 0:
        return None  # a file element the applicant left empty
    return Attachment(
        name=safe_filename(filename, f"anhang-{number}"),
        media_type=media_type_of(part.headers.get("Content-Type")),
        size=info.size,
        sha256=info.sha256,
        blob=info.ref,
        field=name,
    )


async def read_urlencoded(request: web.Request, config: FormCycleConfig) -> tuple[Submission, bytes]:
    """Parse an application/x-www-form-urlencoded body; returns the submission and the body as sent.

    The whole body is read (it holds no files), bounded by `max_form_size`.
    """
    charset = _charset(request.charset)
    limit = int(config.max_form_size)
    if request.content_length is not None and request.content_length > limit:
        raise BadSubmission(f"the urlencoded body exceeds the limit of {limit} bytes", 413)
    body = bytearray()
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            body += chunk
            if len(body) > limit:
                raise BadSubmission(f"the urlencoded body exceeds the limit of {limit} bytes", 413)
    except MALFORMED:
        raise BadSubmission("the urlencoded body is truncated or malformed") from None
    raw = bytes(body)
    limits = _Limits(config)
    submission = Submission()
    for pair in raw.split(b"&"):
        if not pair:
            continue
        limits.field()
        raw_name, _, raw_value = pair.partition(b"=")
        name = check_name(_decode(_unquote(raw_name), charset, None))
        value = _unquote(raw_value)
        limits.text(name, len(value))
        limits.add_text(len(value))
        submission.add_field(name, _decode(value, charset, name))
    return submission, raw


def _unquote(data: bytes) -> bytes:
    return unquote_to_bytes(data.replace(b"+", b" "))


def _charset(declared: str | None) -> str:
    charset = declared or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        raise BadSubmission(f"unsupported charset {show(charset)}", 415) from None
    return charset


def _decode(data: bytes, charset: str, name: str | None) -> str:
    what = f"parameter {show(name)}" if name is not None else "a parameter name"
    try:
        return data.decode(_charset(charset))
    except UnicodeDecodeError:
        raise BadSubmission(f"{what} is not valid {charset}") from None
