"""Paths, expressions, conditions and pipe steps of a mapping spec: validated and normalized for the engines."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
_SEGMENT = re.compile(r"([^.\[\]]+)((?:\[(?:\d+|\*)\])*)\Z")
_INDEX = re.compile(r"\[(\d+|\*)\]")
ROUNDING_MODES = ("half_even", "half_up", "half_down", "down", "up", "floor", "ceiling")
# "sap" is the former name of "ms_date" (the /Date(ms)/ JSON date), still accepted so older specs compile.
DATE_FORMATS = ("date", "datetime", "ms_date", "sap", "yyyymmdd", "epoch_ms", "epoch_s")
_CMP_OPS = ("eq", "ne", "in", "not_in", "exists", "gt", "ge", "lt", "le", "matches")
_MAX_DECIMAL_DIGITS = 38


def parse_path(text: str, *, allow_wildcard: bool = False) -> dict[str, Any]:
    """Parse a path such as ``$.lines[0].sku``, ``^.line_id``, ``@`` or ``@number`` into its normalized form.

    Raises:
        ValueError: the path is malformed.
    """
    if not isinstance(text, str) or not text:
        raise ValueError("a path must be a non-empty string")
    rest = text
    up = 0
    root = False
    if rest.startswith("$"):
        root = True
        rest = rest[1:]
        if rest.startswith("."):
            rest = rest[1:]
        elif rest:
            raise ValueError(f"bad path {text!r}: '$' must be followed by '.'")
    else:
        while rest.startswith("^"):
            up += 1
            rest = rest[1:]
            if not rest.startswith("."):
                raise ValueError(f"bad path {text!r}: '^' must be followed by '.'")
            rest = rest[1:]
    special = None
    segs: list[dict[str, Any]] = []
    if rest in ("@", "@index", "@number"):
        special = {"@": "item", "@index": "index", "@number": "number"}[rest]
    elif rest:
        for part in rest.split("."):
            m = _SEGMENT.match(part)
            if not m or part.startswith("@"):
                raise ValueError(f"bad path {text!r}: bad segment {part!r}")
            segs.append({"f": m.group(1)})
            for idx in _INDEX.findall(m.group(2)):
                if idx == "*":
                    if not allow_wildcard:
                        raise ValueError(f"bad path {text!r}: [*] is only allowed in `each`")
                    segs.append({"all": True})
                else:
                    segs.append({"i": int(idx)})
    elif not root:
        raise ValueError(f"bad path {text!r}")
    return {"text": text, "up": up, "root": root, "special": special, "segs": segs}


def decimal_in_range(value: Decimal) -> bool:
    """True when ``value`` fits the engine's exact decimal: coefficient < 10**38 and scale 0..38."""
    if not value.is_finite():
        return False
    _, digits, exp = value.as_tuple()
    exp = int(exp)
    if exp < -_MAX_DECIMAL_DIGITS:
        return False
    return len(digits) + max(exp, 0) <= _MAX_DECIMAL_DIGITS


def const_value(value: Any) -> Any:
    """Check a YAML constant: only JSON-like data, decimals within range."""
    if isinstance(value, float):
        raise ValueError("floats are not allowed; write decimals as YAML numbers or strings")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite decimal: {value}")
        if not decimal_in_range(value):
            raise ValueError(f"decimal out of range: {value}")
        return value
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"integer out of range: {value}")
        return value
    if isinstance(value, list):
        return [const_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): const_value(v) for k, v in value.items()}
    raise ValueError(f"unsupported constant {value!r}")


def _only_keys(raw: dict[str, Any], allowed: set[str], what: str) -> None:
    extra = set(raw) - allowed
    if extra:
        raise ValueError(f"unknown key(s) {sorted(extra)} in {what}")


def _rounding(raw: dict[str, Any]) -> str:
    mode = raw.get("rounding", "half_even")
    if mode not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {list(ROUNDING_MODES)}, got {mode!r}")
    return str(mode)


