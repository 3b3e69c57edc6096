"""Differential tests: random specs and documents must give byte-identical output (or the same error rule and
path) from the Rust engine and the pure-Python reference interpreter."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from returnbridge.api.v1 import common_pb2, returns_pb2
from returnbridge.errors import SpecError, TranslationError
from returnbridge.mapping import Mapper
from returnbridge.mapping.reference import ReferenceMapper
from returnbridge.mapping.registry import check_source_text, descriptor_set
from returnbridge.mapping.spec import dump_json

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TEXT = st.text(alphabet='AB-z09 .,/"\\é€\t', max_size=12)
NUMERIC = st.sampled_from(
    ["1", "2.5", "-3", "0.000", "19.99", "1e3", "abc", "", "99999999999999999999.99", "-0.5"]
)

ROOT_PATHS = [
    "rma_number", "return_id", "version", "reason_code", "currency", "notes", "return_type", "event", "event_time",
    "customer.erp_customer_ref", "restocking_fee.amount", "tax_total.amount", "lines[0].sku", "lines[1].quantity",
    "custom_fields.a", "custom_fields.b", "original_order.order_date",
]  # fmt: skip
LINE_PATHS = [
    "sku", "quantity", "unit_price.amount", "description", "serialized", "disposition", "location.site",
    "custom_fields.a", "line_id", "@index", "@number", "$.currency", "$.rma_number", "serial_numbers[0]",
]  # fmt: skip
SERIAL_PATHS = ["@", "^.sku", "@index", "^.@number", "^.quantity", "$.version"]

STEPS: list[Any] = [
    "string", "integer", "decimal", {"decimal": {"scale": 2, "rounding": "half_up"}},
    {"decimal": {"scale": 0, "rounding": "floor"}}, "number", "bool", {"date": {"to": "sap"}},
    {"date": {"to": "yyyymmdd"}}, {"date": {"from": "auto", "to": "epoch_ms"}}, {"minor_units": {"exponent": 2}},
    {"minor_units": {"currency": "$.currency"}}, {"from_minor_units": {"exponent": 3}},
    {"round_minor": {"currency": "$.currency", "rounding": "half_up"}}, {"round_minor": {"exponent": 0}}, "trim", "upper", "lower",
    {"pad_left": {"width": 8, "char": "0"}}, {"pad_right": {"width": 3, "char": "*"}},
    {"max_length": {"length": 5, "on_overflow": "truncate"}}, {"max_length": {"length": 5, "label": "X"}},
    {"prefix": "p-"}, {"suffix": "!"}, {"split": {"separator": "-", "index": 1}}, {"split": {"separator": "-"}},
    {"join": "+"}, {"replace": {"pattern": "[0-9]+", "with": "<$0>"}},
    {"match": {"pattern": "^[A-Z]", "on_mismatch": "omit"}}, {"match": {"pattern": "[0-9]"}},
    {"extract": {"pattern": "([0-9]+)", "group": 1}}, {"lookup": "t"},
    {"lookup": {"table": "t", "field": "f", "on_missing": "omit"}}, {"lookup": {"table": "t", "on_missing": "passthrough"}},
    "negate", "abs", {"default": "d"}, "required",
]  # fmt: skip


def conds(paths: list[str]) -> st.SearchStrategy[Any]:
    leaf = st.one_of(
        st.builds(
            lambda p, v: {"path": p, "eq": v}, st.sampled_from(paths), st.sampled_from(["A", 1, True, "USD"])
        ),
        st.builds(lambda p, v: {"path": p, "ne": v}, st.sampled_from(paths), st.sampled_from(["A", 0])),
        st.builds(lambda p: {"path": p, "in": ["USD", "A", 2]}, st.sampled_from(paths)),
        st.builds(lambda p, v: {"path": p, "exists": v}, st.sampled_from(paths), st.booleans()),
        st.builds(lambda p, v: {"path": p, "gt": v}, st.sampled_from(paths), st.sampled_from([0, 1, "2.5"])),
        st.builds(lambda p: {"path": p, "matches": "^[A-Z]"}, st.sampled_from(paths)),
    )
    return st.recursive(
        leaf,
        lambda c: st.one_of(
            st.builds(lambda x: {"not": x}, c),
            st.lists(c, min_size=1, max_size=2).map(lambda xs: {"any": xs}),
        ),
        max_leaves=3,
    )


def exprs(paths: list[str]) -> st.SearchStrategy[Any]:
    leaf = st.one_of(
        st.sampled_from(paths),
        st.sampled_from([1, 0, -7, True]).map(lambda v: v),
        TEXT.map(lambda s: {"const": s}),
        st.sampled_from(["{rma_number}-{version}", "x{notes}y", "{{lit}}"]).map(lambda t: {"template": t})
        if "rma_number" in paths
        else st.just({"const": "c"}),
    )

    def extend(e: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        two = st.lists(e, min_size=2, max_size=2)
        return st.one_of(
            two.map(lambda xs: {"add": xs}),
            two.map(lambda xs: {"mul": xs}),
            two.map(lambda xs: {"sub": xs}),
            two.map(lambda xs: {"concat": xs, "separator": "/"}),
            two.map(lambda xs: {"coalesce": xs}),
            st.builds(lambda xs, s: {"div": xs, "scale": s}, two, st.integers(0, 4)),
            e.map(lambda x: {"neg": x}),
            st.builds(lambda x, s: {"round": x, "scale": s, "rounding": "half_down"}, e, st.integers(0, 3)),
            st.builds(lambda c, a, b: {"if": c, "then": a, "else": b}, conds(paths), e, e),
            st.builds(lambda x, s: {"pipe": s, "value": x}, e, st.lists(st.sampled_from(STEPS), max_size=2)),
        )

    base = st.recursive(leaf, extend, max_leaves=4)
    if "rma_number" in paths:
        base = st.one_of(
            base,
            st.just({"sum": {"each": "lines", "value": {"mul": ["quantity", "unit_price.amount"]}}}),
            st.just({"count": {"each": "lines", "where": {"path": "serialized", "eq": True}}}),
        )
    return base


@st.composite
def field_rule(draw: st.DrawFn, rid: str, key: str, paths: list[str]) -> dict[str, Any]:
    rule: dict[str, Any] = {"id": rid, "target": key}
    kind = draw(st.sampled_from(["source", "expr", "value"]))
    if kind == "source":
        rule["source"] = draw(st.sampled_from(paths))
    elif kind == "expr":
        rule["expr"] = draw(exprs(paths))
    else:
        rule["value"] = draw(st.one_of(TEXT, st.integers(-5, 5), st.booleans()))
    rule["pipe"] = draw(st.lists(st.sampled_from(STEPS), max_size=3))
    if draw(st.booleans()):
        rule["when"] = draw(conds(paths))
        if draw(st.booleans()):
            rule["otherwise"] = {"const": "other"}
    if draw(st.booleans()):
        rule["default"] = "dflt"
    rule["required"] = draw(st.booleans()) and draw(st.booleans())
    return rule


@st.composite
def outbound_spec(draw: st.DrawFn) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 5))):
        if draw(st.integers(0, 3)) == 0:
            children = [
                draw(field_rule(f"r{i}.c{j}", f"c{j}", LINE_PATHS)) for j in range(draw(st.integers(1, 3)))
            ]
            if draw(st.booleans()):
                serial = draw(field_rule(f"r{i}.s", "serials", SERIAL_PATHS))
                serial["each"] = "serial_numbers"
                serial.pop("when", None)
                serial.pop("otherwise", None)
                children.append(serial)
            rule: dict[str, Any] = {
                "id": f"r{i}",
                "target": f"k{i}.items",
                "each": "lines",
                "rules": children,
            }
            if draw(st.booleans()):
                rule["where"] = draw(conds(LINE_PATHS))
            rules.append(rule)
        else:
            rules.append(draw(field_rule(f"r{i}", f"k{i}" if i % 2 else f"o.k{i}", ROOT_PATHS)))
    return {
        "direction": "outbound",
        "input": "returnbridge.api.v1.ReturnOrder",
        "output": "json",
        "tables": {
            "t": {"entries": {"A": "1", "USD": {"f": "us"}, "1": 2, "SKU-1": {"g": 1}}, "fallback": "fb"}
        },
        "rules": rules,
    }


@st.composite
def return_orders(draw: st.DrawFn) -> bytes:
    o = returns_pb2.ReturnOrder(
        rma_number=draw(TEXT),
        return_id=draw(TEXT),
        version=draw(st.integers(0, 2**64 - 1)),
        reason_code=draw(st.sampled_from(["A", "DAMAGED", "1", ""])),
        currency=draw(st.sampled_from(["USD", "JPY", "KWD", "usd", ""])),
        notes=draw(TEXT),
        return_type=draw(st.integers(0, 5)),
        event=draw(st.integers(0, 7)),
    )
    if draw(st.booleans()):
        o.event_time.seconds = draw(st.integers(-62_135_596_800, 253_402_300_799))
        o.event_time.nanos = draw(st.sampled_from([0, 5_000_000, 123_456, 7]))
    if draw(st.booleans()):
        o.customer.erp_customer_ref = draw(TEXT)
    if draw(st.booleans()):
        o.restocking_fee.CopyFrom(common_pb2.Money(amount=draw(NUMERIC), currency="USD"))
    if draw(st.booleans()):
        o.original_order.order_date = draw(st.sampled_from(["2026-02-28", "2024-02-29", "20260101", "bad"]))
    for _ in range(draw(st.integers(0, 3))):
        line = o.lines.add(
            line_id=draw(TEXT),
            sku=draw(st.sampled_from(["SKU-1", "A", "USD", "x-1-2", ""])),
            quantity=draw(NUMERIC),
            description=draw(TEXT),
            serialized=draw(st.booleans()),
            serial_numbers=draw(st.lists(TEXT, max_size=3)),
            disposition=draw(st.integers(0, 5)),
        )
        if draw(st.booleans()):
            line.unit_price.CopyFrom(common_pb2.Money(amount=draw(NUMERIC), currency="USD"))
        if draw(st.booleans()):
            line.location.site = draw(st.sampled_from(["DAL1", "A"]))
        if draw(st.booleans()):
            line.custom_fields["a"].string_value = draw(TEXT)
    for key in draw(st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True)):
        value = o.custom_fields[key]
        choice = draw(st.integers(0, 4))
        if choice == 0:
            value.string_value = draw(TEXT)
        elif choice == 1:
            value.decimal_value = draw(st.sampled_from(["1.50", "-2", "0.001"]))
        elif choice == 2:
            value.int_value = draw(st.integers(-(2**63), 2**63 - 1))
        elif choice == 3:
            value.bool_value = draw(st.booleans())
        else:
            value.list_value.values.add().int_value = 3
    return o.SerializeToString()


def _compile(spec: dict[str, Any]) -> tuple[Mapper, ReferenceMapper] | None:
    try:
        rust = Mapper(check_source_text(json.dumps(spec, ensure_ascii=False), "gen.yaml"))
    except SpecError:
        return None
    return rust, ReferenceMapper(rust.normalized_spec, descriptor_set())


def _same(rust: Mapper, ref: ReferenceMapper, document: bytes) -> None:
    try:
        expected: bytes | tuple[str, str] = ref.translate(document)
    except TranslationError as exc:
        expected = (exc.rule, exc.path)
    try:
        actual: bytes | tuple[str, str] = rust.translate(document)
    except TranslationError as exc:
        actual = (exc.rule, exc.path)
    assert actual == expected


@SETTINGS
@given(spec=outbound_spec(), documents=st.lists(return_orders(), min_size=1, max_size=3))
def test_outbound_engines_agree(spec: dict[str, Any], documents: list[bytes]) -> None:
    compiled = _compile(spec)
    if compiled is None:
        return
    for document in documents:
        _same(*compiled, document)


JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**6), max_value=10**6),
        st.sampled_from(["1e3", "-0.0", "12.50", "1E400", "0.1e-40", "123456789012345678901234567890"]).map(
            Decimal
        ),
        TEXT,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "qty"]), inner, max_size=3)
    ),
    max_leaves=8,
)
INBOUND_TARGETS = [
    (
        "returnbridge.api.v1.InventoryLevel",
        ["sku", "on_hand", "location.site", "as_of", "source_erp", "unit_of_measure"],
    ),
    ("returnbridge.api.v1.DocumentStatus", ["status", "erp", "amount.amount", "as_of", "document_id"]),
    (
        "returnbridge.api.v1.ReturnOrder",
        ["version", "return_type", "custom_fields.x", "custom_fields.y", "notes"],
    ),
]
IN_PATHS = ["a", "b", "qty", "a.b", "a[0]", "b.qty", "a[1].a"]


@st.composite
def inbound_case(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    message, targets = draw(st.sampled_from(INBOUND_TARGETS))
    chosen = draw(st.lists(st.sampled_from(targets), min_size=1, max_size=4, unique=True))
    rules = [draw(field_rule(f"r{i}", t, IN_PATHS)) for i, t in enumerate(chosen)]
    if message.endswith("ReturnOrder") and draw(st.booleans()):
        rules.append(
            {
                "id": "lines",
                "target": "lines",
                "each": "a",
                "rules": [{"id": "l.id", "target": "line_id", "source": "@"}],
            }
        )
    spec = {
        "direction": "inbound",
        "input": "json",
        "output": message,
        "tables": {"t": {"entries": {"A": "1"}}},
        "rules": rules,
    }
    doc = draw(st.dictionaries(st.sampled_from(["a", "b", "qty"]), JSON_VALUES, max_size=3))
    # dump_json writes Decimals as exact JSON numbers, so fractional numbers reach both JSON readers.
    return spec, dump_json(doc)


@SETTINGS
@given(case=inbound_case())
def test_inbound_engines_agree(case: tuple[dict[str, Any], bytes]) -> None:
    spec, document = case
    compiled = _compile(spec)
    if compiled is None:
        return
    _same(*compiled, document)
