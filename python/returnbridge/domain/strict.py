"""The strict checks of one return event that complement the field validation: text, enums, invariants."""

from __future__ import annotations

from returnbridge.api.v1 import returns_pb2
from returnbridge.domain.contract import enum_violations
from returnbridge.domain.invariants import event_violations
from returnbridge.domain.policy import ReturnPolicy
from returnbridge.domain.reference_checks import ReferenceSets, reference_violations
from returnbridge.domain.text import text_violations
from returnbridge.errors import FieldViolation

__all__ = ["merge_violations", "strict_violations"]


def strict_violations(
    order: returns_pb2.ReturnOrder,
    policy: ReturnPolicy,
    places: int | None,
    ref: ReferenceSets | None = None,
    prefix: str = "return_order",
) -> list[FieldViolation]:
    """Control characters (stripped from free text in place when the policy says so), unknown enum numbers
    anywhere, the reference data, and the event's own financial invariants (skipped while the currency is
    unknown: ``places`` None).
    """
    out = text_violations(order, prefix, strip=policy.text.control_characters)
    out += enum_violations(order, prefix)
    if ref is not None:
        out += reference_violations(order, ref, prefix)
    if places is not None and not any(v.field.endswith((".event", ".return_type")) for v in out):
        out += event_violations(order, policy.money, places, prefix)
    return out


def merge_violations(first: list[FieldViolation], then: list[FieldViolation]) -> list[FieldViolation]:
    """``first`` and those of ``then`` on fields ``first`` does not name (one finding per field and cause)."""
    named = {v.field for v in first}
    return first + [v for v in then if v.field not in named]
