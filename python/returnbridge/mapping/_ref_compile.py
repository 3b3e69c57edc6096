"""Compiler of the reference interpreter: normalized spec JSON -> paths, expressions and the output tree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor

from returnbridge.errors import SpecError

from ._ref_values import dq

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
            if (
                s["op"] in ("minor_units", "from_minor_units", "round_minor")
                and s.get("currency") is not None
            ):
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
