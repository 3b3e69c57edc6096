"""Random hostile edits of a protobuf request, for the request fuzz test: any field, at any depth, gets a value a
careless or malicious client could send (out-of-range numbers and timestamps, unknown enum values, odd text,
cleared or multiplied sub-messages). Deterministic for a given ``random.Random``."""

from __future__ import annotations

import random
from typing import Any, Final

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

TEXTS: Final = (
    "",
    " ",
    "\x00",
    "a" * 5000,
    "\U0001f4a5" * 300,
    "-1",
    "1e309",
    "NaN",
    "Infinity",
    "-0",
    "0.000000000000000000001",
    "99999999999999999999999999999999",
    "\n\r",
    "\u202e",
    "SKU-1001\x00x",
    "1,5",
    " 1",
    "+1",
    "0x10",
    "\uff11",  # fullwidth digit one
    "\u0663",  # Arabic-Indic digit three
    "1_000",
    ".5",
    "\uffff",
    "\u03a9" * 70,
    "%s%s",
    "../../etc/passwd",
    "USD",
    "usd",
    "XXX",
    "JPY",
    "BHD",
    "0",
    "-0.01",
    "10000000000000000000.00",
)
UNSIGNED: Final = (0, 1, 2, 3, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1)
SIGNED: Final = (0, -1, 1, -(2**63), 2**63 - 1, 2**31, -(2**31))
ENUMS: Final = (0, 1, 2, 3, 7, 99, -1, 2**31 - 1)
# google.protobuf.Timestamp seconds: just outside its range on both sides, far outside, and inside.
SECONDS: Final = (-62_135_596_801, -62_135_596_800, -1, 0, 253_402_300_799, 253_402_300_800, 2**62, -(2**62))
NANOS: Final = (0, 999_999_999, 1_000_000_000, -1, 2**31 - 1)
_32_BIT: Final = frozenset(
    {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32}
)


def mutate(message: Message, rng: random.Random) -> str:
    """Change one field somewhere in ``message``; returns its path, for the failure message."""
    field = rng.choice(message.DESCRIPTOR.fields)
    name = field.name
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        entries = getattr(message, name)
        key = rng.choice(TEXTS)[:200]
        value = field.message_type.fields_by_name["value"]
        if value.message_type is None:
            entries[key] = _scalar(value, rng)
        else:
            entries.get_or_create(key)  # an empty value: the hostile part is the key
        return f"{name}[{key[:20]!r}]"
    if field.is_repeated:
        items = getattr(message, name)
        if field.message_type is None:
            items.append(_scalar(field, rng))
            return f"{name}[+]"
        roll = rng.random()
        if roll < 0.2:
            del items[:]
            return f"{name}=[]"
        if roll < 0.3 and len(items):
            for _ in range(rng.choice((2, 50))):
                items.add().CopyFrom(items[0])
            return f"{name}*N"
        if not len(items):
            items.add()
        index = rng.randrange(len(items))
        return f"{name}[{index}].{mutate(items[index], rng)}"
    if field.message_type is not None:
        if rng.random() < 0.15:
            message.ClearField(name)
            return f"{name}=unset"
        sub = getattr(message, name)
        if field.message_type.full_name == "google.protobuf.Timestamp":
            sub.seconds, sub.nanos = rng.choice(SECONDS), rng.choice(NANOS)
            return f"{name}=({sub.seconds},{sub.nanos})"
        return f"{name}.{mutate(sub, rng)}"
    value = _scalar(field, rng)
    setattr(message, name, value)
    return f"{name}={value!r:.40}"


def _scalar(field: FieldDescriptor, rng: random.Random) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return rng.choice(TEXTS)
    if kind == FieldDescriptor.TYPE_BYTES:
        return rng.randbytes(rng.choice((0, 10, 5000)))
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if kind == FieldDescriptor.TYPE_ENUM:
        return rng.choice(ENUMS)
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rng.choice((float("nan"), float("inf"), -0.0, 1e308))
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return rng.choice([v for v in UNSIGNED if v < 2**32])
    if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return rng.choice(UNSIGNED)
    if kind in _32_BIT:
        return rng.choice([v for v in SIGNED if -(2**31) <= v < 2**31])
    return rng.choice(SIGNED)