def _scale(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_DECIMAL_DIGITS:
        raise ValueError(f"scale must be an integer 0..{_MAX_DECIMAL_DIGITS}, got {value!r}")
    return value


def _operands(value: Any, op: str, exact: int | None = None) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{op} takes a non-empty list of expressions")
    if exact is not None and len(value) != exact:
        raise ValueError(f"{op} takes exactly {exact} expressions")
    return [normalize_expr(v) for v in value]


_EXPR_KEYS = {
    "path", "const", "template", "concat", "coalesce", "add", "mul", "sub", "div", "neg", "abs", "round",
    "sum", "count", "if", "pipe",
}  # fmt: skip


def normalize_expr(raw: Any) -> dict[str, Any]:
    """Normalize an expression (section 8 of docs/mapping-language.md).

    Raises:
        ValueError: the expression is malformed.
    """
    if isinstance(raw, str):
        return {"path": parse_path(raw)}
    if raw is None or isinstance(raw, bool | int | Decimal):
        return {"const": const_value(raw)}
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"an expression must be a path string, a number, a bool or a mapping, got {raw!r}")
    head = [k for k in raw if k in _EXPR_KEYS]
    if len(head) != 1:
        raise ValueError(
            f"an expression mapping needs exactly one of {sorted(_EXPR_KEYS)}, got {sorted(raw)}"
        )
    op = head[0]
    arg = raw[op]
    if op == "path":
        _only_keys(raw, {"path"}, "path")
        return {"path": parse_path(arg)}
    if op == "const":
        _only_keys(raw, {"const"}, "const")
        return {"const": const_value(arg)}
    if op == "template":
        _only_keys(raw, {"template"}, "template")
        return {"template": parse_template(arg)}
    if op == "concat":
        _only_keys(raw, {"concat", "separator"}, "concat")
        sep = raw.get("separator", "")
        if not isinstance(sep, str):
            raise ValueError("concat separator must be a string")
        return {"concat": _operands(arg, op), "separator": sep}
    if op in ("coalesce", "add", "mul"):
        _only_keys(raw, {op}, op)
        return {op: _operands(arg, op)}
    if op == "sub":
        _only_keys(raw, {"sub"}, "sub")
        return {"sub": _operands(arg, op, 2)}
    if op == "div":
        _only_keys(raw, {"div", "scale", "rounding"}, "div")
        if "scale" not in raw:
            raise ValueError("div needs an explicit scale")
        return {"div": _operands(arg, op, 2), "scale": _scale(raw["scale"]), "rounding": _rounding(raw)}
    if op in ("neg", "abs"):
        _only_keys(raw, {op}, op)
        return {op: normalize_expr(arg)}
    if op == "round":
        _only_keys(raw, {"round", "scale", "rounding"}, "round")
        return {"round": normalize_expr(arg), "scale": _scale(raw.get("scale")), "rounding": _rounding(raw)}
    if op in ("sum", "count"):
        _only_keys(raw, {op}, op)
        if not isinstance(arg, dict):
            raise ValueError(f"{op} takes a mapping with `each`")
        _only_keys(arg, {"each", "value", "where"} if op == "sum" else {"each", "where"}, op)
        if "each" not in arg:
            raise ValueError(f"{op} needs `each`")
        out: dict[str, Any] = {
            "each": parse_path(arg["each"], allow_wildcard=True),
            "where": normalize_cond(arg["where"]) if arg.get("where") is not None else None,
        }
        if op == "sum":
            if "value" not in arg:
                raise ValueError("sum needs `value`")
            out["value"] = normalize_expr(arg["value"])
        return {op: out}
    if op == "if":
        _only_keys(raw, {"if", "then", "else"}, "if")
        if "then" not in raw:
            raise ValueError("if needs `then`")
        return {
            "if": normalize_cond(arg),
            "then": normalize_expr(raw["then"]),
            "else": normalize_expr(raw["else"]) if raw.get("else") is not None else None,
        }
    # op == "pipe"
    _only_keys(raw, {"pipe", "value"}, "pipe")
    if "value" not in raw:
        raise ValueError("pipe expression needs `value`")
    return {"pipe": normalize_pipe(arg), "value": normalize_expr(raw["value"])}


def parse_template(text: Any) -> list[dict[str, Any]]:
    """Split ``"RMA {rma_number}-{version}"`` into literal and path parts (``{{``/``}}`` are literal braces)."""
    if not isinstance(text, str):
        raise ValueError("template must be a string")
    parts: list[dict[str, Any]] = []
    lit: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "{" and text.startswith("{{", i):
            lit.append("{")
            i += 2
        elif ch == "}" and text.startswith("}}", i):
            lit.append("}")
            i += 2
        elif ch == "{":
            end = text.find("}", i)
            if end < 0:
                raise ValueError(f"unclosed '{{' in template {text!r}")
            if lit:
                parts.append({"lit": "".join(lit)})
                lit = []
            parts.append({"path": parse_path(text[i + 1 : end].strip())})
            i = end + 1
        elif ch == "}":
            raise ValueError(f"unmatched '}}' in template {text!r} (write '}}}}')")
        else:
            lit.append(ch)
            i += 1
    if lit:
        parts.append({"lit": "".join(lit)})
    return parts


