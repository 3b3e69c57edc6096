"""Every operation of the mapping language as a table of spec rules -> exact output or exact error.

Each case runs through the Rust engine and the reference interpreter (they must agree byte for byte).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from returnbridge.api.v1 import common_pb2, inventory_pb2, returns_pb2
from returnbridge.errors import TranslationError

OUTBOUND = "direction: outbound\ninput: returnbridge.api.v1.ReturnOrder\noutput: json\n"


def inbound(message: str = "returnbridge.api.v1.InventoryLevel") -> str:
    return f"direction: inbound\ninput: json\noutput: {message}\n"


# (case id, YAML under `rules:` (and optional `tables:`), expected JSON text)
OUTBOUND_CASES: list[tuple[str, str, str]] = [
    ("copy", "- {id: a, target: rma, source: rma_number}", '{"rma":"RMA-1001"}'),
    (
        "nested_target",
        "- {id: a, target: entity.id, source: customer.erp_customer_ref}\n- {id: b, target: entity.type, value: customer}",
        '{"entity":{"id":"101","type":"customer"}}',
    ),
    (
        "absent_is_omitted",
        "- {id: a, target: notes, source: notes}\n- {id: b, target: x, value: 1}",
        '{"x":1}',
    ),
    ("empty_object_is_omitted", "- {id: a, target: o.notes, source: notes}", "{}"),
    ("emit_null", "- {id: a, target: notes, source: notes, emit_null: true}", '{"notes":null}'),
    ("default", "- {id: a, target: notes, source: notes, default: none}", '{"notes":"none"}'),
    ("constant_decimal", "- {id: a, target: fee, value: 1.50}", '{"fee":"1.50"}'),
    ("constant_object", "- {id: a, target: o, value: {k: [1, true, x]}}", '{"o":{"k":[1,true,"x"]}}'),
    ("enum_name", "- {id: a, target: t, source: return_type}", '{"t":"RETURN_TYPE_REFUND"}'),
    (
        "int_and_timestamp",
        "- {id: a, target: v, source: version}\n- {id: b, target: at, source: event_time}",
        '{"v":3,"at":"2026-11-27T15:22:05.120Z"}',
    ),
    (
        "template",
        "- {id: a, target: ref, template: '{rma_number}-{version}{notes} {{x}}'}",
        '{"ref":"RMA-1001-3 {x}"}',
    ),
    (
        "concat_skips_absent",
        "- {id: a, target: c, expr: {concat: [rma_number, notes, {const: z}], separator: /}}",
        '{"c":"RMA-1001/z"}',
    ),
    ("coalesce", "- {id: a, target: c, expr: {coalesce: [notes, reason_code]}}", '{"c":"DAMAGED"}'),
    (
        "each_objects_where",
        "- id: l\n  target: items\n  each: lines\n  where: {path: disposition, ne: DISPOSITION_SCRAP}\n  rules:\n    - {id: l.sku, target: sku, source: sku}\n    - {id: l.n, target: n, source: '@number'}\n    - {id: l.cur, target: cur, source: $.currency}",
        '{"items":[{"sku":"SKU-1001","n":1,"cur":"USD"},{"sku":"SKU-1003","n":2,"cur":"USD"}]}',
    ),
    (
        "each_scalars_nested",
        "- id: l\n  target: items\n  each: lines\n  rules:\n    - {id: l.s, target: serials, each: serial_numbers, source: '@', pipe: [trim]}\n    - {id: l.p, target: parent, each: serial_numbers, source: '^.line_id'}",
        '{"items":[{"serials":["SN0-0"],"parent":["L1"]},{"serials":["SN1-0","SN1-1"],"parent":["L2","L2"]},{"serials":["SN2-0","SN2-1","SN2-2"],"parent":["L3","L3","L3"]}]}',
    ),
    (
        "each_current_item",
        "- id: l\n  target: items\n  each: lines\n  rules:\n    - id: l.p\n      target: pricing\n      each: '@'\n"
        "      where: {path: disposition, eq: DISPOSITION_RESTOCK}\n      rules:\n"
        "        - {id: l.p.sku, target: sku, source: sku}\n        - {id: l.p.n, target: n, source: '^.@number'}",
        '{"items":[{"pricing":[{"sku":"SKU-1001","n":1}]},{},{"pricing":[{"sku":"SKU-1003","n":3}]}]}',
    ),
    (
        "each_flatten",
        "- {id: s, target: s, each: 'lines[*].serial_numbers', template: '{^.line_id}:{@index}', pipe: [trim]}",
        '{"s":["L1:0","L2:1","L2:2","L3:3","L3:4","L3:5"]}',
    ),
    (
        "each_empty_omitted_or_kept",
        "- {id: a, target: a, each: erp_references, rules: [{id: a.x, target: x, source: document_id}]}\n- {id: b, target: b, each: erp_references, keep_empty: true, source: document_id}",
        '{"b":[]}',
    ),
    (
        "index_path",
        "- {id: a, target: first, source: 'lines[0].sku'}\n- {id: b, target: missing, source: 'lines[9].sku'}",
        '{"first":"SKU-1001"}',
    ),
    (
        "when_otherwise",
        "- {id: a, target: w, value: yes, when: {path: version, gt: 2}, otherwise: {const: no}}\n- {id: b, target: x, value: 1, when: {path: notes, exists: true}}",
        '{"w":"yes"}',
    ),
    (
        "conditions",
        "- {id: a, target: c, value: 1, when: {all: [{path: currency, in: [USD, EUR]}, {not: {path: reason_code, eq: X}}, {any: [{path: rma_number, matches: '^RMA-\\d+$'}, {path: version, eq: 9}]}]}}",
        '{"c":1}',
    ),
    ("numeric_eq", "- {id: a, target: c, value: 1, when: {path: restocking_fee.amount, eq: 5}}", '{"c":1}'),
    ("string", "- {id: a, target: s, source: version, pipe: [string]}", '{"s":"3"}'),
    ("integer", "- {id: a, target: i, source: 'lines[2].quantity', pipe: [integer]}", '{"i":3}'),
    (
        "decimal_scale_number",
        "- {id: a, target: d, source: 'lines[0].unit_price.amount', pipe: [{decimal: {scale: 1, rounding: half_up}}, number]}",
        '{"d":20.0}',
    ),
    (
        "decimal_half_even",
        "- {id: a, target: d, value: '2.345', pipe: [{decimal: {scale: 2}}]}\n- {id: b, target: e, value: '2.355', pipe: [{decimal: {scale: 2}}]}",
        '{"d":"2.34","e":"2.36"}',
    ),
    (
        "bool",
        "- {id: a, target: b, value: X, pipe: [bool]}\n- {id: b, target: c, source: 'lines[0].serialized'}",
        '{"b":true,"c":true}',
    ),
    (
        "dates",
        "- {id: a, target: sap, source: event_time, pipe: [{date: {to: sap}}]}\n- {id: b, target: ymd, source: event_time, pipe: [{date: {to: yyyymmdd}}]}\n- {id: c, target: ms, source: event_time, pipe: [{date: {to: epoch_ms}}]}\n- {id: d, target: back, value: '/Date(1795792925120+0100)/', pipe: [{date: {from: sap, to: datetime}}]}\n- {id: e, target: day, value: '20240229', pipe: [{date: {to: date}}]}",
        '{"sap":"/Date(1795792925120)/","ymd":"20261127","ms":1795792925120,"back":"2026-11-27T15:22:05.120Z","day":"2024-02-29"}',
    ),
    (
        "minor_units",
        "- {id: a, target: m, source: restocking_fee.amount, pipe: [{minor_units: {currency: $.currency}}]}\n- {id: b, target: y, value: 1234, pipe: [{from_minor_units: {exponent: 3}}]}",
        '{"m":500,"y":"1.234"}',
    ),
    (
        "round_minor",
        "- {id: a, target: usd, value: '0.3999', pipe: [{round_minor: {currency: $.currency, rounding: half_up}}, number]}\n- {id: b, target: jpy, value: '2.5', pipe: [{round_minor: {exponent: 0}}]}\n- {id: c, target: kwd, value: '0.4065', pipe: [{round_minor: {exponent: 3, rounding: half_up}}]}\n- {id: d, target: pad, value: '3', pipe: [{round_minor: {currency: $.currency}}]}",
        '{"usd":0.40,"jpy":"2","kwd":"0.407","pad":"3.00"}',
    ),
    (
        "text",
        "- {id: a, target: t, value: '  ab c  ', pipe: [trim, upper, {pad_left: {width: 6, char: '0'}}, {prefix: '<'}, {suffix: '>'}]}\n- {id: b, target: l, value: ÄB, pipe: [lower, {pad_right: {width: 4, char: '.'}}]}",
        '{"t":"<00AB C>","l":"äb.."}',
    ),
    (
        "truncate",
        "- {id: a, target: t, source: rma_number, pipe: [{max_length: {length: 3, on_overflow: truncate}}]}",
        '{"t":"RMA"}',
    ),
    (
        "split_join",
        "- {id: a, target: s, source: rma_number, pipe: [{split: {separator: '-', index: 1}}]}\n- {id: b, target: j, source: rma_number, pipe: [{split: {separator: '-'}}, {join: '+'}]}\n- {id: c, target: no, source: rma_number, pipe: [{split: {separator: '-', index: 5}}]}",
        '{"s":"1001","j":"RMA+1001"}',
    ),
    (
        "regex",
        "- {id: a, target: r, source: rma_number, pipe: [{replace: {pattern: '(\\w+)-(\\d)', with: '$2${1}$$'}}]}\n- {id: b, target: e, source: rma_number, pipe: [{extract: {pattern: '(\\d+)', group: 1}}]}\n- {id: c, target: m, source: rma_number, pipe: [{match: {pattern: '^X', on_mismatch: omit}}]}",
        '{"r":"1RMA$001","e":"1001"}',
    ),
    (
        "lookup",
        "- {id: a, target: plant, source: 'lines[0].location.site', pipe: [{lookup: {table: loc, field: plant}}]}\n- {id: b, target: fb, source: reason_code, pipe: [{lookup: reasons}]}\n- {id: c, target: pt, source: currency, pipe: [{lookup: {table: loc, on_missing: passthrough}}]}\n- {id: d, target: om, source: currency, pipe: [{lookup: {table: loc, on_missing: omit}}]}",
        '{"plant":"1010","fb":"99","pt":"USD"}',
    ),
    (
        "arithmetic",
        "- {id: a, target: amt, expr: {mul: ['lines[1].quantity', 'lines[1].unit_price.amount']}, pipe: [number]}\n- {id: b, target: total, expr: {sub: [{sum: {each: lines, value: {mul: [quantity, unit_price.amount]}}}, {coalesce: [restocking_fee.amount, 0]}]}}\n- {id: c, target: n, expr: {neg: {add: [0.10, 0.20]}}}\n- {id: d, target: q, expr: {div: [1, 3], scale: 4}}\n- {id: e, target: cnt, expr: {count: {each: lines, where: {path: serialized, eq: true}}}}\n- {id: f, target: no, expr: {add: [notes, 1]}}\n- {id: g, target: item_no, each: lines, expr: {mul: ['@number', 10]}, pipe: [string]}",
        '{"amt":39.98,"total":"114.94","n":"-0.30","q":"0.3333","cnt":3,"item_no":["10","20","30"]}',
    ),
    (
        "if_and_round",
        "- {id: a, target: x, expr: {if: {path: version, ge: 3}, then: {round: 2.5, scale: 0}, else: {const: no}}}",
        '{"x":"2"}',
    ),
    (
        "custom_fields",
        "- {id: a, target: custbody_channel, source: custom_fields.channel}\n- {id: b, target: custbody_weight, source: custom_fields.weight, pipe: [number]}\n- {id: c, target: grades, source: custom_fields.grades}\n- {id: d, target: flag, source: custom_fields.flag}",
        '{"custbody_channel":"web","custbody_weight":12.500,"grades":[1,"A"],"flag":false}',
    ),
    (
        "pipe_expression",
        "- {id: a, target: p, expr: {pipe: [upper, {prefix: 'x-'}], value: reason_code}}",
        '{"p":"x-DAMAGED"}',
    ),
]

Compile = Callable[[str], Any]
Order = Callable[..., returns_pb2.ReturnOrder]

TABLES = """tables:
  loc: {entries: {DAL1: {plant: "1010", sloc: "0001"}}}
  reasons: {entries: {WRONG: "1"}, fallback: "99"}
