"""Hand-written NetSuite RA translation: what an integrator writes without the mapper (benchmark baseline)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from returnbridge.api.v1 import returns_pb2

_TABLES = Path(__file__).resolve().parent.parent / "python/returnbridge/mapping/packs/netsuite/tables"


def _table(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((_TABLES / f"{name}.yaml").read_text(encoding="utf-8"))
    return {str(k): v for k, v in loaded["entries"].items()}


# Integrators keep these as module-level dicts; loading them from the pack's files keeps both sides equal.
ITEMS = _table("items")
LOCATIONS = _table("locations")
CURRENCIES = _table("currencies")
COST_CENTERS = _table("cost_centers")

_RETURN_TYPE = returns_pb2.ReturnType.Name
_DISPOSITION = returns_pb2.Disposition.Name
_CONDITION = returns_pb2.ItemCondition.Name


class TranslationFailed(ValueError):
    """The document cannot become an RA (same cases the mapping spec rejects)."""


def _plain(value: Decimal) -> str:
    return format(value, "f")


def _cost_center_refs(target: dict[str, Any], cost_center: str) -> None:
    entry = COST_CENTERS.get(cost_center) if cost_center else None
    if entry:
        target["department"] = {"id": entry["department"]}
        target["class"] = {"id": entry["class"]}


def _line(line: returns_pb2.ReturnLine, index: int) -> dict[str, Any]:
    item_id = ITEMS.get(line.sku)
    if item_id is None:
        raise TranslationFailed(f"lines[{index}].sku: no entry for {line.sku!r} in table items")
    if not line.quantity:
        raise TranslationFailed(f"lines[{index}].quantity: required value missing")
    if not line.line_id:
        raise TranslationFailed(f"lines[{index}].line_id: required value missing")
    quantity = Decimal(line.quantity)
    out: dict[str, Any] = {"item": {"id": item_id}, "quantity": float(quantity)}
    if line.unit_price.amount:
        rate = Decimal(line.unit_price.amount)
        out["rate"] = float(rate)
        out["amount"] = float(quantity * rate)
    if line.location.site:
        location = LOCATIONS.get(line.location.site)
        if location is None:
            raise TranslationFailed(f"lines[{index}].location.site: no entry for {line.location.site!r}")
        out["location"] = {"id": location}
    if line.description:
        out["description"] = line.description[:999]
    _cost_center_refs(out, line.cost_center)
    out["custcol_rb_line_id"] = line.line_id
    if line.reason_code:
        out["custcol_rb_reason_code"] = line.reason_code
    if line.cost_center:
        out["custcol_rb_cost_center"] = line.cost_center
    if line.vendor_code:
        out["custcol_rb_vendor_code"] = line.vendor_code
    if line.disposition:
        out["custcol_rb_disposition"] = _DISPOSITION(line.disposition)
    if line.condition:
        out["custcol_rb_condition"] = _CONDITION(line.condition)
    if line.lot_number:
        out["custcol_rb_lot_number"] = line.lot_number
    if line.tax_amount.amount:
        out["custcol_rb_tax_amount"] = _plain(Decimal(line.tax_amount.amount))
    serials = []
    for number in line.serial_numbers:
        number = number.strip()
        if len(number) > 255:
            raise TranslationFailed(f"lines[{index}].serial_numbers: longer than 255 characters")
        serials.append({"receiptInventoryNumber": number, "quantity": 1})
    if serials:
        out["inventoryDetail"] = {"inventoryAssignment": {"items": serials}}
    return out


def translate_return_authorization(document: bytes) -> bytes:
    """Canonical ReturnOrder protobuf bytes -> NetSuite RA JSON body (same content as netsuite/return_authorization)."""
    order = returns_pb2.ReturnOrder.FromString(document)
    body: dict[str, Any] = {}
    if order.original_order.erp_order_ref:
        body["createdFrom"] = {"id": order.original_order.erp_order_ref}
    if not order.customer.erp_customer_ref:
        raise TranslationFailed("customer.erp_customer_ref: required value missing")
    body["entity"] = {"id": order.customer.erp_customer_ref}
    if not order.HasField("event_time"):
        raise TranslationFailed("event_time: required value missing")
    body["tranDate"] = order.event_time.ToDatetime().date().isoformat()
    if not order.rma_number or len(order.rma_number) > 45:
        raise TranslationFailed("rma_number: missing or longer than 45 characters")
    body["otherRefNum"] = order.rma_number
    if order.notes:
        body["memo"] = order.notes[:999]
    currency = CURRENCIES.get(order.currency)
    if currency is None:
        raise TranslationFailed(f"currency: no entry for {order.currency!r} in table currencies")
    body["currency"] = {"id": currency}
    if order.lines and order.lines[0].location.site:
        site = order.lines[0].location.site
        if site not in LOCATIONS:
            raise TranslationFailed(f"lines[0].location.site: no entry for {site!r}")
        body["location"] = {"id": LOCATIONS[site]}
    if order.lines:
        _cost_center_refs(body, order.lines[0].cost_center)
    if not order.return_id:
        raise TranslationFailed("return_id: required value missing")
    body["custbody_rb_return_id"] = order.return_id
    if order.reason_code:
        body["custbody_rb_reason"] = order.reason_code
    if order.return_type:
        body["custbody_rb_return_type"] = _RETURN_TYPE(order.return_type)
    if order.restocking_fee.amount:
        body["custbody_rb_restocking_fee"] = _plain(Decimal(order.restocking_fee.amount))
    channel = order.custom_fields.get("channel")
    if channel is not None and channel.WhichOneof("kind") == "string_value" and channel.string_value:
        body["custbody_rb_channel"] = channel.string_value
    if not order.lines:
        raise TranslationFailed("lines: required value missing")
    body["item"] = {"items": [_line(line, i) for i, line in enumerate(order.lines)]}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
