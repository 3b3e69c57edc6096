"""ERP -> RMS: poller cursors, inventory KV and InventoryService, document statuses and reconciliation."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence

import grpc
import pytest

from delivery.pipeline_harness import FakeErp, Pipeline, make_order, md
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import admin_pb2, admin_pb2_grpc, inventory_pb2, inventory_pb2_grpc, returns_pb2
from returnbridge.bus import subjects
from returnbridge.bus.kv import keys_matching
from returnbridge.connectors.base import ChangeBatch
from returnbridge.domain.context import Principal, set_principal
from returnbridge.errors import TranslationError
from returnbridge.services.admin import AdminServicer
from returnbridge.services.inventory import InventoryServicer
from returnbridge.sync.inventory import InventoryStore
from returnbridge.sync.poller import Poller, PollerSettings, PollTarget, PollTargetConfig


class InboundMapper:
    """Stands in for the netsuite inbound packs: a small JSON record -> InventoryLevel / DocumentStatus."""

    def __init__(self, mapping_id: str) -> None:
        self.id = mapping_id

    def _one(self, document: bytes) -> bytes:
        record = json.loads(document)
        if "bad" in record:
            raise TranslationError("missing item", rule="sku", path="item")
        if self.id.endswith("inventory_level"):
            level = inventory_pb2.InventoryLevel(
                sku=record["item"], on_hand=record["qty"], available=record["qty"]
            )
            level.location.site = record["loc"]
            return level.SerializeToString()
        status = inventory_pb2.DocumentStatus(
            document_type=record["type"], document_id=record["id"], status=record["status"]
        )
        status.amount.amount, status.amount.currency = record["amount"], "USD"
        return status.SerializeToString()

    def translate(self, document: bytes) -> bytes:
        return self._one(document)

    def translate_batch(self, documents: Sequence[bytes]) -> list[bytes | TranslationError]:
        out: list[bytes | TranslationError] = []
        for document in documents:
            try:
                out.append(self._one(document))
            except TranslationError as exc:
                out.append(exc)
        return out


class InboundMappers:
    def get(self, mapping_id: str) -> InboundMapper:
        return InboundMapper(mapping_id)


def _poller(pipeline: Pipeline, erp: FakeErp, tenant: str = "acme", page_size: int = 2) -> Poller:
    return Poller(
        [PollTarget(PollTargetConfig(target="netsuite", tenant=tenant), erp)],
        InboundMappers(),
        pipeline.buckets[subjects.CURSORS_BUCKET],
        InventoryStore(pipeline.buckets[subjects.INVENTORY_BUCKET]),
        pipeline.buckets[subjects.SYNC_STATE_BUCKET],
        pipeline.publisher,
        PollerSettings(interval_seconds=0.05, page_size=page_size),
    )


def stock(item: str, loc: str, qty: str) -> bytes:
    return json.dumps({"item": item, "loc": loc, "qty": qty}).encode()


async def test_inventory_polled_into_kv_and_served_per_tenant(pipeline: Pipeline) -> None:
    erp = FakeErp()
    erp.inventory = [
        stock("SKU-1", "DAL1", "5"),
        json.dumps({"bad": 1}).encode(),
        stock("SKU-2", "DAL1", "7.5"),
    ]
    poller = _poller(pipeline, erp)
    assert await poller.poll_once() == {"netsuite.inventory": 2, "netsuite.status": 0}
    # The cursor is kept: nothing new means nothing read again.
    assert await poller.poll_once() == {"netsuite.inventory": 0, "netsuite.status": 0}
    store = InventoryStore(pipeline.buckets[subjects.INVENTORY_BUCKET])
    stub = inventory_pb2_grpc.InventoryServiceStub(await pipeline.start_grpc(InventoryServicer(store)))
    level = await stub.GetInventory(
        inventory_pb2.GetInventoryRequest(sku="SKU-2", location={"site": "DAL1"}), metadata=md("acme")
    )
    assert (level.on_hand, level.tenant_id, level.target) == ("7.5", "acme", "netsuite")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetInventory(
            inventory_pb2.GetInventoryRequest(sku="SKU-2", location={"site": "DAL1"}), metadata=md("globex")
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    page = await stub.ListInventory(inventory_pb2.ListInventoryRequest(page_size=1), metadata=md("acme"))
    assert [lv.sku for lv in page.levels] == ["SKU-1"] and page.next_page_token
    page2 = await stub.ListInventory(
        inventory_pb2.ListInventoryRequest(page_size=1, page_token=page.next_page_token), metadata=md("acme")
    )
    assert [lv.sku for lv in page2.levels] == ["SKU-2"] and not page2.next_page_token
    assert not (await stub.ListInventory(inventory_pb2.ListInventoryRequest(), metadata=md("globex"))).levels

    watch = stub.WatchInventory(
        inventory_pb2.WatchInventoryRequest(include_snapshot=True, skus=["SKU-1"]), metadata=md("acme")
    )
    first = await asyncio.wait_for(watch.read(), timeout=10)
    assert first.level.on_hand == "5"
    await poller.start()
    erp.inventory.append(stock("SKU-1", "DAL1", "4"))
    changed = await asyncio.wait_for(watch.read(), timeout=10)
    # Sequences are per-tenant opaque ids (issue 12): a new revision, not a larger number.
    assert changed.level.on_hand == "4" and changed.sequence not in (0, first.sequence)
    watch.cancel()
    await poller.stop()


async def test_posted_amounts_reconcile_against_sync_state(pipeline: Pipeline) -> None:
    set_principal(Principal(name="rms", tenant_id="acme"))
    erp = await pipeline.start_worker("netsuite")
    # Each return's life in order (authorized, received, refunded): the lifecycle admits nothing else.
    for rid, amount in (("M1", "30.00"), ("M2", "12.50")):
        for version, event in enumerate(
            (
                returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
                returns_pb2.LIFECYCLE_EVENT_RECEIVED,
                returns_pb2.LIFECYCLE_EVENT_REFUNDED,
            ),
            start=1,
        ):
            order = make_order(rid, version, event, amount=amount)
            await pipeline.intake.submit(returns_pb2.SubmitReturnRequest(return_order=order))

    async def credits() -> dict[str, str]:
        ids = {}
        for rid in ("M1", "M2"):
            record = await pipeline.status.get("acme", rid)
            assert record is not None and record["documents"]["3:credit_memo"]["state"] == "DELIVERED"
            ids[rid] = record["documents"]["3:credit_memo"]["erp_document_id"]
        return ids

    ids = await assert_eventually(credits)
    erp.statuses = [
        json.dumps({"type": "creditMemo", "id": ids["M1"], "status": "posted", "amount": "-30.00"}).encode(),
        json.dumps({"type": "creditMemo", "id": ids["M2"], "status": "posted", "amount": "12.00"}).encode(),
    ]
    await _poller(pipeline, erp).poll_once()
    admin = AdminServicer(pipeline.dead_letters, pipeline.status)
    stub = admin_pb2_grpc.AdminServiceStub(await pipeline.start_grpc(admin))
    report = await stub.GetReconciliationReport(admin_pb2.ReconciliationRequest(), metadata=md("acme"))
    statuses = {line.return_id: line.status for line in report.lines}
    assert statuses == {
        "M1": admin_pb2.RECONCILIATION_STATUS_MATCHED,
        "M2": admin_pb2.RECONCILIATION_STATUS_AMOUNT_MISMATCH,
    }
    assert not report.balanced
    assert [(m.amount, m.currency) for m in report.expected_totals] == [("42.50", "USD")]
    assert [(m.amount, m.currency) for m in report.posted_totals] == [("42.00", "USD")]
    other = await stub.GetReconciliationReport(admin_pb2.ReconciliationRequest(), metadata=md("globex"))
    assert list(other.lines) == [] and other.balanced


async def test_same_location_from_two_erps_keeps_both_levels(pipeline: Pipeline) -> None:
    store = InventoryStore(pipeline.buckets[subjects.INVENTORY_BUCKET])
    for target, qty in (("netsuite", "5"), ("sap", "100.000")):
        level = inventory_pb2.InventoryLevel(tenant_id="acme", sku="SKU-1", on_hand=qty, target=target)
        level.location.site = "DAL1"
        await store.put(level)
    stub = inventory_pb2_grpc.InventoryServiceStub(await pipeline.start_grpc(InventoryServicer(store)))
    listed = await stub.ListInventory(inventory_pb2.ListInventoryRequest(skus=["SKU-1"]), metadata=md("acme"))
    assert sorted((lv.target, lv.on_hand) for lv in listed.levels) == [("netsuite", "5"), ("sap", "100.000")]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetInventory(
            inventory_pb2.GetInventoryRequest(sku="SKU-1", location={"site": "DAL1"}), metadata=md("acme")
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "netsuite, sap" in (
        info.value.details() or ""
    )
    level = await stub.GetInventory(
        inventory_pb2.GetInventoryRequest(sku="SKU-1", location={"site": "DAL1"}, target="sap"),
        metadata=md("acme"),
    )
    assert level.on_hand == "100.000"


class HeldErp(FakeErp):
    """Each inventory read waits for a permit, so a test decides when a poll may finish."""

    def __init__(self) -> None:
        super().__init__()
        self.permits = asyncio.Semaphore(0)
        self.reads = 0
        self.read_started = asyncio.Condition()

    async def read_inventory(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        async with self.read_started:
            self.reads += 1
            self.read_started.notify_all()
        await self.permits.acquire()
        return await super().read_inventory(cursor, limit)

    async def wait_reads(self, count: int) -> None:
        async with self.read_started:
            await asyncio.wait_for(self.read_started.wait_for(lambda: self.reads >= count), 30)


async def test_a_push_with_a_change_time_out_of_reach_counts_from_its_arrival(pipeline: Pipeline) -> None:
    """Year 1, the poller's past or the future (a bad clock, or a hostile signed sender) would skew the
    push-latency KPI by centuries; a change time in range is kept, the earliest of a burst winning."""
    poller = Poller(
        [PollTarget(PollTargetConfig(target="netsuite", tenant="acme", status=False), HeldErp())],
        InboundMappers(),
        pipeline.buckets[subjects.CURSORS_BUCKET],
        InventoryStore(pipeline.buckets[subjects.INVENTORY_BUCKET]),
        pipeline.buckets[subjects.SYNC_STATE_BUCKET],
        pipeline.publisher,
        PollerSettings(interval_seconds=3600),
    )
    feed = poller._feeds[("netsuite", "inventory")]
    for bogus in (-62_135_596_800.0, poller._started_at - 1, time.time() + 3600):
        before = time.time()
        assert poller.wake("netsuite", "inventory", bogus)
        taken = feed.take()
        assert taken is not None and before <= taken <= time.time()
    in_range = (poller._started_at + time.time()) / 2
    assert poller.wake("netsuite", "inventory", in_range)
    assert poller.wake("netsuite", "inventory", -1.0)
    assert feed.take() == in_range


async def test_a_burst_of_wakes_during_a_poll_makes_exactly_one_follow_up_poll(pipeline: Pipeline) -> None:
    erp = HeldErp()
    poller = Poller(
        [PollTarget(PollTargetConfig(target="netsuite", tenant="acme", status=False), erp)],
        InboundMappers(),
        pipeline.buckets[subjects.CURSORS_BUCKET],
        InventoryStore(pipeline.buckets[subjects.INVENTORY_BUCKET]),
        pipeline.buckets[subjects.SYNC_STATE_BUCKET],
        pipeline.publisher,
        PollerSettings(interval_seconds=3600),  # no scheduled poll in the test's lifetime
    )
    await poller.start()
    try:
        await erp.wait_reads(1)  # the first poll is reading
        erp.inventory.append(stock("SKU-1", "DAL", "5"))
        for at in (30.0, 10.0, 20.0):
            assert poller.wake("netsuite", "inventory", at)
        erp.permits.release()
        await erp.wait_reads(2)  # one follow-up for the whole burst ...
        feed = poller._feeds[("netsuite", "inventory")]
        assert not feed.woken.is_set()  # ... which took every wake of it: no second follow-up is pending
        erp.permits.release()
        kv = pipeline.buckets[subjects.INVENTORY_BUCKET]

        async def stored() -> None:
            assert len(await keys_matching(kv, ">")) == 1

        await assert_eventually(stored)
        assert erp.reads == 2
        # A burst before a poll starts is one poll too, and a wake of a kind not polled reads nothing.
        assert poller.wake("netsuite", "status", 1.0)
        for at in (5.0, 6.0):
            assert poller.wake("netsuite", "inventory", at)
        await erp.wait_reads(3)
        assert feed.hinted_at is None and not feed.woken.is_set()
        erp.permits.release()
    finally:
        for _ in range(5):  # a failed assertion must not leave a poll waiting for ever
            erp.permits.release()
        await poller.stop()
    assert erp.reads == 3
