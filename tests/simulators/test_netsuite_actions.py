"""NetSuite ERP-side actions over real HTTP: inventory adjustments and transfers, voids, RA close and cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from simulators.test_netsuite_records import RECORD, Sim, ra_body, start


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    s, running = await start()
    yield s
    await s.http.aclose()
    await running.stop()


def _adjustment(**line: Any) -> dict[str, Any]:
    base = {"item": {"id": "501"}, "location": {"id": "1"}, "adjustQtyBy": -2}
    return {"subsidiary": {"id": "1"}, "account": {"id": "510"}, "inventory": {"items": [{**base, **line}]}}


def _on_hand(sim: Sim, site: str = "DAL1") -> Decimal:
    return sim.simulator.on_hand("SKU-1001", site)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"subsidiary": {"id": "1"}, "account": {"id": "510"}}, "USER_ERROR"),  # no lines
        ({**_adjustment(), "account": {"id": "999"}}, "INVALID_KEY_OR_REF"),
        ({k: v for k, v in _adjustment().items() if k != "account"}, "USER_ERROR"),
        ({k: v for k, v in _adjustment().items() if k != "subsidiary"}, "USER_ERROR"),
        (_adjustment(adjustQtyBy=0), "USER_ERROR"),
        (_adjustment(adjustQtyBy="2"), "USER_ERROR"),
        (_adjustment(adjustQtyBy=Decimal("1.5")), "USER_ERROR"),
        (_adjustment(adjustQtyBy=-100000), "USER_ERROR"),  # below zero
        (_adjustment(location={"id": "77"}), "INVALID_KEY_OR_REF"),
        (_adjustment(item={"id": "503"}), "USER_ERROR"),  # serialized: needs inventory detail
        (_adjustment(colour="red"), "INVALID_FIELD"),
        ({**_adjustment(), "tranId": "X"}, "USER_ERROR"),  # read-only
    ],
)
async def test_inventory_adjustment_refused(sim: Sim, body: dict[str, Any], code: str) -> None:
    before = list(sim.simulator.kit.state.changes)
    response = await sim.send("POST", f"{RECORD}/inventoryAdjustment", body)
    assert response.status_code == 400, response.text
    assert response.json()["o:errorDetails"][0]["o:errorCode"] == code
    assert sim.simulator.kit.state.changes == before


async def test_adjustment_and_transfer_move_stock_feed_and_ledger(sim: Sim) -> None:
    start_dal, start_rno = _on_hand(sim), _on_hand(sim, "RNO2")
    adj = await sim.create(f"{RECORD}/inventoryAdjustment", _adjustment(adjustQtyBy=-2))
    assert _on_hand(sim) == start_dal - 2
    got = await sim.send("GET", f"{RECORD}/inventoryAdjustment/{adj}")
    assert got.status_code == 200 and got.json()["inventory"][0]["adjustQtyBy"] == -2
    body = {
        "subsidiary": {"id": "1"},
        "location": {"id": "1"},
        "transferLocation": {"id": "2"},
        "inventory": {"items": [{"item": {"id": "501"}, "adjustQtyBy": 3}]},
    }
    await sim.create(f"{RECORD}/inventoryTransfer", body)
    assert (_on_hand(sim), _on_hand(sim, "RNO2")) == (start_dal - 5, start_rno + 3)
    same = await sim.send("POST", f"{RECORD}/inventoryTransfer", {**body, "transferLocation": {"id": "1"}})
    assert same.status_code == 400
    keys = [key for _, kind, key in sim.simulator.kit.state.changes if kind == "stock"]
    assert keys[-3:] == ["SKU-1001|DAL1|", "SKU-1001|DAL1|", "SKU-1001|RNO2|"]
    # SuiteQL's inventory feed sees the new level.
    rows = await suiteql(
        sim,
        "SELECT item, location, quantityonhand FROM aggregateItemLocation WHERE item = 501 AND location = 1",
    )
    assert Decimal(rows[0]["quantityonhand"]) == start_dal - 5
    assert sim.simulator.kit.state.trial_balance()["balanced"]


async def suiteql(sim: Sim, query: str) -> list[dict[str, Any]]:
    response = await sim.http.post(
        "/services/rest/query/v1/suiteql", json={"q": query}, headers={"Prefer": "transient"}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def _credit_memo(sim: Sim) -> str:
    ra = await sim.create(f"{RECORD}/salesOrder/9001/!transform/returnAuthorization", ra_body())
    await sim.send("POST", f"{RECORD}/returnAuthorization/{ra}/@approve")
    return await sim.create(f"{RECORD}/returnAuthorization/{ra}/!transform/creditMemo", {})


async def test_void_credit_memo_reverses_postings(sim: Sim) -> None:
    memo = await _credit_memo(sim)
    posted = sum((e.debit for e in sim.simulator.kit.state.ledger), Decimal(0))
    bad = await sim.http.post(
        "/_sim/actions/credit/void", json={"document_id": memo, "document_type": "invoice"}
    )
    assert bad.status_code == 400
    void = await sim.http.post("/_sim/actions/credit/void", json={"document_id": memo})
    assert void.status_code == 200, void.text
    assert sim.record("creditMemo", memo)["status"]["id"] == "V"
    assert sum((e.debit for e in sim.simulator.kit.state.ledger), Decimal(0)) == 2 * posted
    assert sim.simulator.kit.state.trial_balance()["balanced"]
    again = await sim.http.post("/_sim/actions/credit/void", json={"document_id": memo})
    assert again.status_code == 400 and again.json()["error"]["code"] == "USER_ERROR"
    rows = await suiteql(
        sim, f"SELECT id, status, BUILTIN.DF(status) AS statusname FROM transaction WHERE id = {memo}"
    )
    assert (rows[0]["status"], rows[0]["statusname"]) == ("V", "Voided")


async def test_ra_cancel_and_close(sim: Sim) -> None:
    ra = await sim.create(f"{RECORD}/salesOrder/9001/!transform/returnAuthorization", ra_body())
    closed = await sim.http.post("/_sim/actions/order/close", json={"document_id": ra})
    assert closed.status_code == 200 and sim.record("returnAuthorization", ra)["status"]["id"] == "H"
    cancel = await sim.http.post("/_sim/actions/order/cancel", json={"document_id": ra})
    assert cancel.status_code == 400  # a closed RA cannot be cancelled
    missing = await sim.http.post("/_sim/actions/order/cancel", json={"document_id": "424242"})
    assert missing.status_code == 404


async def test_ui_stock_actions(sim: Sim) -> None:
    start_dal = _on_hand(sim)
    for body in (
        {"sku": "SKU-1001", "site": "DAL1", "delta": "1.5"},
        {"sku": "SKU-9999", "site": "DAL1", "delta": "1"},
        {"sku": "SKU-1001", "site": "DAL1"},
    ):
        response = await sim.http.post("/_sim/actions/stock/adjust", json=body)
        assert response.status_code == 400, (body, response.text)
    ok = await sim.http.post(
        "/_sim/actions/stock/adjust", json={"sku": "SKU-1001", "site": "DAL1", "delta": "4"}
    )
    assert ok.status_code == 200, ok.text
    moved = await sim.http.post(
        "/_sim/actions/stock/transfer",
        json={"sku": "SKU-1001", "site": "DAL1", "quantity": "1", "to_sub_location": "", "to_site": "LHR1"},
    )
    assert moved.status_code == 400  # empty to_sub_location is not a value
    moved = await sim.http.post(
        "/_sim/actions/stock/transfer",
        json={"sku": "SKU-1001", "site": "DAL1", "quantity": "1", "to_sub_location": "LHR1"},
    )
    assert moved.status_code == 200, moved.text
    assert _on_hand(sim) == start_dal + 3