"""


def _custom_doc(order: Callable[..., returns_pb2.ReturnOrder]) -> bytes:
    o = order(lines=3)
    o.custom_fields["channel"].string_value = "web"
    o.custom_fields["weight"].decimal_value = "12.500"
    o.custom_fields["flag"].bool_value = False
    grades = o.custom_fields["grades"].list_value.values
    grades.add().int_value = 1
    grades.add().string_value = "A"
    return o.SerializeToString()


@pytest.mark.parametrize(
    ("rules", "expected"), [c[1:] for c in OUTBOUND_CASES], ids=[c[0] for c in OUTBOUND_CASES]
)
def test_outbound_op(rules: str, expected: str, pair: Compile, make_order: Order) -> None:
    compiled = pair(OUTBOUND + TABLES + "rules:\n" + rules + "\n")
    doc = _custom_doc(make_order) if "custom_fields" in rules else make_order(lines=3).SerializeToString()
    assert compiled.run(doc).decode() == expected


# (case id, rules, expected (rule, path, message))
ERROR_CASES: list[tuple[str, str, tuple[str, str, str]]] = [
    (
        "required",
        "- {id: a, target: n, source: notes, required: true}",
        ("a", "notes", "required value missing"),
    ),
    (
        "required_step",
        "- {id: a, target: n, source: notes, pipe: [required]}",
        ("a", "notes", "required value missing"),
    ),
    (
        "serial_too_long",
        "- id: l\n  target: l\n  each: lines\n  rules:\n    - {id: l.s, target: s, each: serial_numbers, source: '@', pipe: [{max_length: {length: 6, label: SAP SerialNumber}}]}",
        ("l.s", "lines[0].serial_numbers[0]", "longer than 6 characters (SAP SerialNumber)"),
    ),
    (
        "lookup_missing",
        "- {id: a, target: p, source: currency, pipe: [{lookup: loc}]}",
        ("a", "currency", 'no entry for "USD" in table loc'),
    ),
    (
        "lookup_field_missing",
        "- {id: a, target: p, value: DAL1, pipe: [{lookup: {table: loc, field: nope}}]}",
        ("a", "", 'entry "DAL1" of table loc has no field "nope"'),
    ),
    (
        "not_a_decimal",
        "- {id: a, target: d, source: rma_number, pipe: [decimal]}",
        ("a", "rma_number", 'expected a decimal, got "RMA-1001"'),
    ),
    (
        "not_an_integer",
        "- {id: a, target: d, source: 'lines[0].unit_price.amount', pipe: [integer]}",
        ("a", "lines[0].unit_price.amount", 'expected an integer, got "19.99"'),
    ),
    (
        "bad_bool",
        "- {id: a, target: b, source: currency, pipe: [bool]}",
        ("a", "currency", 'expected a bool, got "USD"'),
    ),
    (
        "bad_date",
        "- {id: a, target: b, source: currency, pipe: [date]}",
        ("a", "currency", 'not a valid date (date, datetime, /Date(ms)/ or YYYYMMDD): "USD"'),
    ),
    (
        "regex_reject",
        "- {id: a, target: b, source: currency, pipe: [{match: {pattern: '^\\d+$'}}]}",
        ("a", "currency", '"USD" does not match ^\\d+$'),
    ),
    (
        "minor_units_fraction",
        "- {id: a, target: b, value: '1.234', pipe: [{minor_units: {exponent: 2}}]}",
        ("a", "", "1.234 has more than 2 decimal places"),
    ),
    ("div_by_zero", "- {id: a, target: b, expr: {div: [1, 0], scale: 2}}", ("a", "", "division by zero")),
    (
        "decimal_overflow",
        "- {id: a, target: b, expr: {mul: [9999999999999999999.9, 9999999999999999999.9]}}",
        ("a", "", "decimal out of range"),
    ),
    (
        "compare_non_number",
        "- {id: a, target: b, value: 1, when: {path: currency, gt: 1}}",
        ("a", "", 'expected a number to compare, got "USD"'),
    ),
    (
        "each_current_item_error_path",
        "- id: l\n  target: l\n  each: lines\n  rules:\n"
        "    - {id: l.p, target: p, each: '@', rules: [{id: l.p.q, target: q, source: sku, pipe: [decimal]}]}",
        ("l.p.q", "lines[0].sku", 'expected a decimal, got "SKU-1001"'),
    ),
    (
        "required_list",
        "- {id: a, target: b, each: erp_references, required: true, source: document_id}",
        ("a", "erp_references", "required list is empty"),
    ),
    (
        "message_as_json",
        "- {id: a, target: b, source: customer}",
        ("a", "", "cannot write a protobuf message object as JSON; copy its fields"),
    ),
    (
        "where_error_in_line",
        "- {id: a, target: b, each: lines, where: {path: sku, gt: 0}, source: sku}",
        ("a", "lines[0]", 'expected a number to compare, got "SKU-1001"'),
    ),
]


@pytest.mark.parametrize(("rules", "expected"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_outbound_error(rules: str, expected: tuple[str, str, str], pair: Compile, make_order: Order) -> None:
    compiled = pair(OUTBOUND + TABLES + "rules:\n" + rules + "\n")
    with pytest.raises(TranslationError) as caught:
        compiled.run(make_order(lines=3).SerializeToString())
    rule, path, message = expected
    assert (caught.value.rule, caught.value.path) == (rule, path)
    assert str(caught.value) == (f"{path}: {message}" if path else message)


def test_sap_serial_error_names_line_and_serial(pair: Compile, make_order: Order) -> None:
    """The issue's example error, word for word."""
    o = make_order(lines=4)
    o.lines[3].serial_numbers[0] = "S" * 19
    compiled = pair(
        OUTBOUND + "rules:\n- id: items\n  target: to_Item\n  each: lines\n  rules:\n"
        "    - {id: lines.serials, target: to_SerialNumber, each: serial_numbers, source: '@',"
        " pipe: [{max_length: {length: 18, on_overflow: reject, label: SAP SerialNumber}}]}\n"
    )
    with pytest.raises(TranslationError) as caught:
        compiled.run(o.SerializeToString())
    assert str(caught.value) == "lines[3].serial_numbers[0]: longer than 18 characters (SAP SerialNumber)"
    assert caught.value.rule == "lines.serials"


