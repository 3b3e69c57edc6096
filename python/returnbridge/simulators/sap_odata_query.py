"""The OData v2 query options the SAP simulator understands: $filter expressions, $orderby, wire formats."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

_DATE_RE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^']|'')*')
      | (?P<typed>(?:datetimeoffset|datetime|guid)'[^']*')
      | (?P<num>-?\d+(?:\.\d+)?[mMdDlL]?)
      | (?P<paren>[()])
      | (?P<word>[A-Za-z_][A-Za-z0-9_/]*)
    )""",
    re.VERBOSE,
)
_COMPARATORS = {"eq", "ne", "gt", "ge", "lt", "le"}


class QueryError(ValueError):
    """A query option the simulator (like SAP Gateway) refuses; the message is the OData error text."""


def date_ms(value: str) -> int | None:
    """Milliseconds of an OData v2 ``/Date(ms)/`` or ``/Date(ms+0000)/`` value; None when not a date."""
    m = _DATE_RE.match(value or "")
    return int(m.group(1)) if m else None


def to_date(ms: int) -> str:
    return f"/Date({ms})/"


def to_datetimeoffset(ms: int) -> str:
    return f"/Date({ms}+0000)/"


def day_ms(ms: int | None = None) -> int:
    """Midnight UTC of the day containing ``ms`` (Edm.DateTime date fields carry no time)."""
    ms = int(time.time() * 1000) if ms is None else ms
    return ms - ms % 86_400_000


def parse_literal_datetime(text: str) -> int:
    """``2024-05-31T00:00`` / ``2024-05-31T00:00:00.123Z`` -> epoch ms (UTC)."""
    value = text.rstrip("Z")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"):
        try:
            dt = datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return int(dt.timestamp() * 1000)
    raise QueryError(f"Invalid datetime literal '{text}'")


Predicate = Callable[[dict[str, Any]], bool]


def parse_filter(text: str, known: set[str]) -> Predicate:
    """Compile a ``$filter`` expression (eq/ne/gt/ge/lt/le, and/or/not, parentheses) into a predicate."""
    tokens = _tokenize(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise QueryError(f"Invalid filter expression: '{text}' ends early")
        pos += 1
        return tokens[pos - 1]

    def expr_or() -> Predicate:
        left = expr_and()
        while (tok := peek()) is not None and tok == ("word", "or"):
            take()
            right = expr_and()
            left = (lambda a, b: lambda e: a(e) or b(e))(left, right)
        return left

    def expr_and() -> Predicate:
        left = expr_unary()
        while (tok := peek()) is not None and tok == ("word", "and"):
            take()
            right = expr_unary()
            left = (lambda a, b: lambda e: a(e) and b(e))(left, right)
        return left

    def expr_unary() -> Predicate:
        tok = peek()
        if tok == ("word", "not"):
            take()
            inner = expr_unary()
            return lambda e: not inner(e)
        if tok == ("paren", "("):
            take()
            inner = expr_or()
            if take() != ("paren", ")"):
                raise QueryError(f"Invalid filter expression: '{text}' (missing ')')")
            return inner
        return comparison()

    def comparison() -> Predicate:
        kind, field = take()
        if kind != "word" or field in _COMPARATORS:
            raise QueryError(f"Invalid filter expression: '{text}' (property expected, got '{field}')")
        if field not in known:
            raise QueryError(f"Property '{field}' not found")
        kind, op = take()
        if kind != "word" or op not in _COMPARATORS:
            raise QueryError(f"Invalid filter expression: '{text}' (operator expected after '{field}')")
        literal = _literal(take(), text)
        return lambda e: _compare(e.get(field), op, literal)

    predicate = expr_or()
    if pos != len(tokens):
        raise QueryError(f"Invalid filter expression: '{text}' (unexpected '{tokens[pos][1]}')")
    return predicate


def parse_orderby(text: str, known: set[str]) -> list[tuple[str, bool]]:
    """``$orderby=A desc,B`` -> [("A", True), ("B", False)] (True = descending)."""
    order: list[tuple[str, bool]] = []
    for part in text.split(","):
        bits = part.strip().split()
        if not bits or len(bits) > 2 or (len(bits) == 2 and bits[1] not in ("asc", "desc")):
            raise QueryError(f"Invalid $orderby '{text}'")
        if bits[0] not in known:
            raise QueryError(f"Property '{bits[0]}' not found")
        order.append((bits[0], len(bits) == 2 and bits[1] == "desc"))
    return order


def sort_key(value: Any) -> tuple[int, Any]:
    """Orders dates by time, decimals numerically, everything else as text."""
    if isinstance(value, str):
        ms = date_ms(value)
        if ms is not None:
            return (0, ms)
        return (1, value)
    return (2, str(value))


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"Invalid filter expression: '{text}' at position {pos}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def _literal(token: tuple[str, str], text: str) -> tuple[str, Any]:
    kind, raw = token
    if kind == "str":
        return ("str", raw[1:-1].replace("''", "'"))
    if kind == "typed":
        prefix, _, rest = raw.partition("'")
        value = rest[:-1]
        if prefix in ("datetime", "datetimeoffset"):
            return ("date", parse_literal_datetime(value))
        return ("str", value)
    if kind == "num":
        try:
            return ("num", Decimal(raw.rstrip("mMdDlL")))
        except InvalidOperation as exc:
            raise QueryError(f"Invalid number '{raw}'") from exc
    if kind == "word" and raw in ("null", "true", "false"):
        return ("word", {"null": None, "true": True, "false": False}[raw])
    raise QueryError(f"Invalid filter expression: '{text}' (literal expected, got '{raw}')")


def _compare(value: Any, op: str, literal: tuple[str, Any]) -> bool:
    kind, lit = literal
    left: Any = value
    right: Any = lit
    if kind == "date":
        left = date_ms(value) if isinstance(value, str) else None
        if left is None:
            return op == "ne"
    elif kind == "num":
        try:
            left = Decimal(str(value))
        except InvalidOperation:
            return op == "ne"
    elif kind == "word":
        left = value if value != "" else None
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    if op == "gt":
        return bool(left > right)
    if op == "ge":
        return bool(left >= right)
    if op == "lt":
        return bool(left < right)
    return bool(left <= right)
