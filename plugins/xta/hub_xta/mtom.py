"""MTOM/XOP over aiohttp: read a multipart/related stream part by part, write one in the same way.

Reading: `read_related` walks the MIME parts as they arrive. The root part (the SOAP envelope, small)
is buffered up to a limit; every other part is handed to a callback that consumes it chunk by chunk
(`part_chunks`), e.g. into a `BlobWriter`. Nothing holds a whole attachment in memory.

Writing: `related_writer` builds an aiohttp `MultipartWriter` whose binary parts are streamed from
async iterables (e.g. the blob store) or files when the request or response is sent. A file goes to
the socket with sendfile(2) where the event loop and connection allow it (`FilePayload`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
from aiohttp import BodyPartReader, hdrs
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_writer import StreamWriter
from aiohttp.payload import AsyncIterablePayload, BytesPayload, Payload

CHUNK = 256 * 1024
MAX_PARTS = 1000
XOP_TYPE = "application/xop+xml"
SOAP_TYPE = "application/soap+xml"
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=]")
# What aiohttp's multipart reader raises for a body that is not well-formed (cut off, lines too long,
# a part longer than its Content-Length): malformed MTOM to us, told apart from the callers' own errors.
_MALFORMED = (ValueError, AssertionError, HttpProcessingError)


class MtomError(ValueError):
    """The MIME stream is not well-formed MTOM (no root, oversized envelope, bad encoding...)."""


def content_type_params(value: str) -> tuple[str, dict[str, str]]:
    """A Content-Type header's media type (lower case) and its parameters (names lower case)."""
    message = Message()
    message["content-type"] = value
    params = message.get_params(failobj=[]) or []
    return message.get_content_type(), {str(k).lower(): str(v) for k, v in params[1:]}


def soap_action(content_type: str) -> str | None:
    """The SOAP 1.2 action of a request: the ``action`` parameter, for MTOM inside the root's type."""
    media, params = content_type_params(content_type)
    if media == "multipart/related":
        for key in ("start-info", "type"):
            inner = params.get(key, "")
            if inner.startswith(SOAP_TYPE):
                found = content_type_params(inner)[1].get("action")
                if found:
                    return found
    elif media == XOP_TYPE:
        return content_type_params(params.get("type", ""))[1].get("action")
    return params.get("action")


def content_id(header: str | None) -> str | None:
    """A Content-ID header's id without the angle brackets."""
    if header is None:
        return None
    value = header.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value or None


def cid_of(href: str) -> str:
    """The Content-ID an ``xop:Include href="cid:..."`` points at (RFC 2392: URL-encoded)."""
    if not href.lower().startswith("cid:"):
        raise MtomError(f"xop:Include href is not a cid: URL: {href[:80]!r}")
    return unquote(href[4:])


def href_of(cid: str) -> str:
    """The ``cid:`` URL of a Content-ID."""
    return "cid:" + quote(cid, safe="@.-_!$&'()*+,;=:~")


class _Base64Decoder:
    """Decodes base64 arriving in arbitrary pieces (line breaks and splits anywhere)."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> bytes:
        data = self._rest + _NOT_BASE64.sub(b"", data)
        whole = len(data) - len(data) % 4
        self._rest = data[whole:]
        try:
            return base64.b64decode(data[:whole], validate=True)
        except binascii.Error as exc:
            raise MtomError(f"bad base64 in a MIME part: {exc}") from None

    def close(self) -> bytes:
        if self._rest:
            raise MtomError("base64 content ends mid-quartet")
        return b""


async def part_chunks(part: BodyPartReader, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
    """A MIME part's content, decoded from its transfer encoding, chunk by chunk."""
    encoding = (part.headers.get(hdrs.CONTENT_TRANSFER_ENCODING) or "binary").strip().lower()
    if encoding in ("binary", "8bit", "7bit"):
        while chunk := await _read_chunk(part, chunk_size):
            yield chunk
    elif encoding == "base64":
        decoder = _Base64Decoder()
        while chunk := await _read_chunk(part, chunk_size):
            if decoded := decoder.feed(chunk):
                yield decoded
        decoder.close()
    else:
        raise MtomError(f"unsupported Content-Transfer-Encoding {encoding!r} (expected binary or base64)")


