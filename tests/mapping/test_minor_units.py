"""Every amount a pack writes to an ERP has at most the currency's ISO 4217 minor digits (JPY 0, USD 2, KWD 3).

The packs round computed amounts (quantity x unit price, and sums of them) with ``round_minor`` half-up, the rule
docs/mapping-packs.md documents; both engines must agree on every output.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mapping.conftest import order
from returnbridge.api.v1 import common_pb2, returns_pb2
from returnbridge.mapping import MappingRegistry
from returnbridge.mapping.reference import ReferenceMapper
from returnbridge.mapping.registry import descriptor_set, shipped_sources

MINOR_DIGITS = {"USD": 2, "JPY": 0, "KWD": 3}
# (unit price, fee, tax) per currency: each already within the currency's minor units, as the gateway requires.
PRICES = {"USD": ("0.30", "0.05", "0.07"), "JPY": ("30", "5", "7"), "KWD": ("0.305", "0.005", "0.007")}

# Output keys that carry money, per ERP (rates/prices and amounts, signed or not).
MONEY_KEYS = {
    "amount", "rate", "taxBasis", "taxAmount", "discountRate", "custbody_rb_restocking_fee",
    "custbody_rb_tax_total", "custbody_rb_refund_amount", "custcol_rb_tax_amount",
    "ConditionRateValue", "COND_VALUE", "UnitSellingPrice", "UnitListPrice",
    "p_line_amount", "p_tax_amount", "extended_amount", "price", "unit_selling_price",
}  # fmt: skip
# Mappings that write no money at all (receipts, deliveries, the SAP return itself: SAP prices it).
NO_MONEY = {
    "netsuite/item_receipt", "oracle/receipt", "sap/returns_delivery", "sap/customer_return",
}  # fmt: skip
OUTBOUND = sorted(m for m, s in shipped_sources().items() if s.spec.direction == "outbound")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> MappingRegistry:
    """The shipped packs, with JPY and KWD added wherever a table is keyed by currency (as a tenant would)."""
    folder = tmp_path_factory.mktemp("overrides")
    files: list[Path] = []
    for mapping_id, source in shipped_sources().items():
        patches = {
            name: {"entries": {code: entries["USD"] for code in ("JPY", "KWD")}}
            for name, (entries, _) in source.tables.items()
            if "USD" in entries
        }
        if patches:
            path = folder / f"{mapping_id.replace('/', '_')}.yaml"
            path.write_text(json.dumps({"override": mapping_id, "tables": patches}))
            files.append(path)
    return MappingRegistry.load(files)


def _order(currency: str) -> returns_pb2.ReturnOrder:
    price, fee, tax = PRICES[currency]
    o = order(2, currency=currency)
    o.restocking_fee.CopyFrom(common_pb2.Money(amount=fee, currency=currency))
    o.tax_total.CopyFrom(common_pb2.Money(amount=tax, currency=currency))
    o.custom_fields["ebs_customer_trx_id"].int_value = 7001
    for line in o.lines:
        line.quantity = "1.333"
        line.unit_price.CopyFrom(common_pb2.Money(amount=price, currency=currency))
        line.tax_amount.CopyFrom(common_pb2.Money(amount=tax, currency=currency))
        line.custom_fields["ebs_customer_trx_line_id"].int_value = 8001
    o.refund.amount.CopyFrom(common_pb2.Money(amount=price, currency=currency))
    return o


def _money(value: Any, key: str = "") -> list[tuple[str, Decimal]]:
    out: list[tuple[str, Decimal]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _money(v, k)
    elif isinstance(value, list):
        for v in value:
            out += _money(v, key)
    elif key in MONEY_KEYS and not isinstance(value, bool) and isinstance(value, int | Decimal | str):
        out.append((key, Decimal(str(value))))
    return out


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


@pytest.mark.parametrize("currency", sorted(MINOR_DIGITS))
@pytest.mark.parametrize("mapping_id", OUTBOUND)
def test_every_amount_written_has_the_currency_minor_digits(
    registry: MappingRegistry, mapping_id: str, currency: str
) -> None:
    # Three lines of 1.333 x price make the unrounded products carry 3 extra digits.
    mapper = registry.get(mapping_id)
    document = _order(currency).SerializeToString()
    payload = mapper.translate(document)
    assert payload == ReferenceMapper(mapper.normalized_spec, descriptor_set()).translate(document)
    amounts = _money(json.loads(payload, parse_float=Decimal))
    if mapping_id in NO_MONEY:
        assert amounts == []
        return
    assert amounts, f"{mapping_id} writes no amount this test knows: update MONEY_KEYS"
    too_precise = [(k, str(v)) for k, v in amounts if _places(v) > MINOR_DIGITS[currency]]
    assert too_precise == []


def test_netsuite_line_of_1_333_at_0_30_posts_0_40_half_up(registry: MappingRegistry) -> None:
    """The issue's case: 1.333 x 0.30 = 0.3999 is written as 0.40, not 0.39990."""
    payload = json.loads(registry.get("netsuite/credit_memo").translate(_order("USD").SerializeToString()))
    assert [line["amount"] for line in payload["item"]["items"]] == [0.4, 0.4]
    kwd = json.loads(registry.get("netsuite/credit_memo").translate(_order("KWD").SerializeToString()))
    # 1.333 x 0.305 = 0.406565 -> 0.407 (half-up at the third digit)
    assert [line["amount"] for line in kwd["item"]["items"]] == [0.407, 0.407]
