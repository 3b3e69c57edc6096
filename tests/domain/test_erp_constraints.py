"""ERP constraints declared by the packs: refused at submit with the field and the ERP, truncations reported."""

from __future__ import annotations

import re
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from nats.aio.client import Client as NatsClient

from delivery.pipeline_harness import Pipeline, make_order, md
from returnbridge.api.v1 import returns_pb2, returns_pb2_grpc
from returnbridge.bus import subjects
from returnbridge.domain.erp_constraints import FieldConstraint, RoutedConstraints, check
from returnbridge.mapping import MappingRegistry
from returnbridge.mapping.registry import shipped_sources
from returnbridge.mapping.spec import Rule
from returnbridge.services.intake import Intake

REGISTRY = MappingRegistry.load()


def _routed(erp: str, *mappings: str, presence: bool = True) -> list[RoutedConstraints]:
    return [RoutedConstraints(erp, m, REGISTRY.constraints(m), presence=presence) for m in mappings]


def _order(site: str = "FRA2") -> returns_pb2.ReturnOrder:
    order = make_order("R-C1", site=site)
    order.customer.erp_customer_ref = "17100001"
    return order


def test_sap_serial_over_18_characters_names_field_and_erp() -> None:
    order = _order()
    order.lines[0].serial_numbers.append("S" * 19)
    result = check(order, _routed("sap_s4hana", "sap/customer_return"))
    assert [(v.field, v.description) for v in result.violations] == [
        (
            "return_order.lines[0].serial_numbers[0]",
            "sap_s4hana (sap/customer_return): SerialNumber holds at most 18 characters (got 19)",
        )
    ]


def test_serial_length_is_measured_after_the_trim_the_pack_applies() -> None:
    order = _order()
    order.lines[0].serial_numbers.append(" " + "S" * 18 + " ")
    assert check(order, _routed("sap_s4hana", "sap/customer_return")).violations == []


def test_missing_customer_reference_is_refused_for_each_erp() -> None:
    order = _order()
    order.customer.erp_customer_ref = ""
    for erp, mapping, erp_field in (
        ("sap_s4hana", "sap/customer_return", "SoldToParty"),
        ("netsuite", "netsuite/return_authorization", "entity"),
        ("oracle_fusion", "oracle/return_order", "BuyingPartyNumber"),
    ):
        violations = check(order, _routed(erp, mapping)).violations
        assert [(v.field, v.description) for v in violations] == [
            ("return_order.customer.erp_customer_ref", f"{erp} ({mapping}): {erp_field} is required")
        ]


def test_later_documents_check_lengths_but_not_presence() -> None:
    order = _order()
    order.customer.erp_customer_ref = ""
    assert check(order, _routed("sap_s4hana", "sap/credit_memo_request", presence=False)).violations == []
    order.customer.erp_customer_ref = "12345678901"  # 11 > SoldToParty's 10
    violations = check(order, _routed("sap_s4hana", "sap/credit_memo_request", presence=False)).violations
    assert [v.field for v in violations] == ["return_order.customer.erp_customer_ref"]


def test_truncated_free_text_is_an_adjustment_not_a_violation() -> None:
    order = _order()
    order.lines[0].description = "x" * 55
    result = check(order, _routed("sap_s4hana", "sap/customer_return"))
    assert result.violations == []
    [adjustment] = result.adjustments
    assert (
        adjustment.field,
        adjustment.erp_field,
        adjustment.original_length,
        adjustment.written_length,
    ) == (
        "return_order.lines[0].description",
        "CustomerReturnItemText",
        55,
        40,
    )


def test_only_when_reads_the_root_for_a_line_constraint() -> None:
    order = _order()
    order.lines[0].original_order_line_id = "1234567"  # 7 > ReferenceSDDocumentItem's 6
    assert check(order, _routed("sap_s4hana", "sap/customer_return")).violations == []
    order.original_order.erp_order_ref = "5000001"
    violations = check(order, _routed("sap_s4hana", "sap/customer_return")).violations
    assert [v.field for v in violations] == ["return_order.lines[0].original_order_line_id"]


@pytest.mark.parametrize(
    ("quantity", "ok"), [("1", True), ("1.125", True), ("1.1255", False), ("1234567890123", False)]
)
def test_sap_quantity_format(quantity: str, ok: bool) -> None:
    order = _order()
    order.lines[0].quantity = quantity
    assert (check(order, _routed("sap_s4hana", "sap/customer_return")).violations == []) is ok


@pytest.mark.parametrize(
    "raw",
    [
        {"field": "lines[0].sku", "erp_field": "X", "required": True},
        {"field": "sku", "erp_field": "X"},
        {"field": "sku", "erp_field": "X", "on_overflow": "truncate", "required": True},
        {"field": "sku", "erp_field": "X", "pattern": "("},
        {"field": "sku", "erp_field": "X", "required": True, "colour": "red"},
    ],
)
def test_bad_declarations_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FieldConstraint.model_validate(raw)


