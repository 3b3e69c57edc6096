"""The financial invariants of one event and against the history, with the policy switches."""

from __future__ import annotations

from decimal import Decimal

from returnbridge.api.v1 import common_pb2, returns_pb2
from returnbridge.domain.invariants import book, event_violations, history_violations
from returnbridge.domain.policy import MoneyPolicy, ReturnPolicyConfig
from returnbridge.domain.validation import ReferenceData, full_validator


def _money(amount: str) -> common_pb2.Money:
    return common_pb2.Money(amount=amount, currency="USD")


def _order(
    event: int, quantity: str = "3", *, tax: str = "1.00", fee: str = "2.00"
) -> returns_pb2.ReturnOrder:
    order = returns_pb2.ReturnOrder(return_id="R1", version=1, event=event, currency="USD")  # type: ignore[arg-type]
    order.lines.add(
        line_id="L1", sku="S", quantity=quantity, unit_price=_money("1.333"), tax_amount=_money(tax)
    )
    order.tax_total.CopyFrom(_money(tax))
    order.restocking_fee.CopyFrom(_money(fee))
    # 3 x 1.333 = 3.999 -> 4.00 (half-up, per line) + 1.00 tax - 2.00 fee
    order.refund.amount.CopyFrom(_money("3.00"))
    return order


def test_refund_must_equal_what_the_documents_post() -> None:
    refund = _order(returns_pb2.LIFECYCLE_EVENT_REFUNDED)
    assert event_violations(refund, MoneyPolicy(), 2) == []
    refund.refund.amount.amount = "3.01"
    (violation,) = event_violations(refund, MoneyPolicy(), 2)
    assert violation.field == "return_order.refund.amount" and violation.rule == "invariant.refund_amount"
    assert "lines 4.00 + tax 1.00 - restocking fee 2.00 = 3.00" in violation.description


def test_policy_without_tax_refunds_refuses_tax_on_a_refund() -> None:
    refund = _order(returns_pb2.LIFECYCLE_EVENT_REFUNDED)
    refund.refund.amount.amount = "2.00"
    rules = {v.rule for v in event_violations(refund, MoneyPolicy(refund_includes_tax=False), 2)}
    assert rules == {"invariant.refund_amount"}  # the tax itself is refused
    untaxed = _order(returns_pb2.LIFECYCLE_EVENT_REFUNDED, tax="0.00")
    untaxed.refund.amount.amount = "2.00"
    assert event_violations(untaxed, MoneyPolicy(refund_includes_tax=False), 2) == []


def test_fee_and_tax_bounds_follow_the_policy() -> None:
    order = _order(returns_pb2.LIFECYCLE_EVENT_AUTHORIZED, tax="1.00", fee="2.00")
    assert event_violations(order, MoneyPolicy(), 2) == []
    tight = MoneyPolicy(max_restocking_fee_ratio=Decimal("0.25"), max_tax_ratio=Decimal("0.2"))
    assert {v.rule for v in event_violations(order, tight, 2)} == {
        "invariant.fee_bounds",
        "invariant.tax_bounds",
    }


def test_history_counts_received_and_settled_units_and_money() -> None:
    history = book(None, _order(returns_pb2.LIFECYCLE_EVENT_AUTHORIZED), "d1", "AUTHORIZED", 2, advance=False)
    assert history["authorized_gross"] == "5.00" and history["lines"]["L1"]["authorized"] == "3"
    receipt = _order(returns_pb2.LIFECYCLE_EVENT_RECEIVED, "2")
    receipt.version = 2
    assert [v.rule for v in history_violations(history, receipt, 2)] == ["invariant.partial_receipt"]
    assert history_violations(history, receipt, 2, partial_receipts=True) == []
    history = book(history, receipt, "d2", "RECEIVED", 2, advance=False)
    refund = _order(returns_pb2.LIFECYCLE_EVENT_REFUNDED, "3")
    assert [v.rule for v in history_violations(history, refund, 2)] == ["invariant.quantity_settled"]
    assert history_violations(history, refund, 2, settle_before_receipt=True) == []


def test_strip_text_policy_through_the_validator() -> None:
    order = returns_pb2.ReturnOrder(
        return_id="R1", rma_number="RMA-1", version=1, event=returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
        return_type=returns_pb2.RETURN_TYPE_REFUND, currency="USD", notes="ring\x07 twice",
    )  # fmt: skip
    order.event_time.GetCurrentTime()
    order.lines.add(
        line_id="L1",
        sku="S",
        quantity="1",
        unit_of_measure="EA",
        description="a\x00b",
        unit_price=_money("1.00"),
    )
    policy = ReturnPolicyConfig.model_validate({"tenants": {"t1": {"text": {"control_characters": "strip"}}}})
    order.tenant_id = "t1"
    full_validator(ReferenceData(), policy)(order)
    assert (order.notes, order.lines[0].description) == ("ring twice", "ab")


def test_refunds_together_stay_within_the_authorized_value() -> None:
    history = book(None, _order(returns_pb2.LIFECYCLE_EVENT_AUTHORIZED), "d1", "AUTHORIZED", 2, advance=False)
    history = {**history, "settled_amount": "4.00"}  # an earlier refund or credit of this return
    refund = _order(returns_pb2.LIFECYCLE_EVENT_REFUNDED, "1")
    refund.refund.amount.amount = "1.01"
    (violation,) = history_violations(history, refund, 2, settle_before_receipt=True)
    assert (
        violation.rule == "invariant.refund_total"
        and "above the authorized value 5.00" in violation.description
    )
    refund.refund.amount.amount = "1.00"
    assert history_violations(history, refund, 2, settle_before_receipt=True) == []


def test_a_later_event_may_not_change_currency_sku_or_raise_the_price() -> None:
    history = book(None, _order(returns_pb2.LIFECYCLE_EVENT_AUTHORIZED), "d1", "AUTHORIZED", 2, advance=False)
    refund = _order(returns_pb2.LIFECYCLE_EVENT_REFUNDED, "1")
    refund.lines[0].sku = "OTHER"
    refund.lines[0].unit_price.amount = "1.50"
    rules = sorted(v.rule for v in history_violations(history, refund, 2, settle_before_receipt=True))
    assert rules == ["invariant.unit_price", "invariant.unknown_line"]
    refund.currency = "EUR"
    assert [v.rule for v in history_violations(history, refund, 2)] == ["invariant.currency"]
