"""Exact-decimal JSON used by every ERP connector and simulator."""

from __future__ import annotations

from decimal import Decimal

import pytest

from returnbridge import exactjson


@pytest.mark.parametrize(
    ("value", "text", "parsed"),
    [
        ({"rate": Decimal("19.990"), "qty": 2}, '{"rate":19.990,"qty":2}', None),
        ([Decimal("1E+2"), Decimal("-0.30")], "[100,-0.30]", [100, Decimal("-0.30")]),
        (
            {"name": 'Zoë "q"\n', "ok": True, "none": None},
            '{"name":"Zoë \\"q\\"\\n","ok":true,"none":null}',
            None,
        ),
    ],
)
def test_dumps_exact(value: object, text: str, parsed: object) -> None:
    assert exactjson.dumps(value) == text
    assert exactjson.loads(text) == (value if parsed is None else parsed)


def test_sum_stays_exact_through_a_round_trip() -> None:
    doc = exactjson.loads(exactjson.dumps_bytes({"a": Decimal("0.10"), "b": Decimal("0.20")}))
    assert doc["a"] + doc["b"] == Decimal("0.30")


@pytest.mark.parametrize("bad", [0.1, Decimal("NaN"), Decimal("Infinity"), object()])
def test_refuses_what_cannot_be_exact(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        exactjson.dumps({"x": bad})