async def _read_chunk(part: BodyPartReader, size: int) -> bytes:
    # aiohttp says a body that ends before the part's closing boundary with a bare ValueError
    # ("Reading after EOF"): that is malformed MTOM, which callers tell apart from their own errors.
    try:
        return await part.read_chunk(size)
    except MtomError:
        raise
    except _MALFORMED as exc:
        raise MtomError(f"malformed MIME part: {exc}") from None


async def read_part(part: BodyPartReader, limit: int) -> bytes:
    """A small part's whole content; `MtomError` past `limit` bytes."""
    data = bytearray()
    async for chunk in part_chunks(part):
        data += chunk
        if len(data) > limit:
            raise MtomError(f"the SOAP envelope part exceeds {limit} bytes")
    return bytes(data)


@dataclass
class Related:
    """What `read_related` found: the root part (the SOAP envelope) and its media type."""

    root: bytes
    root_type: str
    root_content_type: str


PartHandler = Callable[[str, BodyPartReader], Awaitable[None]]
RootHandler = Callable[[Related], None]


async def read_related(
    headers: Mapping[str, str],
    stream: aiohttp.StreamReader,
    *,
    envelope_limit: int,
    on_part: PartHandler,
    max_parts: int = MAX_PARTS,
    on_root: RootHandler | None = None,
) -> Related:
    """Read a multipart/related body: buffer the root, hand every other part to `on_part(cid, part)`.

    `on_root(root)` sees the envelope as soon as it is read: usually before the other parts, so it can
    refuse a message (e.g. encrypted, declared too large) before any content is downloaded.
    """
    media, params = content_type_params(headers.get(hdrs.CONTENT_TYPE, ""))
    if media != "multipart/related" or "boundary" not in params:
        raise MtomError(f"expected multipart/related with a boundary, got {media!r}")
    start = content_id(params.get("start"))
    reader = aiohttp.MultipartReader(headers, stream)
    root: Related | None = None
    seen: set[str] = set()
    count = 0
    while True:
        try:
            part = await reader.next()
        except _MALFORMED as exc:
            raise MtomError(f"malformed multipart body: {exc}") from None
        if part is None:
            break
        count += 1
        if count > max_parts:
            raise MtomError(f"more than {max_parts} MIME parts")
        if not isinstance(part, BodyPartReader):
            raise MtomError("nested multipart parts are not MTOM")
        cid = content_id(part.headers.get(hdrs.CONTENT_ID))
        if root is None and (cid == start or (start is None and count == 1)):
            part_type = part.headers.get(hdrs.CONTENT_TYPE, "")
            root_media, root_params = content_type_params(part_type)
            inner = root_params.get("type", SOAP_TYPE) if root_media == XOP_TYPE else root_media
            root = Related(await read_part(part, envelope_limit), inner, part_type)
            if on_root is not None:
                on_root(root)
            continue
        if cid is None:
            raise MtomError("a MIME part without Content-ID")
        if cid in seen:
            raise MtomError(f"two MIME parts with Content-ID {cid!r}")
        seen.add(cid)
        await on_part(cid, part)
        if not part.at_eof():
            try:
                await part.release()
            except _MALFORMED as exc:  # e.g. the body ends inside the part
                raise MtomError(f"malformed MIME part: {exc}") from None
    if root is None:
        raise MtomError("no root part (the SOAP envelope) in the multipart body")
    return root


class StreamPayload(AsyncIterablePayload):
    """An async iterable payload of known size: the part gets a Content-Length, nothing is buffered."""

    def __init__(self, chunks: AsyncIterable[bytes], size: int | None, **kwargs: Any) -> None:
        super().__init__(chunks, **kwargs)
        self._size = size