def _direct_rules(rules: list[Rule], scope: str = "") -> list[tuple[Rule, str]]:
    """(rule, input path) for rules that write an input field without a lookup in between."""
    out: list[tuple[Rule, str]] = []
    for rule in rules:
        if rule.each is not None:
            inner = f"{scope}{rule.each}[*]" if rule.each != "@" else scope.rstrip(".")
            if rule.rules:
                out += _direct_rules(rule.rules, f"{inner}." if inner else "")
            elif rule.source == "@":
                out.append((rule, inner))
            continue
        if rule.source is None or rule.source.startswith(("$", "@")):
            continue
        if any(isinstance(s, dict) and ("lookup" in s or "default" in s) for s in rule.pipe):
            continue
        # "lines[*].serial_numbers[*].^.lot_number" is the line's lot_number.
        out.append((rule, re.sub(r"\.[A-Za-z_]+\[\*\]\.\^", "", scope + rule.source)))
    return out


def _max_length(rule: Rule) -> tuple[int, str] | None:
    for step in rule.pipe:
        if isinstance(step, dict) and "max_length" in step:
            return int(step["max_length"]["length"]), step["max_length"].get("on_overflow", "reject")
    return None


def test_every_length_limit_in_a_pack_rule_is_declared_as_a_constraint() -> None:
    """The declared constraints cannot drift from what the rules enforce at delivery time."""
    missing = []
    for mapping_id, source in shipped_sources().items():
        declared = {c.field: c for c in source.spec.constraints}
        for rule, path in _direct_rules(source.spec.rules):
            limit = _max_length(rule)
            if limit is None:
                continue
            constraint = declared.get(path)
            if constraint is None or constraint.max_length is None or constraint.max_length > limit[0]:
                missing.append((mapping_id, rule.id, path, limit))
            elif constraint.on_overflow != limit[1]:
                missing.append((mapping_id, rule.id, path, "overflow mode differs"))
    assert missing == []


async def _constrained_pipeline(nc: NatsClient) -> Pipeline:
    pipe = await Pipeline.create(nc)
    pipe.intake = Intake(
        pipe.router,
        pipe.publisher,
        pipe.buckets[subjects.IDEMPOTENCY_BUCKET],
        pipe.status,
        constraints=REGISTRY.constraints,
    )
    return pipe


async def test_submit_refuses_what_the_routed_erp_refuses_and_writes_nothing(nats_client: NatsClient) -> None:
    pipe = await _constrained_pipeline(nats_client)
    try:
        stub = returns_pb2_grpc.ReturnsServiceStub(await pipe.start_grpc(pipe.returns_servicer()))
        order = _order(site="FRA2")  # routed to SAP
        order.customer.erp_customer_ref = ""
        order.lines[0].serial_numbers.append("S" * 19)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.SubmitReturn(returns_pb2.SubmitReturnRequest(return_order=order), metadata=md("acme"))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = dict(info.value.trailing_metadata() or ()).get("grpc-status-details-bin")
        status = status_pb2.Status.FromString(details)
        bad_request = error_details_pb2.BadRequest()
        status.details[0].Unpack(bad_request)
        got = {v.field: v.description for v in bad_request.field_violations}
        assert got["return_order.customer.erp_customer_ref"].startswith("sap_s4hana (sap/customer_return)")
        assert "SerialNumber holds at most 18" in got["return_order.lines[0].serial_numbers[0]"]
        info_ = await pipe.nc.jetstream().stream_info(subjects.DELIVER_STREAM)
        assert info_.state.messages == 0
        assert await pipe.status.get("acme", "R-C1") is None
    finally:
        await pipe.close()


async def test_submit_reports_truncation_to_the_caller(nats_client: NatsClient) -> None:
    pipe = await _constrained_pipeline(nats_client)
    try:
        stub = returns_pb2_grpc.ReturnsServiceStub(await pipe.start_grpc(pipe.returns_servicer()))
        order = _order(site="FRA2")
        order.lines[0].description = "d" * 41
        request = returns_pb2.SubmitReturnRequest(return_order=order)
        response = await stub.SubmitReturn(request, metadata=md("acme"))
        assert response.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED
        [adjustment] = response.adjustments
        assert (adjustment.field, adjustment.erp, adjustment.mapping, adjustment.erp_field) == (
            "return_order.lines[0].description",
            "sap_s4hana",
            "sap/customer_return",
            "CustomerReturnItemText",
        )
        assert (adjustment.original_length, adjustment.written_length) == (41, 40)
        duplicate = await stub.SubmitReturn(request, metadata=md("acme"))
        assert duplicate.outcome == returns_pb2.SUBMIT_OUTCOME_DUPLICATE
        assert list(duplicate.adjustments) == list(response.adjustments)
    finally:
        await pipe.close()
