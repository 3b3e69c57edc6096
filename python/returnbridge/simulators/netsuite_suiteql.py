"""SuiteQL for the NetSuite simulator: a small strict grammar for the query shapes the connector issues."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

_TS_FORMAT = "'YYYY-MM-DD HH24:MI:SS'"


class SuiteQLError(Exception):
    """A query the simulator refuses (answered as 400 INVALID_PARAMETER)."""


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class Row:
    """Column access for the query engine; ``display`` holds BUILTIN.DF values."""

    def __init__(self, values: dict[str, Any], display: dict[str, str], table: str) -> None:
        self.values, self.display, self.table = values, display, table

    def __call__(self, column: str) -> Any:
        try:
            return self.values[column]
        except KeyError:
            raise SuiteQLError(
                f"Invalid search query. Detailed unprocessed description follows. Search error occurred: "
                f"Field '{column}' for record '{self.table}' was not found."
            ) from None


def by_column(column: str) -> Callable[[Callable[[str], Any]], tuple[int, Any]]:
    return lambda row: _sort_key(row(column))


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | Decimal):
        return (0, value)
    if isinstance(value, datetime):
        return (1, value)
    return (2, str(value))


def text(value: Any) -> str:
    """SuiteQL's REST answer carries every value as a string."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
    if isinstance(value, datetime):
        return value.strftime("%m/%d/%Y")
    return str(value)


# -- a small strict grammar for the query shapes the connector issues -----------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>>=|<=|<>|!=|[=<>(),*])|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)
TABLE_COLUMNS = {
    "transaction": {
        "id",
        "tranid",
        "externalid",
        "type",
        "recordtype",
        "status",
        "entity",
        "currency",
        "foreigntotal",
        "createdfrom",
        "trandate",
        "lastmodifieddate",
        "memo",
    },
    "aggregateitemlocation": {
        "item",
        "location",
        "quantityonhand",
        "quantityavailable",
        "quantitycommitted",
        "quantityonorder",
        "lastmodifieddate",
    },
}
TABLE_NAMES = {"transaction": "transaction", "aggregateitemlocation": "aggregateItemLocation"}


def _invalid(detail: str) -> SuiteQLError:
    return SuiteQLError(f"Invalid search query. {detail}")


@dataclass(frozen=True, slots=True)
class Expr:
    """A select-list expression: a column, BUILTIN.DF(column) or TO_CHAR(column, 'YYYY-MM-DD HH24:MI:SS')."""

    column: str
    function: str = ""

    def evaluate(self, row: Callable[[str], Any]) -> Any:
        value = row(self.column)
        if self.function == "DF":
            assert isinstance(row, Row)
            return row.display.get(self.column, value)
        if self.function == "TO_CHAR":
            return _stamp(value) if isinstance(value, datetime) else value
        return value


@dataclass(frozen=True, slots=True)
class Condition:
    column: str
    op: str
    values: tuple[Any, ...]

    def matches(self, row: Callable[[str], Any]) -> bool:
        actual = row(self.column)
        if isinstance(actual, datetime):
            # Compare at the resolution the literal has: seconds.
            actual = actual.replace(microsecond=0)
        elif isinstance(actual, int | Decimal):
            actual = str(actual)
        if self.op == "IN":
            return any(actual == v for v in self.values)
        expected = self.values[0]
        ops: dict[str, Callable[[Any, Any], bool]] = {
            "=": lambda a, b: a == b,
            "<>": lambda a, b: a != b,
            "!=": lambda a, b: a != b,
            ">=": lambda a, b: a >= b,
            ">": lambda a, b: a > b,
            "<=": lambda a, b: a <= b,
            "<": lambda a, b: a < b,
        }
        try:
            return ops[self.op](actual, expected)
        except TypeError:
            raise _invalid(f"Cannot compare {self.column} with {expected!r}.") from None


