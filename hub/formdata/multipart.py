"""Reading form bodies: multipart/form-data (streamed) and urlencoded, as browsers and form servers send them.

Multipart bodies go through `multipart`'s push parser (sans-I/O, boundaries found with `bytes.find`):
about six times faster for a form of a few parts than python-multipart's byte-wise state machine, and
far faster than aiohttp's reader (which runs every part header through the email package).

Files never pass through memory as a whole: each file part is handed to the blob store chunk by chunk,
hashed and size-checked on the way. Text parameters are held in memory, bounded by the configured limits.
Error messages name the parameter and the limit, never a value or a file name (they end up in logs).

Character set of names, values and file names, first that applies: a part's own ``charset`` label
(multipart), the request's ``charset`` label, the ``_charset_`` form field (the HTML convention: the
client fills it with the encoding it used), the connector's `encoding`. Labels are read the WHATWG way
(`charsets`). Multipart text is therefore decoded when the body has ended: a ``_charset_`` part may come
after the fields it describes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multipart import (
    MultipartError,
    MultipartSegment,
    ParserError,
    ParserLimitReached,
    PushMultipartParser,
)
from python_multipart.multipart import parse_options_header

from hub.blobs import BlobInfo, Blobs, BlobTooLarge, BlobWriter
from hub.errors import BadSubmission
from hub.models import Attachment

from . import charsets
from .limits import FormLimits
from .submission import Submission, check_name, check_value, media_type_of, safe_filename, show

CHUNK = 64 * 1024
MAX_PART_HEADERS = 16 * 1024
MAX_PART_HEADER_LINES = 64
# What aiohttp raises reading a body that is cut off or does not follow the HTTP format.
MALFORMED = (ValueError, RuntimeError, LookupError, HttpProcessingError)
IDENTITY_TRANSFER_ENCODINGS = ("", "binary", "8bit", "7bit")
CHARSET_FIELD = b"_charset_"
# RFC 5987 extended notation of a file name (charset'language'percent-encoded), which RFC 7578 tells
# senders not to use and python-multipart therefore drops; some Java and mail-derived clients send it.
_BOUNDARY_PARAM = re.compile(r";\s*boundary\s*=", re.IGNORECASE)
_SIMPLE_DISPOSITION = re.compile(rb'form-data; name="([^"\\]*)"(?:; filename="([^"\\]*)")?')
# The same, on the header value as the parser hands it over (Latin-1 text: one character per byte).
_USUAL_DISPOSITION = re.compile(_SIMPLE_DISPOSITION.pattern.decode("latin-1"))
_FILENAME_STAR = re.compile(rb"""(?:^|;)\s*filename\*\s*=\s*([^;\s]+)""", re.IGNORECASE)


@dataclass
class _RawText:
    name: bytes
    value: bytes
    charset: str | None  # the part's own label


@dataclass
class _RawFile:
    name: bytes
    filename: bytes | None
    filename_star: bytes | None
    media_type: str | None
    blob: BlobInfo


class _Limits:
    """Counts what a submission has used of its limits; refuses it the moment one is exceeded."""

    def __init__(self, config: FormLimits) -> None:
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

    def text(self, name: bytes, size: int) -> None:
        """Check a text value of `size` bytes so far (called as it grows); `name` as sent."""
        if size > self.config.max_field_size:
            raise BadSubmission(
                f"parameter {show(name.decode('utf-8', 'replace'))} exceeds the limit of "
                f"{self.config.max_field_size} bytes",
                413,
            )
        if self.text_bytes + size > self.config.max_form_size:
            raise BadSubmission(
                f"the text parameters exceed the limit of {self.config.max_form_size} bytes in total", 413
            )

    def add_text(self, size: int) -> None:
        self.text_bytes += size


class _FormDataParser(PushMultipartParser):  # type: ignore[misc]
    """`multipart`'s push parser, refusing folded part headers as the hub always has.

    Lenient mode joins a header line that starts with white space to the one before (obsolete line
    folding, RFC 9112 5.2); strict mode would also refuse bytes after the closing boundary, which
    clients send. Two parsers in front of each other could read a folded header differently.
    """

    def _on_segment_headerline(self, line: bytes) -> None:
        if line[:1] in (b" ", b"\t"):
            raise ParserError("folded part header")
        super()._on_segment_headerline(line)


class _MultipartReader:
    """Feeds a multipart/form-data body to `multipart`'s push parser, part by part.

    The parser yields each part's headers, then its content in slices, then the end of the part; text
    values collect in memory (bounded by the limits), file content goes straight into a blob writer.
    Finished files are committed after each chunk, since committing awaits the blob store. Names and
    values stay bytes until `submission` decodes them.
    """

    def __init__(self, boundary: bytes, config: FormLimits, blobs: Blobs) -> None:
        self.config = config
        self.blobs = blobs
        self.limits = _Limits(config)
        self.texts: list[_RawText] = []
        self.files: list[_RawFile] = []
        self.charset_field: bytes | None = None
        self.ended = False
        self._content_type: bytes | None = None  # the current part's, stripped
        self._name = b""
        self._filename: bytes | None = None
        self._filename_star: bytes | None = None
        self._text: bytearray | None = None
        self._file: BlobWriter | None = None
        self._open: list[BlobWriter] = []
        self.finished: list[tuple[BlobWriter, bytes, bytes | None, bytes | None, str | None]] = []
        # Latin-1 maps every byte to one character: the header values come back as sent (`_raw`).
        self.parser = _FormDataParser(
            boundary,
            max_header_size=MAX_PART_HEADERS,
            max_header_count=MAX_PART_HEADER_LINES,
            header_charset="latin-1",
        )

    def write(self, chunk: bytes) -> None:
        """Parse the next chunk of the body (not empty: that would end it)."""
        for event in self.parser.parse(chunk):
            if event is None:
                self._part_end()
            elif isinstance(event, MultipartSegment):
                self._headers_finished(event)
            else:
                self._part_data(event)

    def end(self) -> None:
        """The body has ended: `ended` says whether its closing boundary came (what follows is ignored)."""
        try:
            self.parser.close()
        except MultipartError:
            return
        self.ended = True

    @property
    def shown(self) -> str:
        """The current part's name for an error message (its charset may not be known yet)."""
        return show(self._name.decode("utf-8", "replace"))

    def _headers_finished(self, segment: MultipartSegment) -> None:
        if not self._usual_headers(segment.headerlist):
            self._read_headers(segment.headerlist)
        if self._filename is None and self._filename_star is None:
            self.limits.field()
            self._text = bytearray()
        else:
            self.limits.file()
            self._file = self.blobs.writer(limit=int(self.config.max_file_size))
            self._open.append(self._file)

    def _usual_headers(self, headerlist: list[tuple[str, str]]) -> bool:
        """Read the headers browsers and form servers send, if that is what came; False for others.

        ``Content-Disposition: form-data; name="x"`` with an optional plain ``filename="y"``, and an
        optional ``Content-Type`` after it: what `_read_headers` makes of them, read with one match
        instead of its general steps (about half a part's cost). No other header, no escapes, no
        ``*`` (an extended ``filename*`` even inside a quoted name counts there), nothing around
        the value: the general path reads whatever else is sent, with the same outcome.
        """
        if not 0 < len(headerlist) <= 2:
            return False
        header, value = headerlist[0]
        if header != "Content-Disposition" or "*" in value:
            return False
        usual = _USUAL_DISPOSITION.fullmatch(value)
        if usual is None:
            return False
        content_type = None
        if len(headerlist) == 2:
            header, raw = headerlist[1]
            if header != "Content-Type":
                return False
            content_type = _raw(raw)
            # The two headers as `_read_headers` counts them: lower-case names, stripped values.
            if len(b"content-disposition") + len(value) + len(b"content-type") + len(content_type) > (
                MAX_PART_HEADERS
            ):
                raise BadSubmission(f"a part's headers exceed {MAX_PART_HEADERS} bytes")
        name, filename = usual.groups()
        self._content_type = content_type
        self._name = name.encode("latin-1")
        self._filename = None if filename is None else filename.encode("latin-1")
        self._filename_star = None
        return True

    def _read_headers(self, headerlist: list[tuple[str, str]]) -> None:
        """A part's headers, whatever was sent: name, file name and content type, or refused."""
        headers: dict[bytes, bytes] = {}
        for name, value in headerlist:
            headers[name.lower().encode("latin-1")] = _raw(value)
        # One header is shorter than its line, which the parser bounds by MAX_PART_HEADERS already.
        if len(headers) > 1 and sum(len(k) + len(v) for k, v in headers.items()) > MAX_PART_HEADERS:
            raise BadSubmission(f"a part's headers exceed {MAX_PART_HEADERS} bytes")
        raw_disposition = headers.get(b"content-disposition")
        if raw_disposition and (raw_disposition.count(b'"') - raw_disposition.count(b'\\"')) % 2:
            # An unterminated quoted name: a CR or LF inside it ended the header early.
            raise BadSubmission("a part's Content-Disposition has an unterminated quoted string")
        disposition, params = _disposition(raw_disposition)
        if disposition != b"form-data" or b"name" not in params:
            raise BadSubmission("a part has no Content-Disposition: form-data with a name")
        self._name = params[b"name"]
        self._content_type = headers.get(b"content-type")
        encoding = headers.get(b"content-transfer-encoding")
        if encoding is not None and encoding.decode("latin-1").lower() not in IDENTITY_TRANSFER_ENCODINGS:
            raise BadSubmission(f"parameter {self.shown}: Content-Transfer-Encoding is not supported")
        # (The search needs a '*': most parts have none, and the search is skipped.)
        star = _FILENAME_STAR.search(raw_disposition) if raw_disposition and b"*" in raw_disposition else None
        self._filename = params.get(b"filename")
        self._filename_star = star.group(1) if star else None

    def _part_data(self, data: bytes | bytearray) -> None:
        if self._text is not None:
            self._text += data
            self.limits.text(self._name, len(self._text))
        elif self._file is not None:
            try:
                self._file.write(data)
            except BlobTooLarge as exc:
                raise BadSubmission(
                    f"file in parameter {self.shown} exceeds the limit of {exc.limit} bytes", 413
                ) from None

    def _part_end(self) -> None:
        if self._text is not None:
            self.limits.add_text(len(self._text))
            value = bytes(self._text)
            if self._name == CHARSET_FIELD:
                self.charset_field = value
            self.texts.append(_RawText(self._name, value, _part_charset(self._content_type)))
            self._text = None
        elif self._file is not None:
            media = self._content_type
            self.finished.append(
                (
                    self._file,
                    self._name,
                    self._filename,
                    self._filename_star,
                    media.decode("latin-1") if media else None,
                )
            )
            self._file = None

    async def drain(self) -> None:
        """Let the open files' uploads catch up (object storage), so a fast client fills no memory."""
        for writer in self._open:
            await writer.drain()

    async def commit_finished(self) -> None:
        """Commit the files whose parts ended, in order."""
        for writer, name, filename, filename_star, media in self.finished:
            self._open.remove(writer)
            info = await writer.commit()
            if not filename and not filename_star and info.size == 0:
                continue  # a file element the applicant left empty
            self.files.append(_RawFile(name, filename, filename_star, media, info))
        self.finished.clear()

    def submission(self, charset: str) -> Submission:
        """The parsed submission, names, values and file names decoded (`charset`: the body's)."""
        submission = Submission()
        for text in self.texts:
            name = decode_name(text.name, charset)
            submission.add_field(name, _decode(text.value, text.charset or charset, name))
        for file in self.files:
            number = len(submission.attachments) + 1
            filename = _filename(file.filename, file.filename_star, charset)
            submission.add_attachment(
                Attachment(
                    name=safe_filename(filename, f"anhang-{number}"),
                    media_type=media_type_of(file.media_type),
                    size=file.blob.size,
                    sha256=file.blob.sha256,
                    blob=file.blob.ref,
                    field=decode_name(file.name, charset),
                )
            )
        return submission

    def truncation(self) -> str:
        """What to say about a body that ended early: which part was cut off."""
        if self._file is not None:
            return f"file in parameter {self.shown} is cut off: the body is truncated"
        if self._text is not None:
            return f"parameter {self.shown} is cut off: the body is truncated"
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
    media, params = _content_type(request.headers.get("Content-Type"))
    charset = params.get(b"charset")
    return media.decode("latin-1"), charset.decode("latin-1") if charset else None


