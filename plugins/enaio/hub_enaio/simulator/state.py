"""What the simulated enaio holds (objects, content, sessions) and its fault knobs."""

from __future__ import annotations

import functools
import hashlib
import itertools
import secrets
import shutil
import tempfile
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from hub.simulation import FaultKnobs, SimulatedFaults

from .catalogue import Catalogue, ObjectType
from .values import equality_keys

TRAY = "system:tray"
FIRST_ID = 4711


class Knobs(FaultKnobs):
    """Fault knobs, settable when the simulator starts and at runtime (``POST /_sim/faults``)."""

    drop_after_insert: int = Field(
        0, ge=0, description="for the next N inserts: store the object, then drop the connection unanswered"
    )
    max_content_bytes: int = Field(200 * 1024**2, ge=1, description="largest document content taken")


class Refused(Exception):
    """A request the simulated enaio refuses: answered with `status` and `message`."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Content:
    """A document's file, kept on disk; its hash is taken when first asked for."""

    file_name: str
    media_type: str
    size: int
    path: Path

    @functools.cached_property
    def sha256(self) -> str:
        """The file's sha256 (for tests and operators; enaio itself never answers it).

        Taken on demand, not while the upload streams in: hashing cost the upload path as much CPU
        as reading and writing it together, for a figure only the operator endpoint shows.
        """
        return sha256_file(self.path)

    def take_hash(self) -> str:
        """The sha256, taken now if it was not yet (before the file goes; it is kept once taken)."""
        return self.sha256

    def describe(self) -> dict[str, Any]:
        """The content as the operator endpoint lists it."""
        return {
            "fileName": self.file_name,
            "mimeType": self.media_type,
            "size": self.size,
            "sha256": self.sha256,
        }


@dataclass
class StoredObject:
    """A folder, register or document in the simulated enaio."""

    id: int
    type: ObjectType
    parent_id: int | None
    in_tray: bool
    fields: dict[str, str]
    content: Content | None
    created_by: str
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: tuple[datetime, str] | None = None  # the last update: when, by whom
    updates: int = 0

    @property
    def modified_at(self) -> datetime:
        """When the object last changed (its creation, if never updated)."""
        return self.modified[0] if self.modified is not None else self.created_at

    @property
    def modified_by(self) -> str:
        """Who changed the object last (its creator, if never updated)."""
        return self.modified[1] if self.modified is not None else self.created_by

    def value(self, name: str) -> str:
        """An index field's value ("" when empty)."""
        return self.fields.get(name, "")

    def describe(self) -> dict[str, Any]:
        """The object as the operator endpoint lists it."""
        return {
            "id": str(self.id),
            "type": self.type.internal,
            "typeId": self.type.id,
            "kind": self.type.kind,
            "cabinet": self.type.cabinet,
            "parentId": None if self.parent_id is None else str(self.parent_id),
            "inTray": self.in_tray,
            "fields": dict(self.fields),
            "content": None if self.content is None else self.content.describe(),
            "createdAt": self.created_at.isoformat(),
            "createdBy": self.created_by,
            "modifiedAt": self.modified_at.isoformat(),
            "modifiedBy": self.modified_by,
            "updates": self.updates,
        }


@dataclass
class StagedContent:
    """An uploaded file written to disk while the request is read, before the insert is decided."""

    part_name: str
    content_id: str | None
    file_name: str | None
    media_type: str
    size: int
    path: Path


@dataclass
class ObjectUpdate:
    """An update of an object's index data that passed every check: applied by `EnaioState.apply`."""

    target: StoredObject
    fields: dict[str, str]  # the object's fields after the update (the others kept)


@dataclass
class NewObject:
    """An insert that passed every check: stored by `EnaioState.store`."""

    type: ObjectType
    parent_id: int | None
    in_tray: bool
    fields: dict[str, str]
    content: StagedContent | None
    file_name: str | None


