"""Financial and quantity invariants of a return, checked at submit over the event and the return's history.

One event (``event_violations``): the restocking fee and tax within the policy's bounds of the line value; a
refund or credit equal to what the ERP documents will post (lines + tax - restocking fee, so the amount the
RMS asked for is the amount booked); exchange items present from authorization on for an exchange; the
original order dated before the return.

Against the history (``history_violations``): one currency per return; every line of a later event was
authorized, with the same SKU and at most the authorized unit price; units received <= authorized; units
refunded or exchanged <= received (<= authorized when the policy allows settling before receipt); all refunds
and credits together <= the authorized lines plus their tax. ``book`` adds an accepted event to the history.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from returnbridge.api.v1 import common_pb2, returns_pb2
from returnbridge.domain.contract import parse_date, parse_decimal
from returnbridge.domain.lifecycle import event_name
from returnbridge.domain.money import line_amount
from returnbridge.domain.policy import MoneyPolicy
from returnbridge.errors import FieldViolation

__all__ = ["RULES", "adopt", "book", "event_violations", "history_violations"]

RULE_FEE: Final = "invariant.fee_bounds"
RULE_TAX: Final = "invariant.tax_bounds"
RULE_REFUND: Final = "invariant.refund_amount"
RULE_REFUND_TOTAL: Final = "invariant.refund_total"
RULE_EXCHANGE: Final = "invariant.exchange_items"
RULE_DATES: Final = "invariant.date_order"
RULE_CURRENCY: Final = "invariant.currency"
RULE_LINE: Final = "invariant.unknown_line"
RULE_PRICE: Final = "invariant.unit_price"
RULE_RECEIVED: Final = "invariant.quantity_received"
RULE_SETTLED: Final = "invariant.quantity_settled"
RULE_PARTIAL: Final = "invariant.partial_receipt"
RULE_TYPE: Final = "invariant.return_type"
RULE_IDENTITY: Final = "invariant.identity"
RULES: Final = (
    RULE_FEE, RULE_TAX, RULE_REFUND, RULE_REFUND_TOTAL, RULE_EXCHANGE, RULE_DATES, RULE_CURRENCY, RULE_LINE,
    RULE_PRICE, RULE_RECEIVED, RULE_SETTLED, RULE_PARTIAL, RULE_TYPE, RULE_IDENTITY,
)  # fmt: skip
# How far ahead of the gateway's clock an RMS timestamp may be (clock skew), and no further.
CLOCK_SKEW: Final = timedelta(minutes=15)
# What identifies a return to the ERPs: fixed at authorization (compared where a later event sends it).
_IDENTITY: Final[tuple[tuple[str, Callable[[returns_pb2.ReturnOrder], str]], ...]] = (
    ("rma_number", lambda o: o.rma_number),
    ("customer.customer_id", lambda o: o.customer.customer_id),
    ("customer.erp_customer_ref", lambda o: o.customer.erp_customer_ref),
    ("original_order.order_id", lambda o: o.original_order.order_id),
    ("original_order.erp_order_ref", lambda o: o.original_order.erp_order_ref),
)

_EXCHANGE_TYPES: Final = frozenset({returns_pb2.RETURN_TYPE_EXCHANGE, returns_pb2.RETURN_TYPE_REPLACEMENT})
_SETTLING: Final = frozenset({"REFUNDED", "EXCHANGED"})
_AFTER_RECEIPT: Final = frozenset({"INSPECTED", "DISPOSITIONED"})


def _amount(money: common_pb2.Money) -> Decimal | None:
    return parse_decimal(money.amount)


def _line_value(line: returns_pb2.ReturnLine, places: int) -> Decimal | None:
    quantity, price = parse_decimal(line.quantity), _amount(line.unit_price)
    if quantity is None or price is None:
        return None
    return line_amount(quantity, price, places)


def _event_money(order: returns_pb2.ReturnOrder, places: int) -> tuple[Decimal, Decimal, Decimal] | None:
    """(line value, tax, restocking fee) of the event; None when an amount is unusable (validation says why)."""
    value = Decimal(0)
    line_tax = Decimal(0)
    for line in order.lines:
        amount = _line_value(line, places)
        if amount is None:
            return None
        value += amount
        if line.HasField("tax_amount"):
            tax = _amount(line.tax_amount)
            if tax is None:
                return None
            line_tax += tax
    tax_total = _amount(order.tax_total) if order.HasField("tax_total") else line_tax
    fee = _amount(order.restocking_fee) if order.HasField("restocking_fee") else Decimal(0)
    if tax_total is None or fee is None:
        return None
    return value, tax_total, fee


def event_violations(
    order: returns_pb2.ReturnOrder,
    policy: MoneyPolicy,
    places: int,
    path: str = "return_order",
    *,
    now: datetime | None = None,
) -> list[FieldViolation]:
    """The invariants one event must hold on its own (``places``: the currency's minor units; ``now``: the
    gateway's clock, default the current time)."""
    out: list[FieldViolation] = []
    event = event_name(order)
    exchange_type = order.return_type in _EXCHANGE_TYPES
    if exchange_type and order.HasField("refund"):
        out.append(
            FieldViolation(
                f"{path}.refund",
                "an exchange or replacement return settles with exchange items, never a refund; "
                "a price difference goes in exchange.price_difference",
                RULE_TYPE,
            )
        )
    if not exchange_type and order.exchange.items:
        out.append(
            FieldViolation(
                f"{path}.exchange", "only an exchange or replacement return carries exchange items", RULE_TYPE
            )
        )
    if (
        order.return_type in _EXCHANGE_TYPES
        and event in ("AUTHORIZED", "EXCHANGED")
        and not order.exchange.items
    ):
        out.append(
            FieldViolation(
                f"{path}.exchange.items",
                "an exchange needs its exchange items from authorization on",
                RULE_EXCHANGE,
            )
        )
    _check_dates(out, order, path)
    _check_clock(out, order, path, now or datetime.now(UTC))
    money = _event_money(order, places)
    if money is None or not order.lines:
        return out
    value, tax, fee = money
    if fee < 0 or fee > value * policy.max_restocking_fee_ratio:
        out.append(
            FieldViolation(
                f"{path}.restocking_fee.amount",
                f"{fee} is outside 0..{policy.max_restocking_fee_ratio:%} of the line value {value}",
                RULE_FEE,
            )
        )
    if tax > value * policy.max_tax_ratio:
        out.append(
            FieldViolation(
                f"{path}.tax_total.amount",
                f"tax {tax} exceeds {policy.max_tax_ratio:%} of the line value {value}",
                RULE_TAX,
            )
        )
    for index, line in enumerate(order.lines):
        line_value = _line_value(line, places)
        line_tax = _amount(line.tax_amount) if line.HasField("tax_amount") else Decimal(0)
        if line_value is not None and line_tax is not None and line_tax > line_value * policy.max_tax_ratio:
            out.append(
                FieldViolation(
                    f"{path}.lines[{index}].tax_amount.amount",
                    f"tax {line_tax} exceeds {policy.max_tax_ratio:%} of the line value {line_value}",
                    RULE_TAX,
                )
            )
    if event == "REFUNDED" and order.refund.HasField("amount"):
        refund = _amount(order.refund.amount)
        if not policy.refund_includes_tax and tax:
            out.append(
                FieldViolation(
                    f"{path}.tax_total.amount",
                    "tax is not refunded under this tenant's policy: send no tax",
                    RULE_REFUND,
                )
            )
        expected = value + (tax if policy.refund_includes_tax else Decimal(0)) - fee
        if refund is not None and refund != expected:
            relation = "exceeds" if refund > expected else "is less than"
            out.append(
                FieldViolation(
                    f"{path}.refund.amount",
                    f"{refund} {relation} what the ERP documents post for this event: lines {value} + tax {tax} "
                    f"- restocking fee {fee} = {expected}",
                    RULE_REFUND,
                )
            )
    return out


def _check_dates(out: list[FieldViolation], order: returns_pb2.ReturnOrder, path: str) -> None:
    ordered = parse_date(order.original_order.order_date) if order.original_order.order_date else None
    if ordered is None:
        return
    for name in ("event_time", "created_at"):
        if order.HasField(name):
            when = getattr(order, name).ToDatetime(tzinfo=UTC).date()
            if when < ordered:
                out.append(
                    FieldViolation(
                        f"{path}.original_order.order_date",
                        f"the original order ({ordered}) must be placed before the return's {name} ({when})",
                        RULE_DATES,
                    )
                )
                return


def _check_clock(out: list[FieldViolation], order: returns_pb2.ReturnOrder, path: str, now: datetime) -> None:
    for name in ("event_time", "created_at"):
        if order.HasField(name):
            when = getattr(order, name).ToDatetime(tzinfo=UTC)
            if when > now + CLOCK_SKEW:
                out.append(
                    FieldViolation(
                        f"{path}.{name}",
                        f"{when.isoformat()} is in the future (now {now.isoformat()})",
                        RULE_DATES,
                    )
                )
    if order.HasField("event_time") and order.HasField("created_at"):
        event_time = order.event_time.ToDatetime(tzinfo=UTC)
        created = order.created_at.ToDatetime(tzinfo=UTC)
        if event_time < created:
            out.append(
                FieldViolation(
                    f"{path}.event_time",
                    f"{event_time.isoformat()} is before the return was created ({created.isoformat()})",
                    RULE_DATES,
                )
            )


def _same_return(
    out: list[FieldViolation], history: dict[str, Any], order: returns_pb2.ReturnOrder, path: str
) -> None:
    """The return type and identity as authorized (histories from before these were kept have neither)."""
    authorized_type = history.get("return_type")
    if authorized_type and order.return_type and order.return_type != authorized_type:
        out.append(
            FieldViolation(
                f"{path}.return_type",
                f"{returns_pb2.ReturnType.Name(order.return_type)} differs from the authorized "
                f"{returns_pb2.ReturnType.Name(authorized_type)}: a return keeps its type (authorize a new return)",
                RULE_TYPE,
            )
        )
    identity = history.get("identity") or {}
    for name, read in _IDENTITY:
        sent, kept = read(order), identity.get(name, "")
        if sent and kept and sent != kept:
            out.append(
                FieldViolation(
                    f"{path}.{name}", f"{sent!r} differs from {kept!r} as authorized", RULE_IDENTITY
                )
            )
    latest = history.get("event_time")
    if latest and order.HasField("event_time"):
        when = order.event_time.ToDatetime(tzinfo=UTC)
        if when < datetime.fromisoformat(latest):
            out.append(
                FieldViolation(
                    f"{path}.event_time",
                    f"{when.isoformat()} is before the return's previous event ({latest})",
                    RULE_DATES,
                )
            )


def history_violations(
    history: dict[str, Any] | None,
    order: returns_pb2.ReturnOrder,
    places: int,
    *,
    settle_before_receipt: bool = False,
    partial_receipts: bool = False,
    path: str = "return_order",
) -> list[FieldViolation]:
    """The invariants between an event and the return's accepted history (None: the first event).

    Without ``partial_receipts`` a RECEIVED event receives every outstanding authorized unit at once.
    """
    if history is None:
        return []
    out: list[FieldViolation] = []
    event = event_name(order)
    if history["currency"] and order.currency != history["currency"]:
        out.append(
            FieldViolation(
                f"{path}.currency",
                f"{order.currency!r} differs from the return's currency {history['currency']!r}: one currency per return",
                RULE_CURRENCY,
            )
        )
        return out
    _same_return(out, history, order, path)
    if event in ("CANCELLED", "CLOSED"):
        return out
    if history.get("legacy"):
        return out  # accepted before histories were kept: the lines and amounts are not known
    lines = history["lines"]
    if event == "RECEIVED" and not partial_receipts:
        _check_complete_receipt(out, lines, order, path)
    for index, line in enumerate(order.lines):
        lp = f"{path}.lines[{index}]"
        known = lines.get(line.line_id)
        if known is None:
            out.append(
                FieldViolation(
                    f"{lp}.line_id", f"line {line.line_id!r} was not authorized on this return", RULE_LINE
                )
            )
            continue
        if line.sku != known["sku"]:
            out.append(
                FieldViolation(
                    f"{lp}.sku", f"{line.sku!r} differs from the authorized SKU {known['sku']!r}", RULE_LINE
                )
            )
        quantity = parse_decimal(line.quantity)
        if quantity is None:
            continue
        authorized, received, settled = (Decimal(known[k]) for k in ("authorized", "received", "settled"))
        if event == "RECEIVED" and received + quantity > authorized:
            out.append(
                FieldViolation(
                    f"{lp}.quantity",
                    f"receiving {quantity} more makes {received + quantity} received of {authorized} authorized",
                    RULE_RECEIVED,
                )
            )
        elif event in _AFTER_RECEIPT and quantity > received:
            out.append(
                FieldViolation(f"{lp}.quantity", f"{quantity} exceeds the {received} received", RULE_SETTLED)
            )
        elif event in _SETTLING:
            basis = authorized if settle_before_receipt else received
            if settled + quantity > basis:
                what = "authorized" if settle_before_receipt else "received"
                out.append(
                    FieldViolation(
                        f"{lp}.quantity",
                        f"settling {quantity} more makes {settled + quantity} refunded or exchanged of {basis} {what}",
                        RULE_SETTLED,
                    )
                )
            price = _amount(line.unit_price) if line.HasField("unit_price") else None
            if price is not None and price > Decimal(known["price"]):
                out.append(
                    FieldViolation(
                        f"{lp}.unit_price.amount",
                        f"{price} exceeds the authorized unit price {known['price']}",
                        RULE_PRICE,
                    )
                )
    if event == "REFUNDED" and order.refund.HasField("amount"):
        refund = _amount(order.refund.amount)
        done, cap = Decimal(history["settled_amount"]), Decimal(history["authorized_gross"])
        if refund is not None and done + refund > cap:
            out.append(
                FieldViolation(
                    f"{path}.refund.amount",
                    f"refunds and credits would total {done + refund}, above the authorized value {cap} "
                    f"(lines + tax; {done} already refunded or credited)",
                    RULE_REFUND_TOTAL,
                )
            )
    return out


def _check_complete_receipt(
    out: list[FieldViolation], lines: dict[str, Any], order: returns_pb2.ReturnOrder, path: str
) -> None:
    sent = {line.line_id: (index, line.quantity) for index, line in enumerate(order.lines)}
    for line_id, known in lines.items():
        outstanding = Decimal(known["authorized"]) - Decimal(known["received"])
        index, quantity = sent.get(line_id, (None, "0"))
        received = parse_decimal(quantity)
        if outstanding > 0 and received is not None and received != outstanding:
            field = f"{path}.lines[{index}].quantity" if index is not None else f"{path}.lines"
            out.append(
                FieldViolation(
                    field,
                    f"line {line_id!r}: {received} received of {outstanding} outstanding; partial receipts are off "
                    "for this tenant (returns.lifecycle.partial_receipts)",
                    RULE_PARTIAL,
                )
            )


def adopt(record: dict[str, Any], order: returns_pb2.ReturnOrder) -> dict[str, Any]:
    """A history for a return accepted before histories were kept, from its sync record's versions.

    Its state follows the latest version's event; lines and amounts are unknown (``legacy``), so only the
    lifecycle and the version rule apply to it, and an old version's retry is judged by its event alone.
    """
    versions = {key: {"event": entry["event"], "digest": ""} for key, entry in record["versions"].items()}
    latest = max(int(key) for key in versions)
    return {
        # Events and states share their names (a refund of unknown kind counts as refunded).
        "state": versions[str(latest)]["event"],
        "latest_version": max(latest, int(record.get("latest_version", 0))),
        "versions": versions,
        "currency": "",
        "tier": "",
        "advance": False,
        "legacy": True,
        "lines": {},
        "settled_amount": "0",
        "authorized_gross": "0",
    }


def book(
    history: dict[str, Any] | None,
    order: returns_pb2.ReturnOrder,
    digest: str,
    state: str,
    places: int,
    *,
    advance: bool,
) -> dict[str, Any]:
    """The history with ``order`` accepted (the caller checked it first); a new dict, JSON-ready."""
    event = event_name(order)
    if history is None:
        history = {
            "state": "",
            "latest_version": 0,
            "versions": {},
            "currency": order.currency,
            "tier": order.customer.tier,
            "advance": False,
            "lines": {},
            "settled_amount": "0",
            "authorized_gross": "0",
            "return_type": int(order.return_type),
            "identity": {name: read(order) for name, read in _IDENTITY},
        }
    else:
        history = {**history, "versions": dict(history["versions"]), "lines": dict(history["lines"])}
    history["state"] = state
    history["latest_version"] = max(int(history["latest_version"]), int(order.version))
    history["versions"][str(order.version)] = {"event": event, "digest": digest}
    history["advance"] = bool(history["advance"] or advance)
    if order.HasField("event_time") and not history.get("legacy"):
        when = order.event_time.ToDatetime(tzinfo=UTC).isoformat()
        latest = history.get("event_time")
        history["event_time"] = max(when, latest, key=datetime.fromisoformat) if latest else when
    money = _event_money(order, places)
    if event == "AUTHORIZED":
        for line in order.lines:
            history["lines"][line.line_id] = {
                "sku": line.sku,
                "authorized": line.quantity,
                "price": line.unit_price.amount or "0",
                "received": "0",
                "settled": "0",
            }
        if money is not None:
            history["authorized_gross"] = str(money[0] + money[1])
    for line in order.lines:
        known = history["lines"].get(line.line_id)
        if known is None or event not in ("RECEIVED", "REFUNDED", "EXCHANGED"):
            continue
        key = "received" if event == "RECEIVED" else "settled"
        history["lines"][line.line_id] = {**known, key: str(Decimal(known[key]) + Decimal(line.quantity))}
    if event == "REFUNDED" and order.refund.HasField("amount"):
        history["settled_amount"] = str(
            Decimal(history["settled_amount"]) + Decimal(order.refund.amount.amount)
        )
    return history
