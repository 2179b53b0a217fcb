"""The DMS Service's search language (a CMIS-like subset of SQL-92), parsed as enaio parses it.

Accepted, keywords in any case::

    SELECT * | <column> [[AS] <alias>], ...  FROM <object type>  [WHERE <condition>]
    [UNION [ALL] SELECT ...]...  [ORDER BY <column> [ASC|DESC], ...]

Columns and fields are internal names or ``system:<name>``; the object type is an internal name or a
numeric id. A condition combines, with AND, OR, NOT and parentheses, the predicates
``<field> =|<>|!=|<|>|<=|>= <operand>``, ``<field> [NOT] IN (<operand>, ...)``, ``<field> [NOT] LIKE
<operand>`` and ``<field> IS [NOT] NULL``; an operand is a parameter ``@name`` (bound from the query's
``parameters``), a quoted text (``'it''s'``) or a number. Anything else (full text, functions,
aggregations, joins, sub-queries) is refused with the position where the statement stopped making sense.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.visitors import Transformer_NonRecursive

MAX_STATEMENT = 8000  # characters
MAX_DEPTH = 32  # nesting of parentheses and NOT: enough for any real query, bounded for hostile ones

_GRAMMAR = r"""
    start: select (union select)* order_by?
    union: UNION ALL?
    select: SELECT columns FROM type_ref (WHERE condition)?
    columns: STAR -> all_columns
           | column ("," column)*
    column: FIELD (AS? NAME)?
    type_ref: NAME | NUMBER

    ?condition: disjunction
    ?disjunction: conjunction (OR conjunction)*
    ?conjunction: negation (AND negation)*
    ?negation: NOT negation -> negation
             | predicate
    ?predicate: "(" condition ")"
              | FIELD COMPARATOR operand -> comparison
              | FIELD NOT? IN "(" operand ("," operand)* ")" -> membership
              | FIELD NOT? LIKE operand -> like
              | FIELD IS NOT? NULL -> null_test
    operand: PARAM | STRING | NUMBER

    order_by: ORDER BY order_item ("," order_item)*
    order_item: FIELD (ASC | DESC)?

    SELECT: "select"i
    FROM: "from"i
    WHERE: "where"i
    UNION: "union"i
    ALL: "all"i
    AS: "as"i
    AND: "and"i
    OR: "or"i
    NOT: "not"i
    IN: "in"i
    LIKE: "like"i
    IS: "is"i
    NULL: "null"i
    ORDER: "order"i
    BY: "by"i
    ASC: "asc"i
    DESC: "desc"i

    FIELD: /system:[A-Za-z_][A-Za-z0-9_]*/ | NAME
    NAME: /[A-Za-z_][A-Za-z0-9_]*/
    NUMBER: /-?[0-9]+(\.[0-9]+)?/
    PARAM: /@[A-Za-z_][A-Za-z0-9_]*/
    STRING: /'(?:[^']|'')*'/
    COMPARATOR: "<>" | "!=" | "<=" | ">=" | "=" | "<" | ">"
    STAR: "*"

    %ignore /[ \t\r\n]+/
"""

_PARSER = Lark(_GRAMMAR, parser="lalr", maybe_placeholders=False)


class QueryError(ValueError):
    """The statement is not one the simulated enaio understands."""


@dataclass(frozen=True)
class Param:
    """``@name``: a value from the query's ``parameters``."""

    name: str


@dataclass(frozen=True)
class Literal:
    """A text or number written into the statement."""

    value: str


Operand = Param | Literal


@dataclass(frozen=True)
class Comparison:
    """``field <op> operand``."""

    field: str
    op: str
    operand: Operand


