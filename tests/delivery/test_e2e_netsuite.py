"""End to end: gRPC submit -> JetStream -> real mapper -> real NetSuite connector -> NetSuite simulator, and back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.harnesses.netsuite import NetSuiteTbaHarness
from delivery.pipeline_harness import Pipeline, fast_settings, md
from helpers.eventually import assert_eventually
from mapping.samples import build_return
from returnbridge.api.v1 import admin_pb2, admin_pb2_grpc, returns_pb2, returns_pb2_grpc, sync_pb2
from returnbridge.bus import subjects
from returnbridge.delivery.worker import DeliveryWorker
from returnbridge.mapping import MappingRegistry
from returnbridge.services.admin import AdminServicer
from returnbridge.simulators.faults import FaultPlan
from returnbridge.sync.inventory import InventoryStore
from returnbridge.sync.poller import Poller, PollerSettings, PollTarget, PollTargetConfig


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


@pytest.fixture
async def netsuite() -> AsyncIterator[NetSuiteTbaHarness]:
    # Duplicates accepted: exactly once is the worker's doing, not a refusal by the simulator.
    harness = NetSuiteTbaHarness(duplicates="accept")
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


def lifecycle(return_seed: int) -> list[returns_pb2.ReturnOrder]:
    orders = []
    for version, event in enumerate(
        (
            returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
            returns_pb2.LIFECYCLE_EVENT_RECEIVED,
            returns_pb2.LIFECYCLE_EVENT_REFUNDED,
        ),
        start=1,
    ):
        order = build_return(
            2,
            seed=return_seed,
            serialized_every=0,
            event=event,
            version=version,
            erp="netsuite",
            original_order=False,
        )
        order.refund.method = returns_pb2.REFUND_METHOD_STORE_CREDIT
        orders.append(order)
    return orders


async def test_lifecycle_through_simulator_with_faults_exactly_once(
    pipeline: Pipeline, netsuite: NetSuiteTbaHarness, registry: MappingRegistry
) -> None:
    js = pipeline.nc.jetstream()
    worker = DeliveryWorker(
        "netsuite",
        netsuite.connector(timeout=5.0),
        registry,
        js,
        pipeline.status,
        pipeline.dead_letters,
        fast_settings(),
        alerter=pipeline.alerter,
    )
    await worker.start()
    pipeline.workers.append(worker)
    channel = await pipeline.start_grpc(
        pipeline.returns_servicer(), AdminServicer(pipeline.dead_letters, pipeline.status)
    )
    returns = returns_pb2_grpc.ReturnsServiceStub(channel)
    # The first writes fail with 503, and one write is applied but its answer is lost.
    await netsuite.set_faults(
        FaultPlan(error_rate=1.0, remaining=2, path_pattern=r"/record/v1/", methods=["POST", "PUT"]).to_json()
    )
    # Interleaved across returns (each return's versions in order: the lifecycle admission requires it).
    orders = [order for pair in zip(lifecycle(2), lifecycle(1), strict=True) for order in pair]
    for order in orders:
        response = await returns.SubmitReturn(
            returns_pb2.SubmitReturnRequest(return_order=order), metadata=md("acme")
        )
        assert response.route.target == "netsuite"

    async def delivered(return_id: str) -> sync_pb2.ReturnSyncStatus:
        status = await returns.GetReturnStatus(
            returns_pb2.GetReturnStatusRequest(return_id=return_id), metadata=md("acme")
        )
        assert [d.state for d in status.documents] == [sync_pb2.SYNC_STATE_DELIVERED] * 3, [
            (d.step, d.state, d.last_error.code, d.last_error.message) for d in status.documents
        ]
        return status

    first = await assert_eventually(lambda: delivered(orders[0].return_id), timeout=30)
    await netsuite.set_faults(
        FaultPlan(commit_then_drop_rate=1.0, remaining=1, path_pattern=r"/record/v1/").to_json()
    )
    await assert_eventually(lambda: delivered(orders[3].return_id), timeout=30)
    ra_id = first.documents[0].erp_document_id
    for order in (orders[0], orders[3]):
        for document_type, version in (("returnAuthorization", 1), ("itemReceipt", 2), ("creditMemo", 3)):
            assert await netsuite.count_documents(document_type, f"{order.rma_number}-{version}") == 1
    receipt = netsuite.sim.documents("itemReceipt")[first.documents[1].erp_document_id]
    assert str(receipt.get("createdFrom", {}).get("id")) == ra_id

    # Back from the ERP: stock and statuses through the real inbound mappings, then reconciliation.
    poller = Poller(
        [PollTarget(PollTargetConfig(target="netsuite", tenant="acme"), netsuite.connector())],
        registry,
        pipeline.buckets[subjects.CURSORS_BUCKET],
        InventoryStore(pipeline.buckets[subjects.INVENTORY_BUCKET]),
        pipeline.buckets[subjects.SYNC_STATE_BUCKET],
        pipeline.publisher,
        PollerSettings(),
    )
    counts = await poller.poll_once()
    assert counts["netsuite.inventory"] > 0 and counts["netsuite.status"] > 0
    level = await InventoryStore(pipeline.buckets[subjects.INVENTORY_BUCKET]).get("acme", "SKU-1001", "DAL1")
    assert level.on_hand and level.tenant_id == "acme"
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    report = await admin.GetReconciliationReport(admin_pb2.ReconciliationRequest(), metadata=md("acme"))
    assert {line.return_id for line in report.lines} == {orders[0].return_id, orders[3].return_id}
    # Every credit memo was read back with a posted amount (whether it matches is the report's finding).
    assert all(line.erp_document_id and line.erp_posted.amount for line in report.lines)
    assert all(line.status != admin_pb2.RECONCILIATION_STATUS_MISSING_IN_ERP for line in report.lines)
    # NetSuite posts subtotal + tax - restocking fee (tax detail override + header discount): the RMS refund.
    assert [line.status for line in report.lines] == [admin_pb2.RECONCILIATION_STATUS_MATCHED] * 2
    assert {line.erp_posted.amount for line in report.lines} == {o.refund.amount.amount for o in orders}
    assert report.balanced, [(line.expected.amount, line.erp_posted.amount) for line in report.lines]
    assert netsuite.sim.kit.state.trial_balance()["balanced"] is True


def _erp_requests() -> float:
    from returnbridge.observability.metrics import REGISTRY

    return sum(
        REGISTRY.get_sample_value("rb_erp_requests_total", {"erp": "netsuite", "operation": op}) or 0.0
        for op in ("create_document", "find_document")
    )


async def test_happy_path_costs_one_erp_request_per_document(
    pipeline: Pipeline, netsuite: NetSuiteTbaHarness, registry: MappingRegistry
) -> None:
    """No faults, versions in order: each document is one request (no lookup, no read-back), counted."""
    worker = DeliveryWorker(
        "netsuite",
        netsuite.connector(timeout=5.0),
        registry,
        pipeline.nc.jetstream(),
        pipeline.status,
        pipeline.dead_letters,
        fast_settings(),
    )
    await worker.start()
    pipeline.workers.append(worker)
    channel = await pipeline.start_grpc(pipeline.returns_servicer())
    returns = returns_pb2_grpc.ReturnsServiceStub(channel)
    before, requests_before = netsuite.sim.kit.state.requests, _erp_requests()
    orders = lifecycle(7)
    for count, order in enumerate(orders, start=1):
        await returns.SubmitReturn(returns_pb2.SubmitReturnRequest(return_order=order), metadata=md("acme"))

        async def delivered(count: int = count, return_id: str = order.return_id) -> None:
            status = await returns.GetReturnStatus(
                returns_pb2.GetReturnStatusRequest(return_id=return_id), metadata=md("acme")
            )
            states = [d.state for d in status.documents]
            assert states.count(sync_pb2.SYNC_STATE_DELIVERED) == count, states

        await assert_eventually(delivered, timeout=30)
    assert netsuite.sim.kit.state.requests - before == len(orders), "ERP requests seen by the simulator"
    assert _erp_requests() - requests_before == len(orders), "rb_erp_requests_total"
