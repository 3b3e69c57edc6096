"""Pure-Python reference interpreter of the mapping language: the executable specification of the Rust engine.

It reads the same normalized spec JSON and must give byte-identical output and the same error rule and path.
Deliberately simple and slow; exact decimals use the same integer algorithm (coefficient + scale, i128 limits).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as PbMessage

from returnbridge.errors import SpecError, TranslationError

from ._ref_compile import Node, Path, _Compiler, _repeated, _sort, _special
from ._ref_values import (
    _I64_MAX,
    _I64_MIN,
    _WS,
    Dec,
    Fail,
    Msg,
    OutOfRange,
    _abs,
    _arith,
    _negate,
    _numeric,
    _parse_date,
    _replace,
    _text,
    _to_bool,
    _to_integer,
    as_decimal,
    as_decimal_opt,
    convert_date,
    currency_exponent,
    dq,
    format_rfc3339,
    kind,
    parse_decimal,
    parse_timestamp,
    scalar_to_string,
)

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
            elif op in ("minor_units", "from_minor_units", "round_minor"):
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
                if op == "round_minor":
                    try:
                        v = as_decimal(v).rescale(exp, s["rounding"])
                    except OutOfRange:
                        raise Fail("decimal out of range") from None
                else:
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