# A source reads the request's Content-Type (`content_type_of`), then `read_multipart` its boundary: the
# header is parsed once for both. Each request has its own boundary, so the cache only ever serves that
# second read; a few entries cover the requests in between. (The parameters are only read.)
@functools.lru_cache(maxsize=64)
def _content_type(header: str | None) -> tuple[bytes, dict[bytes, bytes]]:
    return parse_options_header(header)


async def read_multipart(
    request: web.Request,
    config: FormLimits,
    blobs: Blobs,
    declared_charset: str | None,
    *,
    chunks: AsyncIterable[bytes] | None = None,
    verify: Callable[[], None] | None = None,
) -> Submission:
    """Parse a multipart/form-data body; files go to the blob store as they arrive.

    `chunks` replaces the request's body stream (e.g. one that feeds a signature check on the way);
    with `verify`, files are committed only after the whole body has been read and `verify()` has
    returned, so a body it refuses (by raising) leaves nothing in the blob store.
    """
    _, params = _content_type(request.headers.get("Content-Type"))
    boundary = params.get(b"boundary")
    if len(_BOUNDARY_PARAM.findall(request.headers.get("Content-Type", ""))) > 1:
        # Which one counts differs between parsers: a filter in front may have read the other body.
        raise BadSubmission("multipart/form-data with more than one boundary parameter")
    if not boundary or len(boundary) > 70:
        raise BadSubmission("multipart/form-data without a valid boundary parameter")
    reader = _MultipartReader(boundary, config, blobs)
    try:
        try:
            async for chunk in chunks if chunks is not None else request.content.iter_chunked(CHUNK):
                if chunk:  # an empty chunk would end the parser early
                    reader.write(chunk)
                await reader.drain()
                if reader.finished and verify is None:
                    await reader.commit_finished()
        except ParserLimitReached:
            raise BadSubmission(
                f"a part's headers exceed {MAX_PART_HEADERS} bytes or {MAX_PART_HEADER_LINES} lines"
            ) from None
        except MultipartError:
            raise BadSubmission(
                "malformed multipart body: a boundary or part header is missing or invalid"
            ) from None
        except MALFORMED:
            raise BadSubmission("the multipart body is truncated or malformed") from None
        reader.end()
        if not reader.ended:
            raise BadSubmission(reader.truncation())
        if verify is not None:
            verify()
        await reader.commit_finished()
        return reader.submission(body_charset(config, declared_charset, reader.charset_field))
    except BaseException:
        reader.abort()
        raise


