"""Table tests of the shipped packs: contract coverage, key fields per pack, and a precise error for each bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import samples

from returnbridge.api.v1 import common_pb2, inventory_pb2, returns_pb2
from returnbridge.errors import SpecError, TranslationError
from returnbridge.mapping import MappingRegistry, check_spec_text

# The cross-team contract (docs: contracts): mapping id -> connector document type ("" = inbound record).
CONTRACT = {
    "netsuite/return_authorization": "returnAuthorization",
    "netsuite/item_receipt": "itemReceipt",
    "netsuite/credit_memo": "creditMemo",
    "netsuite/cash_refund": "cashRefund",
    "sap/customer_return": "A_CustomerReturn",
    "sap/returns_delivery": "A_ReturnsDeliveryHeader",
    "sap/credit_memo_request": "A_CreditMemoRequest",
    "sap/rfc_customer_return": "BAPI_CUSTOMERRETURN_CREATE",
    "oracle/return_order": "salesOrdersForOrderHub",
    "oracle/receipt": "receivingReceiptRequests",
    "oracle/credit_memo": "receivablesCreditMemos",
    "oracle_ebs/rma": "OE_ORDER_PUB.PROCESS_ORDER",
    "oracle_ebs/credit_memo": "AR_CREDIT_MEMO_API_PUB.CREATE_REQUEST",
    "netsuite/inventory_level": "",
    "sap/material_stock": "",
    "oracle/onhand": "",
    "netsuite/document_status": "",
    "sap/document_status": "",
    "oracle/document_status": "",
}
INBOUND_TYPES = {
    "netsuite/inventory_level": "InventoryLevel",
    "sap/material_stock": "InventoryLevel",
    "oracle/onhand": "InventoryLevel",
    "oracle_ebs/onhand": "InventoryLevel",
    "netsuite/document_status": "DocumentStatus",
    "sap/document_status": "DocumentStatus",
    "oracle/document_status": "DocumentStatus",
}
# Keys the connectors own (external reference); a pack must leave them out.
CONNECTOR_OWNED = {
    "netsuite/return_authorization": ["externalId"],
    "sap/customer_return": ["PurchaseOrderByCustomer"],
    "sap/credit_memo_request": ["PurchaseOrderByCustomer"],
    "oracle/return_order": ["SourceTransactionNumber", "SourceTransactionId"],
    "oracle/receipt": ["ShipmentNumber"],
    "oracle/credit_memo": ["PurchaseOrder"],
}


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


def _erp(mapping_id: str) -> str:
    return mapping_id.split("/")[0]


def translate(registry: MappingRegistry, mapping_id: str, order: returns_pb2.ReturnOrder) -> Any:
    out = registry.get(mapping_id).translate(order.SerializeToString(deterministic=True))
    return json.loads(out, parse_float=Decimal)


def dig(body: Any, path: str) -> Any:
    for part in path.split("."):
        body = body[int(part)] if part.isdigit() else body[part]
    return body


def test_contract_ids_are_loaded_with_their_direction(registry: MappingRegistry) -> None:
    for mapping_id, document_type in CONTRACT.items():
        mapper = registry.get(mapping_id)
        assert mapper.direction == ("outbound" if document_type else "inbound"), mapping_id
        if document_type:
            assert mapper.output_content_type == "application/json"
    for mapping_id, message in INBOUND_TYPES.items():
        assert registry.get(mapping_id).output_content_type == (
            f"application/x-protobuf; messageType=returnbridge.api.v1.{message}"
        )


def test_contract_matches_the_routing_flows() -> None:
    from returnbridge.domain.erps import ERPS

    assert {k: v for k, v in CONTRACT.items() if v} == {
        doc.mapping: doc.document_type for erp in ERPS.values() for doc in erp.documents
    }


@pytest.mark.parametrize(("mapping_id", "keys"), sorted(CONNECTOR_OWNED.items()))
def test_connector_owned_identity_is_left_out(
    registry: MappingRegistry, mapping_id: str, keys: list[str]
) -> None:
    body = translate(registry, mapping_id, samples.build_return(2, erp=_erp(mapping_id)))
    assert not set(keys) & set(body)


# (mapping id, builder kwargs, mutation, dotted output path, expected value)
Mutation = Callable[[returns_pb2.ReturnOrder], None] | None
FIELD_CASES: list[tuple[str, dict[str, Any], Mutation, str, Any]] = [
    ("netsuite/return_authorization", {}, None, "createdFrom.id", "9001"),
    ("netsuite/return_authorization", {}, None, "entity.id", "101"),
    ("netsuite/return_authorization", {"original_order": False}, None, "entity.id", "101"),
    ("netsuite/return_authorization", {"currency": "EUR"}, None, "currency.id", "3"),
    (
        "netsuite/return_authorization",
        {},
        lambda o: setattr(o.lines[0].location, "site", "LHR1"),
        "location.id",
        "3",
    ),
    (
        "netsuite/return_authorization",
        {},
        lambda o: setattr(o.lines[0], "cost_center", "CC-103"),
        "class.id",
        "3",
    ),
    (
        "netsuite/return_authorization",
        {},
        lambda o: setattr(o.lines[1], "sku", "SKU-1010"),
        "item.items.1.item.id",
        "510",
    ),
    (
        "netsuite/return_authorization",
        {},
        lambda o: setattr(o.lines[0], "quantity", "2.5"),
        "item.items.0.quantity",
        Decimal("2.5"),
    ),
    (
        "netsuite/return_authorization",
        {"line_specs": [samples.LineSpec(quantity="3", unit_price="19.99")]},
        None,
        "item.items.0.amount",
        Decimal("59.97"),
    ),
    (
        "netsuite/item_receipt",
        {"serialized_every": 1},
        None,
        "item.items.0.inventoryDetail.inventoryAssignment.items.0.quantity",
        1,
    ),
    ("netsuite/item_receipt", {}, None, "item.items.1.orderLine", 2),
    (
        "netsuite/cash_refund",
        {},
        lambda o: setattr(o.refund, "method", returns_pb2.REFUND_METHOD_CHECK),
        "paymentMethod.id",
        "2",
    ),
    ("sap/customer_return", {}, lambda o: setattr(o, "reason_code", "WRONG_ITEM"), "SDDocumentReason", "R03"),
    (
        "sap/customer_return",
        {},
        lambda o: setattr(o.lines[0], "reason_code", "NO_LONGER_NEEDED"),
        "to_Item.0.ReturnReason",
        "105",
    ),
    (
        "sap/customer_return",
        {},
        lambda o: setattr(o.lines[0], "unit_of_measure", "PK"),
        "to_Item.0.RequestedQuantityUnit",
        "PAK",
    ),
    (
        "sap/customer_return",
        {},
        lambda o: setattr(o.lines[0].location, "sub_location", "RTN"),
        "to_Item.0.StorageLocation",
        "RET1",
    ),
    (
        "sap/customer_return",
        {},
        lambda o: setattr(o.lines[0], "quantity", "2.5"),
        "to_Item.0.RequestedQuantity",
        "2.500",
    ),
    ("sap/customer_return", {}, None, "to_Item.2.CustomerReturnItem", "30"),
    ("sap/customer_return", {"lines": 4}, None, "to_Item.3.Supplier", "17300004"),
    ("sap/customer_return", {"lines": 4, "max_length": True}, None, "to_Item.3.Supplier", "V-88888888"),
    ("sap/customer_return", {}, None, "CustomerReturnDate", "/Date(1795132800000)/"),
    (
        "sap/returns_delivery",
        {},
        lambda o: setattr(o.lines[0], "cost_center", "CC-104"),
        "Items.0.ProfitCenter",
        "YB105",
    ),
    (
        "sap/returns_delivery",
        {},
        lambda o: setattr(o.lines[0], "reason_code", "DAMAGED"),
        "Items.0.GoodsMovementReasonCode",
        "0002",
    ),
    ("sap/credit_memo_request", {}, None, "to_Item.0.to_PricingElement.0.ConditionType", "PR00"),
    ("sap/rfc_customer_return", {}, None, "RETURN_ITEMS_IN.1.ITM_NUMBER", "000020"),
    ("sap/rfc_customer_return", {}, None, "RETURN_PARTNERS.0.PARTN_NUMB", "10100001"),
    (
        "sap/rfc_customer_return",
        {"lines": 5},
        None,
        "RETURN_PARTNERS",
        [{"PARTN_ROLE": "AG", "PARTN_NUMB": "10100001"}],
    ),
    ("oracle/return_order", {"currency": "GBP"}, None, "BusinessUnitName", "UK1 Business Unit"),
    (
        "oracle/return_order",
        {},
        lambda o: setattr(o.lines[0], "unit_of_measure", "BOX"),
        "lines.0.OrderedUOMCode",
        "Bx",
    ),
    ("oracle/return_order", {"original_order": False}, None, "lines.0.UnreferencedReturnFlag", "Y"),
    ("oracle/return_order", {}, None, "lines.1.documentReferences.0.DocumentLineNumber", "20"),
    (
        "oracle/receipt",
        {},
        lambda o: o.lines[0].location.ClearField("sub_location"),
        "lines.0.Subinventory",
        "RETURNS",
    ),
    (
        "oracle/credit_memo",
        {"line_specs": [samples.LineSpec(unit_price="19.99")]},
        None,
        "receivablesCreditMemoLines.0.UnitSellingPrice",
        Decimal("-19.99"),
    ),
    ("oracle_ebs/rma", {"currency": "GBP"}, None, "p_header_rec.org_id", 205),
    (
        "oracle_ebs/rma",
        {},
        lambda o: setattr(o.lines[0], "sku", "SKU-7777"),
        "p_line_tbl.0.ordered_item",
        "SKU-7777",
    ),
    (
        "oracle_ebs/rma",
        {"return_type": returns_pb2.RETURN_TYPE_CREDIT_MEMO},
        None,
        "p_line_tbl.0.line_type_id",
        1438,
    ),
    ("oracle_ebs/rma", {"serialized_every": 1, "lines": 2}, None, "p_lot_serial_tbl.0.line_index", 1),
    (
        "oracle_ebs/credit_memo",
        {"line_specs": [samples.LineSpec(quantity="2", unit_price="19.99")]},
        None,
        "cm_line_tbl.0.extended_amount",
        "-39.98",
    ),
]


@pytest.mark.parametrize(
    ("mapping_id", "kwargs", "mutate", "path", "expected"),
    FIELD_CASES,
    ids=[f"{c[0]}:{c[3]}" for c in FIELD_CASES],
)
def test_field(
    registry: MappingRegistry,
    mapping_id: str,
    kwargs: dict[str, Any],
    mutate: Mutation,
    path: str,
    expected: Any,
) -> None:
    order = samples.build_return(**{"lines": 3, "erp": _erp(mapping_id), **kwargs})
    if mutate:
        mutate(order)
    assert dig(translate(registry, mapping_id, order), path) == expected


def test_unknown_cost_center_sends_no_segments(registry: MappingRegistry) -> None:
    order = samples.build_return(2, erp="netsuite")
    order.lines[0].cost_center = "CC-999"
    line = translate(registry, "netsuite/return_authorization", order)["item"]["items"][0]
    assert "department" not in line and "class" not in line
    assert line["custcol_rb_cost_center"] == "CC-999"


def test_sap_supplier_only_on_return_to_vendor_lines(registry: MappingRegistry) -> None:
    body = translate(registry, "sap/customer_return", samples.build_return(8, erp="sap"))
    assert [("Supplier" in item) for item in body["to_Item"]] == [i % 4 == 0 for i in range(1, 9)]


# (mapping id, mutation, rule, path, message fragment)
ERROR_CASES: list[tuple[str, Callable[[returns_pb2.ReturnOrder], None], str, str, str]] = [
    (
        "netsuite/return_authorization",
        lambda o: setattr(o, "currency", "JPY"),
        "header.currency",
        "currency",
        'no entry for "JPY" in table currencies',
    ),
    (
        "netsuite/return_authorization",
        lambda o: o.customer.ClearField("erp_customer_ref"),
        "header.entity",
        "customer.erp_customer_ref",
        "required value missing",
    ),
    (
        "netsuite/return_authorization",
        lambda o: setattr(o, "rma_number", "R" * 46),
        "header.other_ref_num",
        "rma_number",
        "longer than 45 characters (NetSuite otherRefNum)",
    ),
    (
        "netsuite/return_authorization",
        lambda o: setattr(o.lines[0], "quantity", "two"),
        "lines.quantity",
        "lines[0].quantity",
        'expected a decimal, got "two"',
    ),
    (
        "netsuite/item_receipt",
        lambda o: o.lines[1].location.ClearField("site"),
        "lines.location",
        "lines[1].location.site",
        "required value missing",
    ),
    (
        "netsuite/cash_refund",
        lambda o: o.lines[0].ClearField("unit_price"),
        "lines.rate",
        "lines[0].unit_price.amount",
        "required value missing",
    ),
    (
        "sap/customer_return",
        lambda o: setattr(o.customer, "erp_customer_ref", "12345678901"),
        "header.sold_to",
        "customer.erp_customer_ref",
        "longer than 10 characters (SAP SoldToParty)",
    ),
    (
        "sap/customer_return",
        lambda o: setattr(o.lines[2], "sku", "M" * 41),
        "items.material",
        "lines[2].sku",
        "longer than 40 characters (SAP Material)",
    ),
    (
        "sap/customer_return",
        lambda o: setattr(o.lines[0], "reason_code", "BORED"),
        "items.reason",
        "lines[0].reason_code",
        'no entry for "BORED" in table reason_codes',
    ),
    (
        "sap/customer_return",
        lambda o: setattr(o.lines[0], "unit_of_measure", "KG"),
        "items.unit",
        "lines[0].unit_of_measure",
        'no entry for "KG" in table uom',
    ),
    (
        "sap/customer_return",
        lambda o: setattr(o.lines[0], "quantity", "-1"),
        "items.quantity",
        "lines[0].quantity",
        "does not match",
    ),
    (
        "sap/returns_delivery",
        lambda o: setattr(o.lines[0], "cost_center", "CC-12345678"),
        "items.cost_center",
        "lines[0].cost_center",
        "longer than 10 characters (SAP CostCenter)",
    ),
    (
        "sap/returns_delivery",
        lambda o: setattr(o.lines[0], "lot_number", "LOT-1234567"),
        "items.batch",
        "lines[0].lot_number",
        "longer than 10 characters (SAP Batch)",
    ),
    (
        "sap/rfc_customer_return",
        lambda o: o.lines[1].ClearField("unit_price"),
        "conditions.value",
        "lines[1].unit_price.amount",
        "required value missing",
    ),
    (
        "sap/rfc_customer_return",
        lambda o: setattr(o.lines[0], "original_order_line_id", "A1"),
        "items.ref_doc_it",
        "lines[0].original_order_line_id",
        "does not match",
    ),
    (
        "oracle/return_order",
        lambda o: setattr(o, "currency", "JPY"),
        "header.business_unit",
        "currency",
        "table business_units",
    ),
    (
        "oracle/return_order",
        lambda o: setattr(o.lines[0].location, "sub_location", "ATTIC"),
        "lines.subinventory",
        "lines[0].location.sub_location",
        'no entry for "ATTIC"',
    ),
    (
        "oracle/credit_memo",
        lambda o: o.ClearField("event_time"),
        "header.date",
        "event_time",
        "required value missing",
    ),
    (
        "oracle_ebs/rma",
        lambda o: o.lines[0].serial_numbers.append("S" * 31),
        "serials.from",
        "lines[0].serial_numbers[0]",
        "longer than 30 characters (EBS from_serial_number)",
    ),
    (
        "oracle_ebs/credit_memo",
        lambda o: o.custom_fields.pop("ebs_customer_trx_id"),
        "header.trx_id",
        "custom_fields.ebs_customer_trx_id",
        "required value missing",
    ),
    (
        "oracle_ebs/credit_memo",
        lambda o: o.custom_fields["ebs_customer_trx_id"].CopyFrom(
            common_pb2.CustomValue(string_value="INV-1")
        ),
        "header.trx_id",
        "custom_fields.ebs_customer_trx_id",
        "expected an integer",
    ),
]


@pytest.mark.parametrize(
    ("mapping_id", "mutate", "rule", "path", "message"),
    ERROR_CASES,
    ids=[f"{c[0]}:{c[2]}" for c in ERROR_CASES],
)
def test_bad_document_error(
    registry: MappingRegistry,
    mapping_id: str,
    mutate: Callable[[returns_pb2.ReturnOrder], None],
    rule: str,
    path: str,
    message: str,
) -> None:
    order = samples.build_return(3, erp=_erp(mapping_id))
    mutate(order)
    with pytest.raises(TranslationError) as caught:
        registry.get(mapping_id).translate(order.SerializeToString(deterministic=True))
    assert (caught.value.rule, caught.value.path) == (rule, path)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("mapping_id", "record", "rule", "message"),
    [
        (
            "netsuite/inventory_level",
            {"itemid": "SKU-1001", "location": "1", "quantityonhand": "x"},
            "on_hand",
            'expected a decimal, got "x"',
        ),
        (
            "netsuite/inventory_level",
            {"itemid": "SKU-1001", "location": "99", "quantityonhand": "1"},
            "location.site",
            "required value missing",
        ),
        (
            "sap/document_status",
            {"DocumentType": "A_CustomerReturn", "SDDocument": "1", "OverallSDProcessStatus": "Z"},
            "status",
            'no entry for "A_CustomerReturn/Z"',
        ),
        (
            "sap/material_stock",
            {"Plant": "DAL1", "InventoryStockType": "01", "MatlWrhsStkQtyInMatlBaseUnit": "1"},
            "sku",
            "required value missing",
        ),
        (
            "oracle/onhand",
            {"ItemNumber": "SKU-1", "OrganizationCode": "DAL1", "PrimaryTransactionQuantity": "lots"},
            "on_hand",
            "expected a decimal",
        ),
        (
            "oracle/document_status",
            {"DocumentType": "receivablesCreditMemos", "DocumentId": "1", "StatusCode": "Lost"},
            "status",
            'no entry for "receivablesCreditMemos/Lost"',
        ),
    ],
)
def test_bad_record_error(
    registry: MappingRegistry, mapping_id: str, record: dict[str, Any], rule: str, message: str
) -> None:
    with pytest.raises(TranslationError) as caught:
        registry.get(mapping_id).translate(json.dumps(record).encode())
    assert caught.value.rule == rule
    assert message in str(caught.value)


@pytest.mark.parametrize("payload", [b"", b"[1]", b"{", "\u00ff".encode("latin-1")])
def test_malformed_record_is_a_translation_error(registry: MappingRegistry, payload: bytes) -> None:
    with pytest.raises(TranslationError):
        registry.get("sap/material_stock").translate(payload)


def test_malformed_protobuf_is_a_translation_error(registry: MappingRegistry) -> None:
    with pytest.raises(TranslationError):
        registry.get("sap/customer_return").translate(b"\xff\xff\xff")


def test_sap_stock_types(registry: MappingRegistry) -> None:
    def level(stock_type: str) -> inventory_pb2.InventoryLevel:
        record = {
            "Material": "SKU-1001",
            "Plant": "LHR1",
            "StorageLocation": "0001",
            "InventoryStockType": stock_type,
        }
        record["MatlWrhsStkQtyInMatlBaseUnit"] = "4.000"
        out = registry.get("sap/material_stock").translate(json.dumps(record).encode())
        return inventory_pb2.InventoryLevel.FromString(out)

    assert (level("01").on_hand, level("01").available, level("01").in_inspection) == ("4.000", "4.000", "")
    assert (level("02").on_hand, level("02").in_inspection) == ("", "4.000")
    assert (level("07").on_hand, level("07").available) == ("4.000", "")
    assert level("01").location.sub_location == "MAIN"


_HEADER = "direction: outbound\ninput: returnbridge.api.v1.ReturnOrder\noutput: json\n"


@pytest.mark.parametrize(
    ("text", "line", "rule", "fragment"),
    [
        (
            _HEADER
            + "rules:\n  - {id: a, target: x, source: rma_number}\n  - {id: b, target: y, source: nope}\n",
            6,
            "b",
            "nope",
        ),
        (
            _HEADER + "rules:\n  - {id: a, target: x, source: rma_number, pipe: [frobnicate]}\n",
            5,
            "a",
            "frobnicate",
        ),
        (
            _HEADER + "rules:\n  - {id: a, target: x, source: currency, pipe: [{lookup: missing}]}\n",
            5,
            "a",
            "missing",
        ),
        (
            _HEADER
            + "tables:\n  t: {entries: {A: 1}, fallback: 2, extra: 3}\nrules:\n  - {id: a, target: x, value: 1}\n",
            5,
            "",
            "extra",
        ),
    ],
    ids=["unknown-field", "unknown-step", "unknown-table", "bad-table-key"],
)
def test_bad_spec_error(text: str, line: int, rule: str, fragment: str) -> None:
    errors = check_spec_text(text, "bad.yaml")
    assert len(errors) == 1
    error = errors[0]
    assert isinstance(error, SpecError)
    assert error.file == "bad.yaml"
    assert error.line == line
    if rule:
        assert error.rule == rule
    assert fragment in str(error)


def test_duplicate_rule_id_is_a_spec_error() -> None:
    text = (
        _HEADER
        + "rules:\n  - {id: a, target: x, source: rma_number}\n  - {id: a, target: y, source: notes}\n"
    )
    (error,) = check_spec_text(text, "dup.yaml")
    assert error.file == "dup.yaml" and "duplicate rule id 'a'" in str(error)


def test_duplicate_rule_id_names_its_line() -> None:
    text = (
        _HEADER
        + "rules:\n  - {id: a, target: x, source: rma_number}\n  - {id: a, target: y, source: notes}\n"
    )
    (error,) = check_spec_text(text, "dup.yaml")
    assert error.line == 6
    assert error.rule == "a"
    assert "duplicate rule id 'a'" in str(error)


def test_duplicate_nested_rule_id_names_the_nested_line() -> None:
    text = _HEADER + (
        "rules:\n"
        "  - {id: a, target: x, source: rma_number}\n"
        "  - id: ls\n"
        "    target: items\n"
        "    each: lines\n"
        "    rules:\n"
        "      - {id: b, target: q, source: sku}\n"
        "      - {id: a, target: r, source: sku}\n"
    )
    (error,) = check_spec_text(text, "dup.yaml")
    assert (error.line, error.rule) == (11, "a")


def test_bad_table_file_is_a_spec_error(tmp_path: Path) -> None:
    pack = tmp_path / "acme"
    (pack / "tables").mkdir(parents=True)
    (pack / "tables" / "sites.yaml").write_text("entries: [DAL1, RNO2]\n", encoding="utf-8")
    (pack / "thing.yaml").write_text(
        _HEADER + "tables:\n  sites: {file: tables/sites.yaml}\n"
        "rules:\n  - {id: a, target: x, source: currency, pipe: [{lookup: sites}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as caught:
        MappingRegistry.load(packs_dirs=[tmp_path])
    assert "sites" in str(caught.value)
    assert "acme" in caught.value.file


def test_tenant_override_changes_a_table_entry(tmp_path: Path) -> None:
    override = tmp_path / "tenant.yaml"
    override.write_text(
        "override: netsuite/return_authorization\n"
        "tables:\n  locations: {entries: {DAL1: '17'}}\n"
        "rules:\n  remove: [header.memo]\n",
        encoding="utf-8",
    )
    registry = MappingRegistry.load(overrides=[override])
    body = translate(registry, "netsuite/return_authorization", samples.build_return(1, erp="netsuite"))
    assert body["location"] == {"id": "17"} and "memo" not in body


def test_override_of_unknown_rule_names_the_file(tmp_path: Path) -> None:
    override = tmp_path / "tenant.yaml"
    override.write_text("override: sap/customer_return\nrules:\n  remove: [header.nope]\n", encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        MappingRegistry.load(overrides=[override])
    assert caught.value.file == str(override) and "header.nope" in str(caught.value)


def test_override_removing_a_missing_table_entry_names_the_file(tmp_path: Path) -> None:
    override = tmp_path / "tenant.yaml"
    override.write_text(
        "override: sap/customer_return\ntables:\n  plants: {remove: [SFO9]}\n", encoding="utf-8"
    )
    with pytest.raises(SpecError) as caught:
        MappingRegistry.load(overrides=[override])
    assert caught.value.file == str(override) and "SFO9" in str(caught.value)
