"""Mapping spec model: YAML (with line numbers) -> validated pydantic model -> normalized JSON for the engines."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from returnbridge.domain.erp_constraints import FieldConstraint
from returnbridge.errors import SpecError

Loc = tuple[str | int, ...]


# YAML 1.2 core schema (not PyYAML's 1.1): "NO", "on", "yes" stay strings; 1.50 becomes Decimal("1.50").
_INT = re.compile(r"[-+]?[0-9]+\Z")
_DEC = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_NULL = {"", "~", "null", "Null", "NULL"}


def _scalar(node: yaml.ScalarNode) -> Any:
    text = node.value
    if node.style in ("'", '"', "|", ">"):
        return text
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.match(text):
        return int(text)
    if _DEC.match(text):
        return Decimal(text)
    return text


def load_yaml(text: str, file_name: str) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML text into plain Python values plus a map from location tuple to 1-based line.

    Raises:
        SpecError: the text is not valid YAML, or uses anchors/tags this language does not allow.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise SpecError(
            f"invalid YAML: {getattr(exc, 'problem', None) or exc}", file=file_name, line=line
        ) from None
    lines: dict[Loc, int] = {}
    if node is None:
        return None, lines
    return _convert(node, (), lines, file_name, 0), lines


def _convert(node: yaml.Node, loc: Loc, lines: dict[Loc, int], file_name: str, depth: int) -> Any:
    lines[loc] = node.start_mark.line + 1
    if depth > 64:
        raise SpecError("nesting deeper than 64 levels", file=file_name, line=lines[loc])
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [_convert(child, (*loc, i), lines, file_name, depth + 1) for i, child in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError(
                    "mapping keys must be scalars", file=file_name, line=key_node.start_mark.line + 1
                )
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError(
                    "YAML merge keys (<<) are not supported",
                    file=file_name,
                    line=key_node.start_mark.line + 1,
                )
            # Keys are always the literal text, so a table key like NO or 1.0 is the string it looks like.
            key = key_node.value
            if key in out:
                raise SpecError(f"duplicate key {key!r}", file=file_name, line=key_node.start_mark.line + 1)
            out[key] = _convert(value_node, (*loc, key), lines, file_name, depth + 1)
        return out
    raise SpecError("unsupported YAML node", file=file_name, line=lines[loc])


def line_for(lines: dict[Loc, int], loc: Loc) -> int:
    """The line of the deepest known prefix of ``loc`` (pydantic error locations may point past YAML nodes)."""
    for end in range(len(loc), -1, -1):
        hit = lines.get(tuple(loc[:end]))
        if hit is not None:
            return hit
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Paths, expressions, conditions and pipe steps: validated and normalized to the JSON form the engines compile.
# ---------------------------------------------------------------------------------------------------------------

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
_SEGMENT = re.compile(r"([^.\[\]]+)((?:\[(?:\d+|\*)\])*)\Z")
_INDEX = re.compile(r"\[(\d+|\*)\]")
ROUNDING_MODES = ("half_even", "half_up", "half_down", "down", "up", "floor", "ceiling")
DATE_FORMATS = ("date", "datetime", "sap", "yyyymmdd", "epoch_ms", "epoch_s")
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


def _const(value: Any) -> Any:
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
        return [_const(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _const(v) for k, v in value.items()}
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
        return {"const": _const(raw)}
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
        return {"const": _const(arg)}
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
        arg = [_const(v) for v in arg]
        if any(isinstance(v, list | dict) for v in arg):
            raise ValueError(f"{op} takes a list of scalars")
    elif op == "exists":
        if not isinstance(arg, bool):
            raise ValueError("exists takes true or false")
    elif op in ("gt", "ge", "lt", "le"):
        arg = _const(arg)
        if isinstance(arg, bool) or not isinstance(arg, int | Decimal | str):
            raise ValueError(f"{op} takes a number")
        if isinstance(arg, str):
            try:
                arg = Decimal(arg)
            except ArithmeticError:
                raise ValueError(f"{op} takes a number, got {arg!r}") from None
            arg = _const(arg)
    elif op == "matches":
        arg = _regex(arg)
    else:
        arg = _const(arg)
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
    if op == "round_minor":
        _only_keys(arg, {"exponent", "currency", "rounding"}, op)
        units = _units({k: v for k, v in arg.items() if k != "rounding"}, "minor_units")
        return {**units, "op": op, "rounding": _rounding(arg)}
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
    if op in ("minor_units", "from_minor_units", "round_minor"):
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
        return {"op": op, "value": _const(arg)}
    raise ValueError(f"unknown pipe step {op!r}")


def normalize_pipe(raw: Any) -> list[dict[str, Any]]:
    """Normalize a pipe (list of steps)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError("pipe must be a list of steps")
    return [normalize_step(s) for s in raw]


