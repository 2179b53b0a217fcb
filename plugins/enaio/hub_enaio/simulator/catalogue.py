"""The simulated enaio's object definition: cabinets, object types and their index fields, from YAML."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_TYPES = Path(__file__).with_name("types.yaml")
NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"

Kind = Literal["folder", "register", "document"]
# enaio's main types: 0 folder, 99 register; documents here are all "Windows-Dokument" (4).
MAIN_TYPE: dict[Kind, str] = {"folder": "0", "register": "99", "document": "4"}


class CatalogueError(ValueError):
    """The type catalogue file is unreadable or inconsistent."""


class _Field(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    internal: str = Field(pattern=NAME)
    name: str = ""
    mandatory: bool = False
    type: Literal["text", "date"] = "text"
    length: int | None = Field(None, ge=1)


class _Type(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=0)
    internal: str = Field(pattern=NAME)
    name: str = ""
    kind: Kind
    fields: list[_Field] = Field(default_factory=list)


class _Cabinet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    internal: str = Field(pattern=NAME)
    name: str = ""
    number: int = Field(ge=0)
    types: list[_Type]

    @model_validator(mode="after")
    def _one_folder_type(self) -> _Cabinet:
        if sum(1 for t in self.types if t.kind == "folder") != 1:
            raise ValueError(f"cabinet {self.internal!r} needs exactly one folder type")
        return self


class _CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cabinets: list[_Cabinet] = Field(min_length=1)


@dataclass(frozen=True)
class FieldDef:
    """An index field of an object type."""

    internal: str
    name: str
    mandatory: bool
    type: Literal["text", "date"]
    length: int | None

    def problem(self, value: str) -> str | None:
        """Why the value does not fit the field (without repeating the value: it may be personal data)."""
        if self.length is not None and len(value) > self.length:
            return f"index field {self.internal!r} takes at most {self.length} characters"
        if self.type == "date" and value and not _is_date(value):
            return f"index field {self.internal!r} expects a date (YYYY-MM-DD or DD.MM.YYYY)"
        return None


@dataclass(frozen=True)
class ObjectType:
    """A folder, register or document type of a cabinet."""

    id: str
    internal: str
    name: str
    kind: Kind
    cabinet: str
    fields: dict[str, FieldDef]

    @property
    def osrest_kind(self) -> str:
        """FOLDER, REGISTER or DOCUMENT, as OSRest names it."""
        return self.kind.upper()


class Catalogue:
    """Every object type by numeric id and by internal name."""

    def __init__(self, cabinets: list[_Cabinet], source: str) -> None:
        self.source = source
        self._cabinets = cabinets
        self.types: list[ObjectType] = []
        self._by_key: dict[str, ObjectType] = {}
        for cabinet in cabinets:
            for t in cabinet.types:
                object_type = ObjectType(
                    id=str(t.id),
                    internal=t.internal,
                    name=t.name or t.internal,
                    kind=t.kind,
                    cabinet=cabinet.internal,
                    fields={
                        f.internal: FieldDef(f.internal, f.name or f.internal, f.mandatory, f.type, f.length)
                        for f in t.fields
                    },
                )
                for key in (object_type.id, object_type.internal):
                    if key in self._by_key:
                        raise CatalogueError(f"{source}: object type id or name {key!r} is used twice")
                    self._by_key[key] = object_type
                self.types.append(object_type)

    def get(self, key: object) -> ObjectType | None:
        """The type with that numeric id or internal name."""
        return self._by_key.get(str(key).strip()) if isinstance(key, str | int) else None

    def native_schema(self) -> dict[str, Any]:
        """The object definition in the shape of enaio's ``/api/dms/schema/native`` (``asobjdef``)."""
        return {
            "asobjdef": {
                "cabinet": [
                    {
                        "internal": c.internal,
                        "name": c.name or c.internal,
                        "cotype": str(c.number),
                        "object": [
                            {
                                "internal": t.internal,
                                "name": t.name or t.internal,
                                "maintype": MAIN_TYPE[t.kind],
                                "ids": {"oid": str(t.id)},
                                "fields": {
                                    "field": [
                                        {
                                            "internal": f.internal,
                                            "name": f.name or f.internal,
                                            "fieldname": f.type,
                                            "flags": {"required": f.mandatory},
                                            **({"length": f.length} if f.length else {}),
                                        }
                                        for f in t.fields
                                    ]
                                },
                            }
                            for t in c.types
                        ],
                    }
                    for c in self._cabinets
                ]
            }
        }


def load_catalogue(path: Path | str | None = None) -> Catalogue:
    """Read a type catalogue (YAML); without a path, the Kreis catalogue shipped with the simulator."""
    file = Path(path) if path is not None else DEFAULT_TYPES
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(f"cannot read type catalogue {str(file)!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CatalogueError(f"type catalogue {str(file)!r} is not valid YAML: {exc}") from None
    try:
        parsed = _CatalogueFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CatalogueError(f"type catalogue {str(file)!r}: {where}: {first['msg']}") from None
    return Catalogue(parsed.cabinets, str(file))


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_GERMAN_DATE = re.compile(r"^\d{2}\.\d{2}\.\d{4}$")


# Every insert checks its date fields, and most carry the same few dates (today's, as received):
# strptime, the costliest step of checking index data, runs once per distinct value.
@functools.lru_cache(maxsize=4096)
def _is_date(value: str) -> bool:
    if _ISO_DATE.match(value):
        pattern = "%Y-%m-%d"
    elif _GERMAN_DATE.match(value):
        pattern = "%d.%m.%Y"
    else:
        return False
    try:
        datetime.strptime(value, pattern)
    except ValueError:
        return False
    return True
