"""Pure-Python reference interpreter of the mapping language: the executable specification of the Rust engine.

It reads the same normalized spec JSON and must give byte-identical output and the same error rule and path.
Deliberately simple and slow; exact decimals use the same integer algorithm (coefficient + scale, i128 limits).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as PbMessage

from returnbridge.errors import SpecError, TranslationError

# ---------------------------------------------------------------------------------------------------------------
# Exact decimal (mirror of rust_mapper/src/decimal.rs).
# ---------------------------------------------------------------------------------------------------------------

MAX_COEF = 10**38 - 1
MAX_SCALE = 38
_I128_MIN, _I128_MAX = -(2**127), 2**127 - 1
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


class OutOfRange(Exception):
    """Decimal arithmetic left the supported range."""


def _i128(v: int) -> int:
    if not _I128_MIN <= v <= _I128_MAX:
        raise OutOfRange
    return v


def _pow10(n: int) -> int:
    return _i128(10**n)


@dataclass(frozen=True, slots=True)
class Dec:
    """Exact decimal ``coef * 10**-scale``; ``num`` marks one written to JSON as a number."""

    coef: int
    scale: int
    num: bool = False

    @staticmethod
    def new(coef: int, scale: int) -> Dec:
        if scale > MAX_SCALE or not -MAX_COEF <= coef <= MAX_COEF:
            raise OutOfRange
        return Dec(coef, scale)

    def plain(self) -> str:
        digits = str(abs(self.coef))
        sign = "-" if self.coef < 0 else ""
        if self.scale == 0:
            return sign + digits
        if len(digits) > self.scale:
            return f"{sign}{digits[: -self.scale]}.{digits[-self.scale :]}"
        return f"{sign}0.{'0' * (self.scale - len(digits))}{digits}"

    def aligned(self, scale: int) -> int | None:
        try:
            return _i128(self.coef * _pow10(scale - self.scale))
        except OutOfRange:
            return None

    def add(self, other: Dec) -> Dec:
        scale = max(self.scale, other.scale)
        a, b = self.aligned(scale), other.aligned(scale)
        if a is None or b is None:
            raise OutOfRange
        return Dec.new(_i128(a + b), scale)

    def mul(self, other: Dec) -> Dec:
        return Dec.new(_i128(self.coef * other.coef), self.scale + other.scale)

    def neg(self) -> Dec:
        return Dec(-self.coef, self.scale, self.num)

    def abs(self) -> Dec:
        return Dec(abs(self.coef), self.scale, self.num)

    def div(self, other: Dec, scale: int, mode: str) -> Dec | None:
        if other.coef == 0:
            return None
        k = scale + other.scale - self.scale
        if k >= 0:
            n, d = _i128(self.coef * _pow10(k)), other.coef
        else:
            n, d = self.coef, _i128(other.coef * _pow10(-k))
        return Dec.new(round_div(n, d, mode), scale)

    def rescale(self, scale: int, mode: str) -> Dec:
        if scale > MAX_SCALE:
            raise OutOfRange
        if scale >= self.scale:
            a = self.aligned(scale)
            if a is None:
                raise OutOfRange
            return Dec.new(a, scale)
        return Dec.new(round_div(self.coef, _pow10(self.scale - scale), mode), scale)

    def to_i64_exact(self) -> int | None:
        p = 10**self.scale
        if self.coef % p != 0:
            return None
        q = _trunc_div(self.coef, p)
        return q if _I64_MIN <= q <= _I64_MAX else None

    def cmp(self, other: Dec) -> int:
        scale = max(self.scale, other.scale)
        a, b = self.aligned(scale), other.aligned(scale)
        if a is None:
            return -1 if self.coef < 0 else 1
        if b is None:
            return 1 if other.coef < 0 else -1
        return (a > b) - (a < b)


def _trunc_div(n: int, d: int) -> int:
    q = abs(n) // abs(d)
    return q if (n < 0) == (d < 0) else -q


def round_div(n: int, d: int, mode: str) -> int:
    """``n / d`` rounded to an integer with ``mode`` (same as the Rust engine)."""
    q = _trunc_div(n, d)
    r = abs(n) - abs(q) * abs(d)
    if r == 0:
        return q
    positive = (n < 0) == (d < 0)
    step = 1 if positive else -1
    rest = abs(d) - r
    away = {
        "down": False,
        "up": True,
        "floor": not positive,
        "ceiling": positive,
        "half_up": r >= rest,
        "half_down": r > rest,
        "half_even": r > rest or (r == rest and q % 2 != 0),
    }[mode]
    return q + step if away else q


def parse_decimal(text: str) -> Dec | None:
    """Parse ``[+-]?(digits[.digits]|.digits)([eE][+-]?digits)?``; ``None`` if malformed.

    Raises:
        OutOfRange: well formed but outside the supported range.
    """
    b = text
    i = 0
    neg = False
    if b[:1] in ("-", "+"):
        neg = b[0] == "-"
        i = 1
    coef = 0
    overflow = False
    digits = 0
    frac = 0
    seen_dot = False
    while i < len(b):
        c = b[i]
        if "0" <= c <= "9":
            digits += 1
            if seen_dot:
                frac += 1
            v = coef * 10 + (ord(c) - 48)
            if v <= MAX_COEF:
                coef = v
            else:
                overflow = True
        elif c == "." and not seen_dot:
            seen_dot = True
        else:
            break
        i += 1
    if digits == 0:
        return None
    exp = 0
    if i < len(b) and b[i] in ("e", "E"):
        i += 1
        eneg = False
        if b[i : i + 1] in ("-", "+"):
            eneg = b[i] == "-"
            i += 1
        start = i
        while i < len(b) and "0" <= b[i] <= "9":
            if exp < 100_000:
                exp = exp * 10 + (ord(b[i]) - 48)
            i += 1
        if i == start:
            return None
        if eneg:
            exp = -exp
    if i != len(b):
        return None
    if overflow:
        raise OutOfRange
    if neg:
        coef = -coef
    shift = exp - frac
    if shift <= 0:
        if -shift > MAX_SCALE:
            raise OutOfRange
        return Dec.new(coef, -shift)
    if shift > MAX_SCALE:
        if coef == 0:
            return Dec(0, 0)
        raise OutOfRange
    return Dec.new(_i128(coef * _pow10(shift)), 0)


# ---------------------------------------------------------------------------------------------------------------
# Values. None = absent; bool; int (i64); Dec; str; list; Msg (protobuf message); dict (JSON object / map).
# ---------------------------------------------------------------------------------------------------------------


class Msg(dict[str, Any]):
    """A decoded protobuf message: every field by name (absent ones as None / [] / {})."""


class Fail(Exception):
    """A failure before the rule is known; ``path`` overrides the default error path."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def kind(v: Any) -> str:
    if v is None:
        return "absent"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, Dec):
        return "decimal"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    return "object"


def dq(s: str) -> str:
    """A string quoted like Rust's ``{:?}`` (so error messages are identical)."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\0":
            out.append("\\0")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def scalar_to_string(v: Any) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Dec):
        return v.plain()
    return None


def as_decimal_opt(v: Any) -> Dec | None:
    """Numeric view; ``None`` if not numeric. Raises OutOfRange for numeric strings out of range."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return Dec(v, 0)
    if isinstance(v, Dec):
        return Dec(v.coef, v.scale)
    if isinstance(v, str):
        return parse_decimal(v)
    return None


