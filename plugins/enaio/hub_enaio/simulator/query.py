"""A small, strict parser of the DMS Service's search statements, as far as the sink uses them.

Accepted: ``SELECT <column>, ... FROM <object type> [WHERE <field>=@<parameter> [AND ...]]`` with
keywords in any case. Columns and fields are internal names or ``system:<name>``; the object type is an
internal name or a numeric id. Anything else (literals, OR, LIKE, ORDER BY, sub-queries) is refused: the
simulator must not accept what the connector has no business sending.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"\s*(?:(?P<name>(?:system:)?[A-Za-z_][A-Za-z0-9_]*)|(?P<number>\d+)"
    r"|(?P<param>@[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[,=]))",
)
KEYWORDS = frozenset({"SELECT", "FROM", "WHERE", "AND"})
MAX_STATEMENT = 4000


class QueryError(ValueError):
    """The statement is not one the simulator understands."""


@dataclass(frozen=True)
class Statement:
    """A parsed search statement."""

    columns: tuple[str, ...]
    object_type: str
    conditions: tuple[tuple[str, str], ...]  # (field, parameter name without @)


def _tokens(text: str) -> list[tuple[str, str]]:
    if len(text) > MAX_STATEMENT:
        raise QueryError(f"statement longer than {MAX_STATEMENT} characters")
    tokens: list[tuple[str, str]] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position:
            raise QueryError(
                f"unexpected text at position {position}: {stripped[position : position + 20]!r}"
            )
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "name" and value.upper() in KEYWORDS:
            kind, value = "keyword", value.upper()
        tokens.append((kind, value))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            expected = value or kind
            found = "end of statement" if token is None else repr(token[1])
            raise QueryError(f"expected {expected}, found {found}")
        self.position += 1
        return token[1]

    def at(self, kind: str, value: str) -> bool:
        return self.peek() == (kind, value)

    def parse(self) -> Statement:
        self.take("keyword", "SELECT")
        columns = [self.take("name")]
        while self.at("punct", ","):
            self.take("punct", ",")
            columns.append(self.take("name"))
        self.take("keyword", "FROM")
        token = self.peek()
        object_type = self.take("number") if token and token[0] == "number" else self.take("name")
        if object_type.startswith("system:"):
            raise QueryError("expected an object type after FROM")
        conditions: list[tuple[str, str]] = []
        if self.at("keyword", "WHERE"):
            self.take("keyword", "WHERE")
            conditions.append(self.condition())
            while self.at("keyword", "AND"):
                self.take("keyword", "AND")
                conditions.append(self.condition())
        rest = self.peek()
        if rest is not None:
            raise QueryError(f"unexpected {rest[1]!r} after the statement")
        return Statement(tuple(columns), object_type, tuple(conditions))

    def condition(self) -> tuple[str, str]:
        field = self.take("name")
        self.take("punct", "=")
        return field, self.take("param")[1:]


def parse_statement(text: str) -> Statement:
    """Parse a search statement; raise `QueryError` for anything outside the supported subset."""
    return _Parser(text).parse()
