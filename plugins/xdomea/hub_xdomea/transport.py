"""Getting a ZIP to the DMS: atomically into an import directory, or uploaded over HTTP.

Directory: the ZIP is written under a temporary dot-name inside the import directory, fsync'd, then
published under its final name by a hard link (which fails if the name exists: an earlier delivery is
never overwritten) or, where the file system has no hard links, a rename; then the directory is fsync'd.

HTTP: ``POST <url>`` as ``multipart/form-data`` with the ZIP as one file part, HTTP Basic auth, the
file streamed from disk, through the hub's `Outbound`. Answers are classified there: no answer in time,
no connection, 5xx, 408, 425 and 429 are `Retryable` (`Unanswered` when the ZIP may have arrived);
other 4xx and redirects are `Permanent` with the server's message. A 409 for a ProzessID the DMS had
imported before is an earlier success.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.payload import BufferedReaderPayload

from hub import Retryable
from hub.outbound import Outbound, Unanswered, classify, server_message

__all__ = ["Answer", "Unanswered", "Uploader", "fsync_directory", "publish"]

MAX_ANSWER = 1024**2  # bytes of an answer read
_ACCEPT = {"Accept": "application/json"}
# Errors of os.link meaning "this file system has no hard links" (SMB/CIFS mounts and the like).
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS, errno.EXDEV})


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
    """Uploads ZIPs to one import URL through the hub's `Outbound` (HTTP Basic); failures classified."""

    def __init__(self, outbound: Outbound, file_field: str) -> None:
        self.outbound = outbound
        self.url = outbound.endpoint.base_url
        self.username = outbound.account
        self.file_field = file_field

    async def upload(self, path: Path, file_name: str, what: str) -> Answer:
        """POST the ZIP at `path` as ``file_name``; the 2xx answer, or `Retryable`/`Permanent`."""
        with open(path, "rb") as content:  # noqa: ASYNC230 - opening is instant; reading is streamed
            writer = aiohttp.MultipartWriter("form-data")
            part = BufferedReaderPayload(content, content_type="application/zip")
            part.set_content_disposition(
                "form-data", quote_fields=False, name=self.file_field, filename=file_name
            )
            writer.append_payload(part)
            answer = await self.outbound.send(
                "POST", self.url, what, data=writer, headers=_ACCEPT, limit=MAX_ANSWER
            )
        return self._classify(answer.status, answer.body, what)

    async def probe(self) -> tuple[int, bytes]:
        """``GET <url>`` with the credentials: (status, body); connection problems as `Retryable`."""
        answer = await self.outbound.send(
            "GET", self.url, "probe of the import URL", headers=_ACCEPT, limit=MAX_ANSWER
        )
        return answer.status, answer.body

    async def fetch(self, url: str, what: str) -> bytes | None:
        """``GET`` a file the DMS offers (an answer): its content, None while it is not there (404)."""
        answer = await self.outbound.send("GET", url, what, headers=_ACCEPT, limit=MAX_ANSWER)
        if answer.status in (404, 410):
            return None
        if answer.status == 200:
            return answer.body
        self._classify(answer.status, answer.body, what)  # raises for every error status
        raise Retryable(f"{what}: the DMS answered {answer.status} instead of the file")

    def _classify(self, status: int, data: bytes, what: str) -> Answer:
        if 200 <= status < 300 or status == 409:
            try:
                body = json.loads(data) if data.strip() else {}
            except ValueError:
                body = {"message": server_message(data)}
            answer = Answer(status, body if isinstance(body, dict) else {"message": server_message(data)})
            # Some DMS answer a repeated ProzessID with 409 Conflict: that is an earlier success.
            if status != 409 or answer.already_imported:
                return answer
        classify(status, data, what, "the DMS", self.username)
        raise Retryable(f"{what}: the DMS answered {status}")  # 1xx: not an answer to take