@dataclass(frozen=True, slots=True)
class SuiteQL:
    table: str
    select: list[tuple[str, Expr]]
    where: list[Condition]
    order_by: list[str]


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                raise _invalid(f"Unexpected character at position {pos}: {text[pos : pos + 10]!r}.")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
        self.i = 0

    def peek(self, upper: bool = True) -> str:
        if self.i >= len(self.tokens):
            return ""
        value = self.tokens[self.i][1]
        return value.upper() if upper else value

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise _invalid(f"Unexpected end of query{f', expected {expected}' if expected else ''}.")
        kind, value = self.tokens[self.i]
        if expected is not None and value.upper() != expected:
            raise _invalid(f"Expected {expected} but found {value!r}.")
        self.i += 1
        return kind, value

    def word(self) -> str:
        kind, value = self.take()
        if kind != "word":
            raise _invalid(f"Expected a name but found {value!r}.")
        return value

    def string(self) -> str:
        kind, value = self.take()
        if kind != "str":
            raise _invalid(f"Expected a string literal but found {value!r}.")
        return value[1:-1].replace("''", "'")


def parse_suiteql(text: str) -> SuiteQL:
    """Parse ``SELECT <exprs> FROM <table> [WHERE c AND c ...] [ORDER BY col, ...]``; 400 for anything else."""
    p = _Parser(text)
    p.take("SELECT")
    raw_select: list[tuple[str, Expr]] = []
    while True:
        expr = _parse_expr(p)
        alias = expr.column
        if p.peek() == "AS":
            p.take("AS")
            alias = p.word().lower()
        raw_select.append((alias, expr))
        if p.peek() != ",":
            break
        p.take(",")
    p.take("FROM")
    table_word = p.word()
    table = table_word.lower()
    if table not in TABLE_COLUMNS:
        raise _invalid(f"Record '{table_word}' was not found.")
    where: list[Condition] = []
    if p.peek() == "WHERE":
        p.take("WHERE")
        while True:
            where.append(_parse_condition(p))
            if p.peek() != "AND":
                break
            p.take("AND")
    order_by: list[str] = []
    if p.peek() == "ORDER":
        p.take("ORDER")
        p.take("BY")
        while True:
            order_by.append(p.word().lower())
            if p.peek() in ("ASC", "DESC"):
                if p.take()[1].upper() == "DESC":
                    raise _invalid("Only ascending order is supported by this simulator.")
            if p.peek() != ",":
                break
            p.take(",")
    if p.i != len(p.tokens):
        raise _invalid(f"Unexpected {p.peek(upper=False)!r} after the query.")
    columns = TABLE_COLUMNS[table]
    for name in [e.column for _, e in raw_select] + [c.column for c in where] + order_by:
        if name not in columns:
            raise _invalid(
                f"Detailed unprocessed description follows. Search error occurred: Field '{name}' for record '{TABLE_NAMES[table]}' was not found."
            )
    return SuiteQL(table=table, select=raw_select, where=where, order_by=order_by)


def _parse_expr(p: _Parser) -> Expr:
    head = p.peek()
    if head == "BUILTIN.DF":
        p.take()
        p.take("(")
        column = p.word().lower()
        p.take(")")
        return Expr(column, "DF")
    if head == "TO_CHAR":
        p.take()
        p.take("(")
        column = p.word().lower()
        p.take(",")
        if p.string().upper() != "YYYY-MM-DD HH24:MI:SS":
            raise _invalid(f"Only the format {_TS_FORMAT} is supported by this simulator.")
        p.take(")")
        return Expr(column, "TO_CHAR")
    if head == "*":
        raise _invalid("SELECT * is not supported; name the columns.")
    return Expr(p.word().lower())


def _parse_condition(p: _Parser) -> Condition:
    column = p.word().lower()
    op = p.take()[1].upper()
    if op == "IN":
        p.take("(")
        values = [p.string()]
        while p.peek() == ",":
            p.take(",")
            values.append(p.string())
        p.take(")")
        return Condition(column, "IN", tuple(values))
    if op not in ("=", "<>", "!=", ">=", ">", "<=", "<"):
        raise _invalid(f"Unsupported operator {op!r}.")
    if p.peek() == "TO_TIMESTAMP":
        p.take()
        p.take("(")
        literal = p.string()
        p.take(",")
        if p.string().upper() != "YYYY-MM-DD HH24:MI:SS":
            raise _invalid(f"Only the format {_TS_FORMAT} is supported by this simulator.")
        p.take(")")
        try:
            moment = datetime.strptime(literal, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            raise _invalid(f"Invalid timestamp {literal!r}.") from None
        return Condition(column, op, (moment,))
    kind, value = p.take()
    if kind == "str":
        return Condition(column, op, (value[1:-1].replace("''", "'"),))
    if kind == "num":
        return Condition(column, op, (value,))
    raise _invalid(f"Expected a value after {op} but found {value!r}.")
