"""Reconciliation amount bases: what each flow step expects the ERP to post."""

from __future__ import annotations

import json

from returnbridge.api.v1 import common_pb2, returns_pb2
from returnbridge.domain.steps import PlannedStep, decode_steps, encode_steps
from returnbridge.routing.flows import FlowStep
from returnbridge.sync.status import net_amount


def _line(quantity: str, price: str) -> returns_pb2.ReturnLine:
    return returns_pb2.ReturnLine(
        quantity=quantity, unit_price=common_pb2.Money(amount=price, currency="USD")
    )


def test_net_amount_rounds_each_line_half_up_to_minor_units() -> None:
    order = returns_pb2.ReturnOrder(currency="USD", lines=[_line("1.5", "3.33"), _line("2", "10.25")])
    assert net_amount(order) == "25.50"  # 4.995 -> 5.00, + 20.50
    jpy = returns_pb2.ReturnOrder(currency="JPY", lines=[_line("3", "333")])
    assert net_amount(jpy) == "999"
    assert net_amount(returns_pb2.ReturnOrder(currency="USD")) == ""
    assert net_amount(returns_pb2.ReturnOrder(currency="USD", lines=[_line("x", "1")])) == ""


def test_flow_step_basis_and_header_compatibility() -> None:
    common = {"step": "credit", "mapping": "x/y", "document_type": "T"}
    assert FlowStep(**common, posts_amount=True).amount_basis == "gross"
    assert FlowStep(**common, posts_amount="net").amount_basis == "net"
    assert FlowStep(**common).amount_basis == ""
    planned = [PlannedStep("credit", "x/y", "T", "", "net")]
    assert decode_steps(encode_steps(planned)) == planned
    # Messages accepted before bases existed carry booleans.
    legacy = json.dumps([["credit", "x/y", "T", "", True], ["receipt", "x/z", "U", "", False]])
    assert [s.posts_amount for s in decode_steps(legacy)] == ["gross", ""]
