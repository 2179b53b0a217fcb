"""Getting a ZIP to the DMS: atomically into an import directory, or uploaded over HTTP.

Directory: the ZIP is written under a temporary dot-name inside the import directory, fsync'd, then
published under its final name by a hard link (which fails if the name exists: an earlier delivery is
never overwritten) or, where the file system has no hard links, a rename; then the directory is fsync'd.

HTTP: ``POST <url>`` as ``multipart/form-data`` with the ZIP as one file part, HTTP Basic auth, the
file streamed from disk. Answers are classified for the core: no answer in time, no connection, 5xx,
408, 425 and 429 are `Retryable`; other 4xx are `Permanent` with the server's message.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.payload import BufferedReaderPayload

from hub import Permanent, Retryable, transient_http_status

MAX_ANSWER = 1024**2  # bytes of an answer read
MAX_MESSAGE = 300  # characters of a server's message kept in an error
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# Errors of os.link meaning "this file system has no hard links" (SMB/CIFS mounts and the like).
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS, errno.EXDEV})


class Unanswered(Retryable):
    """The request may have reached the DMS, but no answer came: whether it was taken is unknown."""


def publish(temp: Path, final: Path, fsync: bool) -> bool:
    """Give the complete file `temp` its final name; False if `final` already exists (temp is removed)."""
    try:
        try:
            os.link(temp, final)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            if final.exists():
                return False
            os.rename(temp, final)
    finally:
        temp.unlink(missing_ok=True)
    if fsync:
        fsync_directory(final.parent)
    return True


def fsync_directory(path: Path) -> None:
    """fsync a directory, so a new name in it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some network file systems cannot fsync a directory; the rename is still atomic there.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` header value of HTTP Basic authentication (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


@dataclass(frozen=True)
class Answer:
    """A 2xx answer of the import endpoint."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def already_imported(self) -> bool:
        """Whether the DMS says it had imported this ProzessID before."""
        if self.body.get("duplicate") is True:
            return True
        text = f"{self.body.get('status') or ''} {self.body.get('message') or ''}".lower()
        return "already" in text or "bereits" in text

    @property
    def import_id(self) -> str | None:
        """The id the DMS gave the import, if it says one."""
        for key in ("importId", "import_id", "id"):
            value = self.body.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
        return None


class Uploader:
    """Uploads ZIPs to one import URL with HTTP Basic auth; failures classified."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        file_field: str,
        timeout_seconds: float,
        session: Callable[[], aiohttp.ClientSession],
    ) -> None:
        self.url = url
        self.username = username
        self.file_field = file_field
        self.timeout_seconds = timeout_seconds
        self._authorization = basic_authorization(username, password)
        self._session = session

    def _timeout(self) -> aiohttp.ClientTimeout:
        # No total limit: a large ZIP may take long to send; what must not take long is silence.
        seconds = self.timeout_seconds
        return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)

    async def upload(self, path: Path, file_name: str, what: str) -> Answer:
        """POST the ZIP at `path` as ``file_name``; the 2xx answer, or `Retryable`/`Permanent`."""
        with open(path, "rb") as content:  # noqa: ASYNC230 - opening is instant; reading is streamed
            writer = aiohttp.MultipartWriter("form-data")
            part = BufferedReaderPayload(content, content_type="application/zip")
            part.set_content_disposition(
                "form-data", quote_fields=False, name=self.file_field, filename=file_name
            )
            writer.append_payload(part)
            status, data = await self._send("POST", what, data=writer)
        return self._classify(status, data, what)

    async def probe(self) -> tuple[int, bytes]:
        """``GET <url>`` with the credentials: (status, body); connection problems as `Retryable`."""
        return await self._send("GET", "probe of the import URL")

    async def fetch(self, url: str, what: str) -> bytes | None:
        """``GET`` a file the DMS offers (an answer): its content, None while it is not there (404)."""
        status, data = await self._send("GET", what, url=url)
        if status in (404, 410):
            return None
        if status == 200:
            return data
        self._classify(status, data, what)  # raises for every error status
        raise Retryable(f"{what}: the DMS answered {status} instead of the file")

    async def _send(
        self, method: str, what: str, data: aiohttp.MultipartWriter | None = None, url: str | None = None
    ) -> tuple[int, bytes]:
        url = url or self.url
        try:
            async with self._session().request(
                method,
                url,
                data=data,
                headers={"Authorization": self._authorization, "Accept": "application/json"},
                timeout=self._timeout(),
                allow_redirects=False,
            ) as response:
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > MAX_ANSWER:
                        raise Retryable(f"{what}: the answer is larger than {MAX_ANSWER} bytes")
                return response.status, bytes(body)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # No connection was made: the request never reached the DMS.
            raise Retryable(f"{what}: connection to {url} failed: {type(exc).__name__}: {exc}") from None
        except TimeoutError:
            raise Unanswered(f"{what}: no answer from {url} within {self.timeout_seconds:g} s") from None
        except aiohttp.ClientConnectionError as exc:
            raise Unanswered(
                f"{what}: the connection to {url} broke before the answer: {type(exc).__name__}: {exc}"
            ) from None
        except aiohttp.ClientError as exc:
            raise Unanswered(f"{what}: {type(exc).__name__}: {exc}") from None

    def _classify(self, status: int, data: bytes, what: str) -> Answer:
        message = server_message(data)
        if 200 <= status < 300 or status == 409:
            try:
                body = json.loads(data) if data.strip() else {}
            except ValueError:
                body = {"message": message}
            answer = Answer(status, body if isinstance(body, dict) else {"message": message})
            # Some DMS answer a repeated ProzessID with 409 Conflict: that is an earlier success.
            if status != 409 or answer.already_imported:
                return answer
        if status in (401, 403):
            raise Permanent(
                f"{what}: the DMS refused user {self.username!r} ({status}): {message}; "
                "check username, password and the user's rights, then replay"
            )
        if 300 <= status < 400:
            raise Permanent(f"{what}: the DMS answered with a redirect ({status}): check `url`, then replay")
        if 400 <= status < 500 and not transient_http_status(status):
            raise Permanent(f"{what}: the DMS refused the message ({status}): {message}")
        raise Retryable(f"{what}: the DMS answered {status}: {message}")


def server_message(data: bytes) -> str:
    """The ``message`` (or ``error``) of a JSON answer, else the start of the text."""
    text = data.decode("utf-8", errors="replace")
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    message = None
    if isinstance(answer, dict):
        for key in ("message", "error", "detail", "status"):
            value = answer.get(key)
            if isinstance(value, str) and value.strip():
                message = value
                break
    message = message or text.strip() or "(no message)"
    return _CONTROL.sub(" ", message)[:MAX_MESSAGE]
