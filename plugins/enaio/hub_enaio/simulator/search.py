"""Running a parsed search statement against the simulated enaio: bind, check, filter, project, order.

Comparisons follow enaio on its usual databases: texts compare without regard to case; numbers as
numbers and dates (``YYYY-MM-DD`` or ``DD.MM.YYYY``, with or without time) as dates when both sides are
such; an empty field is NULL (only ``IS NULL`` matches it).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .catalogue import ObjectType
from .query import (
    AllOf,
    AnyOf,
    Column,
    Comparison,
    Condition,
    Like,
    Literal,
    Membership,
    Negation,
    NullTest,
    Operand,
    Param,
    Statement,
)
from .state import TRAY, EnaioState, Refused, StoredObject
from .values import sort_key

# Always answered, whatever the SELECT list names (the DMS Service's own rule).
DEFAULT_COLUMNS = ("system:objectId", "system:objectTypeId", "system:baseTypeId")
BASE_TYPE = {"folder": "FOLDER", "register": "REGISTER", "document": "DOCUMENT"}


def _folder_id(state: EnaioState, obj: StoredObject) -> str | None:
    """``system:SDSTA_ID``: the folder (Akte) the object belongs to; a folder is its own."""
    current: StoredObject | None = obj
    for _ in range(3):  # folder → register → document: never deeper
        if current is None:
            return None
        if current.type.kind == "folder":
            return str(current.id)
        current = state.objects.get(current.parent_id) if current.parent_id is not None else None
    return None


def _register_id(state: EnaioState, obj: StoredObject) -> str | None:
    """``system:SDREG_ID``: the register the object lies in; a register is its own."""
    if obj.type.kind == "register":
        return str(obj.id)
    parent = state.objects.get(obj.parent_id) if obj.parent_id is not None else None
    return str(parent.id) if parent is not None and parent.type.kind == "register" else None


SystemValue = Callable[[EnaioState, StoredObject], str | None]
SYSTEM: dict[str, SystemValue] = {
    "system:objectId": lambda _s, o: str(o.id),
    "system:objectTypeId": lambda _s, o: o.type.id,
    "system:baseTypeId": lambda _s, o: BASE_TYPE[o.type.kind],
    "system:parentId": lambda _s, o: (
        TRAY if o.in_tray else (None if o.parent_id is None else str(o.parent_id))
    ),
    "system:parentObjectTypeId": lambda s, o: (
        s.objects[o.parent_id].type.id if o.parent_id in s.objects else None
    ),
    "system:SDSTA_ID": _folder_id,
    "system:SDREG_ID": _register_id,
    "system:creationDate": lambda _s, o: o.created_at.isoformat(),
    "system:lastModificationDate": lambda _s, o: o.modified_at.isoformat(),
    "system:createdBy": lambda _s, o: o.created_by,
    "system:lastModifiedBy": lambda _s, o: o.modified_by,
}


def check_names(state: EnaioState, statement: Statement) -> dict[int, ObjectType]:
    """Resolve each select's object type and check every field it names (422 unknown, 400 bad system)."""
    types = {id(s): state.object_type(s.object_type) for s in statement.selects}
    for select, name in statement.fields():
        if name.startswith("system:"):
            if name not in SYSTEM:
                raise Refused(f"unknown system property {name[:100]!r}", 400)
        else:
            state.check_fields(types[id(select)], [name])
    keys = {c.key for s in statement.selects for c in s.columns or ()}
    for name, _ in statement.order:
        if name not in keys and name not in SYSTEM:
            for select in statement.selects:
                state.check_fields(types[id(select)], [name])
    return types