@dataclass(frozen=True)
class Membership:
    """``field [NOT] IN (operand, ...)``."""

    field: str
    operands: tuple[Operand, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    """``field [NOT] LIKE operand`` (``%`` any text, ``_`` one character)."""

    field: str
    pattern: Operand
    negated: bool


@dataclass(frozen=True)
class NullTest:
    """``field IS [NOT] NULL``."""

    field: str
    negated: bool


@dataclass(frozen=True)
class Negation:
    """``NOT condition``."""

    condition: Condition


@dataclass(frozen=True)
class AllOf:
    """Conditions joined by AND."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """Conditions joined by OR."""

    conditions: tuple[Condition, ...]


Condition = Comparison | Membership | Like | NullTest | Negation | AllOf | AnyOf


@dataclass(frozen=True)
class Column:
    """A selected column and the name it is answered under."""

    name: str
    alias: str | None = None

    @property
    def key(self) -> str:
        """The property name in the answer: the alias if there is one."""
        return self.alias or self.name


@dataclass(frozen=True)
class Select:
    """One ``SELECT ... FROM ... [WHERE ...]``; `columns` None means ``*``."""

    columns: tuple[Column, ...] | None
    object_type: str
    where: Condition | None


@dataclass(frozen=True)
class Statement:
    """A parsed search statement: one or more selects, their union, the order of the result."""

    selects: tuple[Select, ...]
    distinct: bool  # a plain UNION drops objects found twice; UNION ALL keeps them
    order: tuple[tuple[str, bool], ...]  # (column, descending)

    def fields(self) -> list[tuple[Select, str]]:
        """Every (select, field or column name) the statement mentions, to check against the types."""
        found: list[tuple[Select, str]] = []
        for select in self.selects:
            found += [(select, c.name) for c in select.columns or ()]
            found += [(select, name) for name in _condition_fields(select.where)]
        return found

    def parameters(self) -> set[str]:
        """Names of the ``@parameters`` the statement uses."""
        names: set[str] = set()
        for select in self.selects:
            for condition in _walk(select.where):
                operands: tuple[Operand, ...] = ()
                if isinstance(condition, Comparison):
                    operands = (condition.operand,)
                elif isinstance(condition, Membership):
                    operands = condition.operands
                elif isinstance(condition, Like):
                    operands = (condition.pattern,)
                names |= {o.name for o in operands if isinstance(o, Param)}
        return names


def _walk(condition: Condition | None) -> list[Condition]:
    """Every condition in the tree, without recursion (depth is bounded, but stay iterative anyway)."""
    pending = [] if condition is None else [condition]
    seen: list[Condition] = []
    while pending:
        current = pending.pop()
        seen.append(current)
        if isinstance(current, Negation):
            pending.append(current.condition)
        elif isinstance(current, AllOf | AnyOf):
            pending.extend(current.conditions)
    return seen


def _condition_fields(condition: Condition | None) -> list[str]:
    return [c.field for c in _walk(condition) if isinstance(c, Comparison | Membership | Like | NullTest)]


def _depth(condition: Condition | None) -> int:
    deepest = 0
    pending = [] if condition is None else [(condition, 1)]
    while pending:
        current, level = pending.pop()
        deepest = max(deepest, level)
        if isinstance(current, Negation):
            pending.append((current.condition, level + 1))
        elif isinstance(current, AllOf | AnyOf):
            pending.extend((c, level + 1) for c in current.conditions)
    return deepest


class _Build(Transformer_NonRecursive[Token, Any]):
    """Parse tree → the dataclasses above."""

    def start(self, items: list[Any]) -> Statement:
        selects = tuple(i for i in items if isinstance(i, Select))
        unions = [i for i in items if isinstance(i, bool)]
        orders = [i for i in items if isinstance(i, tuple)]
        return Statement(selects, distinct=not all(unions), order=orders[0] if orders else ())

    def union(self, items: list[Token]) -> bool:
        return len(items) == 2  # UNION ALL

    def select(self, items: list[Any]) -> Select:
        columns, object_type = items[1], items[3]
        where = items[5] if len(items) > 5 else None
        return Select(columns, object_type, where)

    def all_columns(self, _items: list[Token]) -> None:
        return None

    def columns(self, items: list[Column]) -> tuple[Column, ...]:
        return tuple(items)

    def column(self, items: list[Token]) -> Column:
        names = [str(t) for t in items if t.type in ("FIELD", "NAME")]
        return Column(names[0], names[1] if len(names) > 1 else None)

    def type_ref(self, items: list[Token]) -> str:
        return str(items[0])

    def disjunction(self, items: list[Any]) -> AnyOf:
        return AnyOf(tuple(i for i in items if not isinstance(i, Token)))

    def conjunction(self, items: list[Any]) -> AllOf:
        return AllOf(tuple(i for i in items if not isinstance(i, Token)))

    def negation(self, items: list[Any]) -> Negation:
        return Negation(items[-1])

    def comparison(self, items: list[Any]) -> Comparison:
        op = "<>" if str(items[1]) == "!=" else str(items[1])
        return Comparison(str(items[0]), op, items[2])

    def membership(self, items: list[Any]) -> Membership:
        negated = any(isinstance(i, Token) and i.type == "NOT" for i in items)
        operands = tuple(i for i in items if isinstance(i, Param | Literal))
        return Membership(str(items[0]), operands, negated)

    def like(self, items: list[Any]) -> Like:
        negated = any(isinstance(i, Token) and i.type == "NOT" for i in items)
        return Like(str(items[0]), items[-1], negated)

    def null_test(self, items: list[Token]) -> NullTest:
        return NullTest(str(items[0]), negated=any(t.type == "NOT" for t in items))

    def operand(self, items: list[Token]) -> Operand:
        token = items[0]
        if token.type == "PARAM":
            return Param(str(token)[1:])
        if token.type == "STRING":
            return Literal(str(token)[1:-1].replace("''", "'"))
        return Literal(str(token))

    def order_by(self, items: list[Any]) -> tuple[tuple[str, bool], ...]:
        return tuple(i for i in items if isinstance(i, tuple))

    def order_item(self, items: list[Token]) -> tuple[str, bool]:
        return str(items[0]), any(t.type == "DESC" for t in items)


def _problem(exc: UnexpectedInput, text: str) -> str:
    position = getattr(exc, "pos_in_stream", None)
    if isinstance(exc, UnexpectedEOF) or position is None:
        return "the statement ends too early"
    near = text[position : position + 20]
    if isinstance(exc, UnexpectedCharacters):
        return f"unexpected character at position {position}: {near!r}"
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        return "the statement ends too early"
    return f"unexpected {near.split()[0] if near.split() else near!r} at position {position}"


# A client sends the same few statement texts again and again (values travel as parameters), and lark
# took about a third of a search's CPU: each text is parsed once. Statements are immutable, refusals
# (raised) are not cached, and the bound keeps hostile texts from growing the memory.
@functools.lru_cache(maxsize=256)
def parse_statement(text: str) -> Statement:
    """Parse a search statement; `QueryError` says where it stops making sense."""
    if len(text) > MAX_STATEMENT:
        raise QueryError(f"statement longer than {MAX_STATEMENT} characters")
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise QueryError(_problem(exc, text)) from None
    statement: Statement = _Build().transform(tree)
    for select in statement.selects:
        if select.object_type.startswith("system:"):
            raise QueryError("expected an object type after FROM")
        if _depth(select.where) > MAX_DEPTH:
            raise QueryError(f"condition nests deeper than {MAX_DEPTH} levels")
    return statement
