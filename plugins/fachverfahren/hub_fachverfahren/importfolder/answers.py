"""The answer folder: result files a Fachverfahren writes (XML, JSON or CSV) turned into `Answer`s.

Which value is where is configuration (`AnswerFormat.fields`: XPath for XML, JSONPath for JSON, a column
name for CSV), so that a Fachverfahren's own result format is read as it is. A file is handed to the
hub's return channel and moved to ``done/`` only after that returned (the answer is durable then); a
file that cannot be read or names no application of the hub goes to ``failed/`` with a ``.reason`` file
beside it, so it is never tried again. A decision (PDF) named in the result lies next to it and moves
with it.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.parser import parse as jsonpath
from lxml import etree
from pydantic import BaseModel, ByteSize, ConfigDict, Field, ValidationError, field_validator

from hub import (
    Answer,
    AnswerOutcome,
    AnswerStatus,
    Attachment,
    Blobs,
    BlobTooLarge,
    Permanent,
    UnknownApplication,
)
from hub.xml import UnsafeXml, parse_xml

from .folder import fsync_dir, reason

log = logging.getLogger(__name__)

DONE = "done"
FAILED = "failed"
CHUNK = 256 * 1024
_SUFFIXES = {".xml": "xml", ".json": "json", ".csv": "csv"}


class AnswerFields(BaseModel):
    """Where each value is in a result file: XPath (XML), JSONPath (JSON) or column name (CSV).

    A plain name (the defaults) works in all three: a child of the root element, a key of the top-level
    object, a column. `null` leaves a value out.
    """

    model_config = ConfigDict(extra="forbid")

    application_id: str | None = Field(None, description="the hub's application id, if the system echoes it")
    reference: str | None = Field("reference", description="the reference the hub gave (the folder name)")
    case_number: str | None = Field(
        "case_number", description="the Fachverfahren's case number (Aktenzeichen)"
    )
    status: str | None = Field("status", description="the status, mapped by `status_map`")
    message: str | None = Field("message", description="a message for the applicant")
    error: str | None = Field("error", description="why the import was refused (makes the status `failed`)")
    decision: str | None = Field(
        "decision", description="file name of the decision (PDF) next to the result file"
    )


class AnswerFormat(BaseModel):
    """How the Fachverfahren's result files look."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["xml", "json", "csv"] | None = Field(
        None, description="xml, json or csv; default: by each file's suffix (.xml, .json, .csv)"
    )
    fields: AnswerFields = Field(default_factory=AnswerFields)
    namespaces: dict[str, str] = Field(default_factory=dict, description="XPath prefixes -> namespace URIs")
    status_map: dict[str, AnswerStatus] = Field(
        default_factory=dict,
        description="the system's status values -> accepted, in_progress, action_required, decided, failed "
        "(compared without case; unmapped values that are such a name are taken as they are)",
    )
    default_status: AnswerStatus = Field(
        AnswerStatus.ACCEPTED, description="status of a result without status (and without error)"
    )
    csv_delimiter: str = Field(";", min_length=1, max_length=1)
    encoding: str = "utf-8"
    max_size: ByteSize = Field(ByteSize(1024 * 1024), description="largest result file read")
    settle_seconds: float = Field(
        2.0, ge=0, le=3600, description="a file changed more recently than this is left for the next poll"
    )

    @field_validator("fields")
    @classmethod
    def _some_reference(cls, value: AnswerFields) -> AnswerFields:
        if value.application_id is None and value.reference is None:
            raise ValueError("name `reference` or `application_id`: how an answer finds its application")
        return value


class Unreadable(Exception):
    """A result file that is no answer (its reason goes into the .reason file)."""


@dataclass(frozen=True)
class ResultFile:
    """A result file ready to be read."""

    path: Path
    kind: str