class EnaioState(SimulatedFaults[Knobs]):
    """The simulated enaio: catalogue, users and sessions, stored objects, knobs and counters."""

    def __init__(
        self, catalogue: Catalogue, users: Mapping[str, str], knobs: Knobs, content_dir: Path | None = None
    ) -> None:
        self.catalogue = catalogue
        self.users = dict(users)
        self.knobs = knobs
        self._content_dir = content_dir
        self._own_content_dir = False
        self._content_dir_made = False
        self._staging_prefix = secrets.token_hex(8)
        self._staging_numbers = itertools.count()
        # Ids only grow and objects are never removed, so both keep the oldest (lowest id) first.
        self.objects: dict[int, StoredObject] = {}
        # A search scans only its type's objects (type id -> objects), not everything enaio holds.
        self._by_type: dict[str, list[StoredObject]] = {}
        # ``field = value`` finds its candidates here rather than in a scan of the type:
        # (type id, field, one of `equality_keys(value)`) -> the objects holding such a value.
        self._by_value: dict[tuple[str, str, Hashable], list[StoredObject]] = {}
        # The (type id, field) pairs in `_by_value`: a field is indexed when it is first searched. Most
        # never are (titles, dates, file names): indexing each stored object's every value cost about a
        # tenth of the simulator's CPU per filing.
        self._indexed: set[tuple[str, str]] = set()
        self.sessions: dict[str, str] = {}  # JSESSIONID -> user name
        self.requests: Counter[str] = Counter()  # "METHOD route" of authenticated API requests
        self.auth: Counter[str] = Counter()  # "basic", "session", "refused"
        self.inserts = 0  # objects stored
        self.updated = 0  # updates of index data applied
        self.dropped = 0  # answers dropped after storing
        self._ids = itertools.count(FIRST_ID)

    # -- faults ----------------------------------------------------------------------------------------

    def take_drop(self) -> bool:
        """Whether this insert's answer is one of the next N to be dropped."""
        if self.knobs.drop_after_insert > 0:
            self.knobs.drop_after_insert -= 1
            self.dropped += 1
            return True
        return False

    # -- sessions --------------------------------------------------------------------------------------

    def new_session(self, user: str) -> str:
        """Open a session for the user; returns its JSESSIONID."""
        session_id = secrets.token_hex(16).upper()
        self.sessions[session_id] = user
        return session_id

    def end_sessions(self) -> int:
        """End every session (as a server restart or a session timeout does)."""
        ended = len(self.sessions)
        self.sessions.clear()
        return ended

    # -- objects ---------------------------------------------------------------------------------------

    def object_type(self, key: object) -> ObjectType:
        """The type by numeric id or internal name, else 422."""
        found = self.catalogue.get(key)
        if found is None:
            raise Refused(f"unknown object type {str(key)[:100]!r}")
        return found

    def check_fields(self, object_type: ObjectType, names: Iterable[str]) -> None:
        """422 for a field the type does not have."""
        for name in names:
            if name not in object_type.fields:
                raise Refused(f"object type {object_type.internal!r} has no index field {name[:100]!r}")

    def plan(
        self,
        type_key: object,
        parent: int | None,
        in_tray: bool,
        values: Mapping[str, Any],
        content: StagedContent | None,
        file_name: str | None = None,
    ) -> NewObject:
        """Check an insert completely (type, hierarchy, index data, content); 422 with the reason."""
        object_type = self.object_type(type_key)
        fields = self._index_data(object_type, values)
        self._check_index_data(object_type, fields)
        self._check_location(object_type, parent, in_tray)
        if content is not None and object_type.kind != "document":
            raise Refused(f"a {object_type.kind} ({object_type.internal!r}) cannot have content")
        return NewObject(
            object_type, parent, in_tray, {k: v for k, v in fields.items() if v}, content, file_name
        )

    def plan_update(
        self, object_id: int | None, type_key: object | None, values: Mapping[str, Any]
    ) -> ObjectUpdate:
        """Check an update of index data; 422 with the reason (unknown object, wrong type, bad data).

        Fields not named keep their values; a field set to null or "" is emptied, which a mandatory
        field refuses, as on insert.
        """
        target = self.objects.get(object_id) if object_id is not None else None
        if target is None:
            raise Refused(f"object {object_id if object_id is not None else '(no valid id)'} does not exist")
        if type_key is not None and self.object_type(type_key) is not target.type:
            raise Refused(
                f"object {target.id} is of type {target.type.internal!r}, not {str(type_key)[:100]!r}"
            )
        changes = self._index_data(target.type, values)
        fields = {**target.fields, **changes}
        self._check_index_data(target.type, fields)
        return ObjectUpdate(target, {k: v for k, v in fields.items() if v})

    def apply(self, update: ObjectUpdate, user: str) -> StoredObject:
        """Apply a checked update."""
        target = update.target
        self._index(target, add=False)
        target.fields = dict(update.fields)
        self._index(target, add=True)
        target.modified = (datetime.now(UTC), user)
        target.updates += 1
        self.updated += 1
        return target

    def _index_data(self, object_type: ObjectType, values: Mapping[str, Any]) -> dict[str, str]:
        fields: dict[str, str] = {}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float | type(None)):
                raise Refused(f"index field {name[:100]!r}: expected a text, number or null value")
            fields[name] = "" if value is None else str(value)
        self.check_fields(object_type, fields)
        return fields

    def _check_index_data(self, object_type: ObjectType, fields: Mapping[str, str]) -> None:
        for definition in object_type.fields.values():
            value = fields.get(definition.internal, "")
            if definition.mandatory and not value.strip():
                raise Refused(
                    f"mandatory index field {definition.internal!r} of object type "
                    f"{object_type.internal!r} has no value"
                )
            problem = definition.problem(value)
            if problem:
                raise Refused(problem)

    def _check_location(self, object_type: ObjectType, parent: int | None, in_tray: bool) -> None:
        kind = object_type.kind
        if in_tray:
            if kind != "document":
                raise Refused(
                    f"only documents can be put in the tray, not a {kind} ({object_type.internal!r})"
                )
            return
        if kind == "folder":
            if parent is not None:
                raise Refused(
                    f"a folder ({object_type.internal!r}) is inserted into its cabinet, "
                    f"not under object {parent}"
                )
            return
        if parent is None:
            containers = "folder" if kind == "register" else "folder or register"
            raise Refused(f"a {kind} ({object_type.internal!r}) needs a parent {containers}")
        container = self.objects.get(parent)
        if container is None:
            raise Refused(f"unknown parent object {parent}")
        allowed = ("folder",) if kind == "register" else ("folder", "register")
        if container.type.kind not in allowed:
            raise Refused(
                f"a {kind} ({object_type.internal!r}) cannot be inserted under a {container.type.kind} "
                f"(object {parent}): its parent must be a {' or '.join(allowed)}"
            )
        if container.type.cabinet != object_type.cabinet:
            raise Refused(
                f"object type {object_type.internal!r} belongs to cabinet {object_type.cabinet!r}, "
                f"parent object {parent} to cabinet {container.type.cabinet!r}"
            )

    def store(self, new: NewObject, user: str) -> StoredObject:
        """Store a checked insert (its staged content stays where it was written: it is the document's)."""
        object_id = next(self._ids)
        content = None
        if new.content is not None:
            staged = new.content
            content = Content(
                file_name=new.file_name or staged.file_name or f"{object_id}.bin",
                media_type=staged.media_type,
                size=staged.size,
                path=staged.path,
            )
        stored = StoredObject(object_id, new.type, new.parent_id, new.in_tray, new.fields, content, user)
        self.objects[object_id] = stored
        self._by_type.setdefault(new.type.id, []).append(stored)
        self._index(stored, add=True)
        self.inserts += 1
        return stored

    def _index(self, obj: StoredObject, add: bool) -> None:
        for name, value in obj.fields.items():
            # Empty is NULL: no comparison finds it.
            if value and (obj.type.id, name) in self._indexed:
                self._index_value(obj, name, value, add)

    def _index_value(self, obj: StoredObject, name: str, value: str, add: bool) -> None:
        for key in equality_keys(value):
            bucket = self._by_value.setdefault((obj.type.id, name, key), [])
            if add:
                bucket.append(obj)
            else:
                bucket.remove(obj)

    def _searched(self, object_type: ObjectType, name: str) -> None:
        """Index the field's values of every object of the type, when the field is first searched."""
        pair = (object_type.id, name)
        if pair in self._indexed:
            return
        self._indexed.add(pair)
        for obj in self.of_type(object_type):
            value = obj.fields.get(name)
            if value:
                self._index_value(obj, name, value, add=True)

    def with_equal(self, object_type: ObjectType, name: str, value: str) -> list[StoredObject]:
        """The objects of the type whose field may equal `value` as a search compares (a superset:
        the caller checks each), oldest first."""
        self._searched(object_type, name)
        found = {
            o.id: o
            for key in equality_keys(value)
            for o in self._by_value.get((object_type.id, name, key), ())
        }
        return [found[i] for i in sorted(found)]

    def equal_bound(self, object_type: ObjectType, name: str, value: str) -> int:
        """How many objects `with_equal` looks at for this value (at least as many as it returns)."""
        self._searched(object_type, name)
        return sum(len(self._by_value.get((object_type.id, name, key), ())) for key in equality_keys(value))

    def of_type(self, object_type: ObjectType) -> list[StoredObject]:
        """The objects of one type, oldest (lowest id) first."""
        return self._by_type.get(object_type.id, [])

    def search(self, object_type: ObjectType, criteria: Mapping[str, str]) -> list[StoredObject]:
        """Objects of the type whose fields equal the criteria (case-insensitive, as enaio compares)."""
        wanted = {name: value.lower() for name, value in criteria.items()}
        return [
            o
            for o in self.of_type(object_type)
            if o.type is object_type and all(o.value(n).lower() == v for n, v in wanted.items())
        ]

    def with_field(self, name: str, value: str) -> list[StoredObject]:
        """Every object (of any type) whose field has exactly this value, oldest first."""
        return [o for o in self.objects.values() if o.fields.get(name) == value]

    # -- content ---------------------------------------------------------------------------------------

    @property
    def content_dir(self) -> Path:
        """Where content is kept: the configured directory, else a temporary one made on first use."""
        if self._content_dir is None:
            self._content_dir = Path(tempfile.mkdtemp(prefix="enaio-simulator-"))
            self._own_content_dir = True
        if not self._content_dir_made:  # once: a mkdir on every upload cost a system call each
            self._content_dir.mkdir(parents=True, exist_ok=True)
            self._content_dir_made = True
        return self._content_dir

    def staging_path(self) -> Path:
        """A fresh file name for content being received: the document's file if the insert is taken
        (written once, never renamed: a rename cost as much as the write), removed if it is refused."""
        # A counter behind this process's random prefix: unique without a uuid4 (os.urandom) per upload.
        return self.content_dir / f"{self._staging_prefix}-{next(self._staging_numbers)}.bin"

    def remove_content(self) -> None:
        """Delete the temporary content directory (at shutdown; a configured one is kept).

        The hashes not taken yet are taken first: tests read what was stored after the server stopped.
        """
        if self._own_content_dir and self._content_dir is not None:
            for obj in self.objects.values():
                if obj.content is not None:
                    obj.content.take_hash()
            shutil.rmtree(self._content_dir, ignore_errors=True)
            self._content_dir = None
            self._own_content_dir = False
            self._content_dir_made = False


def sha256_file(path: Path) -> str:
    """The sha256 of a stored file (for tests and operators)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
