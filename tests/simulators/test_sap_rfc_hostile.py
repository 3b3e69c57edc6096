"""The pyrfc stand-in answers hostile parameters the way the RFC library does: an RFC exception, never a crash.

pyrfc converts every parameter against the function's interface before the call leaves the client: an
unknown name is ``ExternalRuntimeError`` RFC_INVALID_PARAMETER (code 20); a value that does not convert
(a table that is no list, a NUMC with letters, a BCD that is NaN or too big for P(13,3), an INT4 that is
a string) is ``RFCTypeError`` RFC_CONVERSION_FAILURE (code 22). A Python exception escaping the stand-in
is something no real RFC client ever sees.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from connectors.harnesses.sap import PASSWORD, USER, rfc_customer_return_payload
from returnbridge.simulators import sap_rfc as fake
from returnbridge.simulators.sap import SapSimulatorConfig, build_simulator
from simulators.test_no_500 import leaf_paths, replaced

HOSTILE: list[Any] = [
    None, "", "NaN", "sNaN", "-Infinity", "1e999", "9" * 40, float("nan"), float("inf"), 1e300, -1, "²",
    "\u0661", "é" * 50, "\x00", [], {}, [{}], {"a": {"b": []}}, True, 10**100, b"\xff", Decimal("NaN"),
]  # fmt: skip

GOODS_MOVEMENT = {
    "GOODSMVT_HEADER": {"PSTNG_DATE": "20261127", "DOC_DATE": "20261127"},
    "GOODSMVT_CODE": {"GM_CODE": "05"},
    "GOODSMVT_ITEM": [
        {"MATERIAL": "SKU-1001", "PLANT": "DAL1", "STGE_LOC": "RET1", "MOVE_TYPE": "501", "ENTRY_QNT": "1"}
    ],
}
READ_TABLE = {
    "QUERY_TABLE": "VBAK",
    "DELIMITER": "|",
    "ROWSKIPS": 0,
    "ROWCOUNT": 5,
    "OPTIONS": [{"TEXT": "BSTNK EQ 'X'"}],
    "FIELDS": [{"FIELDNAME": "VBELN"}],
}
CALLS = [
    ("BAPI_CUSTOMERRETURN_CREATE", rfc_customer_return_payload()),
    ("BAPI_GOODSMVT_CREATE", GOODS_MOVEMENT),
    ("RFC_READ_TABLE", READ_TABLE),
]


@pytest.fixture
def connect() -> Any:
    sim = build_simulator(SapSimulatorConfig())
    return lambda: fake.Connection(backend=sim.backend, user=USER, passwd=PASSWORD, client="100")


def _mutations(params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in leaf_paths(params):
        out += [(f"{'/'.join(map(str, path))}={v!r}"[:60], replaced(params, path, v)) for v in HOSTILE]
    for name in params:  # a whole structure or table replaced by a scalar, a list of scalars, ...
        out += [(f"{name}={v!r}"[:60], {**params, name: v}) for v in [*HOSTILE, "x", 5, [1], [None]]]
    return out


@pytest.mark.parametrize(("function", "params"), CALLS, ids=[c[0] for c in CALLS])
def test_rfc_stand_in_raises_only_rfc_errors_on_hostile_parameters(
    connect: Any, function: str, params: dict[str, Any]
) -> None:
    crashes = []
    for where, mutated in _mutations(copy.deepcopy(params)):
        conn = connect()
        try:
            conn.call(function, **mutated)
            conn.call("BAPI_TRANSACTION_COMMIT", WAIT="X")
        except fake.RFCError:
            pass
        except Exception as exc:  # noqa: BLE001 - anything else is the defect under test
            crashes.append((where, type(exc).__name__, str(exc)[:80]))
    assert not crashes, f"{len(crashes)} hostile inputs crashed the stand-in: {crashes[:5]}"


@pytest.mark.parametrize("function", ["RFC_PING", "BAPI_TRANSACTION_COMMIT", "RFC_READ_TABLE"])
def test_an_unknown_parameter_is_rfc_invalid_parameter(connect: Any, function: str) -> None:
    with pytest.raises(fake.ExternalRuntimeError) as caught:
        connect().call(function, BOGUS="1")
    assert caught.value.code == 20 and caught.value.key == "RFC_INVALID_PARAMETER"


@pytest.mark.parametrize(
    ("function", "path", "value"),
    [
        ("BAPI_CUSTOMERRETURN_CREATE", ("RETURN_ITEMS_IN", 0, "TARGET_QTY"), "sNaN"),
        ("BAPI_CUSTOMERRETURN_CREATE", ("RETURN_ITEMS_IN", 0, "TARGET_QTY"), "1e999"),
        ("BAPI_CUSTOMERRETURN_CREATE", ("RETURN_ITEMS_IN", 0, "TARGET_QTY"), "10000000000"),
        ("BAPI_CUSTOMERRETURN_CREATE", ("RETURN_ITEMS_IN", 0, "ITM_NUMBER"), None),
        ("BAPI_CUSTOMERRETURN_CREATE", ("RETURN_CONDITIONS_IN", 0, "ITM_NUMBER"), "1O"),
        ("BAPI_CUSTOMERRETURN_CREATE", ("RETURN_ITEMS_IN",), float("nan")),
        ("BAPI_GOODSMVT_CREATE", ("GOODSMVT_ITEM", 0, "ENTRY_QNT"), "sNaN"),
        ("BAPI_GOODSMVT_CREATE", ("GOODSMVT_ITEM",), "NaN"),
        ("RFC_READ_TABLE", ("QUERY_TABLE",), []),
        ("RFC_READ_TABLE", ("DELIMITER",), None),
        ("RFC_READ_TABLE", ("ROWSKIPS",), ""),
        ("RFC_READ_TABLE", ("ROWCOUNT",), "NaN"),
        ("RFC_READ_TABLE", ("OPTIONS",), "NaN"),
        ("RFC_READ_TABLE", ("OPTIONS", 0, "TEXT"), "x" * 73),
        ("RFC_READ_TABLE", ("FIELDS", 0), "VBELN"),
    ],
)
def test_an_unconvertible_value_is_rfc_conversion_failure(
    connect: Any, function: str, path: tuple[Any, ...], value: Any
) -> None:
    params = dict(CALLS)[function]
    with pytest.raises(fake.RFCTypeError) as caught:
        connect().call(function, **replaced(params, path, value))
    assert caught.value.code == 22 and caught.value.key == "RFC_CONVERSION_FAILURE"


def test_x_structure_flags_are_char1_even_for_numc_fields(connect: Any) -> None:
    """In RETURN_ITEMS_INX every field but ITM_NUMBER is an 'X' flag, REF_DOC_IT (NUMC in the data) included."""
    params = rfc_customer_return_payload()
    params["RETURN_ITEMS_IN"][0]["REF_DOC_IT"] = "000010"
    params["RETURN_ITEMS_INX"][0]["REF_DOC_IT"] = "X"
    conn = connect()
    result = conn.call("BAPI_CUSTOMERRETURN_CREATE", **params)
    assert [r["TYPE"] for r in result["RETURN"] if r["TYPE"] in ("E", "A")] == [], result["RETURN"]
