"""Hostile HTTP for simulator tests: requests written byte by byte, answers read off the wire.

A well-behaved client library cannot send a broken request (bad framing, duplicate or non-UTF-8
headers, a lying Content-Length); these helpers can. Each request goes over a fresh loopback
connection, so a simulator that closes one connection is still reachable for the next case.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

CRLF = b"\r\n"


@dataclass
class Answer:
    """One HTTP response as read off the wire."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Case:
    """A hostile request and the status (or statuses) the real system answers it with."""

    id: str
    raw: bytes
    status: int | tuple[int, ...]

    def expects(self, status: int) -> bool:
        """Whether `status` is one of the answers this case allows."""
        return status in (self.status if isinstance(self.status, tuple) else (self.status,))


def basic(user: str | bytes, password: str | bytes = b"") -> str:
    """The value of an ``Authorization: Basic`` header for raw (possibly non-UTF-8) credentials."""
    raw_user = user.encode() if isinstance(user, str) else user
    raw_password = password.encode() if isinstance(password, str) else password
    return "Basic " + base64.b64encode(raw_user + b":" + raw_password).decode("ascii")


def request(
    method: str,
    target: str,
    headers: Sequence[tuple[str, str | bytes]] = (),
    body: bytes = b"",
    *,
    length: bool = True,
    close: bool = True,
) -> bytes:
    """A raw HTTP/1.1 request; Content-Length from the body unless `length` is False or one is given."""
    lines = [f"{method} {target} HTTP/1.1".encode("latin-1"), b"Host: 127.0.0.1"]
    names = {name.lower() for name, _ in headers}
    for name, value in headers:
        lines.append(
            name.encode("latin-1") + b": " + (value.encode("latin-1") if isinstance(value, str) else value)
        )
    if length and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    if close:
        lines.append(b"Connection: close")
    return CRLF.join(lines) + CRLF + CRLF + body


def multipart(boundary: str, *parts: tuple[Sequence[tuple[str, str]], bytes], end: bool = True) -> bytes:
    """A multipart body of (headers, content) parts; without the closing delimiter unless `end`."""
    out = bytearray()
    for part_headers, content in parts:
        out += b"--" + boundary.encode() + CRLF
        for name, value in part_headers:
            out += f"{name}: {value}".encode() + CRLF
        out += CRLF + content + CRLF
    if end:
        out += b"--" + boundary.encode() + b"--" + CRLF
    return bytes(out)


def nested_json(depth: int) -> bytes:
    """A JSON document nested `depth` arrays deep (deeper than any recursive parser's stack)."""
    return b"[" * depth + b"]" * depth


async def exchange_all(
    url: str, raw: bytes, *, finals: int = 1, timeout: float = 10.0
) -> tuple[list[Answer], bytes]:
    """Send `raw` over a fresh connection; read until `finals` final answers came or the server closed.

    Returns every complete answer, interim ones (100 Continue) included, and the bytes received. A hang
    fails the test (TimeoutError): a server must answer or close, never keep a client waiting.
    """
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    received = bytearray()
    head_only = raw.startswith(b"HEAD ")
    closed = False
    try:
        try:
            writer.write(raw)
            await writer.drain()
        except ConnectionError:
            pass  # refused before reading everything: the answer is still to be read
        async with asyncio.timeout(timeout):
            while sum(a.status >= 200 for a in parse_answers(bytes(received), head_only)) < finals:
                try:
                    chunk = await reader.read(65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    closed = True
                    break
                received += chunk
    finally:
        writer.close()
    return parse_answers(bytes(received), head_only, complete=closed), bytes(received)


async def exchange(url: str, raw: bytes, timeout: float = 10.0) -> Answer | None:
    """Send `raw` over a fresh connection and read the first final answer; None if the server closed."""
    answers, _ = await exchange_all(url, raw, timeout=timeout)
    return next((a for a in answers if a.status >= 200), None)


def parse_answers(data: bytes, head_only: bool = False, complete: bool = False) -> list[Answer]:
    """The complete answers in `data`, in order (interim ones too); `complete`: the server closed after."""
    answers = []
    while data:
        head, sep, rest = data.partition(CRLF + CRLF)
        if not sep:
            break
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        if head_only or status < 200:
            body, data = b"", rest
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if len(rest) < length:
                break
            body, data = rest[:length], rest[length:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            dechunked = _dechunk(rest)
            if dechunked is None:
                break
            body, data = dechunked
        elif complete:  # delimited by the server closing the connection
            body, data = rest, b""
        else:
            break
        answers.append(Answer(status, headers, body))
    return answers


def _dechunk(data: bytes) -> tuple[bytes, bytes] | None:
    """(body, what follows it) of a complete chunked body; None while it is incomplete."""
    body = bytearray()
    while True:
        size_line, sep, data = data.partition(CRLF)
        if not sep:
            return None
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            _trailers, sep, rest = (CRLF + data).partition(CRLF + CRLF)
            return (bytes(body), rest) if sep else None
        if len(data) < size + 2:
            return None
        body += data[:size]
        data = data[size + 2 :]
