"""Routing rules: each condition, first match wins, default, flows, load errors with file/line/rule, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from delivery.pipeline_harness import make_order
from helpers.yaml_bombs import laughs
from returnbridge.api.v1 import common_pb2, returns_pb2
from returnbridge.errors import RoutingError
from returnbridge.routing import Router, load_routing_file, load_routing_text
from returnbridge.routing.routes_cli import add_routes_commands
from returnbridge.routing.rules import DEFAULT_ROUTES

BASE = DEFAULT_ROUTES.read_text().split("\nrules:")[0]

RULES = """
rules:
  - name: gold-electronics
    when: {customer_tier: [gold], product_type_any: [electronics]}
    target: sap
    lane: priority
  - name: all-apparel
    when: {product_type_all: [apparel]}
    target: oracle_fusion
  - name: exchange-received
    when: {return_type: [exchange], event: [received]}
    target: oracle_fusion
    lane: bulk
  - name: mid-amount-eur
    when: {amount_min: "100.00", amount_max: "500.00", currency: [EUR]}
    target: sap
  - name: tenant-globex
    when: {tenant: [globex]}
    target: sap
  - name: apac
    when: {region: [apac]}
    target: oracle_fusion
default:
  target: netsuite
"""


@pytest.fixture
def router() -> Router:
    return Router(load_routing_text(BASE + RULES, "test.yaml"))


def test_each_condition_selects_its_rule(router: Router) -> None:
    order = make_order("R1")
    assert router.route(order).rule == "default" and router.route(order).target == "netsuite"
    gold = make_order("R1")
    gold.customer.tier = "gold"
    decision = router.route(gold)
    assert (decision.rule, decision.target, decision.lane, decision.erp) == (
        "gold-electronics",
        "sap",
        "priority",
        common_pb2.ERP_SYSTEM_SAP_S4HANA,
    )
    apparel = make_order("R1")
    apparel.lines[0].product_type = "apparel"
    assert router.route(apparel).rule == "all-apparel"
    apparel.lines.add(line_id="2", product_type="electronics", quantity="1")
    assert router.route(apparel).rule == "default"  # not *all* lines are apparel any more
    exchange = make_order("R1", 2, returns_pb2.LIFECYCLE_EVENT_RECEIVED)
    exchange.return_type = returns_pb2.RETURN_TYPE_EXCHANGE
    assert router.route(exchange).rule == "exchange-received"
    assert list(router.route(exchange).document_types) == ["receivingReceiptRequests"]
    eur = make_order("R1", amount="100.00")
    eur.currency = "EUR"
    assert router.route(eur).rule == "mid-amount-eur"
    eur.total_amount.amount = "500.01"
    assert router.route(eur).rule == "default"
    globex = make_order("R1")
    globex.tenant_id = "globex"
    assert router.route(globex).rule == "tenant-globex"
    assert router.route(make_order("R1", site="SYD3")).rule == "apac"
    custom = make_order("R1")
    custom.custom_fields["region"].string_value = "apac"
    assert router.route(custom).rule == "apac"


def test_first_match_wins_and_explain_lists_failures(router: Router) -> None:
    order = make_order("R1", site="SYD1")
    order.customer.tier = "gold"
    explanation = router.explain(order)
    assert [e.rule for e in explanation] == ["gold-electronics"]
    order.customer.tier = "silver"
    explanation = router.explain(order)
    assert [e.rule for e in explanation][-1] == "apac" and explanation[-1].matched
    assert explanation[0].failed == ["customer_tier ['gold']: got 'silver'"]
    assert explanation[3].failed == [
        "amount_min 100.00: amount 19.99",
        "currency ['EUR']: got 'USD'",
    ]


def test_flows_pick_documents_by_event_and_refund_method() -> None:
    router = Router()
    refund = make_order(
        "R1", 3, returns_pb2.LIFECYCLE_EVENT_REFUNDED, refund_method=returns_pb2.REFUND_METHOD_CASH
    )
    assert list(router.route(refund).document_types) == ["cashRefund"]
    assert router.route(refund).flow == "netsuite.cash_refund"
    refund.refund.method = returns_pb2.REFUND_METHOD_GIFT_CARD
    assert list(router.route(refund).document_types) == ["creditMemo"]
    inspected = make_order("R1", 2, returns_pb2.LIFECYCLE_EVENT_INSPECTED)
    assert router.route(inspected).flow == "netsuite.none" and not router.route(inspected).document_types
    sap = make_order("R1", 2, returns_pb2.LIFECYCLE_EVENT_RECEIVED, site="FRA1")
    _, steps = router.plan(sap)
    assert [(s.mapping, s.document_type, s.source) for s in steps] == [
        ("sap/returns_delivery", "A_ReturnsDeliveryHeader", "customer_return")
    ]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            "rules:\n  - name: a\n    target: nowhere\ndefault: {target: netsuite}\n",
            "unknown target 'nowhere'",
        ),
        (
            "rules:\n  - name: a\n    when: {amount_min: 10.5}\n    target: sap\ndefault: {target: netsuite}\n",
            "test.yaml:{line}: rule 'a': rules.0.when.amount_min",
        ),
        (
            "rules:\n  - name: a\n    when: {event: [shipped]}\n    target: sap\ndefault: {target: netsuite}\n",
            "rule 'a': rules.0.when.event",
        ),
        ("rules: []\n", "default: Field required"),
        (
            "rules:\n  - name: a\n    when: {colour: [red]}\n    target: sap\ndefault: {target: netsuite}\n",
            "rule 'a': rules.0.when.colour: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_files_name_file_line_and_rule(rules: str, expected: str) -> None:
    text = BASE + "\n" + rules
    line = len(BASE.splitlines()) + 4
    with pytest.raises(RoutingError) as info:
        load_routing_text(text, "test.yaml")
    assert expected.format(line=line) in str(info.value)


def test_flow_contract_is_enforced() -> None:
    text = (
        BASE.replace("document_type: itemReceipt", "document_type: creditMemo")
        + "\ndefault: {target: netsuite}\n"
    )
    with pytest.raises(RoutingError, match="feeds document type 'itemReceipt'"):
        load_routing_text(text, "flows.yaml")


def test_shipped_default_routes_load() -> None:
    config = load_routing_file()
    assert set(config.targets) == {"netsuite", "sap", "oracle_fusion"}


def test_routes_explain_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from google.protobuf import json_format

    order = make_order("R9", site="FRA1")
    (tmp_path / "return.json").write_text(json_format.MessageToJson(order))
    parser = argparse.ArgumentParser()
    add_routes_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["routes", "explain", str(DEFAULT_ROUTES), "--input", str(tmp_path / "return.json")]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "MATCH  eu-to-sap" in out
    assert "route: target=sap lane=standard flow=sap.customer_return rule=eu-to-sap" in out
    assert "step customer_return: sap/customer_return -> A_CustomerReturn" in out
    args = parser.parse_args(
        ["routes", "explain", str(DEFAULT_ROUTES), "--input", str(tmp_path / "return.json"), "--json"]
    )
    args.func(args)
    data = json.loads(capsys.readouterr().out)
    assert data["route"]["target"] == "sap" and data["rules"][0]["matched"]


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from returnbridge.cli import main

    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"targets:\n  netsuite: {erp: netsuite\xe9}\n", "cannot read routing file"),
        (laughs().encode(), ":1: YAML limit aliases"),
        (b"rules: " + b"[" * 5_000 + b"]" * 5_000 + b"\n", "YAML limit max_depth"),
        (b"default: {target: netsuite}\nx: 1" + b"0" * 5_000 + b"\n", ":2: YAML limit int_digits"),
        (DEFAULT_ROUTES.read_bytes() + b"\ndefault: {target: sap}\n", "duplicate key 'default'"),
    ],
    ids=["not utf-8", "alias bomb", "depth bomb", "integer past the digit limit", "duplicate key"],
)
def test_routes_check_refuses_hostile_file_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_bytes(content)
    code, err = _cli(["routes", "check", str(path)], capsys)
    assert code != 0 and str(path) in err and expected in err, err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"return_id": "\xff"}', "cannot read return JSON"),
        (b'{"a":' * 20_000 + b"1" + b"}" * 20_000, "nested too deeply"),
        (b'{"version": 1' + b"0" * 5_000 + b"}", "cannot read return JSON"),
        (b"42", "expected a JSON object, got int"),
        (b'{"return_order": null}', "expected a JSON object, got NoneType"),
    ],
    ids=["not utf-8", "deep", "integer past the digit limit", "scalar", "null order"],
)
def test_routes_explain_refuses_hostile_input_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    path = tmp_path / "return.json"
    path.write_bytes(content)
    code, err = _cli(["routes", "explain", str(DEFAULT_ROUTES), "--input", str(path)], capsys)
    assert code != 0 and str(path) in err and expected in err, err
