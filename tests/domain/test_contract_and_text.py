"""The strict input contract (ASCII decimals and dates, enum numbers) and the text rule, as tables."""

from __future__ import annotations

from decimal import Decimal

import pytest

from returnbridge.api.v1 import common_pb2, returns_pb2
from returnbridge.domain.contract import enum_violations, parse_date, parse_decimal
from returnbridge.domain.text import text_violations


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("49.95", Decimal("49.95")),
        ("-0.30", Decimal("-0.30")),
        ("7", Decimal(7)),
        ("49.95\n", None),
        ("\u0664\u0669.\u0669\u0665", None),  # Arabic-Indic digits
        ("\uff14\uff19", None),  # full-width digits
        (" 1", None),
        ("1e3", None),
        ("+1", None),
        (".5", None),
        ("1.", None),
        ("NaN", None),
        ("", None),
    ],
)
def test_decimals_are_ascii_and_anchored(text: str, value: Decimal | None) -> None:
    assert parse_decimal(text) == value


@pytest.mark.parametrize("text", ["2026-11-01"])
def test_dates(text: str) -> None:
    assert parse_date(text) is not None
    for bad in ("2026-13-01", "2026-11-01\n", "\uff12\uff10\uff12\uff16-11-01", "20261101", "2026-1-01"):
        assert parse_date(bad) is None, bad


def test_unknown_enum_numbers_anywhere_are_named() -> None:
    order = returns_pb2.ReturnOrder(return_type=99, event=returns_pb2.LIFECYCLE_EVENT_AUTHORIZED)  # type: ignore[arg-type]
    order.lines.add(condition=77, disposition=returns_pb2.DISPOSITION_SCRAP)  # type: ignore[arg-type]
    order.refund.method = 55  # type: ignore[assignment]
    found = {v.field: v for v in enum_violations(order, "return_order")}
    assert sorted(found) == [
        "return_order.lines[0].condition",
        "return_order.refund.method",
        "return_order.return_type",
    ]
    assert all(v.rule == "contract.enum" for v in found.values())
    assert "unknown value 77" in found["return_order.lines[0].condition"].description


def _order() -> returns_pb2.ReturnOrder:
    order = returns_pb2.ReturnOrder(return_id="R1", notes="first line\nsecond\tcolumn")
    order.lines.add(sku="SKU-1", description="Trail\x00jacket\x1b", serial_numbers=["SN\x07"])
    order.custom_fields["note"].CopyFrom(common_pb2.CustomValue(string_value="a\x85b"))
    order.customer.name = "Pat\x7f"
    return order


def test_control_characters_are_refused_everywhere_but_layout_in_free_text() -> None:
    found = {v.field: v for v in text_violations(_order(), "return_order")}
    assert sorted(found) == [
        "return_order.custom_fields['note'].string_value",
        "return_order.customer.name",
        "return_order.lines[0].description",
        "return_order.lines[0].serial_numbers[0]",
    ]
    assert "U+0000, U+001B" in found["return_order.lines[0].description"].description
    zero_width = returns_pb2.ReturnOrder(return_id="R\u200b1", notes="zero\u200bwidth in prose is fine")
    (violation,) = text_violations(zero_width, "return_order")
    assert violation.field == "return_order.return_id" and violation.rule == "text.format_character"


def test_strip_policy_cleans_free_text_and_still_refuses_identifiers() -> None:
    order = _order()
    found = text_violations(order, "return_order", strip="strip")
    assert [v.field for v in found] == ["return_order.lines[0].serial_numbers[0]"]
    assert order.lines[0].description == "Trailjacket"
    assert order.customer.name == "Pat"
    assert order.custom_fields["note"].string_value == "ab"
    assert order.notes == "first line\nsecond\tcolumn"
