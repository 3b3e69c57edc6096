"""ERP field constraints declared by the mapping packs, checked at submit against the routed ERP's documents.

A pack declares, per spec, what the ERP will refuse: required inputs, maximum lengths and formats of the fields it
writes. ``check`` applies the constraints of every mapping an event routes to and returns field violations
(refused at submit: INVALID_ARGUMENT) and adjustments (free text the pack truncates by its documented rule, reported
back to the caller in ``SubmitReturnResponse.adjustments``).

Lengths count Unicode code points, as the mapper's ``max_length`` step and the ERPs (SAP CHAR, Oracle VARCHAR2
CHAR semantics, NetSuite) do.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from google.protobuf.message import Message
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from returnbridge.errors import FieldViolation

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\[\*\])?\Z")


class OnlyWhen(BaseModel):
    """Apply a constraint only when a sibling field (same list item, or the root) has this value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")
    equals: str | None = None
    present: bool | None = None

    @model_validator(mode="after")
    def _one(self) -> OnlyWhen:
        if (self.equals is None) == (self.present is None):
            raise ValueError("only_when takes exactly one of `equals` or `present`")
        return self


class FieldConstraint(BaseModel):
    """One ERP constraint on one input field of the canonical return.

    ``field`` is a path on ``ReturnOrder`` with ``[*]`` for every list item (``lines[*].serial_numbers[*]``).
    ``erp_field`` names the ERP field the value is written to (``SerialNumber``), for the caller's message.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    erp_field: str = Field(min_length=1, max_length=120)
    required: bool = False
    max_length: int | None = Field(default=None, ge=1, le=100_000)
    # reject: refused at submit; truncate: accepted, the mapper writes the first max_length characters.
    on_overflow: Literal["reject", "truncate"] = "reject"
    # Anchored (full match), ASCII classes: the format the ERP field accepts.
    pattern: str | None = None
    # Lengths are measured after stripping surrounding whitespace (the pack trims before writing).
    trim: bool = False
    only_when: OnlyWhen | None = None

    @field_validator("field")
    @classmethod
    def _path(cls, value: str) -> str:
        for segment in value.split("."):
            if not _SEGMENT.match(segment):
                raise ValueError(f"bad constraint field {value!r}: dotted names, optional [*] per list")
        return value

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value, re.ASCII)
            except re.error as exc:
                raise ValueError(f"invalid pattern {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _shape(self) -> FieldConstraint:
        if not (self.required or self.max_length or self.pattern):
            raise ValueError("a constraint needs at least one of required, max_length, pattern")
        if self.on_overflow == "truncate" and self.max_length is None:
            raise ValueError("on_overflow: truncate needs max_length")
        return self

    @property
    def truncates(self) -> bool:
        return self.max_length is not None and self.on_overflow == "truncate"


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A value the routed ERP receives changed by a documented pack rule (today: truncated free text)."""

    field: str
    erp: str
    mapping: str
    erp_field: str
    original_length: int
    written_length: int

    @property
    def description(self) -> str:
        return (
            f"{self.erp} ({self.mapping}): {self.erp_field} holds {self.written_length} characters; "
            f"the value ({self.original_length}) is truncated"
        )


@dataclass(frozen=True, slots=True)
class RoutedConstraints:
    """The constraints of one mapping a submission routes to."""

    erp: str
    mapping: str
    constraints: Sequence[FieldConstraint]
    # False for documents a later event of the flow creates: their lengths and formats are knowable now, but
    # their required inputs may legitimately arrive with that later event.
    presence: bool = True


@dataclass(frozen=True, slots=True)
class CheckResult:
    violations: list[FieldViolation]
    adjustments: list[Adjustment]


def check(
    order: Message, routed: Iterable[RoutedConstraints], *, prefix: str = "return_order"
) -> CheckResult:
    """Every violation of every routed mapping's constraints, and every truncation the packs will apply.

    The same input field refused by two mappings of one flow is reported once per ERP field.
    """
    violations: list[FieldViolation] = []
    adjustments: list[Adjustment] = []
    seen: set[tuple[str, str]] = set()
    # The mappings of one flow constrain mostly the same fields: each path is walked once per order.
    reached: dict[str, list[tuple[str, Any, Message]]] = {}
    for target in routed:
        for constraint in target.constraints:
            values = reached.get(constraint.field)
            if values is None:
                values = reached[constraint.field] = list(_values(order, constraint.field, prefix))
            for path, value, scope in values:
                if constraint.only_when is not None and not _holds(scope, order, constraint.only_when):
                    continue
                problem, adjustment = _check_value(constraint, value, presence=target.presence)
                if adjustment is not None and target.presence:
                    key = (f"adj:{path}", f"{target.erp}:{constraint.erp_field}")
                    if key not in seen:
                        seen.add(key)
                        adjustments.append(
                            Adjustment(path, target.erp, target.mapping, constraint.erp_field, *adjustment)
                        )
                if problem is None:
                    continue
                key = (path, f"{target.erp}:{constraint.erp_field}:{problem}")
                if key in seen:
                    continue
                seen.add(key)
                violations.append(
                    FieldViolation(
                        path,
                        f"{target.erp} ({target.mapping}): {constraint.erp_field} {problem}",
                        rule="erp_constraint",
                    )
                )
    return CheckResult(violations, adjustments)


