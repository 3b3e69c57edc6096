"""The data-quality defect kinds: each an otherwise valid return event with one defect, by category.

A defect is applied after its prelude (valid events accepted first, versions 1..n), at version n + 1 unless it
names another. ``expect`` is the field (INVALID_ARGUMENT) or precondition type (FAILED_PRECONDITION) that must
be named, and ``rule`` the ``rb_rejected_total`` rule it is counted under.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import grpc

from dataquality.returns import Life, money, settle
from returnbridge.api.v1 import common_pb2, returns_pb2

A, R, INSPECT, D, F, X, C, CL = (
    returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
    returns_pb2.LIFECYCLE_EVENT_RECEIVED,
    returns_pb2.LIFECYCLE_EVENT_INSPECTED,
    returns_pb2.LIFECYCLE_EVENT_DISPOSITIONED,
    returns_pb2.LIFECYCLE_EVENT_REFUNDED,
    returns_pb2.LIFECYCLE_EVENT_EXCHANGED,
    returns_pb2.LIFECYCLE_EVENT_CANCELLED,
    returns_pb2.LIFECYCLE_EVENT_CLOSED,
)
BAD = grpc.StatusCode.INVALID_ARGUMENT
STATE = grpc.StatusCode.FAILED_PRECONDITION
Order = returns_pb2.ReturnOrder
Build = Callable[[Life, int], Order]


@dataclass(frozen=True)
class Defect:
    category: str
    name: str
    # Valid events before the defect: an event (built by ``Life.order``) or a builder of one.
    prelude: tuple[int | Build, ...]
    build: Build
    code: grpc.StatusCode
    expect: str
    rule: str
    version: int = 0  # 0 = right after the prelude
    exchange: bool = False  # the life is an exchange return

    @property
    def id(self) -> str:
        return f"{self.category}-{self.name}"


def event(ev: int, change: Callable[[Order], object] = lambda o: None, *, resettle: bool = True) -> Build:
    """A valid ``ev`` event of the life, then ``change`` applied (and the money recomputed unless told not to)."""

    def build(life: Life, version: int) -> Order:
        order = life.order(version, ev)
        change(order)
        if resettle:
            settle(order)
        return order

    return build


def line0(change: Callable[[returns_pb2.ReturnLine], object]) -> Callable[[Order], object]:
    return lambda o: change(o.lines[0])


def _set(attr: str, value: object) -> Callable[[object], None]:
    return lambda target: setattr(target, attr, value)


def _partial(life: Life, version: int) -> Order:
    return life.order(version, R, quantities=("2", "1"))


def _refund_more_than_received(life: Life, version: int) -> Order:
    return life.order(version, F, quantities=("2", "3"))


def _received_more(life: Life, version: int) -> Order:
    return life.order(version, R, quantities=("3", "2"))


def _unknown_line(o: Order) -> None:
    o.lines[0].line_id = "L9"


def _to_eur(o: Order) -> None:
    o.currency = "EUR"
    for m in (
        o.tax_total,
        o.total_amount,
        o.restocking_fee,
        *(x for ln in o.lines for x in (ln.unit_price, ln.tax_amount)),
    ):
        m.currency = "EUR"


def _refund_plus(delta: str) -> Callable[[Order], None]:
    def change(o: Order) -> None:
        o.refund.amount.amount = str(Decimal(o.refund.amount.amount) + Decimal(delta))

    return change


def _raise_price(o: Order) -> None:
    o.lines[0].unit_price.amount = "59.95"


def _fee(amount: str) -> Callable[[Order], None]:
    return lambda o: o.restocking_fee.CopyFrom(money(amount))


def _exchange_without_items(o: Order) -> None:
    o.return_type = returns_pb2.RETURN_TYPE_EXCHANGE
    o.ClearField("exchange")


def _one_serial_short(o: Order) -> None:
    del o.lines[1].serial_numbers[-1]


def _order_after_return(o: Order) -> None:
    o.original_order.order_date = "2026-12-24"


def _total_off(o: Order) -> None:
    o.total_amount.amount = str(Decimal(o.total_amount.amount) + Decimal("0.01"))


DEFECTS: tuple[Defect, ...] = (
    # -- lifecycle order
    Defect("lifecycle", "refund-never-received", (A,), event(F), STATE, "LIFECYCLE", "lifecycle.transition"),
    Defect(
        "lifecycle", "receipt-before-authorization", (), event(R), STATE, "LIFECYCLE", "lifecycle.transition"
    ),
    Defect("lifecycle", "authorized-twice", (A,), event(A), STATE, "LIFECYCLE", "lifecycle.transition"),
    Defect("lifecycle", "receipt-after-cancel", (A, C), event(R), STATE, "LIFECYCLE", "lifecycle.transition"),
    Defect("lifecycle", "refunded-twice", (A, R, F), event(F), STATE, "LIFECYCLE", "lifecycle.transition"),
    Defect(
        "lifecycle",
        "exchange-never-received",
        (A,),
        event(X),
        STATE,
        "LIFECYCLE",
        "lifecycle.transition",
        exchange=True,
    ),
    Defect(
        "lifecycle", "event-after-close", (A, C, CL), event(R), STATE, "LIFECYCLE", "lifecycle.transition"
    ),
    Defect(
        "lifecycle",
        "inspected-before-receipt",
        (A,),
        event(INSPECT),
        STATE,
        "LIFECYCLE",
        "lifecycle.transition",
    ),
    # -- versions
    Defect(
        "version",
        "lower-version-other-event",
        (A, R),
        event(INSPECT),
        STATE,
        "VERSION",
        "lifecycle.version",
        version=1,
    ),
    Defect(
        "version",
        "same-version-other-payload",
        (A, R),
        event(R, line0(_set("description", "changed"))),
        STATE,
        "VERSION",
        "lifecycle.version",
        version=2,
    ),
    Defect("version", "stale-version", (A, R, F), event(F), STATE, "VERSION", "lifecycle.version", version=2),
    # -- money
    Defect(
        "money",
        "refund-above-lines",
        (A, R),
        event(F, _refund_plus("10.00"), resettle=False),
        BAD,
        "refund.amount",
        "invariant.refund_amount",
    ),
    Defect(
        "money",
        "refund-below-lines",
        (A, R),
        event(F, _refund_plus("-0.01"), resettle=False),
        BAD,
        "refund.amount",
        "invariant.refund_amount",
    ),
    Defect(
        "money",
        "price-raised-after-authorization",
        (A, R),
        event(F, _raise_price),
        BAD,
        "lines[0].unit_price.amount",
        "invariant.unit_price",
    ),
    Defect(
        "money",
        "restocking-fee-above-bound",
        (A, R),
        event(F, _fee("200.00")),
        BAD,
        "restocking_fee.amount",
        "invariant.fee_bounds",
    ),
    Defect(
        "money",
        "negative-restocking-fee",
        (A, R),
        event(F, _fee("-5.00")),
        BAD,
        "restocking_fee.amount",
        "invariant.fee_bounds",
    ),
    Defect(
        "money",
        "tax-above-bound",
        (),
        event(
            A,
            line0(lambda ln: ln.tax_amount.CopyFrom(money("90.00"))),
        ),
        BAD,
        "tax_amount.amount",
        "invariant.tax_bounds",
    ),
    Defect(
        "money",
        "total-inconsistent-with-lines",
        (),
        event(A, _total_off, resettle=False),
        BAD,
        "total_amount",
        "validation",
    ),
    Defect(
        "money",
        "more-decimals-than-currency",
        (),
        event(A, line0(lambda ln: setattr(ln.unit_price, "amount", "49.955"))),
        BAD,
        "lines[0].unit_price.amount",
        "validation",
    ),
    Defect(
        "money",
        "exchange-without-items",
        (),
        event(A, _exchange_without_items),
        BAD,
        "exchange.items",
        "invariant.exchange_items",
    ),
    # -- quantities
    Defect(
        "quantity",
        "received-above-authorized",
        (A,),
        _received_more,
        BAD,
        "lines[0].quantity",
        "invariant.quantity_received",
    ),
    Defect(
        "quantity",
        "partial-receipt-when-not-allowed",
        (A,),
        _partial,
        BAD,
        "lines[1].quantity",
        "invariant.partial_receipt",
    ),
    Defect(
        "quantity",
        "refunded-above-received",
        (A, R),
        _refund_more_than_received,
        BAD,
        "lines[1].quantity",
        "invariant.quantity_settled",
    ),
    Defect(
        "quantity",
        "zero-quantity",
        (),
        event(A, line0(_set("quantity", "0"))),
        BAD,
        "lines[0].quantity",
        "validation",
    ),
    Defect(
        "quantity",
        "serials-fewer-than-units",
        (),
        event(A, _one_serial_short),
        BAD,
        "lines[1].serial_numbers",
        "validation",
    ),
    Defect(
        "quantity",
        "line-never-authorized",
        (A,),
        event(R, _unknown_line),
        BAD,
        "lines[0].line_id",
        "invariant.unknown_line",
    ),
    # -- currency
    Defect(
        "currency",
        "currency-changed-between-events",
        (A,),
        event(R, _to_eur),
        BAD,
        "currency",
        "invariant.currency",
    ),
    Defect(
        "currency",
        "mixed-currencies",
        (),
        event(A, line0(lambda ln: setattr(ln.unit_price, "currency", "EUR")), resettle=False),
        BAD,
        "lines[0].unit_price.currency",
        "validation",
    ),
    Defect(
        "currency", "unknown-currency", (), event(A, _set("currency", "XYZ")), BAD, "currency", "validation"
    ),
    # -- text
    Defect(
        "text",
        "nul-in-description",
        (),
        event(A, line0(_set("description", "Trail\x00jacket"))),
        BAD,
        "lines[0].description",
        "text.control_character",
    ),
    Defect(
        "text",
        "bel-in-notes",
        (),
        event(A, _set("notes", "ring\x07")),
        BAD,
        "notes",
        "text.control_character",
    ),
    Defect(
        "text",
        "esc-in-sku",
        (),
        event(A, line0(_set("sku", "SKU-1001\x1b[0m"))),
        BAD,
        "lines[0].sku",
        "text.control_character",
    ),
    Defect(
        "text",
        "del-in-customer-name",
        (),
        event(A, lambda o: setattr(o.customer, "name", "Pat\x7f")),
        BAD,
        "customer.name",
        "text.control_character",
    ),
    Defect(
        "text",
        "c1-in-description",
        (),
        event(A, line0(_set("description", "next\x85line"))),
        BAD,
        "lines[0].description",
        "text.control_character",
    ),
    Defect(
        "text",
        "zero-width-in-cost-center",
        (),
        event(A, line0(_set("cost_center", "CC-1\u200b00"))),
        BAD,
        "lines[0].cost_center",
        "text.format_character",
    ),
    Defect(
        "text",
        "control-in-custom-value",
        (),
        event(
            A,
            lambda o: o.custom_fields["note"].MergeFrom(common_pb2.CustomValue(string_value="a\x1bb")),
        ),
        BAD,
        "custom_fields['note'].string_value",
        "text.control_character",
    ),
    # -- enums
    Defect(
        "enum",
        "line-condition-77",
        (),
        event(A, line0(_set("condition", 77))),
        BAD,
        "lines[0].condition",
        "contract.enum",
    ),
    Defect(
        "enum",
        "disposition-1000",
        (),
        event(A, line0(_set("disposition", 1000))),
        BAD,
        "lines[0].disposition",
        "contract.enum",
    ),
    Defect(
        "enum",
        "refund-method-55",
        (A, R),
        event(F, lambda o: setattr(o.refund, "method", 55)),
        BAD,
        "refund.method",
        "contract.enum",
    ),
    Defect(
        "enum", "return-type-99", (), event(A, _set("return_type", 99)), BAD, "return_type", "contract.enum"
    ),
    Defect(
        "enum", "event-42", (), event(A, _set("event", 42), resettle=False), BAD, "event", "contract.enum"
    ),
    # -- decimals
    Defect(
        "decimal",
        "trailing-newline",
        (),
        event(A, line0(lambda ln: setattr(ln.unit_price, "amount", "49.95\n")), resettle=False),
        BAD,
        "lines[0].unit_price.amount",
        "text.control_character",
    ),
    Defect(
        "decimal",
        "arabic-indic-digits",
        (),
        event(
            A, line0(lambda ln: setattr(ln.unit_price, "amount", "\u0664\u0669.\u0669\u0665")), resettle=False
        ),
        BAD,
        "lines[0].unit_price.amount",
        "validation",
    ),
    Defect(
        "decimal",
        "full-width-digits",
        (),
        event(A, line0(_set("quantity", "\uff12")), resettle=False),
        BAD,
        "lines[0].quantity",
        "validation",
    ),
    Defect(
        "decimal",
        "exponent",
        (),
        event(A, line0(_set("quantity", "2E0")), resettle=False),
        BAD,
        "lines[0].quantity",
        "validation",
    ),
    Defect(
        "decimal",
        "surrounding-space",
        (),
        event(A, line0(_set("quantity", " 2")), resettle=False),
        BAD,
        "lines[0].quantity",
        "validation",
    ),
    # -- references
    Defect(
        "reference",
        "unknown-sku",
        (),
        event(A, line0(_set("sku", "SKU-9999"))),
        BAD,
        "lines[0].sku",
        "reference.sku",
    ),
    Defect(
        "reference",
        "unknown-customer-tier",
        (),
        event(A, lambda o: setattr(o.customer, "tier", "platinum")),
        BAD,
        "customer.tier",
        "reference.customer_tier",
    ),
    Defect(
        "reference",
        "unknown-product-type",
        (),
        event(A, line0(_set("product_type", "furniture"))),
        BAD,
        "lines[0].product_type",
        "reference.product_type",
    ),
    Defect(
        "reference",
        "unknown-reason-code",
        (),
        event(A, line0(_set("reason_code", "BORED"))),
        BAD,
        "lines[0].reason_code",
        "reference.reason_code",
    ),
    Defect(
        "reference",
        "serial-controlled-sku-without-serials",
        (),
        event(
            A, lambda o: (setattr(o.lines[1], "serialized", False), o.lines[1].ClearField("serial_numbers"))
        ),
        BAD,
        "lines[1].serialized",
        "reference.serial_control",
    ),
    Defect(
        "reference",
        "lot-controlled-sku-without-lot",
        (),
        event(A, line0(_set("sku", "SKU-1005"))),
        BAD,
        "lines[0].lot_number",
        "reference.lot_control",
    ),
    Defect(
        "reference",
        "unknown-site",
        (),
        event(A, line0(lambda ln: setattr(ln.location, "site", "XXX9"))),
        BAD,
        "lines[0].location.site",
        "reference.location",
    ),
    Defect(
        "reference",
        "unknown-cost-center",
        (),
        event(A, line0(_set("cost_center", "CC-999"))),
        BAD,
        "lines[0].cost_center",
        "reference.cost_center",
    ),
    # -- dates
    Defect(
        "date",
        "original-order-after-return",
        (),
        event(A, _order_after_return),
        BAD,
        "original_order.order_date",
        "invariant.date_order",
    ),
    Defect(
        "date",
        "impossible-order-date",
        (),
        event(A, lambda o: setattr(o.original_order, "order_date", "2026-13-01")),
        BAD,
        "original_order.order_date",
        "validation",
    ),
    Defect(
        "date",
        "full-width-order-date",
        (),
        event(A, lambda o: setattr(o.original_order, "order_date", "\uff12\uff10\uff12\uff16-11-01")),
        BAD,
        "original_order.order_date",
        "validation",
    ),
)
