"""Pure-Python reference interpreter of the mapping language: the executable specification of the Rust engine.

It reads the same normalized spec JSON and must give byte-identical output and the same error rule and path.
Deliberately simple and slow; exact decimals use the same integer algorithm (coefficient + scale, i128 limits).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as PbMessage

from returnbridge.errors import SpecError, TranslationError

from ._ref_compile import Node, _Compiler, _sort
from ._ref_eval import _NO_FALLBACK, _Evaluator, _terr
from ._ref_io import _append_value, _from_proto, _json_str, _set_field, _set_map_entry, parse_json, write_json
from ._ref_values import (
    Fail,
    dq,
    kind,
)


class _Run(_Evaluator):
    """One translation: the evaluator plus the JSON and protobuf output writers."""

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
        run = _Run(self.tables, self._tree(document), explain)
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