def normalize_cond(raw: Any) -> dict[str, Any]:
    """Normalize a condition (section 7).

    Raises:
        ValueError: the condition is malformed.
    """
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"a condition must be a mapping, got {raw!r}")
    if "all" in raw or "any" in raw:
        op = "all" if "all" in raw else "any"
        _only_keys(raw, {op}, op)
        if not isinstance(raw[op], list) or not raw[op]:
            raise ValueError(f"{op} takes a non-empty list of conditions")
        return {op: [normalize_cond(c) for c in raw[op]]}
    if "not" in raw:
        _only_keys(raw, {"not"}, "not")
        return {"not": normalize_cond(raw["not"])}
    if ("path" in raw) == ("expr" in raw):
        raise ValueError("a condition needs exactly one of `path` or `expr` (or all/any/not)")
    subject = {"path": parse_path(raw["path"])} if "path" in raw else normalize_expr(raw["expr"])
    ops = [k for k in raw if k in _CMP_OPS]
    _only_keys(raw, {"path", "expr", *_CMP_OPS}, "condition")
    if len(ops) != 1:
        raise ValueError(f"a condition needs exactly one of {list(_CMP_OPS)}")
    op = ops[0]
    arg = raw[op]
    if op in ("in", "not_in"):
        if not isinstance(arg, list):
            raise ValueError(f"{op} takes a list")
        arg = [const_value(v) for v in arg]
        if any(isinstance(v, list | dict) for v in arg):
            raise ValueError(f"{op} takes a list of scalars")
    elif op == "exists":
        if not isinstance(arg, bool):
            raise ValueError("exists takes true or false")
    elif op in ("gt", "ge", "lt", "le"):
        arg = const_value(arg)
        if isinstance(arg, bool) or not isinstance(arg, int | Decimal | str):
            raise ValueError(f"{op} takes a number")
        if isinstance(arg, str):
            try:
                arg = Decimal(arg)
            except ArithmeticError:
                raise ValueError(f"{op} takes a number, got {arg!r}") from None
            arg = const_value(arg)
    elif op == "matches":
        arg = _regex(arg)
    else:
        arg = const_value(arg)
        if isinstance(arg, list | dict):
            raise ValueError(f"{op} takes a scalar")
    return {"subject": subject, "op": op, "arg": arg}


_FORBIDDEN_REGEX = re.compile(r"\(\?[=!<]|\\[1-9]|\(\?P[=>]")


def _regex(pattern: Any) -> str:
    if not isinstance(pattern, str):
        raise ValueError("a regex pattern must be a string")
    if _FORBIDDEN_REGEX.search(pattern):
        raise ValueError(f"regex {pattern!r} uses look-around or backreferences, which are not supported")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
    return pattern


_BARE_STEPS = {
    "string", "integer", "decimal", "number", "bool", "trim", "upper", "lower", "negate", "abs", "required",
    "date",
}  # fmt: skip


def _need(arg: Any, key: str, op: str) -> Any:
    if not isinstance(arg, dict) or key not in arg:
        raise ValueError(f"{op} needs `{key}`")
    return arg[key]


