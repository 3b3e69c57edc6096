"""JSON for ERP payloads with exact decimals: Decimals in, fixed-point JSON numbers out, never through float."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

_encode_str = json.JSONEncoder(ensure_ascii=False).encode


def loads(data: bytes | str) -> Any:
    """Parse JSON keeping every non-integer number as an exact Decimal."""
    return json.loads(data, parse_float=Decimal)


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
