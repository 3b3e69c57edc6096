"""Round-trip verification: an ERP payload read back through its echo spec must give the fields we sent.

Every outbound spec ``<id>`` ships an inbound echo spec ``<id>_in`` (ERP payload -> ReturnOrder). CARRIED says
which canonical fields each document carries; the delivery worker verifies them before calling the ERP, so a
serial number, cost center, vendor code, quantity or amount that a mapping (or a customer override) would lose
or alter is caught as a ``roundtrip_mismatch`` instead of being posted wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from google.protobuf.message import DecodeError

from returnbridge.api.v1 import returns_pb2
from returnbridge.domain.erps import ERPS
from returnbridge.errors import NotFoundError, TranslationError

RTV = returns_pb2.DISPOSITION_RETURN_TO_VENDOR
_ECHO_TYPE = "messageType=" + returns_pb2.ReturnOrder.DESCRIPTOR.full_name


def _dec(value: str) -> Decimal | str | None:
    """Decimals compare by value (SAP "2.000" == "2"); a malformed one compares as its text."""
    if not value:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return value


LINE_FIELDS: dict[str, Callable[[returns_pb2.ReturnLine], Any]] = {
    "line_id": lambda ln: ln.line_id,
    "sku": lambda ln: ln.sku,
    "quantity": lambda ln: _dec(ln.quantity),
    "price": lambda ln: _dec(ln.unit_price.amount),
    "tax": lambda ln: _dec(ln.tax_amount.amount),
    "serials": lambda ln: list(ln.serial_numbers),
    "cost_center": lambda ln: ln.cost_center,
    "vendor_code": lambda ln: ln.vendor_code,
    # SAP sends the supplier only on return-to-vendor lines.
    "vendor_rtv": lambda ln: ln.vendor_code if ln.disposition == RTV else "",
    "site": lambda ln: ln.location.site,
    "sub_location": lambda ln: ln.location.sub_location,
    "lot": lambda ln: ln.lot_number,
    "original_line": lambda ln: ln.original_order_line_id,
}
HEADER_FIELDS: dict[str, Callable[[returns_pb2.ReturnOrder], Any]] = {
    "rma_number": lambda o: o.rma_number,
    "return_id": lambda o: o.return_id,
    "customer": lambda o: o.customer.erp_customer_ref,
    "currency": lambda o: o.currency,
    "original_order": lambda o: o.original_order.erp_order_ref,
    # Oracle references the original order per line: without original line ids the return is unreferenced.
    "original_order_by_line": lambda o: (
        o.original_order.erp_order_ref if any(ln.original_order_line_id for ln in o.lines) else ""
    ),
    "restocking_fee": lambda o: _dec(o.restocking_fee.amount),
    "tax_total": lambda o: _dec(o.tax_total.amount),
    "refund_amount": lambda o: _dec(o.refund.amount.amount),
}

#: mapping id -> (header fields, line fields) its document carries and its echo reads back; declared per
#: ERP document in ``domain/erps.py``.
CARRIED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    doc.mapping: (doc.header_fields, doc.line_fields) for erp in ERPS.values() for doc in erp.documents
}


def _rfc_prices(payload: dict[str, Any]) -> list[Any]:
    return [_dec(str(c["COND_VALUE"])) for c in payload["RETURN_CONDITIONS_IN"]]


def _ebs_serials(payload: dict[str, Any]) -> list[list[str]]:
    grouped: list[list[str]] = [[] for _ in payload["p_line_tbl"]]
    for row in payload.get("p_lot_serial_tbl", []):
        if row["from_serial_number"] != row["to_serial_number"] or str(row["quantity"]) != "1":
            raise ValueError("serial ranges are not one serial per row")
        grouped[int(row["line_index"]) - 1].append(row["from_serial_number"])
    return grouped


#: Fields a document carries in a shape the echo language cannot regroup; checked on the payload itself
#: (these read one pack's payload layout, so they live with the mapping code, not the ERP descriptor).
PAYLOAD_CHECKS: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "sap/rfc_customer_return": ("price", _rfc_prices),
    "oracle_ebs/rma": ("serials", _ebs_serials),
}


class MapperSource(Protocol):
    """What the verifier needs of a registry: ``get(mapping_id)`` -> an object with ``translate(bytes)``."""

    def get(self, mapping_id: str) -> Any: ...


def round_trip_mismatches(
    registry: MapperSource, mapping_id: str, order: returns_pb2.ReturnOrder, payload: bytes
) -> list[str]:
    """Fields of ``order`` that do not come back from ``payload`` through ``<mapping_id>_in``.

    Returns an empty list when they all do, and also for a mapping id without a CARRIED entry or echo
    spec (a customer's own pack): there is nothing declared to verify.
    """
    carried = CARRIED.get(mapping_id)
    if carried is None:
        return []
    try:
        echo_mapper = registry.get(f"{mapping_id}_in")
    except NotFoundError:
        return []
    if not str(getattr(echo_mapper, "output_content_type", "")).endswith(_ECHO_TYPE):
        return []  # not an echo spec producing a ReturnOrder: nothing to compare against
    try:
        echo = returns_pb2.ReturnOrder.FromString(echo_mapper.translate(payload))
    except (TranslationError, DecodeError) as exc:
        return [f"echo {mapping_id}_in failed: {exc}"]
    header_fields, line_fields = carried
    problems = [
        f"{name}: sent {HEADER_FIELDS[name](order)!r}, ERP payload carries {HEADER_FIELDS[name](echo)!r}"
        for name in header_fields
        if HEADER_FIELDS[name](echo) != HEADER_FIELDS[name](order)
    ]
    if len(echo.lines) != len(order.lines):
        return [*problems, f"lines: sent {len(order.lines)}, ERP payload carries {len(echo.lines)}"]
    for index, (sent, back) in enumerate(zip(order.lines, echo.lines, strict=True)):
        for name in line_fields:
            want, got = LINE_FIELDS[name](sent), LINE_FIELDS[name](back)
            if want != got:
                problems.append(f"lines[{index}].{name}: sent {want!r}, ERP payload carries {got!r}")
    if mapping_id in PAYLOAD_CHECKS:
        name, read = PAYLOAD_CHECKS[mapping_id]
        expected = [LINE_FIELDS[name](line) for line in order.lines]
        try:
            found = read(json.loads(payload))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            found = f"unreadable ({exc})"
        if found != expected:
            problems.append(f"lines[].{name}: sent {expected!r}, ERP payload carries {found!r}")
    return problems