def bind(statement: Statement, raw: Any) -> dict[str, list[str]]:
    """The statement's parameters from the query's ``parameters`` (a value or a list of values)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise Refused("query.parameters must be an object", 400)
    bound: dict[str, list[str]] = {}
    for name in sorted(statement.parameters()):
        if name not in raw:
            raise Refused(f"parameter @{name[:100]} has no value in query.parameters", 400)
        value = raw[name]
        values = value if isinstance(value, list) else [value]
        if not values or not all(_scalar(v) for v in values):
            raise Refused(f"parameter @{name[:100]} must be a text, a number or a list of them", 400)
        bound[name] = [str(v) for v in values]
    return bound


def _scalar(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, str | int | float)


@dataclass(frozen=True)
class Hit:
    """A found object and its answered properties (in the DMS Service's ``{"value": ...}`` shape)."""

    obj: StoredObject
    properties: dict[str, dict[str, Any]]


def run(state: EnaioState, statement: Statement, parameters: Mapping[str, list[str]]) -> list[Hit]:
    """Every object the statement finds, with the selected properties, in the requested order."""
    types = check_names(state, statement)
    hits: list[Hit] = []
    seen: set[int] = set()
    for select in statement.selects:
        object_type = types[id(select)]
        for obj in _candidates(state, object_type, select.where, parameters):  # oldest first
            if obj.type is not object_type or not _matches(state, obj, select.where, parameters):
                continue
            if statement.distinct and obj.id in seen:
                continue
            seen.add(obj.id)
            hits.append(Hit(obj, properties(state, obj, select.columns)))
    for name, descending in reversed(statement.order):
        present = [h for h in hits if _sort_value(h, name) is not None]
        absent = [h for h in hits if _sort_value(h, name) is None]
        present.sort(key=lambda h: sort_key(_sort_value(h, name)), reverse=descending)
        hits = present + absent
    return hits


def _candidates(
    state: EnaioState, object_type: ObjectType, where: Condition | None, parameters: Mapping[str, list[str]]
) -> list[StoredObject]:
    """The objects the condition may match, oldest first: those holding an equal value when it requires
    ``field = value`` of an index field (`_matches` still decides), else every object of the type.

    Of several such requirements the one with the fewest candidates is taken: the first is often one
    that every Akte shares (``Leistung``), which made each search scan the whole type.
    """
    best: tuple[int, str, str] | None = None
    for condition in where.conditions if isinstance(where, AllOf) else (where,):
        if (
            isinstance(condition, Comparison)
            and condition.op == "="
            and condition.field not in SYSTEM
            and len(wanted := _values(condition.operand, parameters)) == 1
        ):
            size = state.equal_bound(object_type, condition.field, wanted[0])
            if best is None or size < best[0]:
                best = (size, condition.field, wanted[0])
    if best is not None:
        return state.with_equal(object_type, best[1], best[2])
    return state.of_type(object_type)


def _sort_value(hit: Hit, name: str) -> str | None:
    entry = hit.properties.get(name)
    if entry is not None:
        value = entry.get("value")
        return None if value in (None, "") else str(value)
    value = hit.obj.fields.get(name)
    return value or None


def value_of(state: EnaioState, obj: StoredObject, name: str) -> str | None:
    """A column's value: a system property or an index field (None when empty)."""
    if name in SYSTEM:
        return SYSTEM[name](state, obj)
    return obj.fields.get(name) or None


def properties(
    state: EnaioState, obj: StoredObject, selected: Sequence[Column] | None
) -> dict[str, dict[str, Any]]:
    """The answered properties: the defaults, then the selected columns (None, ``*``: all of them)."""
    if selected is None:
        columns = [(n, n) for n in [*SYSTEM, *obj.type.fields]]
    else:
        columns = [(n, n) for n in DEFAULT_COLUMNS] + [(c.key, c.name) for c in selected]
    answered: dict[str, dict[str, Any]] = {}
    for key, name in columns:
        entry: dict[str, Any] = {"value": value_of(state, obj, name)}
        if name == "system:objectTypeId":
            entry["localName"] = obj.type.internal  # since DMS Service 6.3.1
        answered[key] = entry
    return answered


def _matches(
    state: EnaioState, obj: StoredObject, condition: Condition | None, parameters: Mapping[str, list[str]]
) -> bool:
    if condition is None:
        return True
    if isinstance(condition, AllOf):
        return all(_matches(state, obj, c, parameters) for c in condition.conditions)
    if isinstance(condition, AnyOf):
        return any(_matches(state, obj, c, parameters) for c in condition.conditions)
    if isinstance(condition, Negation):
        return not _matches(state, obj, condition.condition, parameters)
    value = value_of(state, obj, condition.field)
    if isinstance(condition, NullTest):
        return (value is None) == (not condition.negated)
    if value is None:
        return False  # SQL: a comparison with NULL is never true, negated or not
    if isinstance(condition, Comparison):
        wanted = _values(condition.operand, parameters)
        if len(wanted) != 1:
            raise Refused("a list parameter can only be used with IN", 400)
        return _compare(value, condition.op, wanted[0])
    if isinstance(condition, Membership):
        found = any(
            _compare(value, "=", w) for operand in condition.operands for w in _values(operand, parameters)
        )
        return found != condition.negated
    if isinstance(condition, Like):
        patterns = _values(condition.pattern, parameters)
        if len(patterns) != 1:
            raise Refused("a list parameter can only be used with IN", 400)
        return like(value, patterns[0]) != condition.negated
    raise AssertionError(condition)  # pragma: no cover - every condition kind is handled above


def _values(operand: Operand, parameters: Mapping[str, list[str]]) -> list[str]:
    if isinstance(operand, Param):
        return parameters[operand.name]
    assert isinstance(operand, Literal)
    return [operand.value]


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def _compare(left: str, op: str, right: str) -> bool:
    a, b = sort_key(left), sort_key(right)
    if a[0] != b[0]:  # a number against a text, say: compare both as texts
        a, b = (2, left.casefold()), (2, right.casefold())
    return _OPERATORS[op](a, b)


def like(value: str, pattern: str) -> bool:
    """SQL LIKE without regard to case: ``%`` any text, ``_`` one character.

    Greedy matching that backs up only to the last ``%``: O(len(value) * len(pattern)) at worst, so a
    hostile pattern (``%a%a%a…``) cannot make the server backtrack for ever as a regular expression would.
    """
    text, wanted = value.casefold(), pattern.casefold()
    t = p = 0
    star, mark = -1, 0
    while t < len(text):
        if p < len(wanted) and wanted[p] in ("_", text[t]) and wanted[p] != "%":
            t += 1
            p += 1
        elif p < len(wanted) and wanted[p] == "%":
            star, mark = p, t
            p += 1
        elif star >= 0:
            p = star + 1
            mark += 1
            t = mark
        else:
            return False
    while p < len(wanted) and wanted[p] == "%":
        p += 1
    return p == len(wanted)