class FilePayload(Payload):
    """A file's first `size` bytes as a part: handed to the kernel with sendfile(2) where it can be.

    Reading a file into Python and writing it to the socket copies every byte twice and costs a
    round through the event loop per chunk; sendfile copies from the page cache straight into the
    socket. It needs a plain connection (no TLS, no chunked or compressed body) and an event loop
    that offers it (the standard one does, uvloop does not): otherwise the file is read in chunks.
    """

    def __init__(self, path: Path, size: int, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self._path = path
        self._length = size
        self.sent_with_sendfile = False  # how the content went (tests, benchmarks)

    @property
    def size(self) -> int:
        """The part's length (the multipart body gets a Content-Length)."""
        return self._length

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Never wanted for binary content: refuse rather than read a large file into memory."""
        raise TypeError("a file part is not decoded as text")

    async def write(self, writer: AbstractStreamWriter) -> None:
        """Send the file's content through `writer`'s connection."""
        with self._path.open("rb") as f:
            if await self._sendfile(writer, f):
                return
            left = self._length
            while left > 0 and (chunk := f.read(min(CHUNK, left))):
                await writer.write(chunk)
                left -= len(chunk)
            if left:
                raise MtomError(f"{self._path.name} is {left} bytes shorter than its part")

    async def _sendfile(self, writer: AbstractStreamWriter, f: Any) -> bool:
        # Only where the bytes on the wire are the file's bytes: aiohttp's own writer, neither
        # chunked nor compressing (`_compress` is how its StreamWriter says so).
        if type(writer) is not StreamWriter or writer.chunked or writer._compress is not None:
            return False
        transport = writer.transport
        if transport is None or transport.get_extra_info("sslcontext") is not None:
            return False
        writer.send_headers()  # headers aiohttp still holds back go first
        try:
            sent = await asyncio.get_running_loop().sendfile(transport, f, 0, self._length, fallback=False)
        except (NotImplementedError, asyncio.SendfileNotAvailableError):
            f.seek(0)
            return False
        if sent != self._length:
            raise MtomError(f"{self._path.name} is {self._length - sent} bytes shorter than its part")
        self.sent_with_sendfile = True
        return True


@dataclass
class OutgoingPart:
    """A binary part of an MTOM message: its Content-ID, media type and content (streamed, or a file)."""

    cid: str
    media_type: str
    chunks: AsyncIterable[bytes] | None
    size: int | None
    path: Path | None = None  # content in a file of `size` bytes: sent as `FilePayload`


def new_cid(label: str = "part") -> str:
    """A fresh Content-ID."""
    return f"{label}-{uuid.uuid4().hex}@aktenhub"


def related_writer(envelope: bytes, action: str | None, parts: list[OutgoingPart]) -> aiohttp.MultipartWriter:
    """An MTOM body: the envelope as XOP root, then each binary part streamed. Its `content_type`
    carries type, start and start-info as SOAP 1.2 MTOM requires."""
    boundary = "MIMEBoundary_" + uuid.uuid4().hex
    writer = aiohttp.MultipartWriter("related", boundary=boundary)
    root_cid = new_cid("root")
    soap_type = f'{SOAP_TYPE}; action=\\"{action}\\"' if action else SOAP_TYPE
    root = BytesPayload(
        envelope,
        content_type=f'{XOP_TYPE}; charset=UTF-8; type="{soap_type}"',
        headers={hdrs.CONTENT_ID: f"<{root_cid}>", hdrs.CONTENT_TRANSFER_ENCODING: "binary"},
    )
    writer.append_payload(root)
    for part in parts:
        headers = {hdrs.CONTENT_ID: f"<{part.cid}>", hdrs.CONTENT_TRANSFER_ENCODING: "binary"}
        payload: Payload
        if part.path is not None and part.size is not None:
            payload = FilePayload(part.path, part.size, content_type=part.media_type, headers=headers)
        elif part.chunks is not None:
            payload = StreamPayload(part.chunks, part.size, content_type=part.media_type, headers=headers)
        else:
            raise ValueError(f"part {part.cid}: neither chunks nor a file of known size")
        writer.append_payload(payload)
    writer.headers[hdrs.CONTENT_TYPE] = (
        f'multipart/related; boundary="{boundary}"; type="{XOP_TYPE}"; start="<{root_cid}>"; '
        f'start-info="{soap_type}"'
    )
    return writer
