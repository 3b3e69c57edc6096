"""NetSuite simulator record API: creates, upserts, transforms, validation errors, stock, ledger, statuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.harnesses.netsuite import CONSUMER_KEY, CONSUMER_SECRET, TOKEN_ID, TOKEN_SECRET
from returnbridge import exactjson
from returnbridge.connectors.netsuite_auth import TbaAuth
from returnbridge.connectors.registry import build_connector
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.netsuite import (
    NetSuiteSimulator,
    NetSuiteSimulatorConfig,
    create_app,
    embedded_connector_config,
)

RECORD = "/services/rest/record/v1"


@dataclass
class Sim:
    simulator: NetSuiteSimulator
    http: httpx.AsyncClient

    async def send(self, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        content = exactjson.dumps_bytes(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else {}
        return await self.http.request(method, path, content=content, headers=headers, **kwargs)

    async def create(self, path: str, body: Any) -> str:
        response = await self.send("POST", path, body)
        assert response.status_code == 204, response.text
        return response.headers["Location"].rsplit("/", 1)[-1]

    def record(self, record_type: str, record_id: str) -> dict[str, Any]:
        return self.simulator.documents(record_type)[record_id]


async def start(config: NetSuiteSimulatorConfig | None = None) -> tuple[Sim, RunningSimulator]:
    simulator = NetSuiteSimulator(config)
    running = await RunningSimulator(simulator.app).start()
    auth = TbaAuth(
        realm="1234567",
        consumer_key=CONSUMER_KEY,
        consumer_secret=SecretStr(CONSUMER_SECRET),
        token_id=TOKEN_ID,
        token_secret=SecretStr(TOKEN_SECRET),
    )
    http = httpx.AsyncClient(base_url=running.url, auth=auth, timeout=10)
    return Sim(simulator, http), running


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    s, running = await start()
    yield s
    await s.http.aclose()
    await running.stop()


def ra_body(**extra: Any) -> dict[str, Any]:
    return {
        "entity": {"id": "101"},
        "item": {
            "items": [
                {"item": {"id": "501"}, "quantity": 2, "rate": Decimal("19.99"), "location": {"id": "1"}},
                {"item": {"id": "503"}, "quantity": 2, "rate": Decimal("249.00"), "location": {"id": "2"}},
            ]
        },
        **extra,
    }


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["status"] == response.status_code
    assert {"type", "title", "status", "o:errorDetails"} <= set(body)
    detail: dict[str, Any] = body["o:errorDetails"][0]
    return detail


async def test_create_returns_204_with_location_and_reads_back(sim: Sim) -> None:
    response = await sim.send(
        "POST", f"{RECORD}/returnAuthorization", ra_body(externalId="RMA-1-1", memo="m")
    )
    assert response.status_code == 204 and response.content == b""
    location = response.headers["Location"]
    assert location.startswith(str(sim.http.base_url).rstrip("/") + f"{RECORD}/returnAuthorization/")
    ra_id = location.rsplit("/", 1)[-1]
    record = (await sim.send("GET", f"{RECORD}/returnAuthorization/{ra_id}")).json()
    assert record["tranId"].startswith("RMA")
    assert record["status"] == {"id": "B", "refName": "Pending Receipt"}
    assert record["entity"] == {"id": "101", "refName": "Acme Retail"}
    assert record["externalId"] == "RMA-1-1"
    assert "items" not in record["item"], "sublists are links unless expandSubResources=true"
    by_eid = await sim.send(
        "GET", f"{RECORD}/returnAuthorization/eid:RMA-1-1", params={"expandSubResources": "true"}
    )
    lines = exactjson.loads(by_eid.content)["item"]["items"]
    assert [(ln["quantity"], ln["rate"], ln["amount"]) for ln in lines] == [
        (2, Decimal("19.99"), Decimal("39.98")),
        (2, Decimal("249.00"), Decimal("498.00")),
    ]


async def test_duplicate_external_id_is_refused_on_post_but_upserted_on_put(sim: Sim) -> None:
    await sim.create(f"{RECORD}/returnAuthorization", ra_body(externalId="RMA-DUP-1"))
    again = await sim.send("POST", f"{RECORD}/returnAuthorization", ra_body(externalId="RMA-DUP-1"))
    assert again.status_code == 400
    detail = error_of(again)
    assert detail["o:errorCode"] == "DUP_RCRD" and detail["o:errorPath"] == "externalId"
    put = await sim.send("PUT", f"{RECORD}/returnAuthorization/eid:RMA-DUP-1", ra_body(memo="updated"))
    assert put.status_code == 204
    assert len(sim.simulator.documents("returnAuthorization")) == 1
    created = await sim.send("PUT", f"{RECORD}/returnAuthorization/eid:RMA-NEW-1", ra_body())
    assert created.status_code == 204
    assert len(sim.simulator.documents("returnAuthorization")) == 2
    numeric = await sim.send("PUT", f"{RECORD}/returnAuthorization/1", ra_body())
    assert numeric.status_code == 405


@pytest.mark.parametrize(
    ("body", "code", "path"),
    [
        ({"item": {"items": [{"item": {"id": "501"}, "quantity": 1}]}}, "USER_ERROR", "entity"),
        (
            {"entity": {"id": "999"}, "item": {"items": [{"item": {"id": "501"}, "quantity": 1}]}},
            "INVALID_KEY_OR_REF",
            "entity",
        ),
        (
            {"entity": {"id": "101"}, "item": {"items": [{"item": {"id": "9"}, "quantity": 1}]}},
            "INVALID_KEY_OR_REF",
            "item.items[0].item",
        ),
        ({"entity": {"id": "101"}, "item": {"items": [{"quantity": 1}]}}, "USER_ERROR", "item.items[0].item"),
        (
            {"entity": {"id": "101"}, "item": {"items": [{"item": {"id": "501"}, "quantity": 0}]}},
            "USER_ERROR",
            "item.items[0].quantity",
        ),
        (
            {
                "entity": {"id": "101"},
                "item": {"items": [{"item": {"id": "501"}, "quantity": 1, "location": {"id": "77"}}]},
            },
            "INVALID_KEY_OR_REF",
            "item.items[0].location",
        ),
        ({"entity": {"id": "101"}, "item": {"items": []}}, "USER_ERROR", "item"),
        ({"entity": {"id": "101"}}, "USER_ERROR", "item"),
        (
            {
                "entity": {"id": "101"},
                "memo": "x" * 1000,
                "item": {"items": [{"item": {"id": "501"}, "quantity": 1}]},
            },
            "USER_ERROR",
            "memo",
        ),
        (
            {
                "entity": {"id": "101"},
                "otherRefNum": "R" * 46,
                "item": {"items": [{"item": {"id": "501"}, "quantity": 1}]},
            },
            "USER_ERROR",
            "otherRefNum",
        ),
        (
            {
                "entity": {"id": "101"},
                "custbody_rb_x": "y" * 301,
                "item": {"items": [{"item": {"id": "501"}, "quantity": 1}]},
            },
            "USER_ERROR",
            "custbody_rb_x",
        ),
        (
            {
                "entity": {"id": "101"},
                "item": {
                    "items": [
                        {
                            "item": {"id": "501"},
                            "quantity": 2,
                            "rate": Decimal("1.00"),
                            "amount": Decimal("3.00"),
                        }
                    ]
                },
            },
            "USER_ERROR",
            "item.items[0].amount",
        ),
    ],
)
async def test_validation_errors_name_the_field(sim: Sim, body: dict[str, Any], code: str, path: str) -> None:
    response = await sim.send("POST", f"{RECORD}/returnAuthorization", body)
    assert response.status_code == 400, response.text
    detail = error_of(response)
    assert (detail["o:errorCode"], detail["o:errorPath"]) == (code, path)
    assert detail["detail"]
    assert sim.simulator.documents("returnAuthorization") == {}


async def test_max_length_fields_are_accepted(sim: Sim) -> None:
    body = ra_body(memo="m" * 999, otherRefNum="R" * 45, externalId="E" * 255)
    await sim.create(f"{RECORD}/returnAuthorization", body)


async def test_not_json_and_unknown_types(sim: Sim) -> None:
    bad = await sim.http.post(
        f"{RECORD}/returnAuthorization", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400 and error_of(bad)["o:errorCode"] == "USER_ERROR"
    unknown = await sim.send("GET", f"{RECORD}/vendorBill/1")
    assert unknown.status_code == 404 and error_of(unknown)["o:errorCode"] == "INVALID_RCRD_TYPE"
    missing = await sim.send("GET", f"{RECORD}/returnAuthorization/424242")
    assert missing.status_code == 404 and error_of(missing)["o:errorCode"] == "NONEXISTENT_ID"
    receipt = await sim.send("POST", f"{RECORD}/itemReceipt", {"item": {"items": []}})
    assert receipt.status_code == 400 and "transforming" in error_of(receipt)["detail"]
    pair = await sim.send("POST", f"{RECORD}/creditMemo/1/!transform/itemReceipt", {})
    assert pair.status_code == 400


async def test_transform_sales_order_into_return_authorization(sim: Sim) -> None:
    ra_id = await sim.create(
        f"{RECORD}/salesOrder/9001/!transform/returnAuthorization",
        {"externalId": "RMA-SO-1", "item": {"items": [{"item": {"id": "501"}, "quantity": 1}]}},
    )
    ra = sim.record("returnAuthorization", ra_id)
    assert ra["createdFrom"] == {"id": "9001"} and ra["entity"] == {"id": "101"}
    assert [(ln["quantity"], ln["rate"], ln["amount"]) for ln in ra["item"]] == [
        (1, Decimal("19.99"), Decimal("19.99"))
    ]
    whole = await sim.create(f"{RECORD}/salesOrder/9001/!transform/returnAuthorization", {})
    assert len(sim.record("returnAuthorization", whole)["item"]) == 10
    too_many = await sim.send(
        "POST",
        f"{RECORD}/salesOrder/9001/!transform/returnAuthorization",
        {"item": {"items": [{"orderLine": 1, "quantity": 101}]}},
    )
    assert too_many.status_code == 400 and error_of(too_many)["o:errorPath"] == "item.items[0].quantity"
    other_customer = await sim.send(
        "POST", f"{RECORD}/salesOrder/9001/!transform/returnAuthorization", {"entity": {"id": "102"}}
    )
    assert other_customer.status_code == 400
    dup = await sim.send(
        "POST", f"{RECORD}/salesOrder/9001/!transform/returnAuthorization", {"externalId": "RMA-SO-1"}
    )
    assert dup.status_code == 400 and error_of(dup)["o:errorCode"] == "DUP_RCRD"
    gone = await sim.send("POST", f"{RECORD}/salesOrder/1/!transform/returnAuthorization", {})
    assert gone.status_code == 404


def receipt_body(*serials: str, quantity: int = 2, location: str = "2") -> dict[str, Any]:
    line: dict[str, Any] = {
        "orderLine": 2,
        "item": {"id": "503"},
        "quantity": quantity,
        "location": {"id": location},
    }
    if serials:
        line["inventoryDetail"] = {
            "inventoryAssignment": {"items": [{"receiptInventoryNumber": s, "quantity": 1} for s in serials]}
        }
    return {"item": {"items": [line]}}


async def test_item_receipt_raises_stock_per_serial_and_moves_the_ra(sim: Sim) -> None:
    ra_id = await sim.create(f"{RECORD}/returnAuthorization", ra_body())
    before = sim.simulator.on_hand("SKU-1003", "RNO2")
    path = f"{RECORD}/returnAuthorization/{ra_id}/!transform/itemReceipt"

    missing = await sim.send("POST", path, receipt_body())
    assert missing.status_code == 400 and error_of(missing)["o:errorPath"] == "item.items[0].inventoryDetail"
    short = await sim.send("POST", path, receipt_body("SN-1"))
    assert short.status_code == 400
    issue = receipt_body("SN-1", "SN-2")
    issue["item"]["items"][0]["inventoryDetail"]["inventoryAssignment"]["items"][0] = {
        "issueInventoryNumber": "SN-1",
        "quantity": 1,
    }
    assert (await sim.send("POST", path, issue)).status_code == 400
    assert (await sim.send("POST", path, receipt_body("SN-1", "SN-1"))).status_code == 400
    assert sim.simulator.on_hand("SKU-1003", "RNO2") == before, "refused receipts change nothing"

    receipt_id = await sim.create(path, receipt_body("SN-1", "SN-2"))
    assert sim.simulator.on_hand("SKU-1003", "RNO2") == before + 2
    assert sim.simulator.serials["503"] == {"SN-1": "2", "SN-2": "2"}
    receipt = sim.record("itemReceipt", receipt_id)
    assert receipt["createdFrom"] == {"id": ra_id}
    ra = sim.record("returnAuthorization", ra_id)
    assert ra["status"]["refName"] == "Pending Refund/Partially Received"

    over = await sim.send("POST", path, receipt_body("SN-3", quantity=1))
    assert over.status_code == 400 and "more than" in error_of(over)["detail"]
    dal1_before = sim.simulator.on_hand("SKU-1001", "DAL1")
    await sim.create(path, {"item": {"items": [{"orderLine": 1, "quantity": 2}]}})
    assert sim.simulator.on_hand("SKU-1001", "DAL1") == dal1_before + 2
    assert sim.record("returnAuthorization", ra_id)["status"] == {"id": "F", "refName": "Pending Refund"}

    # A second RA cannot receive serial numbers that are already on hand.
    ra2 = await sim.create(f"{RECORD}/returnAuthorization", ra_body())
    dup = await sim.send(
        "POST", f"{RECORD}/returnAuthorization/{ra2}/!transform/itemReceipt", receipt_body("SN-2", "SN-9")
    )
    assert dup.status_code == 400 and "already exists" in error_of(dup)["detail"]


async def test_receipt_needs_a_location(sim: Sim) -> None:
    body = {"entity": {"id": "101"}, "item": {"items": [{"item": {"id": "502"}, "quantity": 1}]}}
    ra_id = await sim.create(f"{RECORD}/returnAuthorization", body)
    response = await sim.send("POST", f"{RECORD}/returnAuthorization/{ra_id}/!transform/itemReceipt", {})
    assert response.status_code == 400 and error_of(response)["o:errorPath"] == "item.items[0].location"
    await sim.create(
        f"{RECORD}/returnAuthorization/{ra_id}/!transform/itemReceipt", {"location": {"id": "3"}}
    )
    assert sim.simulator.on_hand("SKU-1002", "LHR1") > 0


async def test_credit_memo_and_cash_refund_post_balanced_ledger(sim: Sim) -> None:
    ra_id = await sim.create(f"{RECORD}/returnAuthorization", ra_body(currency={"id": "2"}))
    path = f"{RECORD}/returnAuthorization/{ra_id}/!transform"
    cm_id = await sim.create(f"{path}/creditMemo", {"item": {"items": [{"orderLine": 1, "quantity": 2}]}})
    assert sim.record("returnAuthorization", ra_id)["status"]["id"] == "B", "not fully credited yet"
    cr_id = await sim.create(f"{path}/cashRefund", {"paymentMethod": {"id": "3"}})
    ledger = sim.simulator.kit.state.ledger
    by_doc: dict[str, list[tuple[str, Decimal, Decimal]]] = {}
    for entry in ledger:
        by_doc.setdefault(entry.document_id, []).append((entry.account, entry.debit, entry.credit))
        assert entry.currency == "GBP"
    assert by_doc[cm_id] == [
        ("4010 Sales Returns", Decimal("39.98"), 0),
        ("1200 Accounts Receivable", 0, Decimal("39.98")),
    ]
    assert by_doc[cr_id] == [
        ("4010 Sales Returns", Decimal("498.00"), 0),
        ("1000 Undeposited Funds", 0, Decimal("498.00")),
    ]
    assert sim.simulator.kit.state.trial_balance()["balanced"] is True
    assert sim.record("returnAuthorization", ra_id)["status"] == {"id": "G", "refName": "Refunded"}
    nothing_left = await sim.send("POST", f"{path}/creditMemo", {})
    assert nothing_left.status_code == 400
    assert sim.record("creditMemo", cm_id)["status"] == {"id": "A", "refName": "Open"}


async def test_received_and_credited_ra_is_closed(sim: Sim) -> None:
    ra_id = await sim.create(f"{RECORD}/returnAuthorization", ra_body())
    path = f"{RECORD}/returnAuthorization/{ra_id}/!transform"
    await sim.create(
        f"{path}/itemReceipt",
        {
            "item": {
                "items": [
                    {"orderLine": 1, "quantity": 2},
                    {"orderLine": 2, **receipt_body("A1", "A2")["item"]["items"][0]},
                ]
            }
        },
    )
    assert sim.record("returnAuthorization", ra_id)["status"]["refName"] == "Pending Refund"
    await sim.create(f"{path}/creditMemo", {})
    assert sim.record("returnAuthorization", ra_id)["status"] == {"id": "H", "refName": "Closed"}


async def test_pending_approval_blocks_receipt_until_approved() -> None:
    s, running = await start(NetSuiteSimulatorConfig(ra_initial_status="Pending Approval"))
    try:
        ra_id = await s.create(f"{RECORD}/returnAuthorization", ra_body())
        assert s.record("returnAuthorization", ra_id)["status"]["refName"] == "Pending Approval"
        refused = await s.send(
            "POST",
            f"{RECORD}/returnAuthorization/{ra_id}/!transform/itemReceipt",
            {"item": {"items": [{"orderLine": 1}]}},
        )
        assert refused.status_code == 400
        approved = await s.send("POST", f"{RECORD}/returnAuthorization/{ra_id}/@approve", {})
        assert approved.status_code == 204
        await s.create(
            f"{RECORD}/returnAuthorization/{ra_id}/!transform/itemReceipt",
            {"item": {"items": [{"orderLine": 1}]}},
        )
    finally:
        await s.http.aclose()
        await running.stop()


async def test_account_concurrency_limit_answers_429() -> None:
    config = NetSuiteSimulatorConfig(
        concurrency_limit=2, concurrency_error_code="SSS_REQUEST_LIMIT_EXCEEDED", concurrency_retry_after=3
    )
    s, running = await start(config)
    try:
        await s.http.put(f"{running.url}/_sim/faults", json={"latency_ms_min": 200, "latency_ms_max": 200})
        responses = await asyncio.gather(*(s.send("GET", f"{RECORD}/salesOrder/9001") for _ in range(6)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(200) >= 2 and 429 in statuses
        refused = next(r for r in responses if r.status_code == 429)
        assert refused.headers["Retry-After"] == "3"
        assert error_of(refused)["o:errorCode"] == "SSS_REQUEST_LIMIT_EXCEEDED"
        assert s.simulator.max_in_flight == 2
    finally:
        await s.http.aclose()
        await running.stop()


async def test_reset_reseeds_reference_data(sim: Sim) -> None:
    await sim.create(f"{RECORD}/returnAuthorization", ra_body())
    sim.simulator.adjust_stock("SKU-1001", "DAL1", Decimal("100"))
    response = await sim.http.post("/_sim/reset")
    assert response.status_code == 200
    assert sim.simulator.documents("returnAuthorization") == {}
    assert "9001" in sim.simulator.documents("salesOrder")
    assert sim.simulator.on_hand("SKU-1001", "DAL1") == 10
    stock = (await sim.http.get("/_sim/stock")).json()["items"]
    assert len(stock) == 30


def test_create_app_factory_returns_app_and_kit() -> None:
    app, kit = create_app()
    assert kit.name == "netsuite"
    assert any(
        r.resource is not None and r.resource.canonical == "/services/rest/query/v1/suiteql"
        for r in app.router.routes()
    )


async def test_embedded_connector_config_talks_to_the_simulator() -> None:
    app, _ = create_app()
    running = await RunningSimulator(app).start()
    try:
        connector = build_connector(embedded_connector_config(running.url))
        try:
            batch = await connector.read_inventory(None, 3)
            assert len(batch.records) == 3 and batch.has_more
        finally:
            await connector.aclose()
    finally:
        await running.stop()


async def test_patch_updates_header_fields_with_the_same_checks(sim: Sim) -> None:
    ra_id = await sim.create(f"{RECORD}/returnAuthorization", ra_body(memo="before"))
    stamp = sim.record("returnAuthorization", ra_id)["lastModifiedDate"]
    read_only = await sim.send(
        "PATCH", f"{RECORD}/returnAuthorization/{ra_id}", {"memo": "after", "status": {"id": "H"}}
    )
    assert read_only.status_code == 400 and error_of(read_only)["o:errorPath"] == "status"
    patched = await sim.send("PATCH", f"{RECORD}/returnAuthorization/{ra_id}", {"memo": "after"})
    assert patched.status_code == 204
    record = sim.record("returnAuthorization", ra_id)
    assert record["memo"] == "after"
    assert record["status"]["id"] == "B", "status is read-only"
    assert record["lastModifiedDate"] >= stamp
    too_long = await sim.send("PATCH", f"{RECORD}/returnAuthorization/{ra_id}", {"memo": "m" * 1000})
    assert too_long.status_code == 400 and error_of(too_long)["o:errorPath"] == "memo"
    missing = await sim.send("PATCH", f"{RECORD}/returnAuthorization/31337", {"memo": "x"})
    assert missing.status_code == 404


async def test_patch_merges_the_item_sublist_by_line_and_replace_drops_the_rest(sim: Sim) -> None:
    # NetSuite merges a PATCHed sublist: a line naming its "line" is edited, one without is added; with
    # ?replace=item the lines given are the whole sublist. The simulator used to answer 204 and change nothing.
    ra_id = await sim.create(f"{RECORD}/returnAuthorization", ra_body())
    path = f"{RECORD}/returnAuthorization/{ra_id}"
    edit = {"item": {"items": [{"line": 1, "quantity": 3}, {"item": {"id": "502"}, "quantity": 1}]}}
    assert (await sim.send("PATCH", path, edit)).status_code == 204
    lines = sim.record("returnAuthorization", ra_id)["item"]
    assert [(ln["line"], ln["item"]["id"], ln["quantity"], ln["amount"]) for ln in lines] == [
        (1, "501", 3, Decimal("59.97")),
        (2, "503", 2, Decimal("498.00")),
        (3, "502", 1, Decimal("29.99")),  # the item's base price, as on create
    ]
    replaced = await sim.send("PATCH", path, {"item": {"items": [{"line": 3}]}}, params={"replace": "item"})
    assert replaced.status_code == 204
    assert [ln["line"] for ln in sim.record("returnAuthorization", ra_id)["item"]] == [3]
    # Lines keep their numbers: the sublist and each line are read by number.
    sublist = (await sim.http.get(f"{path}/item")).json()
    assert [item["links"][0]["href"].rsplit("/", 1)[-1] for item in sublist["items"]] == ["3"]
    assert (await sim.http.get(f"{path}/item/3")).json()["quantity"] == 1
    assert (await sim.http.get(f"{path}/item/1")).status_code == 404


async def test_patch_of_lines_refuses_what_netsuite_refuses_and_changes_nothing(sim: Sim) -> None:
    ra_id = await sim.create(f"{RECORD}/returnAuthorization", ra_body())
    path = f"{RECORD}/returnAuthorization/{ra_id}"
    await sim.create(f"{path}/!transform/itemReceipt", receipt_body("SN-1", "SN-2"))
    before = sim.record("returnAuthorization", ra_id)["item"]
    snapshot = [dict(line) for line in before]
    for body, params, error_path in (
        ({"item": {"items": [{"line": 9, "quantity": 1}]}}, {}, "item.items[0].line"),
        ({"item": {"items": [{"line": True, "quantity": 1}]}}, {}, "item.items[0].line"),
        (
            {"item": {"items": [{"line": 1, "quantity": 1}, {"line": 1, "quantity": 2}]}},
            {},
            "item.items[1].line",
        ),
        # Line 2 was received (2 of 2): it cannot shrink, change item, or go.
        ({"item": {"items": [{"line": 2, "quantity": 1}]}}, {}, "item.items[0].quantity"),
        ({"item": {"items": [{"line": 2, "item": {"id": "502"}}]}}, {}, "item.items[0].item"),
        ({"item": {"items": [{"line": 1}]}}, {"replace": "item"}, "item"),
        ({"item": {"items": [{"line": 1, "quantity": 0}]}}, {}, "item.items[0].quantity"),
        ({"item": {"items": [{"line": 1, "rate": "x"}]}}, {}, "item.items[0].rate"),
        ({"item": {"items": [{"quantity": 1}]}}, {}, "item.items[0].item"),
    ):
        response = await sim.send("PATCH", path, body, params=params)
        assert response.status_code == 400, (body, response.text)
        assert error_of(response)["o:errorPath"] == error_path, (body, response.text)
    assert sim.record("returnAuthorization", ra_id)["item"] == snapshot, "a refused PATCH changes nothing"
    # Growing a received line reopens the receipt; the status follows.
    await sim.create(f"{path}/!transform/itemReceipt", {"item": {"items": [{"orderLine": 1, "quantity": 2}]}})
    assert sim.record("returnAuthorization", ra_id)["status"]["refName"] == "Pending Refund"
    assert (
        await sim.send("PATCH", path, {"item": {"items": [{"line": 2, "quantity": 3}]}})
    ).status_code == 204
    assert (
        sim.record("returnAuthorization", ra_id)["status"]["refName"] == "Pending Refund/Partially Received"
    )


async def test_patch_of_lines_keeps_a_transformed_return_within_its_order(sim: Sim) -> None:
    ra_id = await sim.create(
        f"{RECORD}/salesOrder/9001/!transform/returnAuthorization",
        {"item": {"items": [{"item": {"id": "501"}, "quantity": 1}]}},
    )
    path = f"{RECORD}/returnAuthorization/{ra_id}"
    over = await sim.send("PATCH", path, {"item": {"items": [{"line": 1, "quantity": 101}]}})
    assert over.status_code == 400 and "more than was ordered" in error_of(over)["detail"]
    foreign = await sim.send("PATCH", path, {"item": {"items": [{"item": {"id": "9999"}, "quantity": 1}]}})
    assert foreign.status_code == 400
    assert (
        await sim.send("PATCH", path, {"item": {"items": [{"line": 1, "quantity": 100}]}})
    ).status_code == 204
    assert sim.record("returnAuthorization", ra_id)["item"][0]["amount"] == Decimal("1999.00")


async def test_patch_of_the_lines_of_a_posted_receipt_is_refused_not_ignored(sim: Sim) -> None:
    ra_id = await sim.create(f"{RECORD}/returnAuthorization", ra_body())
    receipt_id = await sim.create(
        f"{RECORD}/returnAuthorization/{ra_id}/!transform/itemReceipt", receipt_body("SN-1", "SN-2")
    )
    response = await sim.send(
        "PATCH", f"{RECORD}/itemReceipt/{receipt_id}", {"item": {"items": [{"line": 1, "quantity": 1}]}}
    )
    assert response.status_code == 400 and error_of(response)["o:errorPath"] == "item"
    assert sim.record("itemReceipt", receipt_id)["item"][0]["quantity"] == 2
