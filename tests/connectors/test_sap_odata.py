"""SAP OData connector against the SAP simulator over loopback HTTP: the full return flow and SAP specifics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.harnesses.sap import PASSWORD, USER, customer_return_payload
from returnbridge.connectors.base import DocumentRequest
from returnbridge.connectors.registry import build_connector
from returnbridge.connectors.sap_odata import SapODataConfig, SapODataConnector
from returnbridge.connectors.sap_odata_wire import parse_odata_error
from returnbridge.errors import (
    AmbiguousErpError,
    ConfigError,
    ErpAuthError,
    PermanentErpError,
    TransientErpError,
)
from returnbridge.simulators.faults import FaultPlan
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.sap import SapSimulator, SapSimulatorConfig, build_simulator

Factory = Callable[..., SapODataConnector]


@pytest.fixture
async def sim() -> AsyncIterator[tuple[SapSimulator, RunningSimulator]]:
    simulator = build_simulator(SapSimulatorConfig())
    running = await RunningSimulator(simulator.app).start()
    try:
        yield simulator, running
    finally:
        await running.stop()


@pytest.fixture
async def make(sim: tuple[SapSimulator, RunningSimulator]) -> AsyncIterator[Factory]:
    built: list[SapODataConnector] = []

    def factory(**overrides: Any) -> SapODataConnector:
        settings: dict[str, Any] = {
            "base_url": sim[1].url,
            "username": USER,
            "password": SecretStr(PASSWORD),
            "timeout": 5.0,
        }
        settings.update(overrides)
        connector = SapODataConnector(SapODataConfig(**settings))
        built.append(connector)
        return connector

    yield factory
    for connector in built:
        await connector.aclose()


def return_request(ref: str, **kw: Any) -> DocumentRequest:
    payload = customer_return_payload(**kw)
    payload["to_Item"][0]["to_SerialNumber"] = [{"SerialNumber": "SN-0001"}]
    return DocumentRequest("A_CustomerReturn", ref, json.dumps(payload).encode())


def receipt_request(
    ref: str, customer_return: str, *, serials: list[str], quantity: str = "2.000"
) -> DocumentRequest:
    payload = {
        "ActualGoodsMovementDate": "/Date(1764288000000)/",
        "Items": [
            {
                "ReferenceSDDocumentItem": "10",
                "ActualDeliveryQuantity": quantity,
                "DeliveryQuantityUnit": "EA",
                "Plant": "DAL1",
                "StorageLocation": "RET1",
                "CostCenter": "CC1000",
                "ProfitCenter": "YB101",
                "GLAccount": "",
                "GoodsMovementReasonCode": "0001",
                "SerialNumbers": serials,
            }
        ],
    }
    return DocumentRequest(
        "A_ReturnsDeliveryHeader",
        ref,
        json.dumps(payload).encode(),
        source_document_type="A_CustomerReturn",
        source_document_id=customer_return,
    )


def credit_request(ref: str, customer_return: str, price: str) -> DocumentRequest:
    payload = {
        "CreditMemoRequestType": "CR",
        "SalesOrganization": "1710",
        "DistributionChannel": "10",
        "OrganizationDivision": "00",
        "SoldToParty": "10100001",
        "TransactionCurrency": "USD",
        "SDDocumentReason": "R01",
        "to_Item": [
            {
                "Material": "SKU-1001",
                "RequestedQuantity": "2.000",
                "Plant": "DAL1",
                "to_PricingElement": [
                    {"ConditionType": "PR00", "ConditionRateValue": price, "ConditionCurrency": "USD"}
                ],
            }
        ],
    }
    return DocumentRequest(
        "A_CreditMemoRequest",
        ref,
        json.dumps(payload).encode(),
        source_document_type="A_CustomerReturn",
        source_document_id=customer_return,
    )


def stock(simulator: SapSimulator, sloc: str = "RET1") -> Decimal:
    return simulator.kit.state.stock.get(("SKU-1001", "DAL1", sloc), Decimal(0))


async def test_receipt_names_the_etag_and_reads_again_when_someone_changed_the_item(
    sim: tuple[SapSimulator, RunningSimulator], make: Factory
) -> None:
    # S/4HANA refuses a PATCH without If-Match (428) and one with a stale ETag (412). Someone changes the delivery
    # item between our read and our PATCH: the first PATCH is 412, the connector reads the item again and wins.
    simulator, _ = sim
    connector = make()
    ret = await connector.create_document(return_request("RMA-412-1"))
    seen: list[tuple[str, str, int]] = []

    async def someone_else_changes_the_item(response: httpx.Response) -> None:
        path = response.request.url.path.rsplit("/", 1)[-1]
        seen.append((response.request.method, path.split("(")[0], response.status_code))
        if response.request.method == "GET" and path.startswith("A_ReturnsDeliveryHeader("):
            (delivery,) = simulator.kit.state.documents["A_ReturnsDeliveryHeader"].values()
            delivery["to_DeliveryDocumentItem"][0]["DeliveryDocumentItemText"] = "changed by a clerk"

    connector._http.client.event_hooks["response"].append(someone_else_changes_the_item)
    receipt = await connector.create_document(
        receipt_request("RMA-412-1", ret.document_id, serials=["SN-0001", "SN-0002"])
    )
    assert receipt.status == "C" and stock(simulator) == Decimal("2")
    patches = [(path, status) for method, path, status in seen if method == "PATCH"]
    assert patches[:3] == [
        ("A_ReturnsDeliveryItem", 412),
        ("A_ReturnsDeliveryItem", 204),
        ("A_ReturnsDeliveryHeader", 204),
    ]
    item = simulator.kit.state.documents["A_ReturnsDeliveryHeader"][receipt.document_id][
        "to_DeliveryDocumentItem"
    ][0]
    assert (item["CostCenter"], item["DeliveryDocumentItemText"]) == ("CC1000", "changed by a clerk")


async def test_return_receipt_and_credit_flow(
    sim: tuple[SapSimulator, RunningSimulator], make: Factory
) -> None:
    simulator, _ = sim
    connector = make()
    ret = await connector.create_document(return_request("RMA-100-1"))
    assert ret.document_id.startswith("6") and ret.status == "A"
    assert ret.raw["PurchaseOrderByCustomer"] == "RMA-100-1"

    receipt = await connector.create_document(
        receipt_request("RMA-100-1", ret.document_id, serials=["SN-0001", "SN-0002"])
    )
    assert receipt.document_type == "A_ReturnsDeliveryHeader" and receipt.created is True
    assert receipt.status == "C"
    assert stock(simulator) == Decimal("2")
    delivery = simulator.kit.state.documents["A_ReturnsDeliveryHeader"][receipt.document_id]
    item = delivery["to_DeliveryDocumentItem"][0]
    assert (item["CostCenter"], item["GoodsMovementReasonCode"], item["GoodsMovementStatus"]) == (
        "CC1000",
        "0001",
        "C",
    )
    serials = [o["SerialNumber"] for o in item["to_SerialDeliveryItem"]["to_MaintenanceItemObject"]]
    assert serials == ["SN-0001", "SN-0002"]
    assert (await connector.get_document_status("A_CustomerReturn", ret.document_id)).status == "B"

    again = await connector.create_document(
        receipt_request("RMA-100-1", ret.document_id, serials=["SN-0001", "SN-0002"])
    )
    assert again.created is False and again.document_id == receipt.document_id
    assert stock(simulator) == Decimal("2"), "a repeated receipt posts nothing"
    found = await connector.find_document("A_ReturnsDeliveryHeader", "RMA-100-1")
    assert found is not None and found.document_id == receipt.document_id

    credit = await connector.create_document(credit_request("RMA-100-1", ret.document_id, "19.99"))
    assert credit.document_id.startswith("7") and credit.status == "C"
    assert credit.raw["TotalNetAmount"] == "39.98"
    assert credit.raw["ReferenceSDDocument"] == ret.document_id
    ledger = simulator.kit.state.ledger
    assert [(e.account, e.debit, e.credit) for e in ledger] == [
        ("410000", Decimal("39.98"), Decimal(0)),
        ("121000", Decimal(0), Decimal("39.98")),
    ]
    assert simulator.kit.state.trial_balance()["balanced"] is True
    assert (await connector.get_document_status("A_CustomerReturn", ret.document_id)).status == "C"


async def test_status_feed_reports_each_step(
    sim: tuple[SapSimulator, RunningSimulator], make: Factory
) -> None:
    connector = make()
    ret = await connector.create_document(return_request("RMA-200-1"))
    batch = await connector.read_status_changes(None, 100)
    records = [json.loads(r) for r in batch.records]
    assert [(r["DocumentType"], r["SDDocument"], r["OverallSDProcessStatus"]) for r in records] == [
        ("A_CustomerReturn", ret.document_id, "A")
    ]
    assert "__metadata" not in records[0] and "to_Item" not in records[0]
    assert records[0]["TotalNetAmount"] == "39.98" and records[0]["PurchaseOrderByCustomer"] == "RMA-200-1"

    await connector.create_document(
        receipt_request("RMA-200-1", ret.document_id, serials=["SN-0001", "SN-0002"])
    )
    credit = await connector.create_document(credit_request("RMA-200-1", ret.document_id, "10.005"))
    batch2 = await connector.read_status_changes(batch.cursor, 100)
    later = [json.loads(r) for r in batch2.records]
    assert {(r["DocumentType"], r["SDDocument"], r["OverallSDProcessStatus"]) for r in later} == {
        ("A_CustomerReturn", ret.document_id, "C"),
        ("A_CreditMemoRequest", credit.document_id, "C"),
    }
    assert next(r for r in later if r["DocumentType"] == "A_CreditMemoRequest")["TotalNetAmount"] == "20.01"
    empty = await connector.read_status_changes(batch2.cursor, 100)
    assert empty.records == [] and empty.has_more is False


async def test_receipt_without_returns_delivery_is_transient(make: Factory) -> None:
    with pytest.raises(TransientErpError) as info:
        await make().create_document(receipt_request("RMA-300-1", "69999999", serials=[]))
    assert info.value.code == "NO_RETURNS_DELIVERY"


async def test_receipt_for_unknown_item_is_permanent(make: Factory) -> None:
    connector = make()
    ret = await connector.create_document(return_request("RMA-301-1"))
    request = receipt_request("RMA-301-1", ret.document_id, serials=[])
    body = json.loads(request.payload)
    body["Items"][0]["ReferenceSDDocumentItem"] = "20"
    with pytest.raises(PermanentErpError) as info:
        await connector.create_document(
            DocumentRequest(
                request.document_type,
                request.external_reference,
                json.dumps(body).encode(),
                source_document_id=ret.document_id,
            )
        )
    assert info.value.code == "NO_DELIVERY_ITEM"


async def test_receipt_serial_count_mismatch_keeps_sap_message(make: Factory) -> None:
    connector = make()
    ret = await connector.create_document(return_request("RMA-302-1"))
    with pytest.raises(PermanentErpError) as info:
        await connector.create_document(receipt_request("RMA-302-1", ret.document_id, serials=[]))
    assert info.value.code == "IO/270"
    assert "1 serial numbers for quantity 2" in info.value.erp_message


async def test_goods_receipt_answer_lost_then_lookup_finds_it(
    sim: tuple[SapSimulator, RunningSimulator], make: Factory
) -> None:
    simulator, _ = sim
    connector = make()
    ret = await connector.create_document(return_request("RMA-400-1"))
    simulator.kit.faults.set(
        FaultPlan(commit_then_drop_rate=1.0, path_pattern="PostGoodsReceipt$", remaining=1)
    )
    request = receipt_request("RMA-400-1", ret.document_id, serials=["SN-0001", "SN-0002"])
    with pytest.raises(AmbiguousErpError):
        await connector.create_document(request)
    found = await connector.find_document("A_ReturnsDeliveryHeader", "RMA-400-1")
    assert found is not None and found.status == "C"
    again = await connector.create_document(request)
    assert again.created is False and again.document_id == found.document_id
    assert stock(simulator) == Decimal("2")


async def test_expired_csrf_token_is_fetched_again(
    sim: tuple[SapSimulator, RunningSimulator], make: Factory
) -> None:
    simulator, running = sim
    connector = make()
    await connector.create_document(return_request("RMA-500-1"))
    async with httpx.AsyncClient(base_url=running.url) as control:
        assert (await control.post("/_sim/sap/csrf/expire")).json() == {"expired": 1}
    second = await connector.create_document(return_request("RMA-500-2"))
    assert second.created is True
    assert len(simulator.odata.sessions) == 1


async def test_oauth2_client_credentials_and_refresh(
    sim: tuple[SapSimulator, RunningSimulator], make: Factory
) -> None:
    simulator, running = sim
    oauth = {
        "auth": "oauth2",
        "username": None,
        "password": None,
        "token_url": f"{running.url}/sap/bc/sec/oauth2/token",
        "client_id": "RB_OAUTH_CLIENT",
        "client_secret": SecretStr("oauth-secret"),
        "scope": "API_CUSTOMER_RETURN_SRV_0001",
    }
    connector = make(**oauth)
    first = await connector.create_document(return_request("RMA-600-1"))
    assert (
        simulator.kit.state.documents["A_CustomerReturn"][first.document_id]["CreatedByUser"]
        == "RB_OAUTH_CLI"
    )
    simulator.odata.tokens.clear()  # the server forgets the token: next call gets 401 and must re-fetch
    assert await connector.find_document("A_CustomerReturn", "RMA-600-1") is not None
    bad = make(**{**oauth, "client_secret": SecretStr("nope")})
    with pytest.raises(ErpAuthError):
        await bad.find_document("A_CustomerReturn", "RMA-600-1")


async def test_over_long_field_is_permanent_with_gateway_code(
    sim: tuple[SapSimulator, RunningSimulator], make: Factory
) -> None:
    request = return_request("RMA-700-1")
    body = json.loads(request.payload)
    body["to_Item"][0]["ProfitCenter"] = "P" * 11
    with pytest.raises(PermanentErpError) as info:
        await make().create_document(
            DocumentRequest(request.document_type, "RMA-700-1", json.dumps(body).encode())
        )
    assert info.value.code == "/IWBEP/CM_MGW_RT/020"
    assert info.value.http_status == 400
    assert "ProfitCenter" in info.value.erp_message and "10" in info.value.erp_message
    assert sim[0].kit.state.documents["A_CustomerReturn"] == {}


async def test_header_without_items_is_refused(make: Factory) -> None:
    body = customer_return_payload()
    del body["to_Item"]
    with pytest.raises(PermanentErpError) as info:
        await make().create_document(
            DocumentRequest("A_CustomerReturn", "RMA-701-1", json.dumps(body).encode())
        )
    assert info.value.code == "SD_SLS_API/011"


async def test_json_numbers_in_payload_are_refused_before_any_call(
    sim: tuple[SapSimulator, RunningSimulator], make: Factory
) -> None:
    body = customer_return_payload()
    raw = json.dumps(body).replace('"RequestedQuantity": "2"', '"RequestedQuantity": 2.5')
    with pytest.raises(PermanentErpError) as info:
        await make().create_document(DocumentRequest("A_CustomerReturn", "RMA-702-1", raw.encode()))
    assert info.value.code == "PAYLOAD" and "RequestedQuantity" in str(info.value)
    assert sim[0].kit.state.requests == 0


async def test_wrong_sap_client_is_an_auth_error(make: Factory) -> None:
    with pytest.raises(ErpAuthError):
        await make(sap_client="200").find_document("A_CustomerReturn", "RMA-703-1")


async def test_unsupported_document_type(make: Factory) -> None:
    with pytest.raises(PermanentErpError) as info:
        await make().create_document(DocumentRequest("A_SalesOrder", "RMA-704-1", b"{}"))
    assert info.value.code == "UNSUPPORTED_DOCUMENT_TYPE"


async def test_inventory_shows_received_stock_exactly(make: Factory) -> None:
    connector = make()
    ret = await connector.create_document(return_request("RMA-800-1", quantity=Decimal("2")))
    await connector.create_document(
        receipt_request("RMA-800-1", ret.document_id, serials=["SN-0001", "SN-0002"])
    )
    records: list[dict[str, Any]] = []
    cursor = None
    while True:
        batch = await connector.read_inventory(cursor, 4)
        records += [json.loads(r, parse_float=Decimal) for r in batch.records]
        cursor = batch.cursor
        if not batch.has_more:
            break
    assert cursor == "snapshot:0"
    row = next(
        r
        for r in records
        if (r["Material"], r["Plant"], r["StorageLocation"]) == ("SKU-1001", "DAL1", "RET1")
    )
    assert row["MatlWrhsStkQtyInMatlBaseUnit"] == "2.000"
    assert set(row) == {
        "Material", "Plant", "StorageLocation", "Batch", "Supplier", "Customer", "WBSElementInternalID", "SDDocument",
        "SDDocumentItem", "InventorySpecialStockType", "InventoryStockType", "MaterialBaseUnit", "MatlWrhsStkQtyInMatlBaseUnit",
    }  # fmt: skip
    assert len(records) == 31  # 10 materials x 3 plants in 0001, plus the receipt in RET1


async def test_stock_filter_narrows_the_read(make: Factory) -> None:
    batch = await make(stock_filter="Plant eq 'LHR1'").read_inventory(None, 100)
    assert {json.loads(r)["Plant"] for r in batch.records} == {"LHR1"}
    assert len(batch.records) == 10


def test_odata_error_parser_keeps_innererror_details() -> None:
    body = {
        "error": {
            "code": "V1/320",
            "message": {"lang": "en", "value": "Material X does not exist"},
            "innererror": {"errordetails": [{"code": "V1/391", "message": "Item 20: enter a quantity"}]},
        }
    }
    response = httpx.Response(400, json=body)
    assert parse_odata_error(response) == (
        "V1/320",
        "Material X does not exist (V1/391: Item 20: enter a quantity)",
    )
    assert parse_odata_error(httpx.Response(503, text="<html>Service unavailable</html>")) == (
        "503",
        "<html>Service unavailable</html>",
    )


async def test_forbidden_without_csrf_challenge_is_an_auth_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, text="No authorization for API_CUSTOMER_RETURN_SRV")

    client = httpx.AsyncClient(base_url="http://sap.invalid", transport=httpx.MockTransport(handler))
    config = SapODataConfig(base_url="http://sap.invalid", username=USER, password=SecretStr(PASSWORD))
    connector = SapODataConnector(config, client=client)
    with pytest.raises(ErpAuthError) as info:
        await connector.find_document("A_CustomerReturn", "RMA-1-1")
    assert info.value.http_status == 403
    await connector.aclose()


def test_registry_builds_from_yaml_with_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAP_TEST_PASSWORD", PASSWORD)
    connector = build_connector(
        {
            "kind": "sap_odata",
            "base_url": "http://127.0.0.1:1",
            "username": USER,
            "password_env": "SAP_TEST_PASSWORD",
        }
    )
    assert isinstance(connector, SapODataConnector) and connector.kind == "sap_odata"
    assert PASSWORD not in repr(connector.config)
    monkeypatch.delenv("SAP_TEST_PASSWORD")
    with pytest.raises(ConfigError, match="SAP_TEST_PASSWORD"):
        build_connector(
            {
                "kind": "sap_odata",
                "base_url": "http://x",
                "username": USER,
                "password_env": "SAP_TEST_PASSWORD",
            }
        )
    with pytest.raises(ConfigError, match="basic auth needs"):
        build_connector({"kind": "sap_odata", "base_url": "http://x"})
