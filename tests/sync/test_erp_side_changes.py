"""Changes made inside each ERP reach a watching RMS client by poll: stock, voided credits, closed orders."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import grpc
import httpx
import pytest

from delivery.pipeline_harness import Pipeline, md
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import (
    admin_pb2,
    inventory_pb2,
    inventory_pb2_grpc,
    returns_pb2,
    returns_pb2_grpc,
    sync_pb2,
)
from returnbridge.bus import subjects
from returnbridge.mapping import MappingRegistry
from returnbridge.services.inventory import InventoryServicer
from returnbridge.sync.inventory import InventoryStore
from returnbridge.sync.poller import Poller, PollerSettings, PollTarget, PollTargetConfig
from returnbridge.sync.reconciliation import reconciliation_report
from sync.test_erp_reconcile import TARGETS, Erps

# A transfer of SKU-1002 out of DAL1's main stock, and where it lands.
TRANSFERS = {
    "netsuite": {"sku": "SKU-1002", "site": "DAL1", "quantity": "1", "to_sub_location": "RNO2"},
    "sap": {"sku": "SKU-1002", "site": "DAL1", "quantity": "1", "to_sub_location": "RET1"},
    "oracle_fusion": {"sku": "SKU-1002", "site": "DAL1", "quantity": "1", "to_sub_location": "QUARANTINE"},
}
MOVED_TO = {"netsuite": ("RNO2", ""), "sap": ("DAL1", "RET1"), "oracle_fusion": ("DAL1", "QUARANTINE")}
# What the status feed reports for the cancelled return (SAP: every item rejected, the return complete).
CANCELLED = {"netsuite": "cancelled", "sap": "closed", "oracle_fusion": "cancelled"}
CREDITS = {"netsuite": "creditMemo", "sap": "A_CreditMemoRequest", "oracle_fusion": "receivablesCreditMemos"}
# target -> (return document type, UI action, extra body, status reported): after a refund NetSuite's RA is
# already closed (a workflow reopens it), Oracle's order is received (a person closes it), SAP's return complete.
STATUS_CHANGES: dict[str, tuple[str, str, dict[str, str], str]] = {
    "netsuite": (
        "returnAuthorization",
        "document/status",
        {"document_type": "returnAuthorization", "status": "F"},
        "pending_refund",
    ),
    "oracle_fusion": ("salesOrdersForOrderHub", "order/close", {}, "closed"),
    "sap": (
        "A_CustomerReturn",
        "document/status",
        {"document_type": "A_CustomerReturn", "status": "B"},
        "received",
    ),
}


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


@pytest.fixture
async def erps(pipeline: Pipeline, registry: MappingRegistry) -> AsyncIterator[Erps]:
    erps = Erps(pipeline, registry)
    await erps.start()
    try:
        yield erps
    finally:
        await erps.stop()


async def _collect(stream: Any, into: list[Any]) -> None:
    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
        async for item in stream:
            into.append(item)


def _erp_stock(erps: Erps, target: str, sku: str = "SKU-1001", site: str = "DAL1", sub: str = "") -> Decimal:
    harness = erps.harnesses[target]
    if target == "netsuite":
        return Decimal(harness.sim.on_hand(sku, site))
    state = harness.sim.state if target == "oracle_fusion" else harness.sim.kit.state
    sub = sub or ("Stores" if target == "oracle_fusion" else "0001")
    return Decimal(state.stock[(sku, site, sub)])


async def _ui(erps: Erps, target: str, action: str, body: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=erps.harnesses[target].running.url) as http:
        response = await http.post(f"/_sim/actions/{action}", json=body)
    assert response.status_code == 200, (target, action, response.text)


@pytest.mark.timeout(300)
async def test_erp_side_changes_reach_watching_clients_by_poll(erps: Erps, registry: MappingRegistry) -> None:
    await erps.submit_lifecycles(1)
    # A second return, only authorized: someone cancels it in the ERP before anything arrives.
    await erps.submit_lifecycles(1, first=1, events=(returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,))
    await erps.all_delivered(timeout=120)
    pipeline = erps.pipeline
    store = InventoryStore(pipeline.buckets[subjects.INVENTORY_BUCKET])
    channel = await pipeline.start_grpc(pipeline.returns_servicer(), InventoryServicer(store))
    returns = returns_pb2_grpc.ReturnsServiceStub(channel)
    events: list[sync_pb2.SyncEvent] = []
    updates: list[inventory_pb2.InventoryUpdate] = []
    watchers = [
        asyncio.create_task(
            _collect(
                returns.WatchSyncEvents(returns_pb2.WatchSyncEventsRequest(), metadata=md("acme")), events
            )
        ),
        asyncio.create_task(
            _collect(
                inventory_pb2_grpc.InventoryServiceStub(channel).WatchInventory(
                    inventory_pb2.WatchInventoryRequest(skus=["SKU-1001", "SKU-1002"]), metadata=md("acme")
                ),
                updates,
            )
        ),
    ]
    poller = Poller(
        [
            PollTarget(PollTargetConfig(target=t, tenant="acme"), h.connector(timeout=10.0))
            for t, h in erps.harnesses.items()
        ],
        registry,
        pipeline.buckets[subjects.CURSORS_BUCKET],
        store,
        pipeline.buckets[subjects.SYNC_STATE_BUCKET],
        pipeline.publisher,
        PollerSettings(interval_seconds=0.2),
        status_store=pipeline.status,
    )
    credit_ids: dict[str, str] = {}
    for target in TARGETS:
        record = await pipeline.status.get("acme", f"R-{target}-0")
        assert record is not None
        docs = {d["document_type"]: d for d in record["documents"].values()}
        credit_ids[target] = docs[CREDITS[target]]["erp_document_id"]

    # The first poll reads what the ERPs hold now: each credit is reported as posted.
    async def credits_posted() -> None:
        await poller.poll_once()
        for target in TARGETS:
            record = await pipeline.status.get("acme", f"R-{target}-0")
            assert record is not None
            credit = next(d for d in record["documents"].values() if d["document_type"] == CREDITS[target])
            assert credit.get("erp_status") in ("posted", "refunded"), (target, credit)

    await assert_eventually(credits_posted, timeout=60)

    # People change things inside each ERP.
    for target in TARGETS:
        await _ui(erps, target, "stock/adjust", {"sku": "SKU-1001", "site": "DAL1", "delta": "-2"})
        await _ui(erps, target, "stock/transfer", TRANSFERS[target])
        authorized = await pipeline.status.get("acme", f"R-{target}-1")
        assert authorized is not None
        (only,) = authorized["documents"].values()
        await _ui(erps, target, "order/cancel", {"document_id": only["erp_document_id"]})
        await _ui(erps, target, "credit/void", {"document_id": credit_ids[target]})
    for target, (kind, action, extra, _) in STATUS_CHANGES.items():
        record = await pipeline.status.get("acme", f"R-{target}-0")
        assert record is not None
        doc = next(d for d in record["documents"].values() if d["document_type"] == kind)
        await _ui(erps, target, action, {"document_id": doc["erp_document_id"], **extra})
    expected_stock = {target: _erp_stock(erps, target) for target in TARGETS}
    moved = {target: _erp_stock(erps, target, "SKU-1002", *MOVED_TO[target]) for target in TARGETS}

    async def seen() -> None:
        await poller.poll_once()
        for target in TARGETS:
            voided = [e for e in events if e.return_id == f"R-{target}-0" and e.erp_status == "voided"]
            assert voided, (target, [(e.return_id, e.step, e.erp_status) for e in events if e.erp_status])
            assert voided[0].document_type == CREDITS[target] and voided[0].erp_amount.amount
            levels = [
                u.level for u in updates if u.level.target == target and u.level.location.site == "DAL1"
            ]
            assert any(Decimal(level.on_hand) == expected_stock[target] for level in levels), (target, levels)
            arrived = [u.level for u in updates if u.level.target == target and u.level.sku == "SKU-1002"]
            assert any(Decimal(level.on_hand) == moved[target] for level in arrived), (target, moved, arrived)
            cancelled = [e.erp_status for e in events if e.return_id == f"R-{target}-1" and e.erp_status]
            assert CANCELLED[target] in cancelled, (target, cancelled)
        for target, (kind, _, _, reported) in STATUS_CHANGES.items():
            assert any(
                e.return_id == f"R-{target}-0" and e.document_type == kind and e.erp_status == reported
                for e in events
            ), (target, [(e.document_type, e.erp_status) for e in events if e.return_id == f"R-{target}-0"])

    await assert_eventually(seen, timeout=90)

    # A duplicate read of the same state changes nothing and emits nothing twice.
    count = len([e for e in events if e.erp_status])
    await poller.poll_once()
    await poller.poll_once()
    assert len([e for e in events if e.erp_status]) == count

    for target in TARGETS:
        status = await returns.GetReturnStatus(
            returns_pb2.GetReturnStatusRequest(return_id=f"R-{target}-0"), metadata=md("acme")
        )
        credit = next(d for d in status.documents if d.document_type == CREDITS[target])
        assert credit.erp_status == "voided" and credit.state == sync_pb2.SYNC_STATE_DELIVERED
    report = await reconciliation_report(pipeline.status, "acme")
    mismatched = {
        line.return_id
        for line in report.lines
        if line.status == admin_pb2.RECONCILIATION_STATUS_AMOUNT_MISMATCH
    }
    assert mismatched == {f"R-{target}-0" for target in TARGETS}
    assert not report.balanced
    for task in watchers:
        task.cancel()
    await asyncio.gather(*watchers)
