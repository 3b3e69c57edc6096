"""NetSuite credit/refund bodies add up to the RMS refund amount (lines + overridden tax + fee discount)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import samples

from returnbridge.api.v1 import returns_pb2
from returnbridge.mapping import MappingRegistry


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


def _body(registry: MappingRegistry, mapping_id: str, order: returns_pb2.ReturnOrder) -> dict[str, Any]:
    out = registry.get(mapping_id).translate(order.SerializeToString(deterministic=True))
    body: dict[str, Any] = json.loads(out, parse_float=Decimal, parse_int=Decimal)
    return body


def _netsuite_total(body: dict[str, Any]) -> Decimal:
    subtotal = sum((ln["amount"] for ln in body["item"]["items"]), Decimal(0))
    tax = sum((t["taxAmount"] for t in body.get("taxDetails", {}).get("items", [])), Decimal(0))
    return subtotal + tax + body.get("discountRate", Decimal(0))


@pytest.mark.parametrize("mapping_id", ["netsuite/credit_memo", "netsuite/cash_refund"])
@pytest.mark.parametrize("seed", [1, 2, 7])
@pytest.mark.parametrize("lines", [1, 3, 40])
def test_netsuite_total_is_the_refund_amount(
    registry: MappingRegistry, mapping_id: str, seed: int, lines: int
) -> None:
    order = samples.build_return(lines, seed=seed, serialized_every=0)
    body = _body(registry, mapping_id, order)
    assert _netsuite_total(body) == Decimal(order.refund.amount.amount)
    references = [ln["taxDetailsReference"] for ln in body["item"]["items"]]
    assert [t["taxDetailsReference"] for t in body["taxDetails"]["items"]] == references
    assert body["taxDetailsOverride"] is True and body["discountItem"] == {"id": "701"}


@pytest.mark.parametrize("mapping_id", ["netsuite/credit_memo", "netsuite/cash_refund"])
def test_no_fee_and_untaxed_lines_send_no_discount_or_tax_detail(
    registry: MappingRegistry, mapping_id: str
) -> None:
    order = samples.build_return(3, return_type=returns_pb2.RETURN_TYPE_EXCHANGE, serialized_every=0)
    order.lines[1].ClearField("tax_amount")
    body = _body(registry, mapping_id, order)
    assert "discountItem" not in body and "discountRate" not in body
    assert [t["taxDetailsReference"] for t in body["taxDetails"]["items"]] == ["L1", "L3"]
    assert "taxDetailsReference" not in body["item"]["items"][1]
    for line in order.lines:
        line.ClearField("tax_amount")
    untaxed = _body(registry, mapping_id, order)
    assert "taxDetailsOverride" not in untaxed and "taxDetails" not in untaxed


def test_ebs_amount_credit_is_the_refund_amount(registry: MappingRegistry) -> None:
    order = samples.build_return(4, erp="oracle_ebs", serialized_every=0)
    for line in order.lines:
        del line.custom_fields["ebs_customer_trx_line_id"]
    body = _body(registry, "oracle_ebs/credit_memo", order)
    assert body["p_line_credit_flag"] == "N"
    assert -(Decimal(body["p_line_amount"]) + Decimal(body["p_tax_amount"])) == Decimal(
        order.refund.amount.amount
    )
