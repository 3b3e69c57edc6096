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


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (b'{"amount": NaN}', "NaN is not a JSON value"),
        (b'{"amount": -Infinity}', "-Infinity is not a JSON value"),
        (b'{"qty": 1' + b"0" * 5_000 + b"}", "too many digits"),
        (b'{"name": "\xff"}', "not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": 1,}', "line 1 column 9"),
    ],
    ids=["nan", "infinity", "long integer", "not utf-8", "past the stack", "syntax"],
)
def test_loads_refuses_what_is_not_strict_json(text: bytes, why: str) -> None:
    # A ValueError, so the connectors' handlers for an ERP's non-JSON answer (and the simulators') catch it.
    with pytest.raises(exactjson.JsonError, match=why) as info:
        exactjson.loads(text)
    assert isinstance(info.value, ValueError)


def test_loads_caps_nesting_when_asked() -> None:
    nested = b'{"a": [[{"b": 1}]]}'
    assert exactjson.loads(nested, max_depth=4) == {"a": [[{"b": 1}]]}
    with pytest.raises(exactjson.JsonError, match="deeper than 3 levels"):
        exactjson.loads(nested, max_depth=3)
    assert exactjson.loads(b"[1.5]", parse_float=float) == [1.5]


def test_loads_refuses_a_repeated_key_when_asked() -> None:
    # The first or the last may win, depending on the parser: a signed body must mean one thing.
    repeated = b'{"id": "a", "data": {"status": "posted", "status": "cancelled"}}'
    assert exactjson.loads(repeated) == {"id": "a", "data": {"status": "cancelled"}}
    with pytest.raises(exactjson.JsonError, match='key "status" appears twice'):
        exactjson.loads(repeated, unique_keys=True)
    assert exactjson.loads(b'{"a": {"x": 1}, "b": {"x": 2}}', unique_keys=True) == {
        "a": {"x": 1},
        "b": {"x": 2},
    }
