"""Reference interpreter I/O: exact JSON in and out, protobuf messages read into values and written back."""

from __future__ import annotations

import json
import re
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message as PbMessage

from ._ref_compile import _repeated, _special
from ._ref_dates import _parse_date, format_rfc3339, parse_timestamp
from ._ref_values import (
    _I64_MAX,
    _I64_MIN,
    Dec,
    Fail,
    Msg,
    OutOfRange,
    _to_integer,
    dq,
    kind,
    parse_decimal,
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


def _int_of(v: Any) -> int:
    return _to_integer(v)