INBOUND_STOCK = b'{"item": {"sku": "SKU-1001"}, "site": "DAL1", "qty": 12.50, "avail": "10", "asOf": "/Date(1795792925000)/", "uom": "ea", "erp": 2, "tags": ["a", "b"]}'


def test_inbound_inventory_level(pair: Compile) -> None:
    compiled = pair(
        inbound() + "rules:\n"
        "- {id: sku, target: sku, source: item.sku, required: true}\n"
        "- {id: site, target: location.site, source: site}\n"
        "- {id: qty, target: on_hand, source: qty, pipe: [{decimal: {scale: 3}}]}\n"
        "- {id: avail, target: available, source: avail}\n"
        "- {id: uom, target: unit_of_measure, source: uom, pipe: [upper]}\n"
        "- {id: at, target: as_of, source: asOf, pipe: [{date: {from: sap}}]}\n"
        "- {id: erp, target: source_erp, source: erp}\n"
        "- {id: tenant, target: tenant_id, value: t1}\n"
    )
    out = inventory_pb2.InventoryLevel.FromString(compiled.run(INBOUND_STOCK))
    assert out.sku == "SKU-1001" and out.location.site == "DAL1"
    assert (out.on_hand, out.available, out.unit_of_measure) == ("12.500", "10", "EA")
    assert out.as_of.ToJsonString() == "2026-11-27T15:22:05Z"
    assert out.source_erp == common_pb2.ERP_SYSTEM_SAP_S4HANA