def body_charset(config: FormLimits, declared: str | None, charset_field: bytes | None) -> str:
    """The body's character set: its label, else the `_charset_` field, else the configured one."""
    for label in (declared, charset_field.decode("latin-1").strip() if charset_field else None):
        if label:
            return _encoding(label)
    return config.encoding


def _encoding(label: str) -> str:
    name = charsets.encoding_name(label)
    if name is None:
        raise BadSubmission(f"unsupported charset {show(label)}", 415)
    return name


def _filename(raw: bytes | None, star: bytes | None, charset: str) -> str:
    """A file name as sent: the RFC 5987 form if it is readable, else the plain one."""
    if star is not None:
        label, _, rest = star.strip(b'"').partition(b"'")
        _, _, quoted = rest.partition(b"'")
        name = charsets.encoding_name(label.decode("latin-1"))
        if name is not None:
            try:
                return charsets.decode(unquote_to_bytes(quoted), name)
            except UnicodeDecodeError:
                pass
    if not raw:
        return ""
    try:
        return charsets.decode(raw, charset)
    except UnicodeDecodeError:
        return charsets.decode(raw, "windows-1252")  # old clients send Latin-1 names whatever the body


def _disposition(raw: bytes | None) -> tuple[bytes, dict[bytes, bytes]]:
    """A part's Content-Disposition: type and parameters, read by python-multipart's rules (RFC 7578).

    The form every browser and form server sends (``form-data; name="x"`` with an optional plain
    ``filename="y"``: no escapes, no backslashes) is read directly; that gives the same result and saves
    about half the cost of reading a part's headers.
    """
    simple = _SIMPLE_DISPOSITION.fullmatch(raw) if raw else None
    if simple is None:
        return parse_options_header(raw)
    name, filename = simple.groups()
    return b"form-data", {b"name": name} if filename is None else {b"name": name, b"filename": filename}


