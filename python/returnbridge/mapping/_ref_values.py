"""Values, exact decimals, dates and pipe-step helpers of the reference interpreter (mirror of the Rust ops)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

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