# ---------------------------------------------------------------------------------------------------------------
# The pydantic model of a spec file and an override file.
# ---------------------------------------------------------------------------------------------------------------

RULE_ID = r"^[A-Za-z0-9_.:\-]+$"
_TARGET = re.compile(r"[^.\[\]\s]+(\.[^.\[\]\s]+)*\Z")
_UNSET: Any = object()


class Rule(BaseModel):
    """One rule: a field rule (value source + pipe) or an `each` list rule (child rules or a scalar value)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    id: str = Field(pattern=RULE_ID, max_length=200)
    target: str
    source: str | None = None
    value: Any = _UNSET
    template: str | None = None
    expr: Any = None
    pipe: list[Any] = Field(default_factory=list)
    when: Any = None
    otherwise: Any = None
    default: Any = None
    required: bool = False
    emit_null: bool = False
    custom_type: Literal["date"] | None = None
    each: str | None = None
    where: Any = None
    keep_empty: bool = False
    rules: list[Rule] | None = None

    @field_validator("target")
    @classmethod
    def _check_target(cls, v: str) -> str:
        if not _TARGET.match(v):
            raise ValueError(f"bad target {v!r}: dotted keys without brackets or spaces")
        return v

    @field_validator("source", "each")
    @classmethod
    def _check_path(cls, v: str | None, info: Any) -> str | None:
        if v is not None:
            parse_path(v, allow_wildcard=info.field_name == "each")
        return v

    @field_validator("template")
    @classmethod
    def _check_template(cls, v: str | None) -> str | None:
        if v is not None:
            parse_template(v)
        return v

    @field_validator("expr", "otherwise")
    @classmethod
    def _check_expr(cls, v: Any) -> Any:
        if v is not None:
            normalize_expr(v)
        return v

    @field_validator("when", "where")
    @classmethod
    def _check_cond(cls, v: Any) -> Any:
        if v is not None:
            normalize_cond(v)
        return v

    @field_validator("pipe")
    @classmethod
    def _check_pipe(cls, v: list[Any]) -> list[Any]:
        normalize_pipe(v)
        return v

    @field_validator("value", "default")
    @classmethod
    def _check_const(cls, v: Any) -> Any:
        return v if v is _UNSET else _const(v)

    @model_validator(mode="after")
    def _check_shape(self) -> Rule:
        sources = [n for n in ("source", "template", "expr") if getattr(self, n) is not None]
        if self.value is not _UNSET:
            sources.append("value")
        if len(sources) > 1:
            raise ValueError(f"rule has more than one value source: {sources}")
        if self.each is None:
            if not sources:
                raise ValueError("rule needs one of source, value, template, expr (or each)")
            if self.rules is not None or self.where is not None or self.keep_empty:
                raise ValueError("rules/where/keep_empty are only allowed with `each`")
        else:
            if (self.rules is None) == (not sources):
                raise ValueError("an `each` rule needs either child `rules` or one value source, not both")
            if self.rules is not None and (self.pipe or self.default is not None or self.when is not None):
                raise ValueError("an `each` rule with child rules takes no pipe/default/when (use `where`)")
            if self.otherwise is not None or self.emit_null:
                raise ValueError("otherwise/emit_null are not allowed on `each` rules")
        if self.otherwise is not None and self.when is None:
            raise ValueError("`otherwise` needs `when`")
        return self

    def walk(self) -> Iterator[Rule]:
        """This rule and all nested rules, depth first."""
        yield self
        for child in self.rules or ():
            yield from child.walk()

    def normalized(self) -> dict[str, Any]:
        """The JSON-ready form the engines compile."""
        if self.source is not None:
            value: dict[str, Any] | None = {"path": parse_path(self.source)}
        elif self.template is not None:
            value = {"template": parse_template(self.template)}
        elif self.expr is not None:
            value = normalize_expr(self.expr)
        elif self.value is not _UNSET:
            value = {"const": self.value}
        else:
            value = None
        return {
            "id": self.id,
            "target": self.target.split("."),
            "value": value,
            "pipe": normalize_pipe(self.pipe),
            "when": normalize_cond(self.when) if self.when is not None else None,
            "otherwise": normalize_expr(self.otherwise) if self.otherwise is not None else None,
            "default": self.default,
            "required": self.required,
            "emit_null": self.emit_null,
            "custom_type": self.custom_type,
            "each": parse_path(self.each, allow_wildcard=True) if self.each is not None else None,
            "where": normalize_cond(self.where) if self.where is not None else None,
            "keep_empty": self.keep_empty,
            "rules": [r.normalized() for r in self.rules] if self.rules is not None else None,
        }


class Table(BaseModel):
    """A lookup table: inline entries or a file next to the spec, with an optional fallback."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    entries: dict[str, Any] | None = None
    file: str | None = None
    fallback: Any = _UNSET

    @field_validator("entries")
    @classmethod
    def _check_entries(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else {str(k): _const(x) for k, x in v.items()}

    @field_validator("fallback")
    @classmethod
    def _check_fallback(cls, v: Any) -> Any:
        return v if v is _UNSET else _const(v)

    @model_validator(mode="after")
    def _check_shape(self) -> Table:
        if (self.entries is None) == (self.file is None):
            raise ValueError("a table needs exactly one of `entries` or `file`")
        return self


_DUPLICATE_RULE_ID = "duplicate_rule_id"


class Spec(BaseModel):
    """A complete mapping spec file."""

    model_config = ConfigDict(extra="forbid")

    mapping: str | None = Field(default=None, pattern=r"^[a-z0-9_]+/[a-z0-9_]+$")
    description: str = ""
    direction: Literal["outbound", "inbound"]
    input: str
    output: str
    tables: dict[str, Table] = Field(default_factory=dict)
    rules: list[Rule] = Field(min_length=1)
    # What the ERP refuses, checked at submit (domain/erp_constraints.py); not part of the engines' program.
    constraints: list[FieldConstraint] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_shape(self) -> Spec:
        if self.direction == "outbound":
            if self.output != "json" or self.input == "json":
                raise ValueError("an outbound spec reads a message type (input) and writes `output: json`")
        elif self.input != "json" or self.output == "json":
            raise ValueError("an inbound spec reads `input: json` and writes a message type (output)")
        seen: set[str] = set()
        for rule in self.walk_rules():
            if rule.id in seen:
                # A typed error so the loader can point at the duplicate's line, not the spec's first line.
                raise PydanticCustomError(
                    _DUPLICATE_RULE_ID, "duplicate rule id {rule_id!r}", {"rule_id": rule.id}
                )
            seen.add(rule.id)
        return self

    def walk_rules(self) -> Iterator[Rule]:
        for rule in self.rules:
            yield from rule.walk()


class TablePatch(BaseModel):
    """Changes an override makes to one table."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    entries: dict[str, Any] = Field(default_factory=dict)
    file: str | None = None
    remove: list[str] = Field(default_factory=list)
    fallback: Any = _UNSET

    @field_validator("entries")
    @classmethod
    def _check_entries(cls, v: dict[str, Any]) -> dict[str, Any]:
        return {str(k): _const(x) for k, x in v.items()}

    @field_validator("fallback")
    @classmethod
    def _check_fallback(cls, v: Any) -> Any:
        return v if v is _UNSET else _const(v)


class RulePatch(BaseModel):
    """Rule changes of an override: replace/remove by id, add at the top level or under an `each` rule."""

    model_config = ConfigDict(extra="forbid")

    replace: list[Rule] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)
    add: list[Rule] = Field(default_factory=list)
    add_under: dict[str, list[Rule]] = Field(default_factory=dict)


class Override(BaseModel):
    """An override file layered on a shipped spec."""

    model_config = ConfigDict(extra="forbid")

    override: str = Field(pattern=r"^[a-z0-9_]+/[a-z0-9_]+$")
    description: str = ""
    tables: dict[str, TablePatch] = Field(default_factory=dict)
    rules: RulePatch = Field(default_factory=RulePatch)


# ---------------------------------------------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceInfo:
    """Where a spec came from: file name, raw YAML data and the line of every YAML location."""

    file: str
    lines: dict[Loc, int]
    base_dir: Path | None
    raw: Any = None

    def rule_lines(self) -> dict[str, int]:
        """Line of each rule id declared in this file (nested rules and override lists included)."""
        out: dict[str, int] = {}
        self._collect(self.raw, (), out)
        return out

    def _collect(self, node: Any, loc: Loc, out: dict[str, int]) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("id"), str) and ("target" in node or "each" in node):
                out.setdefault(node["id"], line_for(self.lines, loc))
            for key, child in node.items():
                self._collect(child, (*loc, key), out)
        elif isinstance(node, list):
            for i, child in enumerate(node):
                self._collect(child, (*loc, i), out)


def _pydantic_to_spec_error(exc: PydanticValidationError, info: SourceInfo, raw: Any) -> SpecError:
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    if first["type"] == _DUPLICATE_RULE_ID:
        rule_id = str((first.get("ctx") or {}).get("rule_id", ""))
        dup_loc = _second_rule_loc(raw.get("rules") if isinstance(raw, dict) else None, ("rules",), rule_id)
        return SpecError(
            f"duplicate rule id {rule_id!r}",
            file=info.file,
            line=line_for(info.lines, dup_loc or loc),
            rule=rule_id,
        )
    rule = _rule_id_at(raw, loc)
    where = ".".join(str(p) for p in loc)
    msg = first["msg"].removeprefix("Value error, ")
    return SpecError(
        f"{where}: {msg}" if where else msg, file=info.file, line=line_for(info.lines, loc), rule=rule
    )


def _second_rule_loc(rules: Any, loc: Loc, rule_id: str) -> Loc | None:
    """Location of the second rule declaring ``rule_id``, walking raw rules in ``Spec.walk_rules`` order."""
    seen = False

    def walk(node: Any, here: Loc) -> Loc | None:
        nonlocal seen
        if not isinstance(node, list):
            return None
        for i, item in enumerate(node):
            if not isinstance(item, dict):
                continue
            if item.get("id") == rule_id:
                if seen:
                    return (*here, i)
                seen = True
            found = walk(item.get("rules"), (*here, i, "rules"))
            if found is not None:
                return found
        return None

    return walk(rules, loc)


def _rule_id_at(raw: Any, loc: Loc) -> str:
    """The id of the innermost rule on the way to ``loc`` in the raw YAML data, if any."""
    found = ""
    node = raw
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
        if (
            isinstance(node, dict)
            and isinstance(node.get("id"), str)
            and ("target" in node or "each" in node)
        ):
            found = node["id"]
    return found


def parse_spec_text(
    text: str, file_name: str, base_dir: Path | None = None
) -> tuple[Spec | Override, SourceInfo]:
    """Validate YAML text as a spec or an override (by the presence of `override:`).

    Raises:
        SpecError: with file, line and rule id of the first problem.
    """
    raw, lines = load_yaml(text, file_name)
    info = SourceInfo(file_name, lines, base_dir, raw)
    if not isinstance(raw, dict):
        raise SpecError("a mapping spec must be a YAML mapping", file=file_name, line=1)
    model: type[Spec] | type[Override] = Override if "override" in raw else Spec
    try:
        return model.model_validate(raw), info
    except PydanticValidationError as exc:
        raise _pydantic_to_spec_error(exc, info, raw) from None


def load_spec_file(path: Path) -> tuple[Spec | Override, SourceInfo]:
    """Read and validate one spec or override file.

    Raises:
        SpecError: unreadable file or invalid content.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec: {exc}", file=str(path)) from None
    return parse_spec_text(text, str(path), path.parent)


def resolve_table(name: str, table: Table | TablePatch, info: SourceInfo) -> tuple[dict[str, Any], Any]:
    """Entries and fallback of a table, reading its file when it has one (path relative to the spec).

    Raises:
        SpecError: the file is missing, outside YAML, or not a mapping of entries.
    """
    entries: dict[str, Any] = dict(table.entries or {})
    fallback = table.fallback
    if table.file is not None:
        line = line_for(info.lines, ("tables", name, "file"))
        if info.base_dir is None:
            raise SpecError(
                f"table {name!r}: a file table needs a spec loaded from disk", file=info.file, line=line
            )
        path = info.base_dir / table.file
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(
                f"table {name!r}: cannot read {table.file}: {exc}", file=info.file, line=line
            ) from None
        data, _ = load_yaml(text, str(path))
        if isinstance(data, dict) and "entries" in data and set(data) <= {"entries", "fallback"}:
            if "fallback" in data and fallback is _UNSET:
                fallback = data["fallback"]
            data = data["entries"]
        if not isinstance(data, dict):
            raise SpecError(
                f"table {name!r}: {table.file} must hold a mapping of entries", file=str(path), line=1
            )
        try:
            file_entries = {str(k): _const(v) for k, v in data.items()}
            fallback = fallback if fallback is _UNSET else _const(fallback)
        except ValueError as exc:
            raise SpecError(f"table {name!r}: {exc}", file=str(path), line=1) from None
        entries = {**file_entries, **entries}
    return entries, fallback


def normalized_spec(
    mapping_id: str, spec: Spec, tables: dict[str, tuple[dict[str, Any], Any]]
) -> dict[str, Any]:
    """The JSON-ready normalized spec both engines compile (tables already resolved)."""
    return {
        "id": mapping_id,
        "direction": spec.direction,
        "input": spec.input,
        "output": spec.output,
        "tables": {
            name: {"entries": entries, "fallback": None if fb is _UNSET else {"value": fb}}
            for name, (entries, fb) in tables.items()
        },
        "rules": [r.normalized() for r in spec.rules],
    }


def is_unset(value: Any) -> bool:
    """True for the marker of a YAML key that was not given (distinct from an explicit null)."""
    return value is _UNSET


def dump_json(value: Any) -> bytes:
    """Serialize normalized data to compact JSON, writing Decimals as exact JSON numbers."""
    out: list[str] = []
    _dump(value, out)
    return "".join(out).encode("utf-8")


def _dump(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        out.append(format(value, "f"))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _dump(v, out)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        for i, (k, v) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(k), ensure_ascii=False))
            out.append(":")
            _dump(v, out)
        out.append("}")
    else:
        raise TypeError(f"cannot serialize {type(value).__name__}")
