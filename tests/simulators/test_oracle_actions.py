"""Oracle Fusion ERP-side actions over real HTTP: inventory transactions, credit memo void, order cancel/close."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from returnbridge.simulators.oracle import OracleSimulator
from simulators.test_oracle import credit_memo, order, post, sim  # noqa: F401  (fixture)

Sim = tuple[httpx.AsyncClient, OracleSimulator]


def txn(**overrides: Any) -> dict[str, Any]:
    return {
        "OrganizationCode": "DAL1",
        "ItemNumber": "SKU-1001",
        "SubinventoryCode": "Stores",
        "TransactionTypeName": "Miscellaneous Issue",
        "TransactionQuantity": -2,
        "TransactionUnitOfMeasure": "Ea",
        "TransactionDate": "2026-12-06T10:00:00+00:00",
        "AccountCombination": "101.10.59000.000",
        **overrides,
    }


def _codes(response: httpx.Response) -> list[str]:
    return [d["o:errorCode"] for d in response.json()["o:errorDetails"]]


def _sim_url(client: httpx.AsyncClient, action: str) -> str:
    return f"{client.base_url.scheme}://{client.base_url.host}:{client.base_url.port}/_sim/actions/{action}"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (txn(TransactionQuantity=2), "INV_QTY_SIGN"),  # an issue is negative
        (txn(TransactionTypeName="Miscellaneous Receipt"), "INV_QTY_SIGN"),
        (txn(TransactionTypeName="Cycle Count"), "INV_INVALID_TXN_TYPE"),
        (txn(OrganizationCode="ZZZ"), "INV_INVALID_ORG"),
        (txn(SubinventoryCode="ATTIC"), "INV_INVALID_SUBINV"),
        (txn(ItemNumber="SKU-0"), "INV_INVALID_ITEM"),
        (txn(TransactionUnitOfMeasure="Kg"), "INV_INVALID_UOM"),
        (txn(TransactionQuantity="lots"), "ADF_INVALID_NUMBER"),
        (txn(Colour="red"), "ADF_UNKNOWN_ATTRIBUTE"),
        (txn(TransactionInterfaceId=1), "ADF_READ_ONLY_ATTRIBUTE"),
        ({k: v for k, v in txn().items() if k != "AccountCombination"}, "ADF_MISSING_ATTRIBUTE"),
        (txn(TransactionTypeName="Subinventory Transfer", TransactionQuantity=2), "ADF_MISSING_ATTRIBUTE"),
        (txn(TransactionQuantity=-100000), "INV_NEG_BALANCE"),
    ],
)
async def test_inventory_transaction_refused(sim: Sim, payload: dict[str, Any], code: str) -> None:  # noqa: F811
    client, simulator = sim
    before = list(simulator.kit.state.changes)
    response = await post(client, "inventoryStagedTransactions", payload)
    assert response.status_code == 400, response.text
    assert code in _codes(response)
    assert simulator.kit.state.changes == before


async def test_issue_receipt_transfer_move_stock_feed_and_ledger(sim: Sim) -> None:  # noqa: F811
    client, simulator = sim
    stock = simulator.kit.state.stock
    start = stock[("SKU-1001", "DAL1", "Stores")]
    issue = await post(client, "inventoryStagedTransactions", txn())
    assert issue.status_code == 201, issue.text
    assert issue.json()["ProcessStatus"] == "PROCESSED"
    box = await post(
        client,
        "inventoryStagedTransactions",
        txn(
            TransactionTypeName="Miscellaneous Receipt", TransactionQuantity=1, TransactionUnitOfMeasure="Bx"
        ),
    )
    assert box.status_code == 201, box.text
    move = await post(
        client,
        "inventoryStagedTransactions",
        txn(
            TransactionTypeName="Subinventory Transfer",
            TransactionQuantity=5,
            TransferSubinventory="QUARANTINE",
        ),
    )
    assert move.status_code == 201, move.text
    assert stock[("SKU-1001", "DAL1", "Stores")] == start - 2 + 12 - 5
    assert stock[("SKU-1001", "DAL1", "QUARANTINE")] == 5
    onhand = await client.get(
        "onhandQuantityDetails", params={"q": "ItemNumber = 'SKU-1001' and SubinventoryCode = 'QUARANTINE'"}
    )
    assert onhand.status_code == 200, onhand.text
    assert [Decimal(str(r["PrimaryTransactionQuantity"])) for r in onhand.json()["items"]] == [Decimal(5)]
    assert simulator.kit.state.trial_balance()["balanced"]
    assert {e.document_type for e in simulator.kit.state.ledger} == {"inventoryStagedTransactions"}
    listed = await client.get("inventoryStagedTransactions")
    assert listed.json()["count"] == 3


async def test_void_credit_memo_and_order_actions(sim: Sim) -> None:  # noqa: F811
    client, simulator = sim
    memo = (await post(client, "receivablesCreditMemos", credit_memo())).json()
    key = str(memo["CustomerTransactionId"])
    stamp = memo["LastUpdateDate"]
    wrong = await client.post(_sim_url(client, "credit/void"), json={"document_id": "1"})
    assert wrong.status_code == 404
    void = await client.post(_sim_url(client, "credit/void"), json={"document_id": key})
    assert void.status_code == 200, void.text
    after = (await client.get(f"receivablesCreditMemos/{key}")).json()
    assert after["TransactionStatus"] == "Void" and after["LastUpdateDate"] > stamp
    assert simulator.kit.state.trial_balance()["balanced"]
    again = await client.post(_sim_url(client, "credit/void"), json={"document_id": key})
    assert again.status_code == 400
    created = (await post(client, "salesOrdersForOrderHub", order())).json()
    header = str(created["HeaderId"])
    cancel = await client.post(_sim_url(client, "order/cancel"), json={"document_id": header})
    assert cancel.status_code == 200, cancel.text
    close = await client.post(_sim_url(client, "order/close"), json={"document_id": header})
    assert close.status_code == 400 and close.json()["error"]["code"] == "DOO_INVALID_STATUS_CHANGE"
    bad = await client.post(
        _sim_url(client, "document/status"),
        json={"document_type": "salesOrdersForOrderHub", "document_id": header, "status": "LOST"},
    )
    assert bad.status_code == 400
    adjust = await client.post(
        _sim_url(client, "stock/adjust"), json={"sku": "SKU-1002", "site": "LHR1", "delta": "-1"}
    )
    assert adjust.status_code == 200, adjust.text
    assert simulator.kit.state.stock[("SKU-1002", "LHR1", "Stores")] == simulator.config.initial_stock - 1