def test_inbound_custom_fields_and_repeated(pair: Compile) -> None:
    compiled = pair(
        inbound("returnbridge.api.v1.ReturnOrder") + "rules:\n"
        "- {id: c.site, target: custom_fields.erp_site, source: site}\n"
        "- {id: c.qty, target: custom_fields.erp_qty, source: qty}\n"
        "- {id: c.n, target: custom_fields.erp_n, source: erp}\n"
        "- {id: c.day, target: custom_fields.erp_day, value: '2026-01-31', custom_type: date}\n"
        "- {id: type, target: return_type, value: RETURN_TYPE_EXCHANGE}\n"
        "- id: lines\n  target: lines\n  each: tags\n  rules:\n"
        "    - {id: lines.id, target: line_id, source: '@'}\n"
        "    - {id: lines.serials, target: serial_numbers, each: $.tags, source: '@'}\n"
    )
    out = returns_pb2.ReturnOrder.FromString(compiled.run(INBOUND_STOCK))
    assert out.custom_fields["erp_site"].string_value == "DAL1"
    assert out.custom_fields["erp_qty"].decimal_value == "12.50"
    assert out.custom_fields["erp_n"].int_value == 2
    assert out.custom_fields["erp_day"].date_value == "2026-01-31"
    assert out.return_type == returns_pb2.RETURN_TYPE_EXCHANGE
    assert [(line.line_id, list(line.serial_numbers)) for line in out.lines] == [
        ("a", ["a", "b"]),
        ("b", ["a", "b"]),
    ]