def _raw(value: str) -> bytes:
    """A header value as sent: the parser decoded it as Latin-1 (one character per byte)."""
    return value.encode("latin-1").strip()


def _part_charset(content_type: bytes | None) -> str | None:
    if not content_type:  # a plain text field, as browsers send them
        return None
    _, params = parse_options_header(content_type)
    charset = params.get(b"charset")
    return _encoding(charset.decode("latin-1")) if charset else None


async def read_urlencoded(
    request: web.Request, config: FormLimits, declared_charset: str | None
) -> tuple[Submission, bytes]:
    """Parse an application/x-www-form-urlencoded body; returns the submission and the body as sent.

    The whole body is read (it holds no files), bounded by `max_form_size`.
    """
    limit = int(config.max_form_size)
    raw = await read_body(request, limit, "urlencoded")
    limits = _Limits(config)
    pairs: list[tuple[bytes, bytes]] = []
    charset_field = None
    for pair in raw.split(b"&"):
        if not pair:
            continue
        limits.field()
        raw_name, _, raw_value = pair.partition(b"=")
        name_bytes, value = form_unquote(raw_name), form_unquote(raw_value)
        limits.text(name_bytes, len(value))
        limits.add_text(len(value))
        if name_bytes == CHARSET_FIELD:
            charset_field = value
        pairs.append((name_bytes, value))
    charset = body_charset(config, declared_charset, charset_field)
    submission = Submission()
    for name_bytes, value in pairs:
        name = decode_name(name_bytes, charset)
        submission.add_field(name, _decode(value, charset, name))
    return submission, raw


