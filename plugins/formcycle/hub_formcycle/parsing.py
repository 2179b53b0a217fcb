"""Reading FormCycle's HTTP-Request bodies: multipart/form-data (streamed) and urlencoded.

Multipart bodies go through python-multipart's push parser, about ten times faster than aiohttp's
reader for form-sized parts (aiohttp runs every part header through the email package).

Files never pass through memory as a whole: each file part is handed to the blob store chunk by chunk,
hashed and size-checked on the way. Text parameters are held in memory, bounded by the configured limits.
Error messages name the parameter and the limit, never a value or a file name (they end up in logs).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from hub import Attachment, BadSubmission, BlobStore, BlobTooLarge, BlobWriter

from .config import FormCycleConfig
from .submission import Submission, check_name, media_type_of, safe_filename, show

CHUNK = 64 * 1024
MAX_PART_HEADERS = 16 * 1024
# What aiohttp raises reading a body that is cut off or does not follow the HTTP format.
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


class _MultipartReader:
    """Feeds a multipart/form-data body to python-multipart's push parser, part by part.

    The parser calls back synchronously; text values collect in memory (bounded by the limits), file
    content goes straight into a blob writer. Finished files are committed after each chunk, since
    committing awaits the blob store.
    """

    def __init__(self, boundary: bytes, config: FormCycleConfig, blobs: BlobStore) -> None:
        self.config = config
        self.blobs = blobs
        self.limits = _Limits(config)
        self.submission = Submission()
        self.ended = False
        self._headers: dict[bytes, bytes] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._header_bytes = 0
        self._name = ""
        self._filename: str | None = None
        self._text: bytearray | None = None
        self._file: BlobWriter | None = None
        self._open: list[BlobWriter] = []
        self.finished: list[tuple[BlobWriter, str, str | None, str | None]] = []
        callbacks: dict[str, Callable[..., None]] = {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }
        self.parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]

    def _part_begin(self) -> None:
        self._headers = {}
        self._header_bytes = 0

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]
        self._count_header(end - start)

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._count_header(end - start)

    def _count_header(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > MAX_PART_HEADERS:
            raise BadSubmission(f"a part's headers exceed {MAX_PART_HEADERS} bytes")

    def _header_end(self) -> None:
        self._headers[bytes(self._header_field).strip().lower()] = bytes(self._header_value).strip()
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get(b"content-disposition"))
        if disposition != b"form-data" or b"name" not in params:
            raise BadSubmission("a part has no Content-Disposition: form-data with a name")
        self._name = check_name(_decode(params[b"name"], "utf-8", None))
        encoding = self._headers.get(b"content-transfer-encoding", b"").decode("latin-1").lower()
        if encoding not in IDENTITY_TRANSFER_ENCODINGS:
            raise BadSubmission(f"parameter {show(self._name)}: Content-Transfer-Encoding is not supported")
        raw_filename = params.get(b"filename")
        if raw_filename is None:
            self.limits.field()
            self._text = bytearray()
            self._filename = None
        else:
            self.limits.file()
            self._filename = _filename(raw_filename)
            self._file = self.blobs.writer(limit=int(self.config.max_file_size))
            self._open.append(self._file)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._text is not None:
            self._text += data[start:end]
            self.limits.text(self._name, len(self._text))
        elif self._file is not None:
            try:
                self._file.write(memoryview(data)[start:end])
            except BlobTooLarge as exc:
                raise BadSubmission(
                    f"file in parameter {show(self._name)} exceeds the limit of {exc.limit} bytes", 413
                ) from None

    def _part_end(self) -> None:
        if self._text is not None:
            self.limits.add_text(len(self._text))
            charset = _part_charset(self._headers.get(b"content-type"))
            self.submission.add_field(self._name, _decode(bytes(self._text), charset, self._name))
            self._text = None
        elif self._file is not None:
            media = self._headers.get(b"content-type")
            self.finished.append(
                (self._file, self._name, self._filename, media.decode("latin-1") if media else None)
            )
            self._file = None

    def _end(self) -> None:
        self.ended = True

    async def commit_finished(self) -> None:
        """Commit the files whose parts ended; add them to the submission in order."""
        for writer, name, filename, media in self.finished:
            self._open.remove(writer)
            info = await writer.commit()
            if not filename and info.size == 0:
                continue  # a file element the applicant left empty
            number = len(self.submission.attachments) + 1
            self.submission.add_attachment(
                Attachment(
                    name=safe_filename(filename or "", f"anhang-{number}"),
                    media_type=media_type_of(media),
                    size=info.size,
                    sha256=info.sha256,
                    blob=info.ref,
                    field=name,
                )
            )
        self.finished.clear()

    def truncation(self) -> str:
        """What to say about a body that ended early: which part was cut off."""
        if self._file is not None:
            return f"file in parameter {show(self._name)} is cut off: the body is truncated"
        if self._text is not None:
            return f"parameter {show(self._name)} is cut off: the body is truncated"
        return "the multipart body is truncated: its closing boundary is missing"

    def abort(self) -> None:
        """Discard files not committed (the submission is refused)."""
        for writer in self._open:
            writer.abort()
        self._open.clear()


def content_type_of(request: web.Request) -> tuple[str, str | None]:
    """The request's media type (lower case) and charset parameter.

    Parsed here rather than with aiohttp's `request.content_type`, which runs the header through the
    email package and cost a third of the event loop's time per submission.
    """
    media, params = parse_options_header(request.headers.get("Content-Type"))
    charset = params.get(b"charset")
    return media.decode("latin-1"), charset.decode("latin-1") if charset else None


async def read_multipart(request: web.Request, config: FormCycleConfig, blobs: BlobStore) -> Submission:
    """Parse a multipart/form-data body; files go to the blob store as they arrive."""
    _, params = parse_options_header(request.headers.get("Content-Type"))
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 70:
        raise BadSubmission("multipart/form-data without a valid boundary parameter")
    reader = _MultipartReader(boundary, config, blobs)
    try:
        try:
            async for chunk in request.content.iter_chunked(CHUNK):
                reader.parser.write(chunk)
                if reader.finished:
                    await reader.commit_finished()
        except MultipartParseError:
            raise BadSubmission(
                "malformed multipart body: a boundary or part header is missing or invalid"
            ) from None
        except MALFORMED:
            raise BadSubmission("the multipart body is truncated or malformed") from None
        if not reader.ended:
            raise BadSubmission(reader.truncation())
        await reader.commit_finished()
    except BaseException:
        reader.abort()
        raise
    return reader.submission


def _filename(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # old clients send Latin-1 names


def _part_charset(content_type: bytes | None) -> str:
    _, params = parse_options_header(content_type)
    charset = params.get(b"charset")
    return charset.decode("latin-1") if charset else "utf-8"


async def read_urlencoded(
    request: web.Request, config: FormCycleConfig, declared_charset: str | None
) -> tuple[Submission, bytes]:
    """Parse an application/x-www-form-urlencoded body; returns the submission and the body as sent.

    The whole body is read (it holds no files), bounded by `max_form_size`.
    """
    charset = _charset(declared_charset)
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
