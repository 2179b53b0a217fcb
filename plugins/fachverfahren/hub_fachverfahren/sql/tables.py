"""The staging tables as the database has them: reflected, checked against the configuration, and the
values the hub writes converted to each column's type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Column, MetaData, Table, inspect, types
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoSuchTableError

from .config import SqlAnswers, SqlConfig, SqlDocuments

# The longest key the hub writes: "app_" + 32 hex digits + "/r" + a revision number.
KEY_LENGTH = 48

Kind = Callable[[types.TypeEngine[Any]], bool]


def is_text(t: types.TypeEngine[Any]) -> bool:
    """Character data (varchar, nvarchar, text, clob)."""
    return isinstance(t, types.String)


def is_binary(t: types.TypeEngine[Any]) -> bool:
    """Binary large objects (bytea, varbinary(max), BLOB)."""
    return isinstance(t, types._Binary)


def is_integer(t: types.TypeEngine[Any]) -> bool:
    """Whole numbers (Oracle's NUMBER without scale included)."""
    if isinstance(t, types.Integer):
        return True
    return (
        isinstance(t, types.Numeric)
        and getattr(t, "scale", None) in (0, None)
        and not isinstance(t, types.Float)
    )


def is_version(t: types.TypeEngine[Any]) -> bool:
    """What a `changed_column` may be: a growing number or a timestamp."""
    return is_integer(t) or isinstance(t, types.Numeric | types.DateTime)


KIND_NAMES: dict[Kind, str] = {
    is_text: "character (varchar, text)",
    is_binary: "binary (bytea, varbinary, BLOB)",
    is_integer: "integer",
    is_version: "a version number or a timestamp",
}


@dataclass(frozen=True)
class StagingTables:
    """The reflected staging table and, when configured, the documents table."""

    staging: Table
    documents: Table | None

    def column(self, name: str) -> Column[Any]:
        """A column of the staging table."""
        return self.staging.c[name]


def _reflect_one(conn: Connection, name: str, schema: str | None) -> Table:
    return Table(name, MetaData(), schema=schema, autoload_with=conn)


def reflect(conn: Connection, config: SqlConfig) -> StagingTables | str:
    """The configured tables, or why they cannot be used (missing table)."""
    try:
        staging = _reflect_one(conn, config.table, config.schema_)
    except NoSuchTableError:
        return f"table {_qualified(config.schema_, config.table)} does not exist (or the user may not see it)"
    documents = None
    if config.documents is not None:
        schema = config.documents.schema_ or config.schema_
        try:
            documents = _reflect_one(conn, config.documents.table, schema)
        except NoSuchTableError:
            return f"documents table {_qualified(schema, config.documents.table)} does not exist"
    return StagingTables(staging, documents)


def _qualified(schema: str | None, table: str) -> str:
    return f"{schema}.{table}" if schema else table


def problems(conn: Connection, config: SqlConfig, tables: StagingTables) -> list[str]:
    """Everything about the tables that does not fit the configuration, each in one sentence."""
    found: list[str] = []
    staging = tables.staging
    wanted: dict[str, Kind | None] = {config.key_column: is_text}
    for column, source in config.columns.items():
        wanted[column] = {
            "record.application_id": is_text,
            "record.service": is_text,
            "record.file_number": is_text,
        }.get(source)
    for column in config.constants:
        wanted.setdefault(column, None)
    if config.answers is not None:
        wanted.update(_answer_columns(config.answers))
    found += _check_columns(staging, wanted)
    found += _check_written(staging, set(config.columns) | set(config.constants) | {config.key_column})
    for column, source in config.columns.items():
        if (
            column in staging.c
            and source.startswith("record.") is False
            and is_binary(staging.c[column].type)
        ):
            found.append(f"column {column} is binary: a payload field cannot fill it")
    for column, value in config.constants.items():
        if column in staging.c and convert(staging.c[column], value) is None:
            found.append(
                f"constants.{column}: {value!r} does not fit the column's type {staging.c[column].type}"
            )
    key = staging.c.get(config.key_column)
    if key is not None:
        length = getattr(key.type, "length", None)
        if length is not None and length < KEY_LENGTH:
            found.append(
                f"key column {config.key_column} holds {length} characters; the hub needs {KEY_LENGTH}"
            )
        if not _unique(conn, staging, config.key_column, config.schema_):
            found.append(
                f"key column {config.key_column} is not unique (no primary key, unique constraint or unique "
                "index on it alone): the hub's deliveries could not be idempotent"
            )
    if config.answers is not None and config.answers.ack_column is not None:
        ack, changed = staging.c.get(config.answers.ack_column), staging.c.get(config.answers.changed_column)
        if ack is not None and changed is not None and _affinity(ack) != _affinity(changed):
            found.append(
                f"ack_column {ack.name} ({ack.type}) must have the type of changed_column {changed.name} "
                f"({changed.type}): the hub copies the one into the other"
            )
    if config.documents is not None and tables.documents is not None:
        found += _check_documents(tables.documents, config.documents)
    return found


def _answer_columns(answers: SqlAnswers) -> dict[str, Kind | None]:
    columns: dict[str, Kind | None] = {answers.status_column: is_text, answers.changed_column: is_version}
    for name, kind in (
        (answers.case_number_column, is_text),
        (answers.message_column, is_text),
        (answers.error_column, is_text),
        (answers.decision_name_column, is_text),
        (answers.decision_column, is_binary),
        (answers.ack_column, is_version),
    ):
        if name is not None:
            columns[name] = kind
    return columns


def _check_documents(table: Table, docs: SqlDocuments) -> list[str]:
    wanted: dict[str, Kind | None] = {
        docs.key_column: is_text,
        docs.number_column: is_integer,
        docs.name_column: is_text,
        docs.content_column: is_binary,
    }
    for optional in (docs.type_column, docs.media_type_column):
        if optional is not None:
            wanted[optional] = is_text
    found = _check_columns(table, wanted, what=f"documents table {table.name}")
    return found + _check_written(table, set(wanted), what=f"documents table {table.name}")


def _check_columns(table: Table, wanted: dict[str, Kind | None], what: str = "") -> list[str]:
    where = what or f"table {table.name}"
    found = []
    for name, kind in wanted.items():
        column = table.c.get(name)
        if column is None:
            found.append(f"{where} has no column {name}")
        elif kind is not None and not kind(column.type):
            found.append(f"{where}: column {name} is {column.type}, expected {KIND_NAMES[kind]}")
    return found


def _check_written(table: Table, written: set[str], what: str = "") -> list[str]:
    """Columns that need a value on insert (NOT NULL, no default) but get none from the hub."""
    where = what or f"table {table.name}"
    return [
        f"{where}: column {column.name} is NOT NULL without a default and the hub writes nothing into it"
        for column in table.columns
        if not column.nullable
        and column.server_default is None
        and not (column.autoincrement is True or (column.primary_key and is_integer(column.type)))
        and column.identity is None
        and column.name not in written
    ]


def _unique(conn: Connection, table: Table, column: str, schema: str | None) -> bool:
    inspector = inspect(conn)
    if [c.name for c in table.primary_key.columns] == [column]:
        return True
    if any(
        u["column_names"] == [column] for u in inspector.get_unique_constraints(table.name, schema=schema)
    ):
        return True
    return any(
        i.get("unique") and i["column_names"] == [column]
        for i in inspector.get_indexes(table.name, schema=schema)
    )


def _affinity(column: Column[Any]) -> str:
    t = column.type
    if isinstance(t, types.DateTime):
        return "timestamp"
    return "number" if is_version(t) else str(t)


_ADAPTERS: dict[type, TypeAdapter[Any]] = {
    t: TypeAdapter(t) for t in (str, int, float, Decimal, bool, date, datetime, bytes)
}


def python_type(column: Column[Any]) -> type:
    """The Python type a column takes (str where the dialect cannot tell)."""
    try:
        kind: type = column.type.python_type
    except NotImplementedError:
        return str
    return kind


def convert(column: Column[Any], value: Any) -> Any | None:
    """`value` as the column's Python type (mapping output is text: "42" into an integer column), or
    None when it does not convert."""
    if value is None:
        return None
    kind = python_type(column)
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        return value
    if kind is str and not isinstance(value, str):
        value = str(value)
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None
