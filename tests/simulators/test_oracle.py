"""The Oracle Fusion simulator over real loopback HTTP: envelopes, auth, q filters, validation, stock, ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from returnbridge import exactjson
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.oracle import (
    API_ROOT,
    FusionError,
    OracleSimConfig,
    OracleSimulator,
    create_app,
    parse_q,
)

AUTH = ("integration.user", "Welcome1!")


def order(ref: str = "RMA-T-1", **line_overrides: Any) -> dict[str, Any]:
    line = {
        "SourceTransactionLineId": "L1",
        "TransactionCategoryCode": "RETURN",
        "ProductNumber": "SKU-1001",
        "OrderedQuantity": 3,
        "OrderedUOMCode": "Ea",
        "ReturnReasonCode": "DAMAGED",
        "RequestedFulfillmentOrganizationCode": "DAL1",
        "UnitListPrice": Decimal("19.99"),
        "documentReferences": [
            {
                "DocumentReferenceType": "ORIGINAL_SALES_ORDER",
                "DocumentNumber": "520001",
                "DocumentLineNumber": "1",
            }
        ],
    }
    line.update(line_overrides)
    return {
        "SourceTransactionSystem": "RETBRIDGE",
        "SourceTransactionNumber": ref,
        "SourceTransactionId": ref,
        "BusinessUnitName": "US1 Business Unit",
        "BuyingPartyNumber": "1001",
        "TransactionalCurrencyCode": "USD",
        "lines": [line],
    }


def receipt(order_number: str, qty: Any = 3, sub: str = "RETURNS", **extra: Any) -> dict[str, Any]:
    return {
        "ReceiptSourceCode": "CUSTOMER",
        "OrganizationCode": "DAL1",
        "lines": [
            {
                "ReceiptSourceCode": "CUSTOMER",
                "SourceDocumentCode": "RMA",
                "TransactionType": "RECEIVE",
                "AutoTransactCode": "DELIVER",
                "OrganizationCode": "DAL1",
                "DocumentNumber": order_number,
                "DocumentLineNumber": 1,
                "ItemNumber": "SKU-1001",
                "Quantity": qty,
                "UnitOfMeasure": "Ea",
                "Subinventory": sub,
                **extra,
            }
        ],
    }


def credit_memo(ref: str = "RMA-T-3", price: str = "-19.99", qty: int = 2) -> dict[str, Any]:
    return {
        "BusinessUnit": "US1 Business Unit",
        "TransactionSource": "Manual",
        "TransactionType": "Credit Memo",
        "TransactionDate": "2026-11-27",
        "CreditMemoCurrency": "USD",
        "BillToCustomerNumber": "1001",
        "PurchaseOrder": ref,
        "receivablesCreditMemoLines": [
            {
                "LineNumber": 1,
                "LineDescription": "x",
                "LineQuantityCredit": qty,
                "UnitSellingPrice": Decimal(price),
            }
        ],
    }


def body(payload: dict[str, Any]) -> bytes:
    return exactjson.dumps(payload).encode()


async def _started(config: OracleSimConfig) -> tuple[RunningSimulator, OracleSimulator]:
    sim = OracleSimulator(config)
    return await RunningSimulator(sim.app).start(), sim


@pytest.fixture
async def sim() -> AsyncIterator[tuple[httpx.AsyncClient, OracleSimulator]]:
    running, simulator = await _started(OracleSimConfig(bearer_tokens=("tok-123",)))
    async with httpx.AsyncClient(
        base_url=running.url + API_ROOT + "/", auth=AUTH, timeout=5, headers={"REST-Framework-Version": "4"}
    ) as client:
        yield client, simulator
    await running.stop()


async def post(client: httpx.AsyncClient, resource: str, payload: dict[str, Any]) -> httpx.Response:
    return await client.post(resource, content=body(payload), headers={"Content-Type": "application/json"})


def control(client: httpx.AsyncClient, name: str) -> str:
    """Absolute URL of a /_sim/ route (the client's base URL points at the REST root)."""
    return f"{client.base_url.scheme}://{client.base_url.netloc.decode()}/_sim/{name}"


def details(response: httpx.Response) -> list[str]:
    return [d["o:errorCode"] for d in response.json()["o:errorDetails"]]


async def test_create_app_factory_serves_seeded_stock() -> None:
    app, kit = create_app()
    running = await RunningSimulator(app).start()
    try:
        async with httpx.AsyncClient(base_url=running.url, auth=AUTH) as client:
            r = await client.get(
                API_ROOT + "/onhandQuantityDetails", params={"totalResults": "true", "limit": 5}
            )
            assert r.status_code == 200
            page = r.json()
            assert page["totalResults"] == 24 and page["count"] == 5 and page["hasMore"] is True
            assert page["limit"] == 5 and page["offset"] == 0 and page["links"][0]["rel"] == "self"
            stock = (await client.get("/_sim/stock")).json()["items"]
            assert {"sku": "SKU-1001", "site": "LHR1", "sub_location": "Stores", "on_hand": "100"} in stock
            assert kit.name == "oracle"
    finally:
        await running.stop()


@pytest.mark.parametrize(
    "auth_header",
    [None, "Basic " + "aW50ZWdyYXRpb24udXNlcjp3cm9uZw==", "Bearer nope", "Basic !!notbase64"],
)
async def test_auth_is_required(
    sim: tuple[httpx.AsyncClient, OracleSimulator], auth_header: str | None
) -> None:
    client, _ = sim
    headers = {"Authorization": auth_header} if auth_header else {}
    async with httpx.AsyncClient(base_url=str(client.base_url)) as anon:
        r = await anon.get("salesOrdersForOrderHub", headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")


async def test_bearer_token_when_configured(sim: tuple[httpx.AsyncClient, OracleSimulator]) -> None:
    client, _ = sim
    async with httpx.AsyncClient(base_url=str(client.base_url)) as bearer:
        r = await bearer.get("salesOrdersForOrderHub", headers={"Authorization": "Bearer tok-123"})
    assert r.status_code == 200 and r.json()["items"] == []


async def test_order_create_read_by_order_key_and_children(
    sim: tuple[httpx.AsyncClient, OracleSimulator],
) -> None:
    client, _ = sim
    r = await post(client, "salesOrdersForOrderHub", order("RMA-T-1"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["StatusCode"] == "OPEN" and created["OrderNumber"] and created["HeaderId"]
    assert r.headers["Location"].endswith(f"/salesOrdersForOrderHub/{created['HeaderId']}")
    assert "lines" not in created, "children only with expand"

    by_key = await client.get(
        "salesOrdersForOrderHub/RETBRIDGE:RMA-T-1", params={"expand": "lines", "onlyData": "true"}
    )
    assert by_key.status_code == 200
    got = by_key.json()
    assert "links" not in got
    assert got["HeaderId"] == created["HeaderId"]
    # Framework version 3+ returns an expanded child as a resource collection object.
    assert got["lines"]["count"] == 1 and got["lines"]["hasMore"] is False
    [line] = got["lines"]["items"]
    for version in ("1", "2"):
        old_shape = await client.get(
            "salesOrdersForOrderHub/RETBRIDGE:RMA-T-1",
            params={"expand": "lines", "onlyData": "true"},
            headers={"REST-Framework-Version": version},
        )
        assert old_shape.headers["REST-Framework-Version"] == version
        assert isinstance(old_shape.json()["lines"], list), f"version {version} children are an array"
    assert line["OrderedQuantity"] == 3 and line["LineNumber"] == 1
    assert by_key.text.count('"UnitListPrice":19.99') == 1, "decimals travel as exact JSON numbers"

    lines = (await client.get(f"salesOrdersForOrderHub/{created['HeaderId']}/child/lines")).json()
    uniq = lines["items"][0]["linesUniqID"]
    refs = await client.get(
        f"salesOrdersForOrderHub/{created['HeaderId']}/child/lines/{uniq}/child/originalOrderReference"
    )
    assert refs.json()["items"][0]["DocumentNumber"] == "520001"
    missing = await client.get("salesOrdersForOrderHub/RETBRIDGE:NOPE")
    assert missing.status_code == 404


async def test_q_filters_fields_and_order(sim: tuple[httpx.AsyncClient, OracleSimulator]) -> None:
    client, _ = sim
    for ref in ("RMA-Q-1", "RMA-Q-2", "RMA O'Neil"):
        assert (await post(client, "salesOrdersForOrderHub", order(ref))).status_code == 201

    async def refs(q: str, version: str = "4", **params: str) -> list[str]:
        r = await client.get(
            "salesOrdersForOrderHub",
            params={"q": q, "onlyData": "true", **params},
            headers={"REST-Framework-Version": version},
        )
        assert r.status_code == 200, r.text
        return [i.get("SourceTransactionNumber", "") for i in r.json()["items"]]

    assert await refs("SourceTransactionNumber='RMA-Q-2'") == ["RMA-Q-2"]
    qbe = "SourceTransactionNumber=RMA-Q-1;SourceTransactionSystem=RETBRIDGE"
    assert await refs(qbe, version="1") == ["RMA-Q-1"]
    refused = await client.get("salesOrdersForOrderHub", params={"q": qbe})
    assert refused.status_code == 400 and details(refused) == ["INVALID_QUERY"], "v1 syntax under v4"
    assert await refs("SourceTransactionNumber = 'RMA O''Neil' and BuyingPartyNumber = '1001'") == [
        "RMA O'Neil"
    ]
    assert await refs("SourceTransactionNumber='RMA-Q-9'") == []
    ordered = await refs("BuyingPartyNumber='1001'", orderBy="SourceTransactionNumber:desc")
    assert ordered == ["RMA-Q-2", "RMA-Q-1", "RMA O'Neil"]
    r = await client.get(
        "salesOrdersForOrderHub", params={"fields": "OrderNumber", "onlyData": "true", "limit": 1}
    )
    assert list(r.json()["items"][0]) == ["OrderNumber"]
    bad = await client.get("salesOrdersForOrderHub", params={"q": "garbage here"})
    assert bad.status_code == 400


def test_parse_q_forms() -> None:
    assert parse_q("A='x;y' and B>=5", 2) == [("A", "=", "x;y"), ("B", ">=", "5")]
    assert parse_q("A=1;B<>2", 1) == [("A", "=", "1"), ("B", "<>", "2")]
    for text in ("A=1;B<>2", "A=x", "A='x' or B='y'"):
        with pytest.raises(FusionError):
            parse_q(text, 4)
    with pytest.raises(FusionError):
        parse_q("Nope='x'", 4, frozenset({"A"}))


async def test_order_validation_errors_all_reported(sim: tuple[httpx.AsyncClient, OracleSimulator]) -> None:
    client, _ = sim
    bad = order("R" * 51, ProductNumber="SKU-1010", RequestedFulfillmentOrganizationCode=None)
    bad["BuyingPartyNumber"] = "9" * 31
    r = await post(client, "salesOrdersForOrderHub", bad)
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith("application/vnd.oracle.adf.error+json")
    payload = r.json()
    assert payload["title"] == "Bad Request" and payload["status"] == "400"
    codes = details(r)
    # SourceTransactionNumber and SourceTransactionId C(50), BuyingPartyNumber C(30).
    assert codes.count("ADF_MAX_LENGTH") == 3
    assert "DOO_ITEM_NOT_RETURNABLE" in codes
    assert "DOO_MISSING_ATTRIBUTE" not in codes

    no_location = order("RMA-T-2", RequestedFulfillmentOrganizationCode=None)
    r = await post(client, "salesOrdersForOrderHub", no_location)
    assert details(r) == ["DOO_RETURN_LOCATION_REQUIRED"]
    credit_only = order(
        "RMA-T-2", RequestedFulfillmentOrganizationCode=None, TransactionLineTypeCode="ORA_RETURN_CREDIT_ONLY"
    )
    assert (await post(client, "salesOrdersForOrderHub", credit_only)).status_code == 201
    service_item = order("RMA-T-3", ProductNumber="SKU-1009", RequestedFulfillmentOrganizationCode=None)
    assert (await post(client, "salesOrdersForOrderHub", service_item)).status_code == 201, (
        "non-shippable needs no location"
    )
    r = await client.post("salesOrdersForOrderHub", content=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


async def test_duplicate_source_transaction_number_refused(
    sim: tuple[httpx.AsyncClient, OracleSimulator],
) -> None:
    client, simulator = sim
    assert (await post(client, "salesOrdersForOrderHub", order("RMA-D-1"))).status_code == 201
    again = await post(client, "salesOrdersForOrderHub", order("RMA-D-1"))
    assert again.status_code == 400 and details(again) == ["DOO_DUPLICATE_SOURCE_ORDER"]
    assert len(simulator.state.documents["salesOrdersForOrderHub"]) == 1


async def test_text_error_format_and_required_reference() -> None:
    running, _ = await _started(OracleSimConfig(error_format="text", require_return_reference=True))
    try:
        async with httpx.AsyncClient(base_url=running.url + API_ROOT + "/", auth=AUTH) as client:
            r = await post(client, "salesOrdersForOrderHub", order("RMA-X-1", documentReferences=[]))
        assert r.status_code == 400
        assert r.headers["Content-Type"].startswith("text/plain")
        assert "needs an original order reference" in r.text
    finally:
        await running.stop()


async def test_receipt_raises_onhand_and_closes_receiving(
    sim: tuple[httpx.AsyncClient, OracleSimulator],
) -> None:
    client, simulator = sim
    created = (await post(client, "salesOrdersForOrderHub", order("RMA-R-1"))).json()
    number = created["OrderNumber"]
    over = await post(client, "receivingReceiptRequests", receipt(number, qty=4))
    assert over.status_code == 400 and details(over) == ["RCV_QTY_EXCEEDS_RMA"]
    serial_mismatch = await post(
        client,
        "receivingReceiptRequests",
        receipt(number, qty=2, serialItemSerials=[{"FromSerialNumber": "S1"}]),
    )
    assert details(serial_mismatch) == ["RCV_SERIAL_COUNT"]

    first = await post(
        client, "receivingReceiptRequests", {**receipt(number, qty=Decimal("1.5")), "ShipmentNumber": "SH-1"}
    )
    assert first.status_code == 201, first.text
    assert first.json()["ProcessingStatusCode"] == "SUCCESS"
    assert simulator.state.stock[("SKU-1001", "DAL1", "RETURNS")] == Decimal("1.5")
    status = (await client.get(f"salesOrdersForOrderHub/{created['HeaderId']}")).json()["StatusCode"]
    assert status == "PARTIALLY_RECEIVED"

    dup = await post(client, "receivingReceiptRequests", {**receipt(number, qty=1), "ShipmentNumber": "SH-1"})
    assert details(dup) == ["RCV_DUPLICATE_SHIPMENT"]
    rest = await post(
        client, "receivingReceiptRequests", receipt(number, qty=Decimal("1.5"), sub="QUARANTINE")
    )
    assert rest.status_code == 201
    assert simulator.state.stock[("SKU-1001", "DAL1", "QUARANTINE")] == Decimal("1.5")
    assert (await client.get(f"salesOrdersForOrderHub/{created['HeaderId']}")).json()[
        "StatusCode"
    ] == "RECEIVED"
    assert (await client.get("rmaLinesForReceiving", params={"q": f"RMA='{number}'"})).json()["items"] == []
    closed = await post(client, "receivingReceiptRequests", receipt(number, qty=1))
    assert "RCV_RMA_NOT_OPEN" in details(closed)
    onhand = await client.get(
        "onhandQuantityDetails",
        params={"q": "ItemNumber='SKU-1001' and OrganizationCode='DAL1'", "onlyData": "true"},
    )
    subs = {i["SubinventoryCode"]: i["PrimaryTransactionQuantity"] for i in onhand.json()["items"]}
    assert subs == {"Stores": 100, "RETURNS": 1.5, "QUARANTINE": 1.5}


async def test_credit_memo_posts_balanced_ledger(sim: tuple[httpx.AsyncClient, OracleSimulator]) -> None:
    client, simulator = sim
    r = await post(client, "receivablesCreditMemos", credit_memo("RMA-C-1", price="-9876543.21", qty=3))
    assert r.status_code == 201, r.text
    memo = r.json()
    assert memo["TransactionStatus"] == "Complete"
    assert '"EnteredAmount":-29629629.63' in r.text
    ledger = (await client.get(control(client, "ledger"))).json()
    assert ledger["balanced"] is True and ledger["debits"] == "29629629.63"
    lines = await client.get(
        f"receivablesCreditMemos/{memo['CustomerTransactionId']}/child/receivablesCreditMemoLines"
    )
    assert lines.json()["items"][0]["LineAmountCredit"] == pytest.approx(-29629629.63)

    positive = await post(client, "receivablesCreditMemos", credit_memo("RMA-C-2", price="19.99"))
    assert details(positive) == ["AR_PRICE_SIGN"]
    dup = await post(client, "receivablesCreditMemos", credit_memo("RMA-C-1"))
    assert details(dup) == ["AR_DUPLICATE_REFERENCE"]
    assert len(simulator.state.ledger) == 2


@pytest.mark.parametrize(
    ("line_numbers", "codes"),
    [
        (["abc"], ["ADF_INVALID_NUMBER"]),
        ([Decimal("1.5")], ["ADF_INVALID_NUMBER"]),
        ([0], ["ADF_INVALID_NUMBER"]),
        ([True], ["ADF_INVALID_TYPE"]),
        ([{"n": 1}], ["ADF_INVALID_TYPE"]),
        ([1, "1"], ["AR_DUPLICATE_LINE"]),  # the same line, written twice
    ],
    ids=["text", "fraction", "zero", "boolean", "object", "one-twice"],
)
async def test_credit_memo_line_numbers_are_positive_whole_numbers(
    sim: tuple[httpx.AsyncClient, OracleSimulator], line_numbers: list[Any], codes: list[str]
) -> None:
    client, simulator = sim
    memo = credit_memo("RMA-C-LN")
    line = memo["receivablesCreditMemoLines"][0]
    memo["receivablesCreditMemoLines"] = [{**line, "LineNumber": n} for n in line_numbers]
    response = await post(client, "receivablesCreditMemos", memo)
    assert response.status_code == 400 and details(response) == codes, response.text
    assert simulator.state.ledger == []
    memo["receivablesCreditMemoLines"] = [{**line, "LineNumber": "2"}]
    assert (await post(client, "receivablesCreditMemos", memo)).status_code == 201


async def test_reset_reseeds_and_faults_switch_at_runtime(
    sim: tuple[httpx.AsyncClient, OracleSimulator],
) -> None:
    client, simulator = sim
    assert (await post(client, "salesOrdersForOrderHub", order("RMA-Z-1"))).status_code == 201
    faults = await client.put(
        control(client, "faults"), json={"error_rate": 1.0, "error_statuses": [429], "retry_after": 9}
    )
    assert faults.status_code == 200
    throttled = await client.get("salesOrdersForOrderHub")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "9"
    assert (await client.post(control(client, "reset"))).status_code == 200
    assert (await client.get("salesOrdersForOrderHub")).json()["items"] == []
    assert simulator.state.stock[("SKU-1001", "DAL1", "Stores")] == Decimal(100)
