"""Dates of the reference interpreter (mirror of rust_mapper/src/ops/date.rs)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ._ref_values import _I64_MAX, _I64_MIN, Dec, Fail, dq, kind

_MIN_SECS, _MAX_SECS = -62_135_596_800, 253_402_300_799


def days_from_civil(y: int, m: int, d: int) -> int:
    y = y - 1 if m <= 2 else y
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719_468
    era = (z if z >= 0 else z - 146_096) // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def _dim(y: int, m: int) -> int:
    if m in (1, 3, 5, 7, 8, 10, 12):
        return 31
    if m in (4, 6, 9, 11):
        return 30
    return 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28


def format_rfc3339(secs: int, nanos: int) -> str | None:
    if not _MIN_SECS <= secs <= _MAX_SECS or not 0 <= nanos < 1_000_000_000:
        return None
    days, rem = divmod(secs, 86_400)
    y, m, d = civil_from_days(days)
    s = f"{y:04}-{m:02}-{d:02}T{rem // 3600:02}:{rem // 60 % 60:02}:{rem % 60:02}"
    if nanos:
        if nanos % 1_000_000 == 0:
            s += f".{nanos // 1_000_000:03}"
        elif nanos % 1000 == 0:
            s += f".{nanos // 1000:06}"
        else:
            s += f".{nanos:09}"
    return s + "Z"


def _digits(s: str, start: int, n: int) -> int | None:
    part = s[start : start + n]
    if len(part) != n or not all("0" <= c <= "9" for c in part):
        return None
    return int(part)


def _ymd(y: int | None, m: int | None, d: int | None) -> int | None:
    if y is None or m is None or d is None:
        return None
    if not 1 <= y <= 9999 or not 1 <= m <= 12 or d < 1 or d > _dim(y, m):
        return None
    return days_from_civil(y, m, d) * 86_400


def _parse_date(s: str) -> tuple[int, int] | None:
    if len(s.encode()) != 10 or len(s) != 10 or s[4] != "-" or s[7] != "-":
        return None
    secs = _ymd(_digits(s, 0, 4), _digits(s, 5, 2), _digits(s, 8, 2))
    return None if secs is None else (secs, 0)


def _parse_yyyymmdd(s: str) -> tuple[int, int] | None:
    if len(s.encode()) != 8:
        return None
    secs = _ymd(_digits(s, 0, 4), _digits(s, 4, 2), _digits(s, 6, 2))
    return None if secs is None else (secs, 0)


def _parse_datetime(s: str) -> tuple[int, int] | None:
    b = s.encode()
    if len(b) < 20 or b[10:11] != b"T" or b[13:14] != b":" or b[16:17] != b":":
        return None
    if not s[:10].isascii():
        return None
    day = _parse_date(s[:10])
    h, mi, se = _digits(s, 11, 2), _digits(s, 14, 2), _digits(s, 17, 2)
    if day is None or h is None or mi is None or se is None or h > 23 or mi > 59 or se > 59:
        return None
    if not s.isascii():
        return None
    i = 19
    nanos = 0
    if s[i : i + 1] == ".":
        i += 1
        start = i
        while i < len(s) and "0" <= s[i] <= "9":
            i += 1
        n = i - start
        if n == 0 or n > 9:
            return None
        nanos = int(s[start:i]) * 10 ** (9 - n)
    c = s[i : i + 1]
    if c == "Z" and i + 1 == len(s):
        offset = 0
    elif c in ("+", "-") and i + 6 == len(s) and s[i + 3] == ":":
        oh, om = _digits(s, i + 1, 2), _digits(s, i + 4, 2)
        if oh is None or om is None or oh > 23 or om > 59:
            return None
        offset = (oh * 3600 + om * 60) * (1 if c == "+" else -1)
    else:
        return None
    secs = day[0] + h * 3600 + mi * 60 + se - offset
    return (secs, nanos) if _MIN_SECS <= secs <= _MAX_SECS else None


def _parse_ms_date(s: str) -> tuple[int, int] | None:
    if not (s.startswith("/Date(") and s.endswith(")/")) or len(s) < 8:
        return None
    inner = s[6:-2]
    end = 1 if inner[:1] == "-" else 0
    while end < len(inner) and "0" <= inner[end] <= "9":
        end += 1
    rest = inner[end:]
    if rest and not (len(rest) == 5 and rest[0] in "+-" and all("0" <= c <= "9" for c in rest[1:])):
        return None
    try:
        ms = int(inner[:end])
    except ValueError:
        return None
    if not _I64_MIN <= ms <= _I64_MAX:
        return None
    return _from_ms(ms)


def _from_ms(ms: int) -> tuple[int, int] | None:
    secs, rem = divmod(ms, 1000)
    return (secs, rem * 1_000_000) if _MIN_SECS <= secs <= _MAX_SECS else None


# Former format names, as the Rust engine accepts them too.
_DATE_ALIASES = {"sap": "ms_date"}

_FORMAT_NAMES = {
    "auto": "date, datetime, /Date(ms)/ or YYYYMMDD",
    "date": "YYYY-MM-DD",
    "datetime": "RFC 3339",
    "ms_date": "/Date(ms)/",
    "yyyymmdd": "YYYYMMDD",
}


def _epoch_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, Dec):
        return v.to_i64_exact()
    if isinstance(v, str):
        if re.fullmatch(r"[+-]?[0-9]+", v) is None:
            return None
        n = int(v)
        return n if _I64_MIN <= n <= _I64_MAX else None
    return None


def convert_date(v: Any, src: str, dst: str) -> Any:
    src, dst = _DATE_ALIASES.get(src, src), _DATE_ALIASES.get(dst, dst)
    if src in ("epoch_ms", "epoch_s"):
        n = _epoch_int(v)
        if n is None:
            raise Fail(f"expected an integer epoch, got {kind(v)}")
        inst = _from_ms(n) if src == "epoch_ms" else ((n, 0) if _MIN_SECS <= n <= _MAX_SECS else None)
        if inst is None:
            raise Fail(f"epoch {n} outside years 1..9999")
    else:
        if not isinstance(v, str):
            raise Fail(f"expected a date string, got {kind(v)}")
        parsers: dict[str, Callable[[str], tuple[int, int] | None]] = {
            "date": _parse_date,
            "datetime": _parse_datetime,
            "ms_date": _parse_ms_date,
            "yyyymmdd": _parse_yyyymmdd,
        }
        if src == "auto":
            inst = _parse_datetime(v) or _parse_date(v) or _parse_ms_date(v) or _parse_yyyymmdd(v)
        else:
            inst = parsers[src](v)
        if inst is None:
            raise Fail(f"not a valid date ({_FORMAT_NAMES[src]}): {dq(v)}")
    secs, nanos = inst
    if dst == "epoch_ms":
        return secs * 1000 + nanos // 1_000_000
    if dst == "epoch_s":
        return secs
    if dst == "ms_date":
        return f"/Date({secs * 1000 + nanos // 1_000_000})/"
    if dst == "datetime":
        text = format_rfc3339(secs, nanos)
        if text is None:
            raise Fail("date out of range")
        return text
    y, m, d = civil_from_days(secs // 86_400)
    return f"{y:04}-{m:02}-{d:02}" if dst == "date" else f"{y:04}{m:02}{d:02}"


def parse_timestamp(s: str) -> tuple[int, int] | None:
    return _parse_datetime(s) or _parse_date(s)