def as_decimal(v: Any) -> Dec:
    try:
        d = as_decimal_opt(v)
    except OutOfRange:
        raise Fail("decimal out of range") from None
    if d is None:
        raise Fail(
            f"expected a decimal, got {dq(v)}" if isinstance(v, str) else f"expected a decimal, got {kind(v)}"
        )
    return d


# ---------------------------------------------------------------------------------------------------------------
# Dates (mirror of ops/date.rs).
# ---------------------------------------------------------------------------------------------------------------

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


def _parse_sap(s: str) -> tuple[int, int] | None:
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


_FORMAT_NAMES = {
    "auto": "date, datetime, /Date(ms)/ or YYYYMMDD",
    "date": "YYYY-MM-DD",
    "datetime": "RFC 3339",
    "sap": "/Date(ms)/",
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
            "sap": _parse_sap,
            "yyyymmdd": _parse_yyyymmdd,
        }
        if src == "auto":
            inst = _parse_datetime(v) or _parse_date(v) or _parse_sap(v) or _parse_yyyymmdd(v)
        else:
            inst = parsers[src](v)
        if inst is None:
            raise Fail(f"not a valid date ({_FORMAT_NAMES[src]}): {dq(v)}")
    secs, nanos = inst
    if dst == "epoch_ms":
        return secs * 1000 + nanos // 1_000_000
    if dst == "epoch_s":
        return secs
    if dst == "sap":
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


# ---------------------------------------------------------------------------------------------------------------
# Steps (mirror of ops/*.rs).
# ---------------------------------------------------------------------------------------------------------------

