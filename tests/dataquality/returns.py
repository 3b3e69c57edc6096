"""A valid return life per ERP route (the demo's master data), the base every defect is applied to."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from returnbridge.api.v1 import common_pb2, returns_pb2

EV = returns_pb2.LifecycleEvent
# Routing by region (default routes): us -> NetSuite, eu -> SAP, apac -> Oracle Fusion; ERP-side ids are the
# simulators' seed data.
ERPS: dict[str, dict[str, str]] = {
    "netsuite": {"region": "us", "customer": "101", "order": "9001", "target": "netsuite"},
    "sap": {"region": "eu", "customer": "10100001", "order": "5000001", "target": "sap"},
    "oracle": {"region": "apac", "customer": "1001", "order": "520001", "target": "oracle_fusion"},
}
EVENT_TIME = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
_numbers = itertools.count(1)


def money(amount: str | Decimal, currency: str = "USD") -> common_pb2.Money:
    return common_pb2.Money(amount=str(amount), currency=currency)


@dataclass
class Life:
    """One return's identity; ``order(version, event)`` builds a valid event of it."""

    erp: str
    return_id: str
    rma: str
    serial_prefix: str
    tier: str = "standard"
    # An exchange return (its exchange items from authorization on) instead of a refund.
    exchange: bool = False

    def order(
        self, version: int, event: int, *, quantities: tuple[str, str] = ("2", "2")
    ) -> returns_pb2.ReturnOrder:
        facts = ERPS[self.erp]
        jacket_qty, headset_qty = quantities
        lines = [
            returns_pb2.ReturnLine(
                line_id="L1",
                sku="SKU-1001",
                product_type="apparel",
                description="Trail jacket",
                quantity=jacket_qty,
                unit_of_measure="EA",
                unit_price=money("49.95"),
                tax_amount=money((Decimal("4.12") * Decimal(jacket_qty)).quantize(Decimal("0.01"))),
                condition=returns_pb2.ITEM_CONDITION_OPENED,
                disposition=returns_pb2.DISPOSITION_RESTOCK,
                cost_center="CC-100",
                vendor_code="V-200",
                reason_code="DEFECTIVE",
                location=common_pb2.WarehouseLocation(site="DAL1", sub_location="RTN"),
            ),
            returns_pb2.ReturnLine(
                line_id="L2",
                sku="SKU-1003",
                product_type="electronics",
                description="Headset",
                quantity=headset_qty,
                unit_of_measure="EA",
                unit_price=money("120.00"),
                tax_amount=money((Decimal("9.90") * Decimal(headset_qty)).quantize(Decimal("0.01"))),
                serialized=True,
                serial_numbers=[f"{self.serial_prefix}-{n}" for n in range(1, int(headset_qty) + 1)],
                condition=returns_pb2.ITEM_CONDITION_DEFECTIVE,
                disposition=returns_pb2.DISPOSITION_RETURN_TO_VENDOR,
                cost_center="CC-101",
                vendor_code="V-201",
                reason_code="DEFECTIVE",
                location=common_pb2.WarehouseLocation(site="DAL1", sub_location="RTN"),
            ),
        ]
        order = returns_pb2.ReturnOrder(
            return_id=self.return_id,
            rma_number=self.rma,
            version=version,
            return_type=returns_pb2.RETURN_TYPE_REFUND,
            event=event,  # type: ignore[arg-type]
            reason_code="DEFECTIVE",
            currency="USD",
            customer=returns_pb2.Customer(
                customer_id="CUST-0001", erp_customer_ref=facts["customer"], tier=self.tier
            ),
            original_order=returns_pb2.OriginalOrder(
                order_id="SO-1", erp_order_ref=facts["order"], order_date="2026-11-01"
            ),
            lines=lines,
            custom_fields={"region": common_pb2.CustomValue(string_value=facts["region"])},
            notes="Customer requests refund",
        )
        if self.exchange:
            order.return_type = returns_pb2.RETURN_TYPE_EXCHANGE
            order.exchange.items.add(
                sku="SKU-1002", quantity="2", unit_of_measure="EA", unit_price=money("49.95")
            )
        order.event_time.FromDatetime(EVENT_TIME)
        order.created_at.FromDatetime(EVENT_TIME)
        fee = Decimal("5.00") if event == EV.Value("LIFECYCLE_EVENT_REFUNDED") else Decimal(0)
        settle(order, fee=fee)
        if event == EV.Value("LIFECYCLE_EVENT_REFUNDED"):
            order.refund.method = returns_pb2.REFUND_METHOD_ORIGINAL_PAYMENT
        return order


def settle(order: returns_pb2.ReturnOrder, *, fee: Decimal | None = None) -> None:
    """Recompute tax_total, total_amount and (for REFUNDED) the refund so the event's money is consistent."""
    subtotal = sum(
        (Decimal(ln.quantity) * Decimal(ln.unit_price.amount)).quantize(Decimal("0.01")) for ln in order.lines
    )
    tax = sum((Decimal(ln.tax_amount.amount) for ln in order.lines), Decimal(0))
    if fee is not None:
        order.restocking_fee.CopyFrom(money(fee, order.currency))
    fee_amount = Decimal(order.restocking_fee.amount or "0")
    order.tax_total.CopyFrom(money(tax, order.currency))
    order.total_amount.CopyFrom(money(subtotal + tax - fee_amount, order.currency))
    if order.event == EV.Value("LIFECYCLE_EVENT_REFUNDED"):
        order.refund.amount.CopyFrom(money(subtotal + tax - fee_amount, order.currency))


def new_life(erp: str, name: str, *, tier: str = "standard", exchange: bool = False) -> Life:
    n = next(_numbers)
    rma = f"DQ-{n:05d}-{erp[:2].upper()}"
    return Life(erp, f"dq-{erp}-{name}-{n}", rma, f"S{n:05d}{erp[0].upper()}", tier, exchange)
