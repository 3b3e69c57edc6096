"""Protobuf enum helpers: short names ("REFUNDED") to values and back, with errors naming what is allowed."""

from __future__ import annotations

from typing import Protocol

__all__ = ["ProtoEnum", "enum_short", "enum_value"]


class ProtoEnum(Protocol):
    """What a generated protobuf enum wrapper offers (``returns_pb2.LifecycleEvent`` and friends)."""

    def Value(self, name: str, /) -> int: ...
    def Name(self, number: int, /) -> str: ...
    def keys(self) -> list[str]: ...


def enum_value(enum: ProtoEnum, prefix: str, name: str) -> int:
    """``"refunded"`` -> ``LIFECYCLE_EVENT_REFUNDED`` value; raises ValueError naming the allowed names."""
    full = prefix + name.strip().upper()
    try:
        return int(enum.Value(full))
    except ValueError:
        allowed = [n[len(prefix) :] for n in enum.keys() if not n.endswith("UNSPECIFIED")]
        raise ValueError(f"{name!r} is not one of {allowed}") from None


def enum_short(enum: ProtoEnum, prefix: str, value: int) -> str:
    """``LIFECYCLE_EVENT_REFUNDED`` value -> ``"REFUNDED"``."""
    return str(enum.Name(value))[len(prefix) :]