# Rust's char::is_whitespace (Unicode White_Space); Python's str.strip() also strips \x1c-\x1f.
_WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_ZERO_EXP = {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"}  # fmt: skip
_THREE_EXP = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"}


def currency_exponent(code: str) -> int:
    if len(code.encode()) != 3 or not all("A" <= c <= "Z" for c in code):
        raise Fail(f"not an ISO 4217 currency code: {dq(code)}")
    if code in _ZERO_EXP:
        return 0
    if code in _THREE_EXP:
        return 3
    return 4 if code in ("CLF", "UYW") else 2


def _text(v: Any) -> str:
    s = scalar_to_string(v)
    if s is None:
        raise Fail(f"expected a string, got {kind(v)}")
    return s


def _to_integer(v: Any) -> int:
    if isinstance(v, bool):
        raise Fail("expected an integer, got bool")
    if isinstance(v, int):
        return v
    if isinstance(v, Dec):
        i = v.to_i64_exact()
        if i is None:
            raise Fail(f"expected an integer, got {v.plain()}")
        return i
    if isinstance(v, str):
        try:
            d = parse_decimal(v)
        except OutOfRange:
            d = None
        i = d.to_i64_exact() if d is not None else None
        if i is None:
            raise Fail(f"expected an integer, got {dq(v)}")
        return i
    raise Fail(f"expected an integer, got {kind(v)}")


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return v == 1
    if isinstance(v, str):
        low = "".join(c.lower() if "A" <= c <= "Z" else c for c in v)
        if low in ("true", "t", "yes", "y", "1", "x"):
            return True
        if low in ("false", "f", "no", "n", "0", ""):
            return False
        raise Fail(f"expected a bool, got {dq(v)}")
    raise Fail(f"expected a bool, got {kind(v)}")


def _negate(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        if v == _I64_MIN:
            raise Fail("integer out of range")
        return -v
    if isinstance(v, Dec) and v.num:
        return v.neg()
    return as_decimal(v).neg()


def _abs(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        if v == _I64_MIN:
            raise Fail("integer out of range")
        return abs(v)
    if isinstance(v, Dec) and v.num:
        return v.abs()
    return as_decimal(v).abs()


def _numeric(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, Dec):
        return Dec(v.coef, v.scale)
    return as_decimal(v)


def _arith(a: Any, b: Any, add: bool) -> Any:
    b = _numeric(b)
    if type(a) is int and type(b) is int:
        r = a + b if add else a * b
        if not _I64_MIN <= r <= _I64_MAX:
            raise Fail("integer out of range")
        return r
    x, y = as_decimal(a), as_decimal(b)
    try:
        return x.add(y) if add else x.mul(y)
    except OutOfRange:
        raise Fail("decimal out of range") from None


_GROUP_REF = re.compile(r"\$(\$|\{([^}]*)\}|([_0-9A-Za-z]+))")


def _expand(template: str, m: re.Match[str]) -> str:
    """Rust regex replacement syntax: ``$1``, ``${name}``, ``$name`` (longest run), ``$$``."""

    def group(name: str) -> str:
        try:
            g = m.group(int(name)) if name.isdigit() else m.group(name)
        except (IndexError, re.error):
            return ""
        return g or ""

    out: list[str] = []
    i = 0
    while i < len(template):
        if template[i] == "$":
            gm = _GROUP_REF.match(template, i)
            if gm is None:
                out.append("$")
                i += 1
                continue
            if gm.group(1) == "$":
                out.append("$")
            else:
                out.append(group(gm.group(2) if gm.group(2) is not None else gm.group(3)))
            i = gm.end()
        else:
            out.append(template[i])
            i += 1
    return "".join(out)


def _matches(pattern: re.Pattern[str], s: str) -> Iterator[re.Match[str]]:
    """Matches as Rust's regex iterates them: an empty match right after a match is skipped."""
    last_end = -1
    for m in pattern.finditer(s):
        if m.start() == m.end() == last_end:
            continue
        last_end = m.end()
        yield m


def _replace(s: str, pattern: re.Pattern[str], with_: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _matches(pattern, s):
        out.append(s[pos : m.start()])
        out.append(_expand(with_, m))
        pos = m.end()
    out.append(s[pos:])
    return "".join(out)


# ---------------------------------------------------------------------------------------------------------------
# Compiled program.
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Path:
    text: str
    base: tuple[str, int]  # ("current"|"root"|"up", n)
    marker: str | None
    segs: list[tuple[str, Any]]  # ("slot", name) | ("key", name) | ("index", i) | ("all", None)
    labels: list[str]


@dataclass
class Node:
    key: str
    slot: tuple[
        Any, ...
    ]  # ("json",) | ("field", FieldDescriptor) | ("map", FieldDescriptor) | ("mapkey", FieldDescriptor)
    kind: str  # "object" | "field" | "list"
    children: list[Node]
    rule: dict[str, Any] | None


class _Compiler:
    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self.pool = pool
        self.rule = ""

    def err(self, message: str) -> SpecError:
        return SpecError(message, rule=self.rule)

    def field_ty(self, f: Any, whole: bool = True) -> Any:
        if whole and f.message_type is not None and f.message_type.GetOptions().map_entry:
            return ("map", self.field_ty(f.message_type.fields_by_number[2]))
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            name = f.message_type.full_name
            single: Any = {
                "google.protobuf.Timestamp": "scalar",
                "returnbridge.api.v1.CustomValue": "dyn",
                "returnbridge.api.v1.CustomList": ("list", "dyn"),
                "returnbridge.api.v1.CustomStruct": ("map", "dyn"),
            }.get(name, ("msg", f.message_type))
        else:
            single = "scalar"
        if whole and f.is_repeated:
            return ("list", single)
        return single

    def path(self, p: dict[str, Any], scopes: list[Any]) -> tuple[Path, Any, list[Any]]:
        text = p.get("text") or ""
        up = p.get("up") or 0
        if p.get("root"):
            base, start = ("root", 0), 0
        elif up > 0:
            base = ("up", up)
            start = len(scopes) - 1 - up
            if start < 0:
                raise self.err(f"path {dq(text)}: '^' goes above the document root")
        else:
            base, start = ("current", 0), len(scopes) - 1
        marker = p.get("special")
        if marker in ("index", "number") and start == 0:
            raise self.err(f"path {dq(text)}: @index/@number only exist inside `each`")
        ty = scopes[start]
        segs: list[tuple[str, Any]] = []
        levels: list[Any] = []
        labels: list[str] = []
        label = ""
        for s in p.get("segs") or []:
            if "f" in s:
                name = s["f"]
                if isinstance(ty, tuple) and ty[0] == "msg":
                    desc: Any = ty[1]
                    f = desc.fields_by_name.get(name)
                    if f is None:
                        raise self.err(f"path {dq(text)}: {desc.full_name} has no field {dq(name)}")
                    if f.type in (
                        FieldDescriptor.TYPE_DOUBLE,
                        FieldDescriptor.TYPE_FLOAT,
                        FieldDescriptor.TYPE_BYTES,
                    ):
                        raise self.err(
                            f"path {dq(text)}: field {dq(name)} is a float/bytes field, which mappings cannot read"
                        )
                    seg, nxt = ("slot", name), self.field_ty(f)
                elif isinstance(ty, tuple) and ty[0] == "map":
                    seg, nxt = ("key", name), ty[1]
                elif ty == "dyn":
                    seg, nxt = ("key", name), "dyn"
                elif isinstance(ty, tuple) and ty[0] == "list":
                    raise self.err(
                        f"path {dq(text)}: {dq(name)} is read from a list; use an index, each, sum or count"
                    )
                else:
                    raise self.err(f"path {dq(text)}: cannot read {dq(name)} from a scalar")
                label = f"{label}.{name}" if label else name
                segs.append(seg)
                ty = nxt
            elif "i" in s:
                if isinstance(ty, tuple) and ty[0] == "list":
                    ty = ty[1]
                elif ty != "dyn":
                    raise self.err(f"path {dq(text)}: index on something that is not a list")
                label += f"[{s['i']}]"
                segs.append(("index", s["i"]))
            else:
                if isinstance(ty, tuple) and ty[0] == "list":
                    ty = ty[1]
                elif ty != "dyn":
                    raise self.err(f"path {dq(text)}: [*] on something that is not a list")
                levels.append(ty)
                labels.append(label)
                label = ""
                segs.append(("all", None))
        labels.append(label)
        if marker in ("index", "number"):
            ty = "scalar"
        return Path(text, base, marker, segs, labels), ty, levels

    def each_path(self, p: dict[str, Any], scopes: list[Any]) -> tuple[Path, list[Any]]:
        path, ty, levels = self.path(p, scopes)
        if path.marker == "item" and not path.segs:
            return path, [ty]
        if path.marker is not None:
            raise self.err(f"each {dq(path.text)}: iterate a list field, not a marker")
        if isinstance(ty, tuple) and ty[0] == "list":
            item = ty[1]
        elif ty == "dyn":
            item = "dyn"
        else:
            raise self.err(f"each {dq(path.text)} is not a list")
        if len(levels) + 1 > 4:
            raise self.err(f"each {dq(path.text)} flattens more than 3 levels")
        return path, [*levels, item]

    def expr(self, e: dict[str, Any], scopes: list[Any]) -> dict[str, Any]:
        head = next(iter(e))
        arg = e[head]
        if head == "path":
            return {"path": self.path(arg, scopes)[0]}
        if head == "template":
            return {
                "template": [
                    ("lit", part["lit"]) if "lit" in part else ("path", self.path(part["path"], scopes)[0])
                    for part in arg
                ]
            }
        if head in ("concat", "coalesce", "add", "mul", "sub", "div"):
            out = {**e, head: [self.expr(x, scopes) for x in arg]}
            return out
        if head in ("neg", "abs", "round"):
            return {**e, head: self.expr(arg, scopes)}
        if head in ("sum", "count"):
            each, levels = self.each_path(arg["each"], scopes)
            scopes.extend(levels)
            try:
                where = self.cond(arg["where"], scopes) if arg.get("where") is not None else None
                value = self.expr(arg["value"], scopes) if head == "sum" else None
            finally:
                del scopes[len(scopes) - len(levels) :]
            return {head: {"each": each, "where": where, "value": value}}
        if head == "if":
            return {
                "if": self.cond(arg, scopes),
                "then": self.expr(e["then"], scopes),
                "else": self.expr(e["else"], scopes) if e.get("else") is not None else None,
            }
        if head == "pipe":
            return {"pipe": self.pipe(arg, scopes), "value": self.expr(e["value"], scopes)}
        return e  # const

    def cond(self, c: dict[str, Any], scopes: list[Any]) -> dict[str, Any]:
        if "all" in c or "any" in c:
            key = "all" if "all" in c else "any"
            return {key: [self.cond(x, scopes) for x in c[key]]}
        if "not" in c:
            return {"not": self.cond(c["not"], scopes)}
        out = {"subject": self.expr(c["subject"], scopes), "op": c["op"], "arg": c.get("arg")}
        if c["op"] == "matches":
            out["re"] = re.compile(c["arg"], re.ASCII)
        return out

    def pipe(self, steps: list[dict[str, Any]], scopes: list[Any]) -> list[dict[str, Any]]:
        out = []
        for s in steps:
            s = dict(s)
            if s["op"] in ("replace", "match", "extract"):
                s["re"] = re.compile(s["pattern"], re.ASCII)
            if s["op"] in ("minor_units", "from_minor_units") and s.get("currency") is not None:
                s["currency"] = self.path(s["currency"], scopes)[0]
            out.append(s)
        return out

    def field_rule(self, r: dict[str, Any], scopes: list[Any]) -> dict[str, Any]:
        return {
            "id": self.rule,
            "value": self.expr(r["value"], scopes),
            "pipe": self.pipe(r.get("pipe") or [], scopes),
            "when": self.cond(r["when"], scopes) if r.get("when") is not None else None,
            "otherwise": self.expr(r["otherwise"], scopes) if r.get("otherwise") is not None else None,
            "default": r.get("default"),
            "required": bool(r.get("required")),
            "emit_null": bool(r.get("emit_null")),
            "custom_date": r.get("custom_type") == "date",
        }

    def target_slots(self, target: list[str], ctx: Any) -> list[tuple[str, tuple[Any, ...], Any]]:
        out = []
        for key in target:
            if ctx == "json":
                slot: tuple[Any, ...] = ("json",)
                nxt: Any = "json"
            elif ctx[0] == "msg":
                desc: Any = ctx[1]
                f = desc.fields_by_name.get(key)
                if f is None:
                    raise self.err(f"target: {desc.full_name} has no field {dq(key)}")
                if f.message_type is not None and f.message_type.GetOptions().map_entry:
                    slot, nxt = ("map", f), ("map", f)
                else:
                    plain = f.message_type is not None and _special(f) is None
                    slot, nxt = ("field", f), (("msg", f.message_type) if plain else "json")
            else:
                slot, nxt = ("mapkey", ctx[1]), "json"
            out.append((key, slot, nxt))
            ctx = nxt
        return out

    def rule_into(self, r: dict[str, Any], nodes: list[Node], ctx: Any, scopes: list[Any]) -> None:
        self.rule = r.get("id") or ""
        target = [t for t in r.get("target") or [] if isinstance(t, str)]
        if not target:
            raise self.err("empty target")
        slots = self.target_slots(target, ctx)
        inbound = ctx != "json"
        joined = ".".join(target)
        for key, slot, _ in slots[:-1]:
            if slot[0] == "field":
                f = slot[1]
                plain = f.message_type is not None and _special(f) is None and not _repeated(f)
                if not plain:
                    raise self.err(
                        f"target: {dq(key)} is not a message field, so it cannot hold {dq(joined)}"
                    )
        last_key, last_slot, last_ctx = slots[-1]
        info = last_slot[1] if last_slot[0] in ("field", "map") else None
        if r.get("each") is not None:
            each, levels = self.each_path(r["each"], scopes)
            scopes.extend(levels)
            try:
                where = self.cond(r["where"], scopes) if r.get("where") is not None else None
                rid = self.rule
                rule: dict[str, Any] = {
                    "id": rid,
                    "each": each,
                    "where": where,
                    "keep_empty": bool(r.get("keep_empty")),
                    "required": bool(r.get("required")),
                }
                if r.get("rules") is not None:
                    if inbound and not (
                        info is not None
                        and last_slot[0] == "field"
                        and _repeated(info)
                        and info.message_type is not None
                        and _special(info) is None
                    ):
                        raise self.err(f"target {dq(joined)} must be a repeated message field")
                    kids: list[Node] = []
                    for child in r["rules"]:
                        self.rule_into(child, kids, last_ctx, scopes)
                    self.rule = rid
                    rule["objects"] = kids
                else:
                    if inbound and not (
                        info is not None
                        and last_slot[0] == "field"
                        and _repeated(info)
                        and (info.message_type is None or _special(info) is not None)
                    ):
                        raise self.err(f"target {dq(joined)} must be a repeated scalar field")
                    rule["scalars"] = self.field_rule(r, scopes)
            finally:
                del scopes[len(scopes) - len(levels) :]
            node = Node(last_key, last_slot, "list", [], rule)
        else:
            if info is not None:
                if last_slot[0] == "map" or _repeated(info):
                    raise self.err(f"target {dq(joined)} is a repeated/map field: use `each`")
                if info.message_type is not None and _special(info) is None:
                    raise self.err(f"target {dq(joined)} is a message: map its fields")
                if info.type in (
                    FieldDescriptor.TYPE_DOUBLE,
                    FieldDescriptor.TYPE_FLOAT,
                    FieldDescriptor.TYPE_BYTES,
                ):
                    raise self.err(f"target {dq(joined)}: float/bytes fields are not supported")
            node = Node(last_key, last_slot, "field", [], self.field_rule(r, scopes))
        level = nodes
        for key, slot, _ in slots[:-1]:
            hit = next((n for n in level if n.key == key), None)
            if hit is None:
                hit = Node(key, slot, "object", [], None)
                level.append(hit)
            elif hit.kind != "object":
                raise self.err(f"target {dq(joined)} conflicts with another rule writing {dq(key)}")
            level = hit.children
        if any(n.key == last_key for n in level):
            raise self.err(f"target {dq(joined)} is written by another rule too")
        level.append(node)


def _repeated(f: Any) -> bool:
    return bool(f.is_repeated)


def _special(f: Any) -> str | None:
    if f.message_type is None:
        return None
    return {
        "google.protobuf.Timestamp": "timestamp",
        "returnbridge.api.v1.CustomValue": "custom",
        "returnbridge.api.v1.CustomList": "custom_list",
        "returnbridge.api.v1.CustomStruct": "custom_struct",
    }.get(f.message_type.full_name)


def _slot_number(n: Node) -> int:
    if n.slot[0] == "json":
        return 0
    return int(n.slot[1].number)


def _sort(nodes: list[Node]) -> None:
    nodes.sort(key=lambda n: (_slot_number(n), n.key.encode()))
    for n in nodes:
        _sort(n.children)
        if n.rule is not None and "objects" in n.rule:
            _sort(n.rule["objects"])


# ---------------------------------------------------------------------------------------------------------------
# Input decoding.
# ---------------------------------------------------------------------------------------------------------------


def _json_int(text: str) -> Any:
    v = int(text)
    if _I64_MIN <= v <= _I64_MAX:
        return v
    return _json_dec(text)


def _json_dec(text: str) -> Dec:
    try:
        d = parse_decimal(text)
    except OutOfRange:
        d = None
    if d is None:
        raise ValueError(f"number {text} out of range")
    return d


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON: {name}")


def _depth_ok(v: Any, depth: int = 0) -> bool:
    if depth > 128:
        return False
    if isinstance(v, dict):
        return all(_depth_ok(x, depth + 1) for x in v.values())
    if isinstance(v, list):
        return all(_depth_ok(x, depth + 1) for x in v)
    return True


_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json(data: bytes) -> Any:
    """Parse JSON exactly (decimals from their text, no floats), as the Rust reader does.

    Raises:
        ValueError: malformed JSON, a lone surrogate, or nesting deeper than 128.
    """
    text = data.decode("utf-8")
    try:
        v = json.loads(text, parse_float=_json_dec, parse_int=_json_int, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply") from None
    if not _depth_ok(v):
        raise ValueError("invalid JSON: nested deeper than 128 levels")
    if _has_surrogate(v):
        raise ValueError("invalid JSON: lone surrogate")
    return v


def _has_surrogate(v: Any) -> bool:
    if isinstance(v, str):
        return _SURROGATE.search(v) is not None
    if isinstance(v, dict):
        return any(_has_surrogate(k) or _has_surrogate(x) for k, x in v.items())
    if isinstance(v, list):
        return any(_has_surrogate(x) for x in v)
    return False


def _from_proto(msg: PbMessage) -> Any:
    desc = msg.DESCRIPTOR
    name = desc.full_name
    if name == "google.protobuf.Timestamp":
        text = format_rfc3339(msg.seconds, msg.nanos)  # type: ignore[attr-defined]
        if text is None:
            raise ValueError("timestamp out of range")
        return text
    if name == "returnbridge.api.v1.CustomValue":
        which = msg.WhichOneof("kind")
        if which is None:
            return None
        if which == "decimal_value":
            raw = msg.decimal_value  # type: ignore[attr-defined]
            try:
                d = parse_decimal(raw) if raw else None
            except OutOfRange:
                d = None
            if d is None:
                raise ValueError(f"custom field decimal_value {dq(raw)} is not a decimal")
            return d
        if which == "list_value":
            return [_from_proto(x) for x in msg.list_value.values]  # type: ignore[attr-defined]
        if which == "struct_value":
            return {k: _from_proto(v) for k, v in msg.struct_value.fields.items()}  # type: ignore[attr-defined]
        v = getattr(msg, which)
        return None if v == "" else v
    out = Msg()
    for f in desc.fields:
        value = getattr(msg, f.name)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            vf = f.message_type.fields_by_number[2]
            out[f.name] = {k: _scalar_from_proto(vf, v) for k, v in value.items()}
        elif _repeated(f):
            out[f.name] = [_scalar_from_proto(f, v) for v in value]
        elif f.message_type is not None:
            out[f.name] = _from_proto(value) if msg.HasField(f.name) else None
        else:
            out[f.name] = _scalar_from_proto(f, value)
    return out


def _scalar_from_proto(f: Any, v: Any) -> Any:
    if f.message_type is not None:
        return _from_proto(v)
    t = f.type
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_BYTES):
        return None
    if t == FieldDescriptor.TYPE_STRING:
        return v or None
    if t == FieldDescriptor.TYPE_ENUM:
        if v == 0:
            return None
        ev = f.enum_type.values_by_number.get(v)
        return ev.name if ev is not None else v
    if t == FieldDescriptor.TYPE_BOOL:
        return bool(v)
    if isinstance(v, int) and v > _I64_MAX:
        return Dec(v, 0)
    return v


# ---------------------------------------------------------------------------------------------------------------
# The interpreter.
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _Scope:
    value: Any
    out_index: int
    src_index: int
    label: str
    base: int


def _step_into(v: Any, seg: tuple[str, Any]) -> Any:
    kind_, arg = seg
    if isinstance(v, Msg):
        out = v.get(arg) if kind_ == "slot" else None
    elif isinstance(v, dict):
        out = v.get(arg) if kind_ in ("key", "slot") else None
    elif isinstance(v, list) and kind_ == "index":
        out = v[arg] if 0 <= arg < len(v) else None
    else:
        out = None
    return out


def _json_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def write_json(v: Any, out: list[str]) -> None:
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, Dec):
        out.append(v.plain() if v.num else f'"{v.plain()}"')
    elif isinstance(v, str):
        out.append(_json_str(v))
    elif isinstance(v, list):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            write_json(x, out)
        out.append("]")
    elif isinstance(v, Msg):
        raise Fail("cannot write a protobuf message object as JSON; copy its fields")
    else:
        out.append("{")
        for i, (k, x) in enumerate(v.items()):
            if i:
                out.append(",")
            out.append(_json_str(k))
            out.append(":")
            write_json(x, out)
        out.append("}")


class _Run:
    def __init__(self, prog: ReferenceMapper, tree: Any, explain: bool) -> None:
        self.prog = prog
        self.scopes = [_Scope(tree, 0, 0, "", 0)]
        self.explain: list[tuple[str, str, str]] | None = [] if explain else None
        self.out_path: list[str] = []

    # ---- paths
    def base_scope(self, base: tuple[str, int]) -> int:
        cur = len(self.scopes) - 1
        if base[0] == "current":
            return cur
        if base[0] == "root":
            return 0
        if base[1] > cur:
            raise Fail("'^' goes above the document root")
        return cur - base[1]

    def resolve(self, p: Path) -> Any:
        scope = self.scopes[self.base_scope(p.base)]
        if p.marker == "index":
            return scope.out_index
        if p.marker == "number":
            return scope.out_index + 1
        cur = scope.value
        for seg in p.segs:
            cur = _step_into(cur, seg)
            if cur is None:
                return None
        return cur

    def scope_path(self, i: int) -> str:
        if i == 0:
            return ""
        s = self.scopes[i]
        parent = self.scope_path(s.base)
        if not s.label:
            return parent
        return f"{parent}{'.' if parent else ''}{s.label}[{s.src_index}]"

    def path_of(self, p: Path) -> str:
        try:
            si = self.base_scope(p.base)
        except Fail:
            return p.text
        s = self.scope_path(si)
        if p.marker in ("index", "number"):
            return _join(s, "@" + p.marker)
        for kind_, arg in p.segs:
            if kind_ in ("slot", "key"):
                s = _join(s, arg)
            elif kind_ == "index":
                s += f"[{arg}]"
            else:
                s += "[*]"
        return s

    def here(self) -> str:
        return self.scope_path(len(self.scopes) - 1)

    def items(self, p: Path) -> list[tuple[list[tuple[Any, int, str]], Any]]:
        start = self.scopes[self.base_scope(p.base)].value
        out: list[tuple[list[tuple[Any, int, str]], Any]] = []
        if p.marker == "item":
            return [([(start, 0, "")], start)] if start is not None else []
        self._collect(start, p.segs, p.labels, [], out, p.text)
        return out

    def _collect(
        self, start: Any, segs: list[Any], labels: list[str], chain: list[Any], out: list[Any], text: str
    ) -> None:
        split = next((i for i, s in enumerate(segs) if s[0] == "all"), None)
        prefix, rest = (segs[:split], segs[split + 1 :]) if split is not None else (segs, [])
        cur = start
        for seg in prefix:
            cur = _step_into(cur, seg)
            if cur is None:
                return
        label = labels[0] if labels else ""
        if not isinstance(cur, list):
            raise Fail(f"{text} is not a list (got {kind(cur)})")
        for i, item in enumerate(cur):
            chain.append((item, i, label))
            if split is not None:
                self._collect(item, rest, labels[1:], chain, out, text)
            else:
                out.append((list(chain), item))
            chain.pop()

    def push_chain(self, chain: list[tuple[Any, int, str]], out_index: int, base: tuple[str, int]) -> int:
        try:
            b = self.base_scope(base)
        except Fail:
            b = 0
        for v, src, label in chain:
            self.scopes.append(_Scope(v, src, src, label, b))
            b = len(self.scopes) - 1
        if chain:
            self.scopes[-1].out_index = out_index
        return len(chain)

    def pop(self, n: int) -> None:
        del self.scopes[len(self.scopes) - n :]

    # ---- expressions
    def eval(self, e: dict[str, Any]) -> Any:
        head = next(iter(e))
        if head == "path":
            return self.resolve(e["path"])
        if head == "const":
            return e["const"]
        if head == "template":
            parts = []
            for kind_, arg in e["template"]:
                if kind_ == "lit":
                    parts.append(arg)
                else:
                    v = self.resolve(arg)
                    if v is not None:
                        t = scalar_to_string(v)
                        if t is None:
                            raise Fail(f"template placeholder {{{arg.text}}} is a {kind(v)}")
                        parts.append(t)
            return "".join(parts)
        if head == "concat":
            texts = []
            for part in e["concat"]:
                v = self.eval(part)
                if v is None:
                    continue
                t = scalar_to_string(v)
                if t is None:
                    raise Fail(f"cannot concat a {kind(v)}")
                texts.append(t)
            return e.get("separator", "").join(texts)
        if head == "coalesce":
            for part in e["coalesce"]:
                v = self.eval(part)
                if v is not None:
                    return v
            return None
        if head in ("add", "mul"):
            acc: Any = None
            for part in e[head]:
                v = self.eval(part)
                if v is None:
                    return None
                acc = _numeric(v) if acc is None else _arith(acc, v, head == "add")
            return acc
        if head == "sub":
            a, b = self.eval(e["sub"][0]), self.eval(e["sub"][1])
            if a is None or b is None:
                return None
            return _arith(_numeric(a), _negate(_numeric(b)), True)
        if head == "div":
            a, b = self.eval(e["div"][0]), self.eval(e["div"][1])
            if a is None or b is None:
                return None
            x, y = as_decimal(a), as_decimal(b)
            try:
                r = x.div(y, e["scale"], e.get("rounding", "half_even"))
            except OutOfRange:
                raise Fail("decimal out of range") from None
            if r is None:
                raise Fail("division by zero")
            return r
        if head in ("neg", "abs"):
            v = self.eval(e[head])
            if v is None:
                return None
            return _negate(_numeric(v)) if head == "neg" else _abs(_numeric(v))
        if head == "round":
            v = self.eval(e["round"])
            if v is None:
                return None
            return self.to_decimal(v, e["scale"], e.get("rounding", "half_even"))
        if head == "sum":
            spec = e["sum"]
            acc = 0
            n = 0
            for chain, _item in self.items(spec["each"]):
                pushed = self.push_chain(chain, n, spec["each"].base)
                try:
                    if spec["where"] is not None and not self.test(spec["where"]):
                        continue
                    v = self.eval(spec["value"])
                    if v is None:
                        continue
                    v = _numeric(v)
                finally:
                    self.pop(pushed)
                acc = _arith(acc, v, True)
                n += 1
            return acc
        if head == "count":
            spec = e["count"]
            n = 0
            for chain, _item in self.items(spec["each"]):
                pushed = self.push_chain(chain, n, spec["each"].base)
                try:
                    ok = spec["where"] is None or self.test(spec["where"])
                finally:
                    self.pop(pushed)
                if ok:
                    n += 1
            return n
        if head == "if":
            if self.test(e["if"]):
                return self.eval(e["then"])
            return self.eval(e["else"]) if e["else"] is not None else None
        # pipe
        return self.apply(e["pipe"], self.eval(e["value"]))

    @staticmethod
    def to_decimal(v: Any, scale: int | None, mode: str) -> Dec:
        d = as_decimal(v)
        if scale is not None:
            try:
                d = d.rescale(scale, mode)
            except OutOfRange:
                raise Fail("decimal out of range") from None
        return d

    # ---- conditions
    def test(self, c: dict[str, Any]) -> bool:
        if "all" in c:
            return all(self.test(x) for x in c["all"])
        if "any" in c:
            return any(self.test(x) for x in c["any"])
        if "not" in c:
            return not self.test(c["not"])
        v = self.eval(c["subject"])
        op, arg = c["op"], c["arg"]
        if v is None:
            if op in ("ne", "not_in"):
                return True
            return op == "exists" and arg is False
        if op == "exists":
            present = not (isinstance(v, list) and not v)
            return present == (arg is True)
        if op == "eq":
            return _equal(v, arg)
        if op == "ne":
            return not _equal(v, arg)
        if op == "in":
            return any(_equal(v, a) for a in arg)
        if op == "not_in":
            return not any(_equal(v, a) for a in arg)
        if op == "matches":
            return c["re"].search(_text(v)) is not None
        try:
            a = as_decimal_opt(v)
        except OutOfRange:
            a = None
        if a is None:
            raise Fail(
                f"expected a number to compare, got {dq(v)}"
                if isinstance(v, str)
                else f"expected a number to compare, got {kind(v)}"
            )
        b = as_decimal_opt(arg)
        if b is None:
            raise Fail("comparison needs a number")
        r = a.cmp(b)
        return {"gt": r > 0, "ge": r >= 0, "lt": r < 0, "le": r <= 0}[op]

    # ---- pipe
    def apply(self, steps: list[dict[str, Any]], v: Any) -> Any:
        tables = self.prog.tables
        for s in steps:
            op = s["op"]
            if v is None:
                if op == "default":
                    v = s["value"]
                elif op == "required":
                    raise Fail("required value missing")
                continue
            if op == "string":
                t = scalar_to_string(v)
                if t is None:
                    raise Fail(f"expected a scalar, got {kind(v)}")
                v = t
            elif op == "integer":
                v = _to_integer(v)
            elif op == "decimal":
                v = self.to_decimal(v, s.get("scale"), s.get("rounding") or "half_even")
            elif op == "number":
                if not ((isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, Dec) and v.num)):
                    d = as_decimal(v)
                    v = Dec(d.coef, d.scale, True)
            elif op == "bool":
                v = _to_bool(v)
            elif op == "date":
                v = convert_date(v, s.get("from") or "auto", s.get("to") or "datetime")
            elif op in ("minor_units", "from_minor_units"):
                exp = s.get("exponent")
                if exp is None:
                    if s.get("currency") is None:
                        exp = 2
                    else:
                        code = self.resolve(s["currency"])
                        if code is None:
                            raise Fail("currency is missing", self.path_of(s["currency"]))
                        if not isinstance(code, str):
                            raise Fail(f"expected a currency code, got {kind(code)}")
                        exp = currency_exponent(code)
                v = self._minor(v, exp, op == "from_minor_units")
            elif op == "trim":
                v = _text(v).strip(_WS)
            elif op == "upper":
                v = _text(v).upper()
            elif op == "lower":
                v = _text(v).lower()
            elif op in ("pad_left", "pad_right"):
                t = _text(v)
                fill = s["char"] * max(0, s["width"] - len(t))
                v = fill + t if op == "pad_left" else t + fill
            elif op == "max_length":
                t = _text(v)
                if len(t) > s["length"]:
                    if s.get("on_overflow") == "truncate":
                        t = t[: s["length"]]
                    else:
                        label = s.get("label") or ""
                        raise Fail(
                            f"longer than {s['length']} characters ({label})"
                            if label
                            else f"longer than {s['length']} characters"
                        )
                v = t
            elif op in ("prefix", "suffix"):
                t = _text(v)
                v = s["text"] + t if op == "prefix" else t + s["text"]
            elif op == "split":
                parts = _text(v).split(s["separator"])
                idx = s.get("index")
                v = parts if idx is None else (parts[idx] if idx < len(parts) else None)
            elif op == "join":
                if not isinstance(v, list):
                    raise Fail(f"expected a list, got {kind(v)}")
                texts = []
                for item in v:
                    if item is None:
                        continue
                    t2 = scalar_to_string(item)
                    if t2 is None:
                        raise Fail(f"cannot join a list containing {kind(item)}")
                    texts.append(t2)
                v = s["separator"].join(texts)
            elif op == "replace":
                v = _replace(_text(v), s["re"], s.get("with") or "")
            elif op == "match":
                if s["re"].search(_text(v)) is None:
                    if s.get("on_mismatch") == "omit":
                        v = None
                    else:
                        raise Fail(f"{dq(scalar_to_string(v) or '')} does not match {s['pattern']}")
            elif op == "extract":
                m = s["re"].search(_text(v))
                v = m.group(s["group"]) if m is not None else None
            elif op == "lookup":
                v = self._lookup(v, tables[s["table"]], s.get("field"), s.get("on_missing"))
            elif op == "negate":
                v = _negate(v)
            elif op == "abs":
                v = _abs(v)
        return v

    @staticmethod
    def _minor(v: Any, exp: int, inverse: bool) -> Any:
        d = as_decimal(v)
        if inverse:
            i = d.to_i64_exact()
            if i is None:
                raise Fail(f"expected integer minor units, got {d.plain()}")
            try:
                r = Dec(i, 0).div(Dec(10**exp, 0), exp, "half_even")
            except OutOfRange:
                raise Fail("decimal out of range") from None
            return r
        try:
            scaled = d.mul(Dec(10**exp, 0))
        except OutOfRange:
            raise Fail("decimal out of range") from None
        i = scaled.to_i64_exact()
        if i is None:
            raise Fail(f"{d.plain()} has more than {exp} decimal places")
        return i

    @staticmethod
    def _lookup(
        v: Any, table: tuple[str, dict[str, Any], Any], field: str | None, on_missing: str | None
    ) -> Any:
        name, entries, fallback = table
        key = scalar_to_string(v)
        if key is None:
            raise Fail(f"cannot look up a {kind(v)} value")
        if key in entries:
            hit = entries[key]
        else:
            mode = on_missing or "fallback"
            if mode == "passthrough":
                return key
            if mode == "omit":
                return None
            if mode == "fallback" and fallback is not _NO_FALLBACK:
                hit = fallback
            else:
                raise Fail(f"no entry for {dq(key)} in table {name}")
        if field is None:
            return hit
        if not isinstance(hit, dict) or field not in hit:
            raise Fail(f"entry {dq(key)} of table {name} has no field {dq(field)}")
        return hit[field]

    # ---- rules
    def fail(self, rule: str, value: dict[str, Any], f: Fail) -> TranslationError:
        if f.path is not None:
            path = f.path
        elif "path" in value:
            path = self.path_of(value["path"])
        elif "pipe" in value and "path" in value["value"]:
            path = self.path_of(value["value"]["path"])
        else:
            path = self.here()
        return _terr(rule, path, f.message)

    def field_value(self, r: dict[str, Any]) -> tuple[bool, Any]:
        expr = r["value"]
        if r["when"] is not None:
            try:
                ok = self.test(r["when"])
            except Fail as f:
                raise self.fail(r["id"], r["value"], f) from None
            if not ok:
                if r["otherwise"] is None:
                    return False, None
                expr = r["otherwise"]
        try:
            v = self.apply(r["pipe"], self.eval(expr))
        except Fail as f:
            raise self.fail(r["id"], expr, f) from None
        if v is None and r["default"] is not None:
            v = r["default"]
        if v is None:
            if r["required"]:
                raise self.fail(r["id"], expr, Fail("required value missing"))
            return (True, None) if r["emit_null"] else (False, None)
        if self.explain is not None:
            src = self.path_of(expr["path"]) if "path" in expr else ""
            self.explain.append(("".join(self.out_path), r["id"], src))
        return True, v

    def push_out(self, key: str, index: int | None) -> None:
        if self.explain is not None:
            s = ""
            if key:
                s = ("." if self.out_path else "") + key
            if index is not None:
                s += f"[{index}]"
            self.out_path.append(s)

    def pop_out(self) -> None:
        if self.explain is not None:
            self.out_path.pop()

    def for_each_item(self, r: dict[str, Any], f: Callable[[int], bool]) -> int:
        try:
            items = self.items(r["each"])
        except Fail as e:
            raise _terr(r["id"], self.here(), e.message) from None
        emitted = 0
        for chain, _item in items:
            pushed = self.push_chain(chain, emitted, r["each"].base)
            try:
                if r["where"] is not None:
                    try:
                        ok = self.test(r["where"])
                    except Fail as e:
                        raise self.fail(r["id"], {"const": None}, e) from None
                    if not ok:
                        continue
                if self.scopes:
                    self.scopes[-1].out_index = emitted
                done = f(emitted)
            finally:
                self.pop(pushed)
            if done:
                emitted += 1
        if r["required"] and emitted == 0:
            raise _terr(r["id"], self.path_of(r["each"]), "required list is empty")
        return emitted

    # ---- JSON output
    def write_members(self, nodes: list[Node], out: list[str]) -> bool:
        wrote = False
        for n in nodes:
            mark = len(out)
            if wrote:
                out.append(",")
            out.append(_json_str(n.key) + ":")
            self.push_out(n.key, None)
            try:
                ok = self.write_node(n, out)
            finally:
                self.pop_out()
            if ok:
                wrote = True
            else:
                del out[mark:]
        return wrote

    def _write_value(self, rule_id: str, v: Any, out: list[str]) -> None:
        try:
            write_json(v, out)
        except Fail as f:
            raise _terr(rule_id, self.here(), f.message) from None

    def write_node(self, n: Node, out: list[str]) -> bool:
        if n.kind == "object":
            out.append("{")
            wrote = self.write_members(n.children, out)
            out.append("}")
            return wrote
        r = n.rule
        assert r is not None
        if n.kind == "field":
            present, v = self.field_value(r)
            if not present:
                return False
            self._write_value(r["id"], v, out)
            return True
        out.append("[")
        start = len(out)

        def one(i: int) -> bool:
            mark = len(out)
            if len(out) > start:
                out.append(",")
            self.push_out("", i)
            try:
                if "objects" in r:
                    out.append("{")
                    self.write_members(r["objects"], out)
                    out.append("}")
                    return True
                fr = r["scalars"]
                present, v = self.field_value(fr)
                if not present:
                    del out[mark:]
                    return False
                self._write_value(fr["id"], v, out)
                return True
            except TranslationError:
                del out[mark:]
                raise
            finally:
                self.pop_out()

        count = self.for_each_item(r, one)
        out.append("]")
        return count > 0 or bool(r["keep_empty"])

    # ---- protobuf output
    def encode_members(self, nodes: list[Node], msg: PbMessage) -> None:
        for n in nodes:
            self.push_out(n.key, None)
            try:
                self.encode_node(n, msg)
            finally:
                self.pop_out()

    def encode_node(self, n: Node, msg: PbMessage) -> None:
        if n.kind == "object":
            if n.slot[0] == "map":
                self.encode_members(n.children, msg)
                return
            f = n.slot[1]
            # Build the child separately: touching getattr(msg, name) must not mark presence for empty objects.
            child = getattr(msg, f.name).__class__()
            self.encode_members(n.children, child)
            if child.ByteSize() > 0:
                getattr(msg, f.name).CopyFrom(child)
            return
        r = n.rule
        assert r is not None
        if n.kind == "field":
            present, v = self.field_value(r)
            if not present or v is None:
                return
            try:
                if n.slot[0] == "mapkey":
                    _set_map_entry(msg, n.slot[1], n.key, v, r["custom_date"])
                else:
                    _set_field(msg, n.slot[1], v, r["custom_date"])
            except Fail as e:
                path = self.path_of(r["value"]["path"]) if "path" in r["value"] else self.here()
                raise _terr(r["id"], path, e.message) from None
            return
        f = n.slot[1]
        container = getattr(msg, f.name)

        def one(i: int) -> bool:
            self.push_out("", i)
            try:
                if "objects" in r:
                    item = container.add()
                    self.encode_members(r["objects"], item)
                    return True
                fr = r["scalars"]
                present, v = self.field_value(fr)
                if not present or v is None:
                    return False
                try:
                    _append_value(container, f, v, fr["custom_date"])
                except Fail as e:
                    raise _terr(fr["id"], self.here(), e.message) from None
                return True
            finally:
                self.pop_out()

        self.for_each_item(r, one)


_NO_FALLBACK: Any = object()


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


def _terr(rule: str, path: str, message: str) -> TranslationError:
    return TranslationError(f"{path}: {message}" if path else message, rule=rule, path=path)


def _equal(v: Any, arg: Any) -> bool:
    if isinstance(arg, bool):
        return isinstance(v, bool) and v == arg
    if isinstance(arg, str):
        return isinstance(v, str) and v == arg
    if isinstance(arg, int | Dec):
        try:
            a, b = as_decimal_opt(v), as_decimal_opt(arg)
        except OutOfRange:
            return False
        return a is not None and b is not None and a.cmp(b) == 0
    return False


def _int_of(v: Any) -> int:
    return _to_integer(v)


def _field_value(f: Any, v: Any, custom_date: bool) -> Any:
    """Convert a value to what the protobuf field holds (mirror of encode_typed)."""
    t = f.type
    if t == FieldDescriptor.TYPE_STRING:
        if isinstance(v, str):
            return v
        if isinstance(v, int | Dec) and not isinstance(v, bool):
            return scalar_to_string(v)
        raise Fail(f"expected a string, got {kind(v)}")
    if t == FieldDescriptor.TYPE_BOOL:
        if not isinstance(v, bool):
            raise Fail(f"expected a bool, got {kind(v)}")
        return v
    if t == FieldDescriptor.TYPE_ENUM:
        if isinstance(v, str):
            ev = f.enum_type.values_by_name.get(v)
            if ev is None:
                raise Fail(f"unknown enum value {dq(v)} for {f.enum_type.full_name}")
            return ev.number
        i = _int_of(v)
        if not -(2**31) <= i < 2**31:
            raise Fail(f"enum number {i} out of range")
        return i
    if t in (
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
    ):
        i = _int_of(v)
        ok = {
            FieldDescriptor.TYPE_INT32: -(2**31) <= i < 2**31,
            FieldDescriptor.TYPE_SINT32: -(2**31) <= i < 2**31,
            FieldDescriptor.TYPE_UINT32: 0 <= i < 2**32,
            FieldDescriptor.TYPE_UINT64: i >= 0,
        }.get(t, True)
        if not ok:
            raise Fail(f"integer {i} out of range for the field")
        return i
    raise Fail("floating point and bytes fields are not supported")


def _fill_special(target: PbMessage, special: str | None, v: Any, custom_date: bool) -> None:
    if special == "timestamp":
        if not isinstance(v, str):
            raise Fail(f"expected a timestamp string, got {kind(v)}")
        ts = parse_timestamp(v)
        if ts is None:
            raise Fail(f"not a valid timestamp: {dq(v)}")
        target.SetInParent()
        target.seconds, target.nanos = ts  # type: ignore[attr-defined]
    elif special == "custom":
        if isinstance(v, str) and custom_date:
            if _parse_date(v) is None:
                raise Fail(f"expected a date YYYY-MM-DD, got {dq(v)}")
            target.date_value = v  # type: ignore[attr-defined]
        elif isinstance(v, str):
            target.string_value = v  # type: ignore[attr-defined]
        elif isinstance(v, bool):
            target.bool_value = v  # type: ignore[attr-defined]
        elif isinstance(v, int):
            target.int_value = v  # type: ignore[attr-defined]
        elif isinstance(v, Dec):
            target.decimal_value = v.plain()  # type: ignore[attr-defined]
        else:
            raise Fail(f"cannot store a {kind(v)} in a custom field")
    else:
        raise Fail("target is a message: map its fields one by one")


def _set_field(msg: PbMessage, f: Any, v: Any, custom_date: bool) -> None:
    if f.message_type is not None:
        child = getattr(msg, f.name).__class__()
        _fill_special(child, _special(f), v, custom_date)
        getattr(msg, f.name).CopyFrom(child)
        if not msg.HasField(f.name):
            getattr(msg, f.name).SetInParent()
        return
    setattr(msg, f.name, _field_value(f, v, custom_date))


def _set_map_entry(msg: PbMessage, f: Any, key: str, v: Any, custom_date: bool) -> None:
    vf = f.message_type.fields_by_number[2]
    container = getattr(msg, f.name)
    if vf.message_type is not None:
        # Fill a detached message first: indexing the map would insert the key even if conversion fails.
        child = message_factory.GetMessageClass(vf.message_type)()
        _fill_special(child, _special(vf), v, custom_date)
        container[key].CopyFrom(child)
    else:
        container[key] = _field_value(vf, v, custom_date)


def _append_value(container: Any, f: Any, v: Any, custom_date: bool) -> None:
    if f.message_type is not None:
        child = container.add()
        _fill_special(child, _special(f), v, custom_date)
    else:
        container.append(_field_value(f, v, custom_date))


# ---------------------------------------------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------------------------------------------


def _pool(descriptors: bytes) -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptors)
    for fd in fds.file:
        pool.Add(fd)
    return pool


class ReferenceMapper:
    """Interprets a normalized spec in pure Python (same inputs and outputs as ``_mapper.Mapper``)."""

    def __init__(self, spec_json: bytes, descriptors: bytes) -> None:
        """Compile the spec.

        Raises:
            SpecError: the same problems the Rust compiler reports (rule id + message).
        """
        spec = parse_json(spec_json)
        self.pool = _pool(descriptors)
        self.id: str = spec.get("id") or ""
        self.direction: str = spec["direction"]
        self.tables: dict[str, tuple[str, dict[str, Any], Any]] = {}
        for name, t in (spec.get("tables") or {}).items():
            fb = t.get("fallback")
            self.tables[name] = (
                name,
                t.get("entries") or {},
                fb["value"] if fb is not None else _NO_FALLBACK,
            )
        c = _Compiler(self.pool)
        self.input_cls: Any = None
        self.output_cls: Any = None
        if self.direction == "outbound":
            desc = self._find(spec["input"], "input")
            self.input_cls = message_factory.GetMessageClass(desc)
            root_ty: Any = ("msg", desc)
            ctx: Any = "json"
            self.output_message = ""
        else:
            desc = self._find(spec["output"], "output")
            self.output_cls = message_factory.GetMessageClass(desc)
            root_ty, ctx = "dyn", ("msg", desc)
            self.output_message = desc.full_name
        self.root: list[Node] = []
        scopes = [root_ty]
        for r in spec.get("rules") or []:
            c.rule_into(r, self.root, ctx, scopes)
        if self.direction == "inbound":
            _sort(self.root)

    def _find(self, name: str, what: str) -> Descriptor:
        try:
            return self.pool.FindMessageTypeByName(name)
        except KeyError:
            raise SpecError(f"unknown {what} message type {dq(name)}") from None

    def _tree(self, document: bytes) -> Any:
        try:
            if self.input_cls is not None:
                return _from_proto(self.input_cls.FromString(document))
            v = parse_json(document)
        except (DecodeError, ValueError, UnicodeDecodeError) as exc:
            raise _terr("", "", f"invalid input: {exc}") from None
        if not isinstance(v, dict):
            raise _terr("", "", f"expected a JSON object, got {kind(v)}")
        return v

    def _run(self, document: bytes, explain: bool) -> tuple[bytes, list[tuple[str, str, str]]]:
        run = _Run(self, self._tree(document), explain)
        if self.direction == "outbound":
            out = ["{"]
            run.write_members(self.root, out)
            out.append("}")
            data = "".join(out).encode()
        else:
            msg = self.output_cls()
            run.encode_members(self.root, msg)
            data = msg.SerializeToString(deterministic=True)
        return data, run.explain or []

    def translate(self, document: bytes) -> bytes:
        """Translate one document.

        Raises:
            TranslationError: with the rule and path, as the Rust engine.
        """
        return self._run(document, False)[0]

    def explain(self, document: bytes) -> tuple[bytes, list[tuple[str, str, str]]]:
        return self._run(document, True)