@pytest.mark.parametrize(
    ("rule", "document", "expected"),
    [
        (
            "- {id: e, target: source_erp, source: erp}",
            b'{"erp": "SAP"}',
            ("e", "erp", 'unknown enum value "SAP" for returnbridge.api.v1.ErpSystem'),
        ),
        (
            "- {id: t, target: as_of, source: at}",
            b'{"at": "yesterday"}',
            ("t", "at", 'not a valid timestamp: "yesterday"'),
        ),
        ("- {id: s, target: sku, source: x}", b'{"x": true}', ("s", "x", "expected a string, got bool")),
        (
            "- {id: s, target: sku, source: 'rows[1].sku'}",
            b'{"rows": [{}, {"sku": {"a": 1}}]}',
            ("s", "rows[1].sku", "expected a string, got object"),
        ),
        ("- {id: s, target: sku, source: x}", b"[1, 2]", ("", "", "expected a JSON object, got list")),
    ],
)
def test_inbound_errors(rule: str, document: bytes, expected: tuple[str, str, str], pair: Compile) -> None:
    compiled = pair(inbound() + "rules:\n" + rule + "\n")
    with pytest.raises(TranslationError) as caught:
        compiled.run(document)
    assert (caught.value.rule, caught.value.path) == expected[:2]
    assert str(caught.value).endswith(expected[2])


def test_inbound_malformed_json_is_an_error(pair: Compile) -> None:
    compiled = pair(inbound() + "rules:\n- {id: s, target: sku, source: x}\n")
    for bad in (b"", b"{", b'{"x": 1e99999}', b"\xff", b'{"x": NaN}', b"[" * 200 + b"]" * 200):
        with pytest.raises(TranslationError):
            compiled.rust.translate(bad)
        with pytest.raises(TranslationError):
            compiled.ref.translate(bad)