async def read_body(request: web.Request, limit: int, what: str) -> bytes:
    """The whole body of a request, refused (413) as soon as it exceeds `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise BadSubmission(f"the {what} body exceeds the limit of {limit} bytes", 413)
    body = bytearray()
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            body += chunk
            if len(body) > limit:
                raise BadSubmission(f"the {what} body exceeds the limit of {limit} bytes", 413)
    except MALFORMED:
        raise BadSubmission(f"the {what} body is truncated or malformed") from None
    return bytes(body)


def form_unquote(data: bytes) -> bytes:
    """A name or value of an urlencoded body, decoded to bytes ("+" is a space)."""
    return unquote_to_bytes(data.replace(b"+", b" "))


# A form sends the same few parameter names with every submission: each name is decoded and checked
# once per process (a refused one is not kept, so it is refused again). Bounded: hostile names only
# push out others.
@functools.lru_cache(maxsize=4096)
def decode_name(data: bytes, charset: str) -> str:
    """A parameter name in the body's charset, checked (`check_name`); refused if it does not decode."""
    try:
        return check_name(charsets.decode(data, charset))
    except UnicodeDecodeError:
        raise BadSubmission(f"a parameter name is not valid {charset}") from None


def _decode(data: bytes, charset: str, name: str) -> str:
    try:
        return check_value(name, charsets.decode(data, charset))
    except UnicodeDecodeError:
        raise BadSubmission(f"parameter {show(name)} is not valid {charset}") from None