class ResultReader:
    """Reads the configured fields of a result (XML, JSON or CSV) and makes the `Answer` of them."""

    def __init__(self, spec: AnswerFormat) -> None:
        self.spec = spec
        kinds = [spec.format] if spec.format else list(_SUFFIXES.values())
        self._queries = {kind: _compile_all(spec, kind) for kind in kinds}

    def values(self, kind: str, data: bytes) -> dict[str, str | None]:
        """The configured fields' values in a result of this kind; `Unreadable` if it cannot be read."""
        document = _document(kind, data, self.spec)
        values: dict[str, str | None] = {}
        for name, query in self._queries[kind].items():
            if isinstance(query, Unreadable):
                raise query
            value = _extract(kind, document, query)
            values[name] = (value.strip() or None) if value is not None else None
        return values

    def answer(self, values: dict[str, str | None], answer_id: str, decision: Attachment | None) -> Answer:
        """The answer these values make (status mapped); `Unreadable` if they make none."""
        error = values.get("error")
        raw_status = values.get("status")
        try:
            return Answer(
                answer_id=answer_id,
                application_id=values.get("application_id"),
                reference=values.get("reference"),
                status=self._status(raw_status, error),
                case_number=values.get("case_number"),
                status_text=raw_status[:500] if raw_status else None,
                message=values.get("message"),
                error=error[:2000] if error else None,
                decision=decision,
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise Unreadable(f"not a valid answer: {problems}") from None

    def _status(self, raw: str | None, error: str | None) -> AnswerStatus:
        if raw is None:
            return AnswerStatus.FAILED if error else self.spec.default_status
        table = {k.casefold(): v for k, v in self.spec.status_map.items()}
        if raw.casefold() in table:
            return table[raw.casefold()]
        try:
            return AnswerStatus(raw.casefold())
        except ValueError:
            raise Unreadable(f"status {raw[:40]!r} is not in status_map") from None


AnswerFunc = Callable[[Answer], Awaitable[AnswerOutcome]]


class AnswerFolder:
    """Reads one answer folder: `poll` hands each settled result file to the return channel."""

    def __init__(
        self, directory: Path, spec: AnswerFormat, blobs: Blobs, target: str, *, fsync: bool
    ) -> None:
        self.directory = directory
        self.spec = spec
        self.blobs = blobs
        self.target = target
        self.fsync = fsync
        self.reader = ResultReader(spec)

    async def poll(self, answer: AnswerFunc, *, limit: int) -> int:
        """Hand up to `limit` settled result files to `answer`; returns how many were taken."""
        taken = 0
        for result in await asyncio.to_thread(self._settled, limit):
            decision_name: str | None = None  # moved along with the result: only a plain file name
            try:
                data = await asyncio.to_thread(_read_bounded, result.path, int(self.spec.max_size))
                values = self.reader.values(result.kind, data)
                decision_name = _plain(values.get("decision"))
                parsed = await self._answer(result, data, values)
            except Unreadable as exc:
                await asyncio.to_thread(self._fail, result.path, decision_name, str(exc))
                continue
            except FileNotFoundError:
                continue  # taken away meanwhile (another hub process)
            try:
                await answer(parsed)
            except UnknownApplication as exc:
                await asyncio.to_thread(self._fail, result.path, decision_name, f"no such application: {exc}")
                continue
            except Permanent as exc:  # the hub refuses this answer as it is: trying again changes nothing
                await asyncio.to_thread(self._fail, result.path, decision_name, f"refused: {exc}")
                continue
            await asyncio.to_thread(self._move, result.path, decision_name, DONE)
            taken += 1
        return taken

    def pending(self) -> int:
        """How many result files wait in the folder (for diagnostics)."""
        try:
            return len(self._candidates())
        except OSError:
            return 0

    # -- reading -------------------------------------------------------------------------------------

    def _candidates(self) -> list[tuple[float, str, Path, str]]:
        found: list[tuple[float, str, Path, str]] = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                suffix = Path(entry.name).suffix.lower()
                kind = self.spec.format or _SUFFIXES.get(suffix)
                if kind is not None and suffix != f".{kind}":
                    kind = None
                if kind is not None:
                    found.append(
                        (entry.stat(follow_symlinks=False).st_mtime, entry.name, Path(entry.path), kind)
                    )
        return found

    def _settled(self, limit: int) -> list[ResultFile]:
        try:
            candidates = self._candidates()
        except FileNotFoundError:
            return []
        horizon = time.time() - self.spec.settle_seconds
        ready = sorted(c for c in candidates if c[0] <= horizon)
        return [ResultFile(path, kind) for _, _, path, kind in ready[:limit]]

    async def _answer(self, result: ResultFile, data: bytes, values: dict[str, str | None]) -> Answer:
        decision_name = values.get("decision")
        decision = await self._decision(result.path, decision_name) if decision_name else None
        digest = hashlib.sha256(data).hexdigest()[:16]
        return self.reader.answer(values, f"{result.path.name[:160]}:{digest}", decision)

    async def _decision(self, result: Path, name: str) -> Attachment:
        if _plain(name) is None:
            raise Unreadable("the decision's file name is not a plain file name in the answer folder")
        path = result.parent / name
        try:
            info = await self.blobs.write(_file_chunks(path))
        except FileNotFoundError:
            raise Unreadable("the decision file named in the result is not in the answer folder") from None
        except BlobTooLarge as exc:
            raise Unreadable(f"the decision file is too large: {exc}") from None
        return Attachment(
            name=name, media_type=_media_type(name), size=info.size, sha256=info.sha256, blob=info.ref
        )

    # -- moving --------------------------------------------------------------------------------------

    def _move(self, path: Path, decision: str | None, where: str) -> Path:
        target_dir = self.directory / where
        target_dir.mkdir(exist_ok=True)
        moved = _free_name(target_dir, path)
        if decision is not None and (path.parent / decision).is_file():
            os.rename(path.parent / decision, _free_name(target_dir, path.parent / decision))
        os.rename(path, moved)
        if self.fsync:
            fsync_dir(target_dir)
            fsync_dir(self.directory)
        return moved

    def _fail(self, path: Path, decision: str | None, why: str) -> None:
        try:
            moved = self._move(path, decision, FAILED)
            moved.with_name(moved.name + ".reason").write_text(why + "\n", encoding="utf-8")
        except OSError as exc:
            log.warning("cannot move a result file to failed/ target=%s reason=%s", self.target, reason(exc))
            return
        # The reason names ids and our own checks, never the file's content.
        log.warning("result file not taken target=%s file=%s reason=%s", self.target, moved.name, why)


def _compile_all(spec: AnswerFormat, kind: str) -> dict[str, Any]:
    """The field queries for one kind of file; a path invalid there is kept as the `Unreadable` it causes."""
    queries: dict[str, Any] = {}
    for name, path in spec.fields:
        if path is None:
            continue
        try:
            queries[name] = _compile(kind, path, spec.namespaces)
        except ValueError as exc:
            if spec.format is not None:
                raise ValueError(f"answer field {name}: {exc}") from None
            queries[name] = Unreadable(f"answer field {name} cannot be read from {kind.upper()}: {exc}")
    return queries


def _compile(kind: str, path: str, namespaces: dict[str, str]) -> Any:
    if kind == "csv":
        return path
    if kind == "json":
        try:
            return jsonpath(path)
        except (JsonPathParserError, Exception) as exc:
            raise ValueError(f"{path!r} is not a JSONPath: {exc}") from None
    try:
        return etree.XPath(path, namespaces=namespaces)
    except etree.XPathSyntaxError as exc:
        raise ValueError(f"{path!r} is not an XPath: {exc}") from None


def _document(kind: str, data: bytes, spec: AnswerFormat) -> Any:
    try:
        if kind == "xml":
            return parse_xml(data, limit=int(spec.max_size))
        text = data.decode(spec.encoding)
        if kind == "json":
            return json.loads(text)
        rows = list(csv.DictReader(io.StringIO(text), delimiter=spec.csv_delimiter))
    except (UnsafeXml, ValueError) as exc:
        raise Unreadable(f"not readable as {kind.upper()}: {exc}") from None
    if len(rows) != 1:
        raise Unreadable(f"a CSV result holds a header and exactly one row, this one {len(rows)} rows")
    return rows[0]


def _extract(kind: str, document: Any, query: Any) -> str | None:
    if kind == "csv":
        value = document.get(query)
        return str(value) if value is not None else None
    if kind == "json":
        matches = query.find(document)
        if not matches:
            return None
        found = matches[0].value
        return None if found is None else found if isinstance(found, str) else json.dumps(found)
    try:
        result = query(document)
    except etree.XPathEvalError as exc:
        raise Unreadable(f"XPath {query.path!r} fails: {exc}") from None
    if isinstance(result, list):
        if not result:
            return None
        result = result[0]
    if isinstance(result, etree._Element):
        return "".join(result.itertext())
    if isinstance(result, bool):
        return None
    return str(result)


def _read_bounded(path: Path, limit: int) -> bytes:
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise Unreadable(f"larger than {limit} bytes")
    return data


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            yield chunk
    finally:
        f.close()


def _plain(name: str | None) -> str | None:
    """`name` if it is a plain file name inside the answer folder (no path, no dot file), else None."""
    if not name or any(c in name for c in "/\\\x00") or name.startswith("."):
        return None
    return name


def _free_name(directory: Path, path: Path) -> Path:
    """`directory/<name>`, or with a counter before the suffix when a file of that name is there."""
    candidate = directory / path.name
    n = 1
    while os.path.lexists(candidate):
        n += 1
        candidate = directory / f"{path.stem}.{n}{path.suffix}"
    return candidate


def _media_type(name: str) -> str:
    return "application/pdf" if name.lower().endswith(".pdf") else "application/octet-stream"
