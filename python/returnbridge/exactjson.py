"""JSON for ERP payloads with exact decimals: Decimals in, fixed-point JSON numbers out, never through float."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

_encode_str = json.JSONEncoder(ensure_ascii=False).encode


class JsonError(ValueError):
    """Text that is not strict JSON (RFC 8259); the message is safe to show to whoever sent it."""


def loads(
    data: bytes | str,
    *,
    parse_float: Callable[[str], Any] = Decimal,
    max_depth: int | None = None,
    unique_keys: bool = False,
) -> Any:
    """Parse strict JSON, every non-integer number an exact Decimal (or ``parse_float``'s value).

    Refuses what Python's parser would let through or crash on: bytes that are not UTF-8, the ``NaN`` and
    ``Infinity`` literals (a NaN amount from an ERP is no amount), integers longer than Python converts, nesting
    deeper than its stack, and, when given, deeper than ``max_depth`` (for callers whose own checks recurse).
    ``unique_keys`` also refuses an object naming a key twice: RFC 8259 leaves its meaning open (parsers keep the
    first, the last, or fail), so a signed body that repeats a key may mean one thing to its signer and another here.

    Raises:
        JsonError: one message, without Python exception names.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    except UnicodeDecodeError as exc:
        raise JsonError(f"The body is not valid UTF-8 (byte {exc.start}).") from None
    try:
        value = json.loads(
            text,
            parse_float=parse_float,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_object if unique_keys else None,
        )
    except JsonError:
        raise
    except json.JSONDecodeError as exc:
        raise JsonError(f"{exc.msg} at line {exc.lineno} column {exc.colno}.") from None
    except RecursionError:
        raise JsonError("JSON nested too deeply.") from None
    except ValueError:  # an integer literal past sys.get_int_max_str_digits()
        raise JsonError("A number has too many digits.") from None
    if max_depth is not None:
        _check_depth(value, max_depth)
    return value


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonError(f"The key {json.dumps(key)[:80]} appears twice in one object.")
            seen.add(key)
    return value


def _refuse_constant(name: str) -> Any:
    raise JsonError(f"{name} is not a JSON value.")


def _check_depth(value: Any, max_depth: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > max_depth:
                    raise JsonError(f"JSON nesting deeper than {max_depth} levels.")
                stack.append((child, depth + 1))


def dumps(value: Any) -> str:
    """Compact JSON text; Decimals are written digit for digit in fixed point (``1E+2`` -> ``100``).

    Raises:
        TypeError: for floats (they may already have lost digits) and types JSON cannot carry.
        ValueError: for NaN and infinite decimals.
    """
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def dumps_bytes(value: Any) -> bytes:
    return dumps(value).encode("utf-8")


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_encode_str(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot encode {value} as JSON")
        out.append(format(value, "f"))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        raise TypeError("floats are not allowed in ERP payloads; use Decimal")
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(_encode_str(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")
