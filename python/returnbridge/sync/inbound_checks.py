"""Inbound ERP records are untrusted input: what a translated inventory level or document status must satisfy.

An ERP (or whoever answers in its place) can send anything; a record that fails here is dead-lettered on
RB_INBOUND_DLQ instead of reaching the RMS, and the feed goes on past it.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Final

from returnbridge.api.v1 import inventory_pb2
from returnbridge.domain.validation import ReferenceData

__all__ = ["MAX_RECORD_BYTES", "level_problems", "record_problems", "status_problems"]

# An ERP record (before translation) larger than this is not a stock row or a document header.
MAX_RECORD_BYTES: Final = 64 * 1024
_MAX_CODE: Final = 64
_MAX_REFERENCE: Final = 128
# Quantities and amounts: finite, at most 12 integer digits and 6 decimals (ERP quantity/amount fields).
_MAX_INTEGER_DIGITS: Final = 12
_MAX_SCALE: Final = 6
_CURRENCY: Final = re.compile(r"[A-Z]{3}\Z")
NORMALIZED_STATUSES: Final = frozenset(
    {
        "draft", "pending_approval", "pending_receipt", "partially_received", "received", "pending_refund",
        "refunded", "posted", "voided", "cancelled", "closed", "rejected", "failed",
    }
)  # fmt: skip


def record_problems(record: bytes) -> list[str]:
    if len(record) > MAX_RECORD_BYTES:
        return [f"record of {len(record)} bytes exceeds {MAX_RECORD_BYTES}"]
    return []


def _text(problems: list[str], name: str, value: str, limit: int, *, required: bool) -> None:
    if not value:
        if required:
            problems.append(f"{name} is empty")
        return
    if len(value) > limit:
        problems.append(f"{name} is longer than {limit} characters")
    if any(unicodedata.category(c)[0] == "C" for c in value):
        problems.append(f"{name} contains control or unassigned characters")


def _number(problems: list[str], name: str, value: str, *, required: bool, signed: bool = True) -> None:
    if not value:
        if required:
            problems.append(f"{name} is empty")
        return
    try:
        number = Decimal(value)
    except InvalidOperation:
        problems.append(f"{name} {value[:40]!r} is not a decimal")
        return
    exponent = number.as_tuple().exponent
    if not number.is_finite() or not isinstance(exponent, int):
        problems.append(f"{name} {value[:40]!r} is not finite")
    elif number.adjusted() >= _MAX_INTEGER_DIGITS or -exponent > _MAX_SCALE:
        problems.append(f"{name} {value[:40]!r} is out of range")
    elif not signed and number < 0:
        problems.append(f"{name} {value!r} is negative")


def level_problems(level: inventory_pb2.InventoryLevel, ref: ReferenceData | None) -> list[str]:
    """Schema, sizes, numbers, and known SKU and location where reference data is configured."""
    problems: list[str] = []
    _text(problems, "sku", level.sku, _MAX_CODE, required=True)
    _text(problems, "location.site", level.location.site, _MAX_CODE, required=True)
    _text(problems, "location.sub_location", level.location.sub_location, _MAX_CODE, required=False)
    _text(problems, "unit_of_measure", level.unit_of_measure, 16, required=False)
    _number(problems, "on_hand", level.on_hand, required=True)
    for name in ("available", "reserved", "in_inspection"):
        _number(problems, name, getattr(level, name), required=False)
    if ref is not None:
        sets = ref.for_tenant(level.tenant_id)
        if sets.skus and level.sku and level.sku not in sets.skus:
            problems.append(f"unknown sku {level.sku[:_MAX_CODE]!r}")
        if sets.locations and level.location.site and level.location.site not in sets.locations:
            problems.append(f"unknown location {level.location.site[:_MAX_CODE]!r}")
    return problems


def status_problems(status: inventory_pb2.DocumentStatus) -> list[str]:
    """Schema, sizes, a normalized status the RMS knows, and a well-formed amount."""
    problems: list[str] = []
    _text(problems, "document_type", status.document_type, _MAX_CODE, required=True)
    _text(problems, "document_id", status.document_id, _MAX_CODE, required=True)
    _text(problems, "external_reference", status.external_reference, _MAX_REFERENCE, required=False)
    _text(problems, "erp_status", status.erp_status, _MAX_CODE, required=False)
    if status.status not in NORMALIZED_STATUSES:
        problems.append(f"status {status.status[:_MAX_CODE]!r} is not a known normalized status")
    if status.HasField("amount"):
        _number(problems, "amount.amount", status.amount.amount, required=False)
        if status.amount.amount and not _CURRENCY.match(status.amount.currency):
            problems.append(f"amount.currency {status.amount.currency[:8]!r} is not an ISO 4217 code")
    return problems
