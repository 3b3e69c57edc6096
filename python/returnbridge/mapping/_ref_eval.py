"""Reference interpreter evaluation: scopes and paths, expressions, conditions and pipe steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from returnbridge.errors import TranslationError

from ._ref_compile import Path
from ._ref_dates import convert_date
from ._ref_values import (
    _WS,
    Dec,
    Fail,
    Msg,
    OutOfRange,
    _abs,
    _arith,
    _negate,
    _numeric,
    _replace,
    _text,
    _to_bool,
    _to_integer,
    as_decimal,
    as_decimal_opt,
    currency_exponent,
    dq,
    kind,
    scalar_to_string,
)


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


class _Evaluator:
    """Scopes, paths, expressions, conditions and pipe steps; ``reference.py`` adds the output writing."""

    def __init__(self, tables: dict[str, tuple[str, dict[str, Any], Any]], tree: Any, explain: bool) -> None:
        self.tables = tables
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
        tables = self.tables
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