def _check_value(
    constraint: FieldConstraint, value: Any, *, presence: bool
) -> tuple[str | None, tuple[int, int] | None]:
    text = _text(value)
    if constraint.trim:
        text = text.strip()
    if not text:
        return ("is required" if constraint.required and presence else None), None
    if constraint.max_length is not None and len(text) > constraint.max_length:
        if constraint.on_overflow == "truncate":
            return None, (len(text), constraint.max_length)
        return f"holds at most {constraint.max_length} characters (got {len(text)})", None
    if constraint.pattern is not None and not re.fullmatch(constraint.pattern, text, re.ASCII):
        return f"must match {constraint.pattern}", None
    return None, None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Message):
        # CustomValue and friends: the one set field of the oneof.
        fields = value.ListFields()
        return "" if not fields else _text(fields[0][1])
    if isinstance(value, bool):
        return "true" if value else ""
    return str(value)


def _values(order: Message, path: str, prefix: str) -> Iterator[tuple[str, Any, Message]]:
    """(violation path, value, innermost message holding it) for every value ``path`` reaches."""
    parts = _segments(path)

    def walk(node: Any, index: int, at: str, scope: Message) -> Iterator[tuple[str, Any, Message]]:
        if index == len(parts):
            yield at, node, scope
            return
        name, star = parts[index]
        if isinstance(node, Message):
            descriptor = node.DESCRIPTOR.fields_by_name.get(name)
            if descriptor is None:
                return
            child = getattr(node, name)
            if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
                return  # maps are reached by key, not through this path syntax
            if descriptor.is_repeated:
                if not star:
                    return
                for i, item in enumerate(child):
                    item_scope = item if isinstance(item, Message) else node
                    yield from walk(item, index + 1, f"{at}.{name}[{i}]", item_scope)
                return
            if descriptor.message_type is not None and not node.HasField(name):
                # An unset message: its required leaves are missing.
                yield from walk(None, index + 1, f"{at}.{name}", scope)
                return
            if descriptor.enum_type is not None:
                known = descriptor.enum_type.values_by_number.get(child)
                child = "" if child == 0 else (known.name if known is not None else str(child))
            yield from walk(child, index + 1, f"{at}.{name}", node if isinstance(child, Message) else scope)
        elif node is None:
            if not star:
                yield from walk(None, index + 1, f"{at}.{name}", scope)

    yield from walk(order, 0, prefix, order)


@functools.lru_cache(maxsize=4096)
def _segments(path: str) -> tuple[tuple[str, str | None], ...]:
    """``lines[*].sku`` -> ``(("lines", "[*]"), ("sku", None))``; paths come from the packs, a bounded set."""
    segments = []
    for part in path.split("."):
        found = _SEGMENT.match(part)
        assert found is not None  # FieldConstraint validated every segment
        segments.append((found.group(1), found.group(2)))
    return tuple(segments)


def _holds(scope: Message, root: Message, cond: OnlyWhen) -> bool:
    """Read ``cond.field`` from the list item first, then from the root (``original_order.erp_order_ref``)."""
    for base in (scope, root):
        value = _read(base, cond.field)
        if value is _ABSENT:
            continue
        if cond.present is not None:
            return bool(_text(value)) == cond.present
        return _text(value) == cond.equals
    return cond.present is False


_ABSENT: Any = object()


def _read(base: Message, path: str) -> Any:
    value: Any = base
    for name in path.split("."):
        if not isinstance(value, Message) or name not in value.DESCRIPTOR.fields_by_name:
            return _ABSENT
        descriptor = value.DESCRIPTOR.fields_by_name[name]
        if descriptor.message_type is not None and not value.HasField(name):
            return None
        raw = getattr(value, name)
        if descriptor.enum_type is not None:
            known = descriptor.enum_type.values_by_number.get(raw)
            raw = known.name if known is not None else str(raw)
        value = raw
    return value
