"""Canonical ReturnOrder builders shared by the mapping tests, golden cases and benchmarks."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from google.protobuf import json_format

from returnbridge.api.v1 import common_pb2, returns_pb2

# Demo master data; the pack lookup tables, the simulators and the end-to-end demo use the same codes.
SITES: tuple[str, ...] = ("DAL1", "RNO2", "LHR1")
# RMS sub-locations: "RTN" returns area, "MAIN" main stock; packs map them to storage locations / subinventories.
SUB_LOCATIONS: dict[str, tuple[str, ...]] = {
    "DAL1": ("RTN", "MAIN"),
    "RNO2": ("RTN", "MAIN"),
    "LHR1": ("RTN", "MAIN"),
}
SKUS: tuple[str, ...] = tuple(f"SKU-{n}" for n in range(1001, 1011))
# Items every simulator knows and can take back: SAP seeds SKU-1001..1005, Oracle refuses SKU-1009/1010 on
# returns, NetSuite tracks serials for SKU-1003/1004 only.
SERIALIZED_SKUS: tuple[str, ...] = ("SKU-1003", "SKU-1004")
PLAIN_SKUS: tuple[str, ...] = ("SKU-1001", "SKU-1002", "SKU-1005")
COST_CENTERS: tuple[str, ...] = tuple(f"CC-{n}" for n in range(100, 105))
VENDORS: tuple[str, ...] = tuple(f"V-{n}" for n in range(200, 205))
REASONS: tuple[str, ...] = ("DEFECTIVE", "DAMAGED", "WRONG_ITEM", "NOT_AS_DESCRIBED", "NO_LONGER_NEEDED")
UOMS: tuple[str, ...] = ("EA", "PK", "BOX")
CUSTOMERS: tuple[str, ...] = ("CUST-0001", "CUST-0002", "CUST-0003")
# The customer's id in each target ERP (simulator seed data): NetSuite entity, SAP SoldToParty, Oracle party.
ERP_CUSTOMER_REFS: dict[str, tuple[str, ...]] = {
    "netsuite": ("101", "102", "103"),
    "sap": ("10100001", "10100002", "10100003"),
    "oracle": ("1001", "1002", "1003"),
    "oracle_ebs": ("1001", "1002", "1003"),
}
# The original order's id in each target ERP (simulator seed data where there is one).
ERP_ORDER_REFS: dict[str, str] = {
    "netsuite": "9001",
    "sap": "5000001",
    "oracle": "520001",
    "oracle_ebs": "94001",
}

# Longest values every pack accepts: the tightest ERP field among NetSuite, SAP, Oracle and EBS wins.
MAX_LEN: dict[str, int] = {
    "rma_number": 30,  # "<rma>-<version>" must fit SAP PurchaseOrderByCustomer C(35)
    "sku": 40,  # SAP Material C(40)
    "description": 40,  # SAP CustomerReturnItemText C(40)
    "serial_number": 18,  # SAP SerialNumber C(18)
    "cost_center": 10,  # SAP CostCenter C(10)
    "vendor_code": 10,  # SAP Supplier C(10)
    "lot_number": 10,  # SAP Batch C(10)
    "line_id": 30,
    "erp_order_ref": 10,  # SAP ReferenceSDDocument C(10)
    "original_order_line_id": 6,  # SAP ReferenceSDDocumentItem C(6)
    "erp_customer_ref": 10,  # SAP SoldToParty C(10)
}

UNICODE_TEXT: tuple[str, ...] = (
    "Café crème Ærø",
    "東京の返品",
    "Zürich Straße",
    "Ñandú — “quoted”",
    "emoji 🚀 rocket",
    'tab\tnew "line"\\',
)

_EVENT_TIME = datetime(2026, 11, 20, 14, 30, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LineSpec:
    """Overrides for one generated line (anything left None is drawn from the seeded generator)."""

    sku: str | None = None
    quantity: str | None = None
    serials: Sequence[str] | None = None
    unit_price: str | None = None
    site: str | None = None


def _money(amount: Decimal | str, currency: str) -> common_pb2.Money:
    return common_pb2.Money(amount=str(amount), currency=currency)


def _serial(rng: random.Random, index: int, line: int, max_length: bool) -> str:
    if max_length:
        return f"SN{line:06d}{index:04d}".ljust(MAX_LEN["serial_number"], "X")[: MAX_LEN["serial_number"]]
    return f"SN-{rng.randrange(10**7, 10**8)}-{index}"


def build_line(
    index: int,
    rng: random.Random,
    *,
    currency: str = "USD",
    serialized: bool = False,
    unicode: bool = False,
    max_length: bool = False,
    spec: LineSpec | None = None,
) -> returns_pb2.ReturnLine:
    """One realistic return line; ``index`` is 1-based and keeps line ids and serials unique."""
    spec = spec or LineSpec()
    site = spec.site or SITES[(index - 1) % len(SITES)]
    pool = SERIALIZED_SKUS if serialized or spec.serials else PLAIN_SKUS
    sku = spec.sku or pool[rng.randrange(len(pool))]
    if max_length and spec.sku is None:
        sku = (sku + "-" + "L" * MAX_LEN["sku"])[: MAX_LEN["sku"]]
    if spec.serials is not None:
        serials = list(spec.serials)
        serialized = bool(serials)
    elif serialized:
        count = rng.randint(1, 3)
        serials = [_serial(rng, k, index, max_length) for k in range(1, count + 1)]
    else:
        serials = []
    if spec.quantity is not None:
        quantity = spec.quantity
    elif serialized:
        quantity = str(len(serials))
    else:
        quantity = str(rng.randint(1, 12))
    unit_price = (
        Decimal(spec.unit_price) if spec.unit_price else Decimal(rng.randrange(199, 99999)).scaleb(-2)
    )
    tax = (unit_price * Decimal(quantity) * Decimal("0.0825")).quantize(Decimal("0.01"))
    description = f"Returned item {index} {sku}"
    if unicode:
        description = UNICODE_TEXT[index % len(UNICODE_TEXT)] + f" #{index}"
    if max_length:
        description = (description + " " + "D" * MAX_LEN["description"])[: MAX_LEN["description"]]
    line_id = f"L{index}"
    if max_length:
        line_id = f"L{index:05d}".ljust(MAX_LEN["line_id"], "0")
    disposition = (
        returns_pb2.DISPOSITION_RETURN_TO_VENDOR if index % 4 == 0 else returns_pb2.DISPOSITION_RESTOCK
    )
    line = returns_pb2.ReturnLine(
        line_id=line_id,
        sku=sku,
        product_type="electronics" if serialized else "apparel",
        description=description,
        quantity=quantity,
        unit_of_measure="EA",
        unit_price=_money(unit_price, currency),
        serialized=serialized,
        serial_numbers=serials,
        lot_number=(
            f"LOT{index:03d}".ljust(MAX_LEN["lot_number"], "9") if max_length else f"LOT-{index:03d}"
        ),
        condition=returns_pb2.ITEM_CONDITION_OPENED if index % 2 else returns_pb2.ITEM_CONDITION_DEFECTIVE,
        disposition=disposition,
        cost_center=(
            "CC-" + "9" * (MAX_LEN["cost_center"] - 3)
            if max_length
            else COST_CENTERS[(index - 1) % len(COST_CENTERS)]
        ),
        vendor_code=(
            "V-" + "8" * (MAX_LEN["vendor_code"] - 2) if max_length else VENDORS[(index - 1) % len(VENDORS)]
        ),
        location=common_pb2.WarehouseLocation(site=site, sub_location=SUB_LOCATIONS[site][index % 2]),
        reason_code=REASONS[(index - 1) % len(REASONS)],
        tax_amount=_money(tax, currency),
        original_order_line_id=(
            str(index * 10).rjust(MAX_LEN["original_order_line_id"], "0") if max_length else str(index * 10)
        ),
    )
    line.custom_fields["warranty_months"].int_value = 12 + index % 3
    line.custom_fields["inspection_note"].string_value = "ok" if not unicode else "geprüft ✓"
    return line


def build_return(
    lines: int = 3,
    *,
    seed: int = 1,
    serialized_every: int = 2,
    unicode: bool = False,
    max_length: bool = False,
    currency: str = "USD",
    return_type: int = returns_pb2.RETURN_TYPE_REFUND,
    event: int = returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
    original_order: bool = True,
    line_specs: Sequence[LineSpec] = (),
    version: int = 1,
    erp: str = "netsuite",
) -> returns_pb2.ReturnOrder:
    """A realistic canonical return with ``lines`` lines (1..500); the same seed gives the same bytes.

    Every ``serialized_every``-th line is serialized (0 = none). ``line_specs`` override the first lines.
    ``erp`` picks the ERP-side customer and original order ids (each ERP's simulator seed data).
    """
    if not 1 <= lines <= 500:
        raise ValueError(f"lines must be 1..500, got {lines}")
    rng = random.Random(seed)
    # Seed 1 gets the first customer, the one who placed the seeded original orders.
    customer_id = CUSTOMERS[(seed - 1) % len(CUSTOMERS)]
    erp_customer = ERP_CUSTOMER_REFS[erp][(seed - 1) % len(CUSTOMERS)]
    rma = f"RMA-{seed:08d}"
    if max_length:
        rma = ("RMA-" + str(seed).rjust(8, "0") + "-" + "M" * MAX_LEN["rma_number"])[: MAX_LEN["rma_number"]]
    built: list[returns_pb2.ReturnLine] = []
    for index in range(1, lines + 1):
        spec = line_specs[index - 1] if index - 1 < len(line_specs) else None
        serialized = serialized_every > 0 and index % serialized_every == 0
        built.append(
            build_line(
                index,
                rng,
                currency=currency,
                serialized=serialized,
                unicode=unicode,
                max_length=max_length,
                spec=spec,
            )
        )
    net = sum((Decimal(ln.unit_price.amount) * Decimal(ln.quantity) for ln in built), Decimal(0))
    tax = sum((Decimal(ln.tax_amount.amount) for ln in built), Decimal(0))
    fee = Decimal("5.00") if return_type == returns_pb2.RETURN_TYPE_REFUND else Decimal("0.00")
    order = returns_pb2.ReturnOrder(
        return_id=f"ret-{seed:06d}",
        tenant_id="acme",
        rma_number=rma,
        version=version,
        return_type=return_type,
        event=event,
        reason_code=REASONS[seed % len(REASONS)],
        customer=returns_pb2.Customer(
            customer_id=customer_id,
            erp_customer_ref=erp_customer,
            tier="gold",
            name="Zoë Ångström" if unicode else "Pat Example",
            email="pat@example.com",
        ),
        currency=currency,
        lines=built,
        refund=returns_pb2.RefundDetails(
            method=returns_pb2.REFUND_METHOD_ORIGINAL_PAYMENT,
            amount=_money(net + tax - fee, currency),
            payment_reference=f"PAY-{seed:06d}",
        ),
        restocking_fee=_money(fee, currency),
        tax_total=_money(tax, currency),
        total_amount=_money(net + tax - fee, currency),
        notes=("Kunde wünscht Rückerstattung — 返金" if unicode else "Customer requests refund"),
    )
    if not original_order:
        for line in order.lines:
            line.ClearField("original_order_line_id")
    else:
        order.original_order.CopyFrom(
            returns_pb2.OriginalOrder(
                order_id=f"SO-{seed:06d}",
                erp_order_ref=ERP_ORDER_REFS[erp],
                order_date="2026-11-01",
            )
        )
    order.created_at.FromDatetime(_EVENT_TIME)
    order.updated_at.FromDatetime(_EVENT_TIME)
    order.event_time.FromDatetime(_EVENT_TIME)
    if erp == "oracle_ebs":
        # EBS credits an invoice: the simulator seeds invoice 10001 with lines 100011, 100012.
        order.custom_fields["ebs_customer_trx_id"].int_value = 10001
        for index, line in enumerate(order.lines, start=1):
            line.custom_fields["ebs_customer_trx_line_id"].int_value = 100010 + index
    order.custom_fields["channel"].string_value = "web"
    order.custom_fields["manual_review"].bool_value = False
    order.custom_fields["promised_refund_date"].date_value = "2026-11-30"
    return order


def to_proto_json(order: returns_pb2.ReturnOrder) -> str:
    """The protobuf-JSON form the CLI's ``mapping test --input`` accepts for outbound specs."""
    return json_format.MessageToJson(order, preserving_proto_field_name=True, indent=2, ensure_ascii=False)


def from_proto_json(text: str) -> returns_pb2.ReturnOrder:
    """Inverse of :func:`to_proto_json`."""
    return json_format.Parse(text, returns_pb2.ReturnOrder())