def _str_arg(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    return value


def _units(arg: Any, op: str) -> dict[str, Any]:
    if not isinstance(arg, dict):
        raise ValueError(f"{op} takes {{exponent: N}} or {{currency: path}}")
    _only_keys(arg, {"exponent", "currency"}, op)
    if ("exponent" in arg) == ("currency" in arg):
        raise ValueError(f"{op} needs exactly one of `exponent` or `currency`")
    if "exponent" in arg:
        exp = arg["exponent"]
        if isinstance(exp, bool) or not isinstance(exp, int) or not 0 <= exp <= 18:
            raise ValueError(f"{op} exponent must be an integer 0..18")
        return {"op": op, "exponent": exp, "currency": None}
    return {"op": op, "exponent": None, "currency": parse_path(arg["currency"])}


def normalize_step(raw: Any) -> dict[str, Any]:
    """Normalize one pipe step (section 5).

    Raises:
        ValueError: the step is malformed.
    """
    if isinstance(raw, str):
        if raw not in _BARE_STEPS:
            raise ValueError(f"unknown pipe step {raw!r}")
        op, arg = raw, None
    elif isinstance(raw, dict) and len(raw) == 1:
        op, arg = next(iter(raw.items()))
    else:
        raise ValueError(f"a pipe step is a name or a one-key mapping, got {raw!r}")
    if op in ("string", "integer", "number", "bool", "trim", "upper", "lower", "negate", "abs", "required"):
        if arg is not None:
            raise ValueError(f"{op} takes no arguments")
        return {"op": op}
    if op == "decimal":
        arg = arg or {}
        if not isinstance(arg, dict):
            raise ValueError("decimal takes {scale: N, rounding: mode}")
        _only_keys(arg, {"scale", "rounding"}, "decimal")
        scale = _scale(arg["scale"]) if "scale" in arg else None
        if scale is None and "rounding" in arg:
            raise ValueError("decimal rounding needs a scale")
        return {"op": "decimal", "scale": scale, "rounding": _rounding(arg)}
    if op == "date":
        arg = arg or {}
        if not isinstance(arg, dict):
            raise ValueError("date takes {from: fmt, to: fmt}")
        _only_keys(arg, {"from", "to"}, "date")
        src = arg.get("from", "auto")
        dst = arg.get("to", "datetime")
        if src not in ("auto", *DATE_FORMATS):
            raise ValueError(f"date from must be one of {['auto', *DATE_FORMATS]}, got {src!r}")
        if dst not in DATE_FORMATS:
            raise ValueError(f"date to must be one of {list(DATE_FORMATS)}, got {dst!r}")
        return {"op": "date", "from": src, "to": dst}
    if op in ("minor_units", "from_minor_units"):
        return _units(arg, op)
    if op in ("pad_left", "pad_right"):
        if not isinstance(arg, dict):
            raise ValueError(f"{op} takes {{width: N, char: C}}")
        _only_keys(arg, {"width", "char"}, op)
        width = _need(arg, "width", op)
        if isinstance(width, bool) or not isinstance(width, int) or not 0 < width <= 1000:
            raise ValueError(f"{op} width must be an integer 1..1000")
        char = arg.get("char", " ")
        if not isinstance(char, str) or len(char) != 1:
            raise ValueError(f"{op} char must be one character")
        return {"op": op, "width": width, "char": char}
    if op == "max_length":
        if not isinstance(arg, dict):
            raise ValueError("max_length takes {length: N, on_overflow: reject|truncate, label: text}")
        _only_keys(arg, {"length", "on_overflow", "label"}, op)
        length = _need(arg, "length", op)
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError("max_length length must be a non-negative integer")
        mode = arg.get("on_overflow", "reject")
        if mode not in ("reject", "truncate"):
            raise ValueError("max_length on_overflow must be reject or truncate")
        return {
            "op": op,
            "length": length,
            "on_overflow": mode,
            "label": _str_arg(arg.get("label", ""), "label"),
        }
    if op in ("prefix", "suffix"):
        return {"op": op, "text": _str_arg(arg, op)}
    if op == "split":
        if not isinstance(arg, dict):
            raise ValueError("split takes {separator: text, index: N}")
        _only_keys(arg, {"separator", "index"}, op)
        sep = _str_arg(_need(arg, "separator", op), "separator")
        if not sep:
            raise ValueError("split separator must not be empty")
        index = arg.get("index")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise ValueError("split index must be a non-negative integer")
        return {"op": op, "separator": sep, "index": index}
    if op == "join":
        return {"op": op, "separator": _str_arg(arg, "join separator")}
    if op == "replace":
        if not isinstance(arg, dict):
            raise ValueError("replace takes {pattern: regex, with: text}")
        _only_keys(arg, {"pattern", "with"}, op)
        return {
            "op": op,
            "pattern": _regex(_need(arg, "pattern", op)),
            "with": _str_arg(arg.get("with", ""), "with"),
        }
    if op == "match":
        if not isinstance(arg, dict):
            raise ValueError("match takes {pattern: regex, on_mismatch: reject|omit}")
        _only_keys(arg, {"pattern", "on_mismatch"}, op)
        mode = arg.get("on_mismatch", "reject")
        if mode not in ("reject", "omit"):
            raise ValueError("match on_mismatch must be reject or omit")
        return {"op": op, "pattern": _regex(_need(arg, "pattern", op)), "on_mismatch": mode}
    if op == "extract":
        if not isinstance(arg, dict):
            raise ValueError("extract takes {pattern: regex, group: N}")
        _only_keys(arg, {"pattern", "group"}, op)
        pattern = _regex(_need(arg, "pattern", op))
        group = arg.get("group", 0)
        if isinstance(group, bool) or not isinstance(group, int) or group < 0:
            raise ValueError("extract group must be a non-negative integer")
        if group > re.compile(pattern).groups:
            raise ValueError(f"extract group {group} does not exist in {pattern!r}")
        return {"op": op, "pattern": pattern, "group": group}
    if op == "lookup":
        if isinstance(arg, str):
            arg = {"table": arg}
        if not isinstance(arg, dict):
            raise ValueError("lookup takes a table name or {table, field, on_missing}")
        _only_keys(arg, {"table", "field", "on_missing"}, op)
        mode = arg.get("on_missing")
        if mode is not None and mode not in ("error", "fallback", "passthrough", "omit"):
            raise ValueError("lookup on_missing must be error, fallback, passthrough or omit")
        field = arg.get("field")
        return {
            "op": op,
            "table": _str_arg(_need(arg, "table", op), "table"),
            "field": None if field is None else _str_arg(field, "field"),
            "on_missing": mode,
        }
    if op == "default":
        return {"op": op, "value": const_value(arg)}
    raise ValueError(f"unknown pipe step {op!r}")


def normalize_pipe(raw: Any) -> list[dict[str, Any]]:
    """Normalize a pipe (list of steps)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError("pipe must be a list of steps")
    return [normalize_step(s) for s in raw]
